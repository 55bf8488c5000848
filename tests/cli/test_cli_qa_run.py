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
