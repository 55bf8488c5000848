"""``gxo execute --dry-run``: every example playbook runs its DAG and nothing else.

Three kinds of evidence that nothing ran: no file appears (the examples' commands and
functions would create some), no program on PATH is started (shims record any start), and
every exec instance's summary in the report is exec's dry-run answer, which it returns
before starting anything.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

import gxo

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((REPO / "examples").rglob("*.yaml"))
#: Programs the examples (and the playbook below) name; each gets a recording shim.
SHIMMED = ("cat", "df", "echo", "mkdir", "python3", "rm", "sh", "tar", "touch")


def _shims(tmp_path: Path) -> tuple[Path, Path]:
    bin_dir, log = tmp_path / "shims", tmp_path / "started.log"
    bin_dir.mkdir()
    for name in SHIMMED:
        shim = bin_dir / name
        shim.write_text(f'#!/bin/sh\necho "{name} $*" >> "{log}"\n')
        shim.chmod(shim.stat().st_mode | stat.S_IXUSR)
    return bin_dir, log


def _files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def test_every_example_is_covered() -> None:
    assert len(EXAMPLES) >= 5


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_dry_run_of_example_runs_nothing(example: Path, tmp_path: Path) -> None:
    bin_dir, log = _shims(tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    before = _files(tmp_path)
    report_path = tmp_path / "report.json"
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "gxo",
            "execute",
            "--dry-run",
            "--oversubscribe",  # the ETL example's stream group has 5 tasks
            "--report",
            str(report_path),
            "--var",
            f"workdir={work}/build",
            "--var",
            f"marker_dir={work}/markers",
            "--var",
            f"output={work}/output.jsonl",
            str(example),
        ],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    # No file created (the build directory, markers, archives, the ETL's output...), no
    # program started. Every variable naming a place to write points into ``work``.
    assert _files(tmp_path) - before == {"report.json"}
    assert not log.exists(), log.read_text()

    report = json.loads(report_path.read_text())
    assert report["dry_run"] is True
    assert report["exit_code"] == 0
    playbook = gxo.validate(
        example, variables={"workdir": "/w", "marker_dir": "/m", "output": "/o"}
    )
    types = {task.name: task.type for task in playbook.tasks}
    checked = 0
    for name, result in report["task_results"].items():
        for inst in result["instances"]:
            summary: dict[str, Any] = inst["summary"]
            assert isinstance(summary, dict), (name, inst)
            if types[name] == "exec" and inst["reason"] != "dry_run_unrendered":
                assert summary["dry_run"] is True, (name, summary)
                assert summary["would_run"] is True
                assert isinstance(summary["command"], list)
                assert summary["command"]
            elif types[name] == "python":
                assert summary == {"dry_run": True, "supported": False, "module": "python"}
            checked += 1
    assert checked


PLAYBOOK = """
schemaVersion: v1.0.0
name: would-touch
tasks:
  - name: argv
    type: exec
    params: {command: [touch, "@TMP@/argv-ran"]}
  - name: shell
    type: exec
    params: {command: "touch '@TMP@/shell-ran'", shell: true}
  - name: function
    type: python
    params: {function: "pathlib:Path.touch", args: ["@TMP@/python-ran"]}
  - name: reads-upstream
    type: exec
    params:
      command: echo
      args: ["{{ counted.words.total }}"]
  - name: count
    type: python
    params: {function: "os:getcwd"}
    register: counted
"""


def test_dry_run_through_the_api(tmp_path: Path) -> None:
    text = textwrap.dedent(PLAYBOOK).replace("@TMP@", str(tmp_path))
    result = gxo.run(text, workers=2, dry_run=True)
    assert result.ok, result.report.error
    assert not list(tmp_path.glob("*-ran"))

    def summary(task: str) -> Any:
        return result.tasks[task].instances[0].summary

    assert summary("argv")["command"] == ["touch", f"{tmp_path}/argv-ran"]
    assert summary("shell")["command"] == ["/bin/sh", "-c", f"touch '{tmp_path}/shell-ran'"]
    # A module without dry-run support is reported as such, and not called.
    assert summary("function") == {"dry_run": True, "supported": False, "module": "python"}
    # Params reading a stand-in summary cannot render in a dry run: reported, not failed.
    unrendered = result.tasks["reads-upstream"].instances[0]
    assert result.tasks["reads-upstream"].status == "Completed"
    assert unrendered.reason == "dry_run_unrendered"
    assert unrendered.summary["rendered"] is False
    assert "words" in unrendered.summary["error"]


def test_dry_run_when_that_cannot_be_evaluated_is_skipped(tmp_path: Path) -> None:
    text = textwrap.dedent(
        """
        schemaVersion: v1.0.0
        name: when-on-stand-in
        tasks:
          - name: probe
            type: python
            params: {function: "os:getcwd"}
            register: probe
          - name: loop-on-it
            type: exec
            loop: "{{ probe.items }}"
            params: {command: [touch, "@TMP@/looped"]}
          - name: after
            type: exec
            depends_on: [loop-on-it]
            params: {command: [touch, "@TMP@/after"]}
        """
    ).replace("@TMP@", str(tmp_path))
    result = gxo.run(text, workers=1, dry_run=True)
    assert result.ok
    assert result.tasks["loop-on-it"].status == "Skipped"
    assert result.tasks["loop-on-it"].reason == "dry_run_unresolved"
    assert result.tasks["after"].status == "Completed"
    assert not list(tmp_path.iterdir())


def test_dry_run_reports_the_command_with_secrets_redacted(tmp_path: Path) -> None:
    # Through the command, so the workers start with the secret in their environment.
    (tmp_path / "secret.yaml").write_text(
        textwrap.dedent(
            """
            schemaVersion: v1.0.0
            name: with-secret
            tasks:
              - name: call
                type: exec
                params:
                  command: curl
                  args: ["-H", "Authorization: Bearer {{ secret('GXO_DRY_RUN_TOKEN') }}"]
            """
        )
    )
    done = subprocess.run(
        [sys.executable, "-m", "gxo", "execute", "--dry-run", "--report", "r.json", "secret.yaml"],
        cwd=tmp_path,
        env={**os.environ, "GXO_DRY_RUN_TOKEN": "s3cr3t-value-0042"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    text = (tmp_path / "r.json").read_text()
    assert "s3cr3t-value-0042" not in text + done.stderr + done.stdout
    summary = json.loads(text)["task_results"]["call"]["instances"][0]["summary"]
    assert summary["command"] == ["curl", "-H", "Authorization: Bearer [REDACTED_SECRET]"]
