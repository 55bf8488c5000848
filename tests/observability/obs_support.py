"""Helpers for the observability tests: the real ``gxo`` in a child process, playbook files."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

GXO = [sys.executable, "-m", "gxo"]


def child_env(**extra: str) -> dict[str, str]:
    """The test's environment without ``OTEL_*`` variables, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "GXO_"))}
    env.update(extra)
    return env


@pytest.fixture
def write_playbook(tmp_path: Path) -> Callable[..., Path]:
    """Write dedented playbook text (``@TMP@`` replaced by ``tmp_path``) to a file."""

    def write(text: str, name: str = "playbook.yaml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text).lstrip().replace("@TMP@", str(tmp_path)))
        return path

    return write


@pytest.fixture
def gxo(tmp_path: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run ``gxo ARGS...`` to completion (bounded) without OTEL_* variables."""

    def run(
        *args: str | os.PathLike[str], env: dict[str, str] | None = None, timeout: float = 60.0
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*GXO, *map(str, args)],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env=env if env is not None else child_env(),
        )

    return run


@pytest.fixture
def started_procs() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Processes a test started in their own session; killed (with their group) at teardown."""
    procs: list[subprocess.Popen[bytes]] = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
