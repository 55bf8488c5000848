"""What ``gxo execute`` prints while it runs: dry-run lines, ``-q``, colour."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from gxo.cli.output import use_colour

GXO = [sys.executable, "-m", "gxo"]

MIXED = """
schemaVersion: v1.0.0
name: mixed
vars: {who: world}
tasks:
  - name: greet
    type: exec
    params: {command: [echo, "hello {{ who }}"], working_dir: "@TMP@"}
  - name: fan
    type: exec
    loop: [a, b]
    params: {command: sh, args: [-c, 'echo "$0"', "{{ item }}"]}
  - name: py
    type: python
    params: {function: "os:getcwd"}
  - name: never
    type: exec
    when: false
    params: {command: "true"}
"""

FAILING = """
schemaVersion: v1.0.0
name: failing
tasks:
  - name: fine
    type: exec
    params: {command: "true"}
  - name: broken
    type: exec
    params: {command: sh, args: [-c, "echo bad >&2; exit 2"]}
"""


def run(
    tmp_path: Path, *args: str | os.PathLike[str], env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")}
    return subprocess.run(
        [*GXO, *map(str, args)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**base, **(env or {})},
    )


def test_dry_run_says_what_would_run_and_what_cannot(
    tmp_path: Path, playbook_file: Callable
) -> None:
    book = playbook_file(MIXED)
    proc = run(tmp_path, book, "--dry-run")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.splitlines()
    greet = lines.index(next(x for x in lines if x.startswith("ok") and " greet" in x))
    assert lines[greet + 1] == f"    would run: echo 'hello world' (cwd {tmp_path})"
    fan = lines.index(next(x for x in lines if " fan " in x))
    assert lines[fan + 1] == "    fan[0]: would run: sh -c 'echo \"$0\"' a (cwd .)"
    assert lines[fan + 2] == "    fan[1]: would run: sh -c 'echo \"$0\"' b (cwd .)"
    py = lines.index(next(x for x in lines if " py " in x or x.endswith(" py")))
    assert lines[py + 1] == "    not run (python: no dry-run support)"
    assert not (tmp_path / "hello").exists()


def test_a_real_run_prints_no_would_run_lines(tmp_path: Path, playbook_file: Callable) -> None:
    proc = run(tmp_path, playbook_file(MIXED))
    assert proc.returncode == 0, proc.stderr
    assert "would run" not in proc.stderr
    assert "not run" not in proc.stderr


def test_quiet_prints_nothing_on_success(tmp_path: Path, playbook_file: Callable) -> None:
    proc = run(tmp_path, "-q", playbook_file(MIXED))
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert proc.stdout == ""


def test_quiet_prints_only_the_failures(tmp_path: Path, playbook_file: Callable) -> None:
    proc = run(tmp_path, "-q", playbook_file(FAILING))
    assert proc.returncode == 1
    assert proc.stderr.startswith("error: FAILED   broken: nonzero_exit(2)")
    assert "fine" not in proc.stderr.split("playbook")[0]  # no line for the task that passed
    assert "running failing" not in proc.stderr
    assert "playbook 'failing' Failed" in proc.stderr


ESC = "\x1b["


@pytest.mark.parametrize(
    ("args", "env", "coloured"),
    [
        (["--color", "always"], {}, True),
        (["--color", "always"], {"NO_COLOR": "1"}, True),  # the flag wins
        (["--color", "never"], {"FORCE_COLOR": "1"}, False),
        ([], {}, False),  # auto: stderr is a pipe here
        ([], {"FORCE_COLOR": "1"}, True),
        ([], {"FORCE_COLOR": "1", "NO_COLOR": "1"}, False),
        (["--color", "always", "--log-format", "json"], {}, False),
    ],
)
def test_colour_follows_the_flag_and_the_environment(
    tmp_path: Path, playbook_file: Callable, args: list[str], env: dict[str, str], coloured: bool
) -> None:
    proc = run(tmp_path, playbook_file(FAILING), *args, env=env)
    assert proc.returncode == 1
    assert (ESC in proc.stderr) is coloured, proc.stderr
    if coloured:
        assert f"{ESC}32mok{ESC}0m       fine" in proc.stderr
        assert f"{ESC}1;31mFAILED{ESC}0m   broken" in proc.stderr


class _Tty:
    def __init__(self, tty: bool) -> None:
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


def test_auto_colour_needs_a_terminal_that_is_not_dumb() -> None:
    assert use_colour("auto", stream=_Tty(True), env={"TERM": "xterm"})
    assert not use_colour("auto", stream=_Tty(True), env={"TERM": "dumb"})
    assert not use_colour("auto", stream=_Tty(True), env={"TERM": "xterm", "NO_COLOR": "x"})
    assert not use_colour("auto", stream=_Tty(False), env={})
    assert use_colour("auto", stream=_Tty(False), env={"FORCE_COLOR": "1"})
    # an empty NO_COLOR does not count (https://no-color.org)
    assert use_colour("auto", stream=_Tty(True), env={"TERM": "xterm", "NO_COLOR": ""})
