"""Loops: ``loop_control.parallel`` bounds concurrency; the register keeps item order."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

from itest_support import RunPlaybook

LOOP = """
schemaVersion: v1.0.0
name: loop
vars:
  letters: [a, b, c, d, e, f]
tasks:
  - name: fan
    type: python
    loop: @LOOP@
    loop_control: {parallel: @PARALLEL@}
    params:
      function: "@FUNCS@/behave.py:timed"
      kwargs: {item: "{{ item }}", seconds: @SECONDS@}
    register: results
  # Not part of the loop: gives the pool a spare worker, so that only `parallel` can be
  # what limits the loop's concurrency.
  - name: spare
    type: python
    params: {function: "@FUNCS@/crash.py:ok"}
  - name: dump
    type: python
    params:
      function: "@FUNCS@/behave.py:dump"
      kwargs: {path: "@TMP@/results.json", value: "{{ results }}"}
"""


def _max_overlap(results: list[dict[str, Any]]) -> int:
    """The most intervals [start, end) that were open at one moment."""
    events = sorted([(r["start"], 1) for r in results] + [(r["end"], -1) for r in results])
    running = peak = 0
    for _, delta in events:  # at equal times the end (-1) sorts first
        running += delta
        peak = max(peak, running)
    return peak


def _registered(tmp_path: Path) -> Any:
    return json.loads((tmp_path / "results.json").read_text())


def test_parallel_bounds_concurrency(run_playbook: RunPlaybook, tmp_path: Path) -> None:
    report = run_playbook(LOOP, workers=4, LOOP="[a, b, c, d, e, f]", PARALLEL=3, SECONDS=0.4)

    fan = report.task_results["fan"]
    assert (fan.status, fan.attempts, len(fan.instances)) == ("Completed", 6, 6)
    assert report.workers == 4
    results = _registered(tmp_path)
    assert [r["item"] for r in results] == list("abcdef")
    assert _max_overlap(results) == 3
    # And the pool really used several processes for it.
    assert len({r["pid"] for r in results}) >= 3


def test_parallel_one_is_sequential(run_playbook: RunPlaybook, tmp_path: Path) -> None:
    report = run_playbook(LOOP, workers=3, LOOP="[a, b, c, d]", PARALLEL=1, SECONDS=0.05)

    assert report.task_results["fan"].status == "Completed"
    results = _registered(tmp_path)
    assert [r["item"] for r in results] == list("abcd")
    for before, after in itertools.pairwise(results):
        assert after["start"] >= before["end"]
    labels = [i.label for i in report.task_results["fan"].instances]
    assert labels == ["fan[0]", "fan[1]", "fan[2]", "fan[3]"]


def test_register_keeps_item_order_when_items_finish_out_of_order(
    run_playbook: RunPlaybook, tmp_path: Path
) -> None:
    report = run_playbook(
        """
        schemaVersion: v1.0.0
        name: order
        tasks:
          - name: fan
            type: python
            loop: [0.3, 0.2, 0.1, 0.0]
            loop_control: {parallel: 4}
            params:
              function: "@FUNCS@/behave.py:timed"
              kwargs: {item: "{{ item }}", seconds: "{{ item }}"}
            register: results
          - name: dump
            type: python
            params:
              function: "@FUNCS@/behave.py:dump"
              kwargs: {path: "@TMP@/results.json", value: "{{ results }}"}
        """,
        workers=4,
    )

    assert report.task_results["fan"].status == "Completed"
    results = _registered(tmp_path)
    assert [r["item"] for r in results] == [0.3, 0.2, 0.1, 0.0]
    # The last item really finished first: order comes from the items, not from completion.
    assert results[3]["end"] < results[0]["end"]


def test_loop_over_no_items(run_playbook: RunPlaybook, tmp_path: Path) -> None:
    report = run_playbook(LOOP, LOOP="[]", PARALLEL=2, SECONDS=0)

    fan = report.task_results["fan"]
    assert (fan.status, fan.attempts, fan.instances) == ("Completed", 0, [])
    assert _registered(tmp_path) == []
    assert report.exit_code == 0


def test_loop_over_a_template_from_vars(run_playbook: RunPlaybook, tmp_path: Path) -> None:
    report = run_playbook(LOOP, workers=3, LOOP='"{{ letters }}"', PARALLEL=2, SECONDS=0)

    assert report.task_results["fan"].status == "Completed"
    assert [r["item"] for r in _registered(tmp_path)] == list("abcdef")


def test_loop_over_vars_override(run_playbook: RunPlaybook, tmp_path: Path) -> None:
    report = run_playbook(
        LOOP, overrides={"letters": ["x", "y"]}, LOOP='"{{ letters }}"', PARALLEL=2, SECONDS=0
    )

    assert [r["item"] for r in _registered(tmp_path)] == ["x", "y"]
    assert len(report.task_results["fan"].instances) == 2


def test_one_failing_iteration_fails_the_task(run_playbook: RunPlaybook) -> None:
    report = run_playbook(
        """
        schemaVersion: v1.0.0
        name: loop-fail
        tasks:
          - name: fan
            type: python
            loop: [ok, raise_value_error, ok]
            loop_control: {parallel: 3}
            params: {function: "@FUNCS@/crash.py:{{ item }}"}
          - name: after
            type: python
            depends_on: [fan]
            params: {function: "@FUNCS@/crash.py:ok"}
        """,
    )

    fan = report.task_results["fan"]
    assert (fan.status, fan.reason) == ("Failed", "module_raised(ValueError)")
    assert fan.error.startswith("fan[1]: ")
    assert [i.status for i in fan.instances] == ["Completed", "Failed", "Completed"]
    assert report.task_results["after"].reason == "upstream_failed"
