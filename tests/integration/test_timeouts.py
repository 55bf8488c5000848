"""Timeouts stop the instance and everything it started: ``timeout`` bounds the whole task
(GXO), ``attempt_timeout`` each attempt, which is then retried."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
from itest_support import RunPlaybook, survivors

GRACE = 0.5
TIMEOUT = 0.3
#: Room for pool start-up, worker replacement and a loaded CI machine.
SLACK = 4.0
#: For commands that must have installed their SIGTERM trap before the timeout fires.
TRAP_TIMEOUT = 1.0


def test_hanging_function_times_out_and_the_worker_is_replaced(
    run_playbook: RunPlaybook,
) -> None:
    report = run_playbook(
        """
        schemaVersion: v1.0.0
        name: hang
        tasks:
          - name: hang
            type: python
            timeout: 300ms
            params: {function: "@FUNCS@/behave.py:hang"}
          - name: after
            type: python
            when: "{{ _gxo.tasks.hang.status == 'Failed' }}"
            params: {function: "@FUNCS@/crash.py:ok"}
        """,
        workers=1,
    )

    hang = report.task_results["hang"]
    assert (hang.status, hang.reason, hang.attempts) == ("Failed", "timed_out", 1)
    assert "timed out after 0.3s" in hang.error
    assert hang.instances[0].attempts[0].duration >= TIMEOUT
    # One worker: the task after the timeout ran on the hung worker's replacement.
    assert report.task_results["after"].status == "Completed"
    assert report.worker_restarts == 1
    assert report.exit_code == 1


def test_hanging_function_is_stopped_without_waiting_for_the_grace_period(
    run_playbook: RunPlaybook,
) -> None:
    """The grace period is for commands that handle SIGTERM; Python code that does not is
    stopped by SIGTERM, like any process that does not handle it."""
    started = time.monotonic()
    report = run_playbook(
        """
        schemaVersion: v1.0.0
        name: hang
        tasks:
          - name: hang
            type: python
            timeout: 300ms
            params: {function: "@FUNCS@/behave.py:hang"}
        """,
        grace=30.0,
    )
    elapsed = time.monotonic() - started

    assert report.task_results["hang"].reason == "timed_out"
    assert elapsed < TIMEOUT + SLACK


@pytest.mark.parametrize(
    "script",
    [
        pytest.param("sleep {s} & sleep {s} & wait", id="grandchildren"),
        pytest.param("setsid sleep {s} & wait", id="setsid-grandchild"),
        pytest.param("nohup sleep {s} >/dev/null 2>&1 & wait", id="nohup-grandchild"),
        pytest.param("sh -c 'sleep {s} & wait' & wait", id="great-grandchild"),
    ],
)
def test_exec_timeout_kills_every_descendant(
    run_playbook: RunPlaybook, sleep_arg: str, script: str
) -> None:
    started = time.monotonic()
    report = run_playbook(
        """
        schemaVersion: v1.0.0
        name: tree
        tasks:
          - name: tree
            type: exec
            timeout: 300ms
            params:
              shell: true
              command: "@SCRIPT@"
          - name: independent
            type: python
            params: {function: "@FUNCS@/crash.py:ok"}
        """,
        SCRIPT=script.format(s=sleep_arg),
    )
    elapsed = time.monotonic() - started

    tree = report.task_results["tree"]
    assert (tree.status, tree.reason) == ("Failed", "timed_out")
    assert report.task_results["independent"].status == "Completed"
    assert survivors(sleep_arg) == []
    assert elapsed < TIMEOUT + GRACE + SLACK


def test_exec_timeout_kills_a_daemonized_grandchild(
    run_playbook: RunPlaybook, sleep_arg: str
) -> None:
    try:
        report = run_playbook(
            """
            schemaVersion: v1.0.0
            name: daemon
            tasks:
              - name: daemon
                type: exec
                timeout: 300ms
                params:
                  shell: true
                  command: "setsid -f sleep @S@; exec sleep @S@"
            """,
            S=sleep_arg,
        )
        assert report.task_results["daemon"].reason == "timed_out"
        assert survivors(sleep_arg, timeout=2.0) == []
    finally:
        for pid in survivors(sleep_arg, timeout=0):
            os.kill(pid, signal.SIGKILL)


def test_term_ignoring_command_is_killed_after_the_grace_period(
    run_playbook: RunPlaybook, tmp_path: Path, sleep_arg: str
) -> None:
    started = time.monotonic()
    report = run_playbook(
        """
        schemaVersion: v1.0.0
        name: stubborn
        tasks:
          - name: stubborn
            type: exec
            timeout: 1s
            params:
              shell: true
              command: "trap '' TERM; echo ready > @TMP@/ready; sleep @S@"
        """,
        S=sleep_arg,
    )
    elapsed = time.monotonic() - started

    stubborn = report.task_results["stubborn"]
    assert (stubborn.status, stubborn.reason) == ("Failed", "timed_out")
    assert survivors(sleep_arg) == []
    # SIGTERM at the timeout did nothing; SIGKILL came when the grace period ended.
    assert (tmp_path / "ready").exists()
    assert stubborn.instances[0].attempts[0].duration >= TRAP_TIMEOUT + GRACE
    assert elapsed < TRAP_TIMEOUT + GRACE + SLACK


def test_command_that_handles_term_gets_the_grace_period(
    run_playbook: RunPlaybook, tmp_path: Path, sleep_arg: str
) -> None:
    """TERM → grace → KILL: a command cleaning up after SIGTERM is not killed at once."""
    cleaned = tmp_path / "cleaned"
    report = run_playbook(
        """
        schemaVersion: v1.0.0
        name: cleanup
        tasks:
          - name: cleanup
            type: exec
            timeout: 1s
            params:
              shell: true
              command: >-
                trap 'sleep 0.2; echo done > @CLEANED@; exit 1' TERM;
                echo ready > @TMP@/ready; sleep @S@ & wait
        """,
        grace=5.0,
        S=sleep_arg,
        CLEANED=cleaned,
    )

    cleanup = report.task_results["cleanup"]
    assert (cleanup.status, cleanup.reason) == ("Failed", "timed_out")
    assert (tmp_path / "ready").exists()
    assert cleaned.read_text() == "done\n"
    # It finished its clean-up well before the 5 s grace period ended.
    assert cleanup.instances[0].attempts[0].duration < TRAP_TIMEOUT + 3.0
    assert survivors(sleep_arg) == []


def test_attempt_timeout_applies_to_each_retry_attempt(run_playbook: RunPlaybook) -> None:
    report = run_playbook(
        """
        schemaVersion: v1.0.0
        name: retry-timeout
        tasks:
          - name: slow
            type: python
            attempt_timeout: 200ms
            retry: {attempts: 2, delay: 0s}
            params: {function: "@FUNCS@/behave.py:hang"}
        """,
    )

    slow = report.task_results["slow"]
    assert (slow.status, slow.reason, slow.attempts) == ("Failed", "attempt_timed_out", 2)
    attempts = slow.instances[0].attempts
    assert [a.reason for a in attempts] == ["attempt_timed_out", "attempt_timed_out"]
    assert all(a.duration >= 0.2 for a in attempts)
    assert "attempt 2" in slow.error


def test_exec_attempt_timeout_composes_with_retry(
    run_playbook: RunPlaybook, sleep_arg: str
) -> None:
    report = run_playbook(
        """
        schemaVersion: v1.0.0
        name: retry-exec-timeout
        tasks:
          - name: slow
            type: exec
            attempt_timeout: 200ms
            retry: {attempts: 2, delay: 0s}
            params: {command: sleep, args: ["@S@"]}
        """,
        S=sleep_arg,
    )

    slow = report.task_results["slow"]
    assert (slow.status, slow.reason, slow.attempts) == ("Failed", "attempt_timed_out", 2)
    assert survivors(sleep_arg) == []


def test_timeout_bounds_the_whole_task_with_its_retries(
    run_playbook: RunPlaybook, sleep_arg: str
) -> None:
    # GXO's meaning: the timeout covers every attempt and the waits between them.
    report = run_playbook(
        """
        schemaVersion: v1.0.0
        name: whole-task-timeout
        tasks:
          - name: flaky
            type: exec
            timeout: 1s
            attempt_timeout: 300ms
            retry: {attempts: 50, delay: 50ms}
            params: {command: sleep, args: ["@S@"]}
        """,
        S=sleep_arg,
    )

    flaky = report.task_results["flaky"]
    assert (flaky.status, flaky.reason) == ("Failed", "timed_out")
    assert 2 <= flaky.attempts < 50
    assert flaky.error.startswith("timed out after 1s (the whole task")
    assert survivors(sleep_arg) == []


def test_timeout_bounds_all_loop_items(run_playbook: RunPlaybook, tmp_path: Path) -> None:
    report = run_playbook(
        """
        schemaVersion: v1.0.0
        name: loop-timeout
        tasks:
          - name: each
            type: exec
            timeout: 1s
            loop: [0.1, 0.1, 30, 0.1, 0.1]
            params:
              command: sh
              args: ["-c", "sleep $0 && echo $0 >> @TMP@/done.txt", "{{ item }}"]
        """,
    )

    each = report.task_results["each"]
    assert (each.status, each.reason) == ("Failed", "timed_out")
    assert "2 of 5 iterations completed" in each.error
    assert (tmp_path / "done.txt").read_text() == "0.1\n0.1\n"
    assert [i.attempts == [] for i in each.instances] == [False, False, False, True, True]


def test_playbook_timeout_stops_the_run(run_playbook: RunPlaybook, sleep_arg: str) -> None:
    started = time.monotonic()
    report = run_playbook(
        """
        schemaVersion: v1.0.0
        name: bounded-run
        timeout: 2s
        tasks:
          - name: quick
            type: python
            params: {function: "@FUNCS@/crash.py:ok"}
          - name: slow
            type: exec
            params: {command: sleep, args: ["@S@"]}
          - name: after
            type: exec
            depends_on: [slow]
            params: {command: "true"}
        """,
        S=sleep_arg,
    )
    elapsed = time.monotonic() - started

    results = report.task_results
    assert results["quick"].status == "Completed"
    assert (results["slow"].status, results["slow"].reason) == ("Cancelled", "run_timed_out")
    assert results["after"].status == "Cancelled"
    assert report.exit_code == 1
    assert "timeout" in report.error
    assert survivors(sleep_arg) == []
    # 2 s: room for a cold worker to start and run `quick` on a loaded 2-core machine.
    assert elapsed < 2 + GRACE + SLACK


def test_the_playbook_timeout_stops_workers_without_replacing_them(
    run_playbook: RunPlaybook,
) -> None:
    """Once the run is stopping nothing new starts, so a worker stopped for it is not
    replaced (it used to be: a process started only to be stopped again)."""
    report = run_playbook(
        """
        schemaVersion: v1.0.0
        name: stopping
        timeout: 500ms
        tasks:
          - name: hang
            type: python
            params: {function: "@FUNCS@/behave.py:hang"}
          - name: sleeps
            type: exec
            params: {command: [sleep, "60"]}
        """,
        workers=2,
    )
    assert report.error == "the playbook timeout expired"
    assert {r.reason for r in report.task_results.values()} == {"run_timed_out"}
    assert report.worker_restarts == 0
