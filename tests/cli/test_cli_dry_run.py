"""``gxo execute --dry-run``: what it reports, through the real command and worker processes."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

PlaybookFile = Callable[..., Path]
RunGxo = Callable[..., subprocess.CompletedProcess[str]]

REAL_TEMPLATE_ERRORS = """
schemaVersion: v1.0.0
name: dry
vars: {d: {x: 1}}
tasks:
  - name: params-read-vars
    type: exec
    params: {command: echo, args: ["{{ d.y }}"]}
  - name: when-reads-vars
    type: exec
    when: "{{ d.y }}"
    params: {command: [touch, "@TMP@/ran"]}
  - name: skipped
    type: exec
    when: false
    register: s
    params: {command: [touch, "@TMP@/ran"]}
  - name: reads-skipped
    type: exec
    params: {command: echo, args: ["{{ s.stdout }}"]}
  - name: probe
    type: python
    params: {function: "os:getcwd"}
    register: probe
  - name: reads-stand-in
    type: exec
    params: {command: echo, args: ["{{ probe.words.total }}"]}
  - name: loops-on-stand-in
    type: exec
    loop: "{{ probe.items }}"
    params: {command: [touch, "@TMP@/ran"]}
"""


def test_a_template_error_that_a_real_run_has_too_fails_the_dry_run(
    gxo: RunGxo, playbook_file: PlaybookFile, tmp_path: Path
) -> None:
    # A dry run is how a user checks a playbook before running it: a template that reads
    # only vars (or the register of a task that is really skipped) fails in a real run, so
    # the dry run says so (exit 1). Only what reads a stand-in result is let through.
    path = playbook_file(REAL_TEMPLATE_ERRORS)
    done = gxo("execute", "--dry-run", "--report", "run.json", path)
    assert done.returncode == 1, done.stderr
    assert not (tmp_path / "ran").exists()
    tasks = json.loads((tmp_path / "run.json").read_text())["task_results"]
    outcomes = {name: (t["status"], t["reason"]) for name, t in tasks.items()}
    assert outcomes == {
        "params-read-vars": ("Failed", "template_error"),
        "when-reads-vars": ("Failed", "template_error"),
        "skipped": ("Skipped", "when_false"),
        "reads-skipped": ("Failed", "template_error"),
        "probe": ("Completed", ""),
        "reads-stand-in": ("Completed", ""),
        "loops-on-stand-in": ("Skipped", "dry_run_unresolved"),
    }
    assert tasks["reads-stand-in"]["instances"][0]["reason"] == "dry_run_unrendered"
    assert "FAILED   params-read-vars: template_error" in done.stderr
    assert "'d' has no attribute 'y'" in done.stderr
