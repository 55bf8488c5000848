"""Dependencies between tasks: upstream failure, ignore_errors, when, and _gxo statuses."""

from __future__ import annotations

import json
from pathlib import Path

from itest_support import RunPlaybook


def test_upstream_failure_skips_the_whole_chain(run_playbook: RunPlaybook) -> None:
    report = run_playbook(
        """
        schemaVersion: v1.0.0
        name: chain
        tasks:
          - name: broken
            type: python
            params: {function: "@FUNCS@/crash.py:raise_value_error"}
            register: broken
          - name: child
            type: python
            params: {function: "@FUNCS@/crash.py:ok", kwargs: {value: "{{ broken.value }}"}}
            register: child
          - name: grandchild
            type: python
            depends_on: [child]
            params: {function: "@FUNCS@/crash.py:ok"}
          - name: unrelated
            type: python
            params: {function: "@FUNCS@/crash.py:ok"}
        """,
    )

    results = report.task_results
    assert results["broken"].status == "Failed"
    for name in ("child", "grandchild"):
        assert (results[name].status, results[name].reason) == ("Skipped", "upstream_failed")
        assert results[name].attempts == 0
    assert "'broken'" in results["child"].error
    assert "'child'" in results["grandchild"].error
    assert results["unrelated"].status == "Completed"
    assert (report.exit_code, report.failed_tasks, report.skipped_tasks) == (1, 1, 2)


def test_ignore_errors_lets_dependents_run(run_playbook: RunPlaybook, tmp_path: Path) -> None:
    report = run_playbook(
        """
        schemaVersion: v1.0.0
        name: ignored
        tasks:
          - name: broken
            type: exec
            ignore_errors: true
            params: {command: sh, args: ["-c", "echo oops >&2; exit 5"]}
            register: broken
          - name: dependent
            type: python
            params:
              function: "@FUNCS@/behave.py:dump"
              kwargs: {path: "@TMP@/seen.json", value: "{{ broken }}"}
        """,
    )

    broken = report.task_results["broken"]
    assert (broken.status, broken.reason, broken.ignored) == ("Failed", "nonzero_exit(5)", True)
    assert report.task_results["dependent"].status == "Completed"
    assert (report.exit_code, report.overall_status) == (0, "Completed")
    # The dependent saw the failed task's register: its summary plus the failure.
    seen = json.loads((tmp_path / "seen.json").read_text())
    assert seen["failed"] is True
    assert seen["reason"] == "nonzero_exit(5)"
    assert seen["exit_code"] == 5
    assert seen["stderr"] == "oops\n"


def test_when_on_failed_status_runs_after_the_failure(
    run_playbook: RunPlaybook, tmp_path: Path
) -> None:
    report = run_playbook(
        """
        schemaVersion: v1.0.0
        name: react
        tasks:
          - name: on-failure
            type: python
            when: "{{ _gxo.tasks.x.status == 'Failed' }}"
            params:
              function: "@FUNCS@/behave.py:dump"
              kwargs: {path: "@TMP@/reacted.json", value: "{{ _gxo.tasks.x.status }}"}
          - name: on-success
            type: python
            when: "{{ _gxo.tasks.x.status == 'Completed' }}"
            params: {function: "@FUNCS@/crash.py:ok"}
          - name: x
            type: python
            params: {function: "@FUNCS@/crash.py:sys_exit"}
        """,
    )

    results = report.task_results
    assert results["x"].status == "Failed"
    assert results["on-failure"].status == "Completed"
    assert json.loads((tmp_path / "reacted.json").read_text()) == "Failed"
    assert (results["on-success"].status, results["on-success"].reason) == (
        "Skipped",
        "when_false",
    )
    assert report.exit_code == 1


def test_when_false_skips(run_playbook: RunPlaybook, tmp_path: Path) -> None:
    report = run_playbook(
        """
        schemaVersion: v1.0.0
        name: when
        vars: {enabled: false}
        tasks:
          - name: gated
            type: python
            when: "{{ enabled }}"
            params:
              function: "@FUNCS@/behave.py:dump"
              kwargs: {path: "@TMP@/gated.json", value: ran}
            register: gated
          - name: literal-false
            type: python
            when: false
            params: {function: "@FUNCS@/crash.py:ok"}
          - name: after-gated
            type: python
            params:
              function: "@FUNCS@/behave.py:dump"
              kwargs: {path: "@TMP@/after.json", value: "{{ gated }}"}
        """,
    )

    results = report.task_results
    for name in ("gated", "literal-false"):
        assert (results[name].status, results[name].reason) == ("Skipped", "when_false")
    assert not (tmp_path / "gated.json").exists()
    # A task skipped by `when` does not doom its dependents, but registers nothing (as in
    # GXO, test FailsOnMissingTemplateVariable): a dependent reading the register fails.
    after = results["after-gated"]
    assert (after.status, after.reason) == ("Failed", "template_error")
    assert "undefined variable 'gated'" in after.error
    assert not (tmp_path / "after.json").exists()
    assert report.exit_code == 1


def test_when_true_from_var_override(run_playbook: RunPlaybook, tmp_path: Path) -> None:
    report = run_playbook(
        """
        schemaVersion: v1.0.0
        name: when
        vars: {enabled: false}
        tasks:
          - name: gated
            type: python
            when: "{{ enabled }}"
            params:
              function: "@FUNCS@/behave.py:dump"
              kwargs: {path: "@TMP@/gated.json", value: ran}
        """,
        overrides={"enabled": True},
    )

    assert report.task_results["gated"].status == "Completed"
    assert json.loads((tmp_path / "gated.json").read_text()) == "ran"


def test_independent_tasks_run_at_the_same_time(run_playbook: RunPlaybook) -> None:
    """Each task waits for the other's file: they complete only if they overlap in time.

    The task that depends on both is listed first, and the two peers in reverse order.
    """
    report = run_playbook(
        """
        schemaVersion: v1.0.0
        name: rendezvous
        tasks:
          - name: join
            type: python
            depends_on: [second, first]
            params: {function: "@FUNCS@/crash.py:ok"}
          - name: second
            type: python
            params:
              function: "@FUNCS@/behave.py:rendezvous"
              kwargs: {mine: "@TMP@/second", theirs: "@TMP@/first"}
          - name: first
            type: python
            params:
              function: "@FUNCS@/behave.py:rendezvous"
              kwargs: {mine: "@TMP@/first", theirs: "@TMP@/second"}
        """,
        workers=2,
    )

    assert {name: r.status for name, r in report.task_results.items()} == {
        "join": "Completed",
        "second": "Completed",
        "first": "Completed",
    }
    pids = {report.task_results[n].instances[0].attempts[0].worker_pid for n in ("first", "second")}
    assert len(pids) == 2
