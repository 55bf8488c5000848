"""The real ``gxo`` command as an outside user meets it: what the QA of its run semantics found."""

from __future__ import annotations

import subprocess
from collections.abc import Callable

import pytest

Gxo = Callable[..., subprocess.CompletedProcess[str]]


@pytest.mark.parametrize("command", ["execute", "journal"])
def test_a_missing_playbook_names_only_what_is_required(gxo: Gxo, command: str) -> None:
    # TASK... is optional (`PLAYBOOK [TASK ...]` in the usage): argparse named it as required.
    result = gxo(command)

    assert result.returncode == 2
    assert "the following arguments are required: PLAYBOOK\n" in result.stderr
    assert "TASK" not in result.stderr.splitlines()[0]
