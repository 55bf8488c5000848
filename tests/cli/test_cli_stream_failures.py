"""A stream consumer that fails, through the real ``gxo`` command: what its producer and their
dependents become, and the exit code."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

PlaybookFile = Callable[..., Path]
RunGxo = Callable[..., subprocess.CompletedProcess[str]]
STREAM_FUNCS = Path(__file__).resolve().parent.parent / "streams" / "funcs.py"

FAILING_CONSUMER = """
schemaVersion: v1.0.0
name: failing-consumer
tasks:
  - name: p
    type: python
    register: produced
    params: {function: "@STREAMS@:produce_until_gone"}
  - name: c
    type: python
    ignore_errors: @IGNORE@
    stream_inputs: [p]
    params: {function: "@STREAMS@:consume_some_then_fail", kwargs: {after: 3}}
  - name: after-p
    type: exec
    params: {command: [echo, "{{ produced.records_undelivered > 0 }}"]}
  - name: after-c
    type: exec
    depends_on: [c]
    params: {command: [echo, after-c]}
"""


@pytest.mark.parametrize("ignore", [True, False], ids=["ignored", "not-ignored"])
def test_a_failed_consumer_stops_its_producer_unless_the_failure_is_ignored(
    gxo: RunGxo, playbook_file: PlaybookFile, tmp_path: Path, ignore: bool
) -> None:
    """With ``ignore_errors`` the consumer's failure fails nothing: for its producer it only
    stopped reading early (Completed, consumer_closed), and the producer's dependents run.
    Without it, the producer is Cancelled (consumer_failed) and so are its dependents."""
    path = playbook_file(
        FAILING_CONSUMER, STREAMS=STREAM_FUNCS, IGNORE="true" if ignore else "false"
    )
    done = gxo("execute", "-w", "2", "--report", "run.json", path)
    tasks = json.loads((tmp_path / "run.json").read_text())["task_results"]
    outcomes = {name: (t["status"], t["reason"]) for name, t in tasks.items()}
    if ignore:
        assert done.returncode == 0, done.stderr
        assert outcomes == {
            "p": ("Completed", "consumer_closed"),
            "c": ("Failed", "module_raised(RuntimeError)"),
            "after-p": ("Completed", ""),
            "after-c": ("Completed", ""),
        }
        assert tasks["p"]["error"].startswith(
            "its consumer 'c' failed (module_raised(RuntimeError); ignored: ignore_errors) "
            "before reading everything; "
        )
        assert tasks["after-p"]["instances"][0]["summary"]["stdout"] == "true\n"
    else:
        assert done.returncode == 1, done.stderr
        assert outcomes == {
            "p": ("Cancelled", "consumer_failed"),
            "c": ("Failed", "module_raised(RuntimeError)"),
            "after-p": ("Cancelled", "cancelled"),
            "after-c": ("Skipped", "upstream_failed"),
        }
