"""OpenTelemetry traces: parent spans in memory, worker spans from real worker processes."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from obs_support import child_env
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import gxo
from gxo.otel import FILE_ENV, tracing_requested

PLAYBOOK = textwrap.dedent(
    """\
    schemaVersion: v1.0.0
    name: traced
    tasks:
      - name: hello
        type: exec
        params: {command: "true"}
      - name: each
        type: exec
        loop: [a, b]
        depends_on: [hello]
        params: {command: echo, args: ["{{ item }}"]}
      - name: broken
        type: exec
        ignore_errors: true
        retry: {attempts: 2, delay: 0}
        params: {command: "false"}
    """
)


def _file_spans(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_parent_spans_in_memory_and_worker_spans_are_their_children(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spans_file = tmp_path / "worker-spans.jsonl"
    monkeypatch.setenv(FILE_ENV, str(spans_file))
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "none")
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    # spawn: the workers start from this process's environment, GXO_TRACES_FILE included.
    result = gxo.run(
        PLAYBOOK, workers=2, start_method="spawn", tracer_provider=provider, run_id="traced-1"
    )
    assert result.exit_code == 0

    spans = exporter.get_finished_spans()
    (run,) = [s for s in spans if s.name == "gxo.run traced"]
    assert run.parent is None
    assert run.attributes["gxo.run_id"] == "traced-1"
    instances = {
        s.attributes["gxo.instance.label"]: s for s in spans if s.name.startswith("gxo.task")
    }
    assert set(instances) == {"hello", "each[0]", "each[1]", "broken"}
    for span in instances.values():
        assert span.parent is not None
        assert span.parent.span_id == run.context.span_id
        assert span.context.trace_id == run.context.trace_id
        assert span.end_time >= span.start_time
    broken = instances["broken"]
    assert broken.attributes["gxo.status"] == "Failed"
    assert broken.attributes["gxo.attempts"] == 2
    assert broken.attributes["gxo.reason"] == "nonzero_exit(1)"
    assert broken.status.status_code.name == "ERROR"
    assert [e.name for e in broken.events] == [
        "attempt started",
        "retry scheduled",
        "attempt started",
    ]
    assert instances["each[1]"].attributes["gxo.status"] == "Completed"

    # The workers (separate processes) exported their spans to the file.
    worker_spans = _file_spans(spans_file)
    assert len(worker_spans) == 5  # hello, each[0], each[1], broken twice
    by_instance = {s["attributes"]["gxo.instance.id"]: s for s in worker_spans}
    for label, parent in instances.items():
        mine = [s for s in worker_spans if s["parent_id"] == f"0x{parent.context.span_id:016x}"]
        assert mine, f"no worker span under {label}"
        for span in mine:
            assert span["context"]["trace_id"] == f"0x{run.context.trace_id:032x}"
            assert span["name"] == f"gxo.module {parent.attributes['gxo.task']}"
    assert len(by_instance) == 4
    attempts = sorted(
        s["attributes"]["gxo.attempt"] for s in worker_spans if s["name"] == "gxo.module broken"
    )
    assert attempts == [1, 2]


SECRET_PLAYBOOK = """\
schemaVersion: v1.0.0
name: traced_cli
tasks:
  - name: uses_secret
    type: exec
    params:
      command: sh
      args: ["-c", "echo {{ secret('TRACE_TOKEN') }}; exit 3"]
    ignore_errors: true
  - name: after
    type: exec
    depends_on: [uses_secret]
    params: {command: "true"}
"""

CANARY = "s3cr3t-canary-value-9e1f"


def test_cli_traces_across_real_workers_without_secret_values(
    tmp_path: Path, gxo: Callable, write_playbook: Callable
) -> None:
    spans_file = tmp_path / "spans.jsonl"
    playbook = write_playbook(SECRET_PLAYBOOK)
    env = child_env(**{FILE_ENV: str(spans_file), "TRACE_TOKEN": CANARY})
    proc = gxo(playbook, env=env)
    assert proc.returncode == 0, proc.stderr
    text = spans_file.read_text()
    assert CANARY not in text
    spans = _file_spans(spans_file)
    by_id = {s["context"]["span_id"]: s for s in spans}
    (run,) = [s for s in spans if s["name"] == "gxo.run traced_cli"]
    modules = [s for s in spans if s["name"].startswith("gxo.module")]
    assert {s["name"] for s in modules} == {"gxo.module uses_secret", "gxo.module after"}
    for span in modules:
        parent = by_id[span["parent_id"]]
        assert parent["name"] == "gxo.task " + span["name"].removeprefix("gxo.module ")
        assert parent["parent_id"] == run["context"]["span_id"]
        assert span["context"]["trace_id"] == run["context"]["trace_id"]
    failed = by_id[next(s for s in modules if s["name"] == "gxo.module uses_secret")["parent_id"]]
    assert failed["attributes"]["gxo.status"] == "Failed"
    assert failed["attributes"]["gxo.reason"] == "nonzero_exit(3)"
    assert failed["status"]["status_code"] == "ERROR"


CHECK = textwrap.dedent(
    """
    import sys
    from gxo.cli import main
    code = main(sys.argv[1:])
    print("OTEL=" + str(any(m.startswith("opentelemetry") for m in sys.modules)))
    sys.exit(code)
    """
)


def test_otel_sdk_disabled_turns_tracing_off(tmp_path: Path, write_playbook: Callable) -> None:
    spans_file = tmp_path / "spans.jsonl"
    playbook = write_playbook(SECRET_PLAYBOOK.replace("{{ secret('TRACE_TOKEN') }}", "x"))
    env = child_env(**{FILE_ENV: str(spans_file), "OTEL_SDK_DISABLED": "true"})
    proc = subprocess.run(
        [sys.executable, "-c", CHECK, str(playbook)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "OTEL=False" in proc.stdout
    assert not spans_file.exists()


@pytest.mark.parametrize(
    ("flag", "environ", "expected"),
    [
        (False, {}, False),
        (True, {}, True),
        (False, {"OTEL_TRACES_EXPORTER": "otlp"}, True),
        (False, {"OTEL_TRACES_EXPORTER": "none"}, False),
        (True, {"OTEL_TRACES_EXPORTER": "none"}, False),
        (False, {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, True),
        (False, {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"}, True),
        (False, {FILE_ENV: "/tmp/x"}, True),
        (True, {"OTEL_SDK_DISABLED": "true"}, False),
        (False, {"OTEL_SDK_DISABLED": "TRUE", "OTEL_TRACES_EXPORTER": "otlp"}, False),
    ],
)
def test_when_tracing_is_on(flag: bool, environ: dict[str, str], expected: bool) -> None:
    assert tracing_requested(flag, environ) is expected


def test_otlp_over_http_from_the_parent_and_every_worker(
    tmp_path: Path, gxo: Callable, write_playbook: Callable
) -> None:
    """The real OTLP/HTTP exporter, parent and workers, to a receiver in this test."""
    import http.server
    import threading

    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    received: list[tuple[str, str, str, str]] = []

    class Receiver(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            request = ExportTraceServiceRequest()
            request.ParseFromString(body)
            for resource in request.resource_spans:
                service = next(
                    a.value.string_value
                    for a in resource.resource.attributes
                    if a.key == "service.name"
                )
                for scope in resource.scope_spans:
                    received.extend(
                        (s.name, s.span_id.hex(), s.parent_span_id.hex(), service)
                        for s in scope.spans
                    )
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        playbook = write_playbook(
            "schemaVersion: v1.0.0\nname: otlp\ntasks:\n  - name: a\n    type: exec\n"
            "    loop: [1, 2, 3]\n    loop_control: {parallel: 3}\n"
            "    params: {command: 'true'}\n"
        )
        endpoint = f"http://127.0.0.1:{server.server_address[1]}"
        env = child_env(OTEL_EXPORTER_OTLP_ENDPOINT=endpoint)
        proc = gxo(playbook, "--workers", "3", env=env)
        assert proc.returncode == 0, proc.stderr
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
    by_id = {span_id: (name, parent) for name, span_id, parent, _ in received}
    (run_id,) = [span_id for name, span_id, _, _ in received if name == "gxo.run otlp"]
    modules = [(n, p) for n, _, p, _ in received if n == "gxo.module a"]
    assert len(modules) == 3  # every worker flushed its batch before it exited
    for _, parent in modules:
        assert by_id[parent][0].startswith("gxo.task a[")
        assert by_id[parent][1] == run_id
    assert {service for *_, service in received} == {"gxo"}


def test_a_bus_given_to_the_run_is_left_as_it_was() -> None:
    from gxo.events import EventBus

    seen: list[str] = []
    bus = EventBus()
    bus.subscribe(lambda event: seen.append(type(event).__name__), name="mine")
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    text = "schemaVersion: v1.0.0\nname: b\ntasks:\n  - name: a\n    type: passthrough\n"
    assert gxo.run(text + "    params: {value: 1}\n", events=bus, tracer_provider=provider).ok
    assert [entry[0] for entry in bus._subscribers] == ["mine"]  # the tracer unsubscribed
    assert seen[0] == "RunStarted"
    assert seen[-1] == "RunFinished"
    assert {s.name for s in exporter.get_finished_spans()} == {"gxo.run b", "gxo.task a"}
