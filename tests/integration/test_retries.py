"""Retries: attempts, exponential backoff between attempts, and ``on_error: false``."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from itest_support import RunPlaybook

#: Tolerance for the conversion of monotonic times to wall-clock datetimes in the report.
RESOLUTION = 0.001

FLAKY = """
schemaVersion: v1.0.0
name: flaky
tasks:
  - name: flaky
    type: python
    retry: @RETRY@
    params:
      function: "@FUNCS@/behave.py:fail_first"
      kwargs: {marker: "@TMP@/calls", failures: 2}
"""


def _at(stamp: dt.datetime | None) -> float:
    assert stamp is not None
    return stamp.timestamp()


def test_retry_with_exponential_backoff(run_playbook: RunPlaybook, tmp_path: Path) -> None:
    report = run_playbook(FLAKY, RETRY="{attempts: 3, delay: 50ms, backoff_factor: 2}")

    flaky = report.task_results["flaky"]
    assert (flaky.status, flaky.reason, flaky.attempts) == ("Completed", "", 3)
    assert report.exit_code == 0
    assert (tmp_path / "calls").read_text() == "3"
    attempts = flaky.instances[0].attempts
    assert [a.number for a in attempts] == [1, 2, 3]
    assert [a.reason for a in attempts] == [
        "module_raised(ConnectionError)",
        "module_raised(ConnectionError)",
        "",
    ]
    assert "transient failure on call 1" in attempts[0].error
    first_gap = _at(attempts[1].start_time) - _at(attempts[0].end_time)
    second_gap = _at(attempts[2].start_time) - _at(attempts[1].end_time)
    assert first_gap >= 0.050 - RESOLUTION
    assert second_gap >= 0.100 - RESOLUTION
    # Each attempt ran in a worker and reported its own times.
    for attempt in attempts:
        assert _at(attempt.start_time) <= _at(attempt.end_time)


def test_retry_exhausted_fails_with_the_last_reason(run_playbook: RunPlaybook) -> None:
    report = run_playbook(FLAKY, RETRY="{attempts: 2, delay: 0s}")

    flaky = report.task_results["flaky"]
    assert (flaky.status, flaky.reason, flaky.attempts) == (
        "Failed",
        "module_raised(ConnectionError)",
        2,
    )
    assert "transient failure on call 2" in flaky.error
    assert report.exit_code == 1


def test_on_error_false_means_one_attempt(run_playbook: RunPlaybook, tmp_path: Path) -> None:
    report = run_playbook(FLAKY, RETRY="{attempts: 3, delay: 0s, on_error: false}")

    flaky = report.task_results["flaky"]
    assert (flaky.status, flaky.attempts) == ("Failed", 1)
    assert (tmp_path / "calls").read_text() == "1"


def test_retried_loop_items_each_recover(run_playbook: RunPlaybook, tmp_path: Path) -> None:
    report = run_playbook(
        """
        schemaVersion: v1.0.0
        name: flaky-loop
        tasks:
          - name: flaky
            type: python
            loop: [a, b, c]
            loop_control: {parallel: 3}
            retry: {attempts: 2, delay: 10ms}
            params:
              function: "@FUNCS@/behave.py:fail_first"
              kwargs: {marker: "@TMP@/{{ item }}", failures: 1}
        """,
    )

    flaky = report.task_results["flaky"]
    assert (flaky.status, flaky.attempts) == ("Completed", 6)
    assert [len(i.attempts) for i in flaky.instances] == [2, 2, 2]
    assert all((tmp_path / name).read_text() == "2" for name in "abc")


REFUSE = """
schemaVersion: v1.0.0
name: refuse
tasks:
  - name: refuse
    type: python
    retry: {attempts: 3, delay: 0s}
    params:
      function: "@FUNCS@/behave.py:refuse"
      kwargs: {marker: "@TMP@/calls", retry: @RETRY@}
"""


def test_a_module_error_with_retry_false_is_not_retried(
    run_playbook: RunPlaybook, tmp_path: Path
) -> None:
    report = run_playbook(REFUSE, RETRY="false")

    refuse = report.task_results["refuse"]
    assert (refuse.status, refuse.reason, refuse.attempts) == ("Failed", "credentials_refused", 1)
    assert (tmp_path / "calls").read_text() == "1"


def test_the_same_module_error_with_retry_true_uses_the_tasks_retry(
    run_playbook: RunPlaybook, tmp_path: Path
) -> None:
    report = run_playbook(REFUSE, RETRY="true")

    refuse = report.task_results["refuse"]
    assert (refuse.status, refuse.reason, refuse.attempts) == ("Failed", "credentials_refused", 3)
    assert (tmp_path / "calls").read_text() == "3"
