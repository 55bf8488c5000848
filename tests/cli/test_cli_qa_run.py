"""The real ``gxo`` command as an outside user meets it: what the QA of its run semantics found."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

GXO = [sys.executable, "-m", "gxo"]
Gxo = Callable[..., subprocess.CompletedProcess[str]]


@pytest.mark.parametrize("command", ["execute", "journal"])
def test_a_missing_playbook_names_only_what_is_required(gxo: Gxo, command: str) -> None:
    # TASK... is optional (`PLAYBOOK [TASK ...]` in the usage): argparse named it as required.
    result = gxo(command)

    assert result.returncode == 2
    assert "the following arguments are required: PLAYBOOK\n" in result.stderr
    assert "TASK" not in result.stderr.splitlines()[0]


PIPED = """\
schemaVersion: v1.0.0
name: piped
tasks:
  - {name: hello, type: exec, params: {command: [echo, "{{ 'from a pipe' }}"]}}
"""


@pytest.mark.parametrize("command", [[], ["execute"], ["validate"]])
def test_a_playbook_read_from_a_pipe(tmp_path: Path, command: list[str]) -> None:
    # `gxo <(generate-playbook)`: the path is /dev/fd/N, a pipe that can be read only once.
    # The start-up's look for templates read it first, and the load found it empty.
    read_fd, write_fd = os.pipe()
    try:
        os.write(write_fd, PIPED.encode())
        os.close(write_fd)
        result = subprocess.run(
            [*GXO, *command, f"/dev/fd/{read_fd}"],
            cwd=tmp_path,
            pass_fds=(read_fd,),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        os.close(read_fd)

    assert result.returncode == 0, result.stderr
    assert "empty" not in result.stderr


INTERRUPT_AT_START = """\
import os, signal, sys


class _InterruptOnImport:
    # Ctrl-C while the gxo command starts its forkserver (_prestart imports this module first).
    def find_spec(self, name, path=None, target=None):
        if name == "gxo._util.sniff":
            os.kill(os.getpid(), signal.SIGINT)
        return None


sys.meta_path.insert(0, _InterruptOnImport())
"""


def test_ctrl_c_while_the_command_starts_up(tmp_path: Path) -> None:
    # A Ctrl-C before the run's handlers are in place printed a Python traceback.
    (tmp_path / "hook").mkdir()
    (tmp_path / "hook" / "sitecustomize.py").write_text(INTERRUPT_AT_START)
    (tmp_path / "pb.yaml").write_text(PIPED)
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "hook")}
    result = subprocess.run(
        [*GXO, "pb.yaml"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 130, result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / ".gxo").exists()  # nothing ran
