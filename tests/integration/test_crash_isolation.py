"""A module that crashes in any way fails only its own task, with a precise reason."""

from __future__ import annotations

import json

import pytest
from itest_support import RunPlaybook, survivors

from gxo.scheduler.policy import MAX_WORKER_DEATHS

CRASH_PLAYBOOK = """
schemaVersion: v1.0.0
name: crash
tasks:
  - name: crasher
    type: python
    params: {function: "@FUNCS@/crash.py:@FUNC@"}
  - name: bystander
    type: python
    params: {function: "@FUNCS@/crash.py:ok", kwargs: {value: 7}}
"""


@pytest.mark.parametrize(
    ("func", "reason", "restarts"),
    [
        ("raise_value_error", "module_raised(ValueError)", 0),
        ("raise_keyboard_interrupt", "module_raised(KeyboardInterrupt)", 0),
        ("raise_unprintable", "module_raised(Unprintable)", 0),
        ("module_error_not_strings", "module_failed", 0),
        ("sys_exit", "module_raised(SystemExit)", 0),
        ("os_exit", "worker_exited(3)", 1),
        ("segfault", "worker_signaled(SIGSEGV)", 1),
        ("sigkill_self", "worker_signaled(SIGKILL)", 1),
        ("bad_summary", "bad_summary", 0),
        ("deep_summary", "bad_summary", 0),
        ("bigint_summary", "bad_summary", 0),
        ("fail_with_bad_summary", "bad_summary", 0),
    ],
)
def test_crash_fails_only_its_task(
    run_playbook: RunPlaybook, func: str, reason: str, restarts: int
) -> None:
    report = run_playbook(CRASH_PLAYBOOK, FUNC=func)

    crasher = report.task_results["crasher"]
    assert crasher.status == "Failed"
    assert crasher.reason == reason
    assert crasher.attempts == 1
    assert crasher.instances[0].attempts[0].reason == reason
    assert report.task_results["bystander"].status == "Completed"
    assert report.exit_code == 1
    assert report.overall_status == "Failed"
    assert (report.failed_tasks, report.completed_tasks) == (1, 1)
    assert report.worker_restarts == restarts
    if reason == "bad_summary":  # the cause is named, never blamed on the module's code
        assert "not JSON-compatible" in crasher.error
        cause = {
            "bad_summary": "type object is unsupported",
            "deep_summary": "nested too deeply",
            "bigint_summary": "OverflowError",
            "fail_with_bad_summary": "the module had failed: module_failed: could not finish",
        }
        assert cause[func] in crasher.error


@pytest.mark.parametrize("start_method", ["spawn", "fork"])
@pytest.mark.parametrize(
    ("func", "reason"),
    [
        ("raise_value_error", "module_raised(ValueError)"),
        ("os_exit", "worker_exited(3)"),
        ("segfault", "worker_signaled(SIGSEGV)"),
    ],
)
def test_crash_isolation_with_other_start_methods(
    run_playbook: RunPlaybook, start_method: str, func: str, reason: str
) -> None:
    report = run_playbook(CRASH_PLAYBOOK, start_method=start_method, FUNC=func)

    assert report.task_results["crasher"].reason == reason
    assert report.task_results["bystander"].status == "Completed"
    assert report.exit_code == 1


def test_os_exit_error_shows_last_output(run_playbook: RunPlaybook) -> None:
    report = run_playbook(CRASH_PLAYBOOK, FUNC="os_exit")

    error = report.task_results["crasher"].error
    assert "exited with status 3" in error
    assert "stdout: about to leave without cleanup" in error
    assert "stderr: last words before os._exit" in error


def test_raised_exception_message_and_traceback_reported(run_playbook: RunPlaybook) -> None:
    report = run_playbook(CRASH_PLAYBOOK, FUNC="raise_value_error")

    crasher = report.task_results["crasher"]
    assert "ValueError: bad value from the module" in crasher.error
    assert "raise_value_error" in crasher.instances[0].traceback


def test_repeated_worker_deaths_are_bounded(run_playbook: RunPlaybook) -> None:
    report = run_playbook(
        """
        schemaVersion: v1.0.0
        name: bounded
        tasks:
          - name: crasher
            type: python
            retry: {attempts: 10, delay: 0s}
            params: {function: "@FUNCS@/crash.py:segfault"}
        """,
        workers=1,
    )

    crasher = report.task_results["crasher"]
    assert crasher.status == "Failed"
    assert crasher.reason == "worker_signaled(SIGSEGV)"
    assert crasher.attempts == MAX_WORKER_DEATHS == 3
    assert [a.reason for a in crasher.instances[0].attempts] == ["worker_signaled(SIGSEGV)"] * 3
    assert report.worker_restarts == 3
    assert report.exit_code == 1


def test_raising_module_is_retried_up_to_attempts(run_playbook: RunPlaybook) -> None:
    """The death bound is for worker deaths only: an exception uses every attempt."""
    report = run_playbook(
        """
        schemaVersion: v1.0.0
        name: raising
        tasks:
          - name: crasher
            type: python
            retry: {attempts: 5, delay: 0s}
            params: {function: "@FUNCS@/crash.py:raise_value_error"}
        """,
        workers=1,
    )

    crasher = report.task_results["crasher"]
    assert (crasher.status, crasher.reason, crasher.attempts) == (
        "Failed",
        "module_raised(ValueError)",
        5,
    )
    assert report.worker_restarts == 0


def test_pool_survives_a_crash_on_its_only_worker(run_playbook: RunPlaybook) -> None:
    """With one worker, the tasks after a crash can only run on its replacement."""
    report = run_playbook(
        """
        schemaVersion: v1.0.0
        name: one-worker
        tasks:
          - name: first
            type: python
            params: {function: "@FUNCS@/crash.py:sigkill_self"}
          - name: second
            type: python
            when: "{{ _gxo.tasks.first.status == 'Failed' }}"
            params: {function: "@FUNCS@/crash.py:ok"}
        """,
        workers=1,
    )

    assert report.task_results["first"].reason == "worker_signaled(SIGKILL)"
    assert report.task_results["second"].status == "Completed"
    first_pid = report.task_results["first"].instances[0].attempts[0].worker_pid
    second_pid = report.task_results["second"].instances[0].attempts[0].worker_pid
    assert first_pid != second_pid


def test_a_timer_left_armed_does_not_fire_in_the_next_instance(run_playbook: RunPlaybook) -> None:
    """``signal.alarm``/``setitimer`` left armed by one task killed the pooled worker during
    the next, which failed with worker_signaled(SIGALRM) for a timer it never set."""
    report = run_playbook(
        """
        schemaVersion: v1.0.0
        name: timer
        tasks:
          - name: arms
            type: python
            params: {function: "@FUNCS@/crash.py:arm_timer"}
          - name: next
            type: python
            depends_on: [arms]
            params: {function: "@FUNCS@/crash.py:outlive_timer"}
        """,
        workers=1,
    )

    assert report.task_results["next"].status == "Completed", report.task_results["next"]
    assert report.worker_restarts == 0


def test_crash_among_queued_short_tasks_is_pinned_on_its_own_instance(
    run_playbook: RunPlaybook,
) -> None:
    """Short instances queue behind each other on a worker; when one kills the worker, only
    it fails, and the ones queued behind it run elsewhere, once."""
    items = ["ok"] * 30 + ["sigkill_self"] + ["ok"] * 30
    report = run_playbook(
        """
        schemaVersion: v1.0.0
        name: queued
        tasks:
          - name: fan
            type: python
            loop: @ITEMS@
            loop_control: {parallel: 100}
            params: {function: "@FUNCS@/crash.py:{{ item }}"}
        """,
        ITEMS=json.dumps(items),
    )

    fan = report.task_results["fan"]
    assert (fan.status, fan.reason) == ("Failed", "worker_signaled(SIGKILL)")
    failed = [i for i in fan.instances if i.status != "Completed"]
    assert [(i.loop_index, i.reason) for i in failed] == [(30, "worker_signaled(SIGKILL)")]
    assert [len(i.attempts) for i in fan.instances] == [1] * len(items)
    assert report.worker_restarts == 1


def test_command_that_kills_its_worker_and_forks_leaves_nothing_behind(
    run_playbook: RunPlaybook, sleep_arg: str
) -> None:
    """A command kills its worker, then forks (``scripts/soak``'s leftover ``sleep``): the
    guard and the parent kill the worker's session while it forks. Forking without pause
    after the kill makes a child appear between a scan of the session and the kill of its
    parent; with one pass per killer, 8 such instances left sleeps running in 5 runs of 5.
    ``tests/unit/test_pool_session.py`` has the same race on ``kill_session`` alone."""
    report = run_playbook(
        """
        schemaVersion: v1.0.0
        name: kill-then-fork
        tasks:
          - name: killer
            type: exec
            loop: [1, 2, 3, 4, 5, 6, 7, 8]
            params:
              shell: true
              command: >-
                for i in $(seq 40); do sleep @S@ & done;
                kill -KILL $PPID; while :; do sleep @S@ & done
        """,
        S=sleep_arg,
    )

    killer = report.task_results["killer"]
    assert [i.reason for i in killer.instances] == ["worker_signaled(SIGKILL)"] * 8
    assert report.worker_restarts == 8
    assert survivors(sleep_arg, timeout=2) == []
