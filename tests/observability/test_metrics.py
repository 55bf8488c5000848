"""Prometheus metrics of real runs: the textfile written at the end, and a scrape mid-run."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from obs_support import GXO, child_env
from prometheus_client.parser import text_string_to_metric_families

PLAYBOOK = """\
schemaVersion: v1.0.0
name: metrics_demo
tasks:
  - name: ok
    type: exec
    params: {command: "true"}
  - name: items
    type: exec
    loop: [1, 2, 3]
    params: {command: "true"}
  - name: flaky
    type: exec
    retry: {attempts: 2, delay: 0}
    ignore_errors: true
    params: {command: "false"}
  - name: after
    type: exec
    depends_on: [ok]
    params: {command: "true"}
"""


def _samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[sample.name, frozenset(sample.labels.items())] = sample.value
    return found


def _value(samples: dict, name: str, **labels: str) -> float:
    return samples[name, frozenset({"playbook": "metrics_demo", **labels}.items())]


def test_metrics_file_holds_the_runs_counts(tmp_path: Path, gxo: Callable, write_playbook) -> None:
    playbook = write_playbook(PLAYBOOK)
    out = tmp_path / "textfile" / "gxo.prom"
    out.parent.mkdir()
    proc = gxo(playbook, "--workers", "2", "--metrics-file", out)
    assert proc.returncode == 0, proc.stderr
    assert [p.name for p in out.parent.iterdir()] == ["gxo.prom"]  # no temp file left
    samples = _samples(out.read_text())
    assert _value(samples, "gxo_tasks_finished_total", status="Completed", reason="") == 3
    failed = _value(samples, "gxo_tasks_finished_total", status="Failed", reason="nonzero_exit(1)")
    assert failed == 1
    assert _value(samples, "gxo_instances_finished_total", task="items", status="Completed") == 3
    assert _value(samples, "gxo_retries_total", task="flaky", reason="nonzero_exit(1)") == 1
    assert _value(samples, "gxo_attempts_started_total", task="flaky") == 2
    count = _value(samples, "gxo_instance_duration_seconds_count", task="items", status="Completed")
    assert count == 3
    assert _value(samples, "gxo_run_exit_code") == 0
    assert _value(samples, "gxo_run_success") == 1
    assert _value(samples, "gxo_instances_running") == 0
    assert _value(samples, "gxo_workers_started_total") >= 1
    assert not any(name == "gxo_worker_restarts_total" for name, _ in samples)


def test_metrics_file_counts_worker_restarts(tmp_path: Path, gxo: Callable, write_playbook):
    playbook = write_playbook(
        """\
        schemaVersion: v1.0.0
        name: metrics_demo
        tasks:
          - name: dies
            type: exec
            ignore_errors: true
            params: {command: "kill -9 $PPID", shell: true}
        """
    )
    out = tmp_path / "gxo.prom"
    proc = gxo(playbook, "--metrics-file", out)
    samples = _samples(out.read_text())
    assert proc.returncode == 0, proc.stderr
    restarts = {k: v for k, v in samples.items() if k[0] == "gxo_worker_restarts_total"}
    assert sum(restarts.values()) == 1, samples


def test_metrics_file_counts_stream_edges(tmp_path: Path, gxo: Callable, write_playbook) -> None:
    playbook = write_playbook(
        """\
        schemaVersion: v1.0.0
        name: metrics_demo
        tasks:
          - name: numbers
            type: exec
            params: {command: seq, args: ["1", "50"], stdout_records: true}
          - name: sink
            type: exec
            stream_inputs: [numbers]
            params: {command: wc, args: ["-l"], stdin_records: true}
        """
    )
    out = tmp_path / "gxo.prom"
    proc = gxo(playbook, "--metrics-file", out, "--report", tmp_path / "run.json")
    assert proc.returncode == 0, proc.stderr
    samples = _samples(out.read_text())
    edge = {"producer": "numbers", "consumer": "sink"}
    assert _value(samples, "gxo_stream_records_total", **edge) == 50
    report = json.loads((tmp_path / "run.json").read_text())
    (sent,) = [e for e in report["task_results"]["numbers"]["streams"] if e["side"] == "out"]
    assert _value(samples, "gxo_stream_bytes_total", **edge) == sent["bytes"] > 0
    assert _value(samples, "gxo_stream_dropped_records_total", **edge) == 0


def test_metrics_file_in_a_missing_directory_is_a_usage_error(
    tmp_path: Path, gxo: Callable, write_playbook
) -> None:
    playbook = write_playbook(PLAYBOOK)
    proc = gxo(playbook, "--metrics-file", tmp_path / "nope" / "gxo.prom")
    assert proc.returncode == 2
    assert f"--metrics-file {tmp_path}/nope/gxo.prom: directory {tmp_path}/nope does not exist" in (
        proc.stderr
    )
    assert "does not exist" in proc.stderr


@pytest.fixture
def started(tmp_path: Path) -> Iterator[list[subprocess.Popen[bytes]]]:
    procs: list[subprocess.Popen[bytes]] = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)


def wait_for(predicate: Callable[[], object], what: str, timeout: float = 30.0) -> object:
    """Poll ``predicate`` until it returns something true (a condition, not a fixed sleep)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def test_metrics_port_is_scraped_while_a_task_runs(
    tmp_path: Path, write_playbook, started: list
) -> None:
    go = tmp_path / "go"
    playbook = write_playbook(
        f"""\
        schemaVersion: v1.0.0
        name: metrics_demo
        tasks:
          - name: first
            type: exec
            params: {{command: "true"}}
          - name: waits
            type: exec
            depends_on: [first]
            params:
              shell: true
              command: "while [ ! -e '{go}' ]; do sleep 0.02; done"
        """
    )
    err = tmp_path / "gxo.err"
    with open(err, "wb") as errf:
        proc = subprocess.Popen(
            [*GXO, str(playbook), "--metrics-port", "0"],
            cwd=tmp_path,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=errf,
            start_new_session=True,
            env=child_env(),
        )
    started.append(proc)
    match = wait_for(
        lambda: re.search(r"serving metrics at (http://127\.0\.0\.1:\d+/metrics)", err.read_text()),
        "the metrics URL in the log",
    )
    url = match.group(1)  # type: ignore[union-attr]

    def scrape() -> dict:
        with urllib.request.urlopen(url, timeout=5) as response:
            return _samples(response.read().decode())

    def running() -> dict | None:
        samples = scrape()
        key = (
            "gxo_attempts_started_total",
            frozenset({("playbook", "metrics_demo"), ("task", "waits")}),
        )
        return samples if samples.get(key) == 1 else None

    samples = wait_for(running, "an instance running in the scraped metrics")
    assert proc.poll() is None  # scraped while the run goes on
    assert _value(samples, "gxo_tasks_finished_total", status="Completed", reason="") == 1
    assert _value(samples, "gxo_tasks_running") == 1
    assert _value(samples, "gxo_instances_running") == 1
    go.touch()
    assert proc.wait(timeout=60) == 0, err.read_text()
    with pytest.raises(urllib.error.URLError, match="refused"):  # it stopped with the run
        scrape()
