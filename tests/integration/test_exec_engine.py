"""The ``exec`` module through the whole engine: failures, output, dry runs."""

from __future__ import annotations

import json
from pathlib import Path

from itest_support import RunPlaybook


def test_failing_command_reports_exit_status_and_stderr(run_playbook: RunPlaybook) -> None:
    report = run_playbook(
        """
        schemaVersion: v1.0.0
        name: fail
        tasks:
          - name: fail
            type: exec
            params:
              shell: true
              command: >-
                echo progress; echo 'first problem' >&2;
                echo 'disk full on /data' >&2; exit 7
          - name: fine
            type: exec
            params: {command: "true"}
        """,
    )

    fail = report.task_results["fail"]
    assert (fail.status, fail.reason) == ("Failed", "nonzero_exit(7)")
    assert "exited with status 7" in fail.error
    assert "disk full on /data" in fail.error
    assert report.task_results["fine"].status == "Completed"
    assert report.worker_restarts == 0
    assert report.exit_code == 1


def test_command_killed_by_a_signal(run_playbook: RunPlaybook) -> None:
    report = run_playbook(
        """
        schemaVersion: v1.0.0
        name: signaled
        tasks:
          - name: killed
            type: exec
            params: {command: sh, args: ["-c", "kill -KILL $$"]}
        """,
    )

    killed = report.task_results["killed"]
    assert (killed.status, killed.reason) == ("Failed", "command_signaled(SIGKILL)")
    # The command died, not the worker.
    assert report.worker_restarts == 0


def test_missing_command(run_playbook: RunPlaybook) -> None:
    report = run_playbook(
        """
        schemaVersion: v1.0.0
        name: missing
        tasks:
          - name: missing
            type: exec
            params: {command: no-such-command-gxo-test}
        """,
    )

    missing = report.task_results["missing"]
    assert (missing.status, missing.reason) == ("Failed", "command_not_found")
    assert "no-such-command-gxo-test" in missing.error


def test_output_flows_to_dependent_tasks(run_playbook: RunPlaybook, tmp_path: Path) -> None:
    report = run_playbook(
        """
        schemaVersion: v1.0.0
        name: flow
        vars: {who: world}
        tasks:
          - name: greet
            type: exec
            params: {command: echo, args: ["hello, {{ who }}"]}
            register: greeting
          - name: upper
            type: exec
            params:
              command: ["sh", "-c", "printf '%s' \\"$MESSAGE\\" | tr a-z A-Z"]
              env: {MESSAGE: "{{ greeting.stdout | trim }}"}
            register: loud
          - name: dump
            type: python
            params:
              function: "@FUNCS@/behave.py:dump"
              kwargs: {path: "@TMP@/loud.json", value: "{{ loud }}"}
        """,
        overrides={"who": "gxo"},
    )

    assert report.exit_code == 0
    loud = json.loads((tmp_path / "loud.json").read_text())
    assert loud["stdout"] == "HELLO, GXO"
    assert loud["exit_code"] == 0


def test_dry_run_runs_no_command(run_playbook: RunPlaybook, tmp_path: Path) -> None:
    target = tmp_path / "created"
    report = run_playbook(
        """
        schemaVersion: v1.0.0
        name: dry
        tasks:
          - name: touch
            type: exec
            params: {command: touch, args: ["@TARGET@"]}
          - name: python
            type: python
            params:
              function: "@FUNCS@/behave.py:dump"
              kwargs: {path: "@TARGET@", value: 1}
        """,
        dry_run=True,
        TARGET=target,
    )

    assert not target.exists()
    assert report.dry_run is True
    assert report.exit_code == 0
    assert {r.status for r in report.task_results.values()} == {"Completed"}
