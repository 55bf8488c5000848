"""``gxo.run`` with an injected Prometheus registry and OpenTelemetry tracer provider."""

from __future__ import annotations

import textwrap

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import CollectorRegistry

import gxo

PLAYBOOK = textwrap.dedent(
    """
    schemaVersion: v1.0.0
    name: observed
    tasks:
      - name: ok
        type: passthrough
      - name: flaky
        type: exec
        ignore_errors: true
        retry: {attempts: 2, delay: 10ms}
        params: {command: [sh, -c, "exit 2"]}
    """
)


def test_metrics_registry_counts_the_run_and_accumulates_across_runs() -> None:
    registry = CollectorRegistry()
    bus = gxo.EventBus()
    seen: list[gxo.Event] = []
    bus.subscribe(seen.append)
    assert gxo.run(PLAYBOOK, workers=2, metrics_registry=registry, events=bus).ok
    labels = {"playbook": "observed", "status": "Completed", "reason": ""}
    assert registry.get_sample_value("gxo_tasks_finished_total", labels) == 1
    failed = {"playbook": "observed", "status": "Failed", "reason": "nonzero_exit(2)"}
    assert registry.get_sample_value("gxo_tasks_finished_total", failed) == 1
    retried = {"playbook": "observed", "task": "flaky", "reason": "nonzero_exit(2)"}
    assert registry.get_sample_value("gxo_retries_total", retried) == 1
    assert seen  # the caller's own subscriber still got the events
    # The metrics subscriber was only attached for the run.
    assert not any(entry[0] == "metrics" for entry in bus._subscribers)

    assert gxo.run(PLAYBOOK, workers=2, metrics_registry=registry).ok
    assert registry.get_sample_value("gxo_tasks_finished_total", labels) == 2


def test_tracer_provider_records_the_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "none")  # the workers' own spans go nowhere
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    result = gxo.run(
        PLAYBOOK, workers=2, tracer_provider=provider, start_method="spawn", run_id="traced-1"
    )
    assert result.ok
    spans = exporter.get_finished_spans()
    (run,) = [s for s in spans if s.name.startswith("gxo.run")]
    assert run.attributes is not None
    assert run.attributes["gxo.run_id"] == "traced-1"
    tasks = [s for s in spans if s.name.startswith("gxo.task")]
    assert len(tasks) == 2
    assert all(s.parent is not None and s.parent.span_id == run.context.span_id for s in tasks)


def test_runs_starting_at_once_in_threads_share_one_registry(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each thread looked the registry's metrics up, found none, and made its own: the
    second to register its collectors made gxo.run raise DuplicateTimeseries."""
    import threading

    import gxo.api
    import gxo.observability.metrics as metrics_module

    arrived = threading.Condition()
    making: list[object] = []
    original = metrics_module.RunMetrics.__init__

    def made_slowly(self: object, registry: CollectorRegistry) -> None:
        # Hold the door open for the other thread to come in too (it cannot, with the
        # lock): a bounded wait for its arrival, not a sleep.
        with arrived:
            making.append(self)
            arrived.notify_all()
            arrived.wait_for(lambda: len(making) == 2, timeout=0.5)
        original(self, registry)  # type: ignore[arg-type]

    monkeypatch.setattr(metrics_module.RunMetrics, "__init__", made_slowly)
    registry = CollectorRegistry()
    found: list[object] = []
    errors: list[BaseException] = []

    def look_up() -> None:
        try:
            found.append(gxo.api._run_metrics(registry))
        except BaseException as exc:  # noqa: BLE001 - the test reports it
            errors.append(exc)

    threads = [threading.Thread(target=look_up) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert errors == []
    assert len(found) == 2
    assert found[0] is found[1]
