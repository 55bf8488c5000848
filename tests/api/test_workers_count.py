"""``workers`` everywhere is the number of worker processes the run actually started.

A one-task playbook asked for 8 workers starts 1: the report, the ``RunStarted`` event, the
``gxo_workers`` metric and the ``WorkerStarted`` events must all say 1 (they once said 8).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

import gxo
from gxo.events import Event, RunStarted, WorkerStarted

ONE_TASK = """
schemaVersion: v1.0.0
name: one
tasks:
  - {name: only, type: exec, params: {command: "true"}}
"""


def test_the_library_reports_the_workers_it_started(
    write_playbook: Callable[[str], Path],
) -> None:
    events: list[Event] = []
    registry = CollectorRegistry()
    result = gxo.run(
        write_playbook(ONE_TASK), workers=8, events=[events.append], metrics_registry=registry
    )

    assert result.ok
    (run_started,) = [e for e in events if isinstance(e, RunStarted)]
    started = [e for e in events if isinstance(e, WorkerStarted)]
    gauge = registry.get_sample_value("gxo_workers", {"playbook": "one"})
    counted = registry.get_sample_value("gxo_workers_started_total", {"playbook": "one"})
    assert result.report.workers == 1
    assert run_started.workers == 1
    assert len(started) == 1
    assert gauge == 1
    assert counted == 1


def test_the_command_reports_the_workers_it_started(
    write_playbook: Callable[[str], Path], tmp_path: Path
) -> None:
    report, metrics = tmp_path / "run.json", tmp_path / "run.prom"
    argv = [sys.executable, "-m", "gxo", "execute", "-q", "--workers", "8"]
    argv += ["--report", str(report), "--metrics-file", str(metrics)]
    done = subprocess.run(
        [*argv, str(write_playbook(ONE_TASK))],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    samples = {
        sample.name: sample.value
        for family in text_string_to_metric_families(metrics.read_text())
        for sample in family.samples
    }
    assert json.loads(report.read_text())["workers"] == 1
    assert samples["gxo_workers"] == 1  # from RunStarted.workers
    assert samples["gxo_workers_started_total"] == 1  # one WorkerStarted event
