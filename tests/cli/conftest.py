"""Fixtures for tests that run the real ``gxo`` command in a child process."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

# The process helpers and the functions playbooks call are shared with tests/integration.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "integration"))

from itest_support import substitute

GXO = [sys.executable, "-m", "gxo"]


@pytest.fixture
def gxo(tmp_path: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run ``gxo ARGS...`` to completion (bounded); return its exit code and output."""

    def run(*args: str | os.PathLike[str], cwd: Path | None = None, timeout: float = 60.0):
        return subprocess.run(
            [*GXO, *map(str, args)],
            cwd=cwd or tmp_path,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    return run


@pytest.fixture
def start_gxo(tmp_path: Path) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    """Start ``gxo ARGS...`` in its own session; it is killed (with its group) at teardown.

    stdout and stderr go to files in ``tmp_path`` (``gxo.out``, ``gxo.err``), so the child can
    never block on a full pipe.
    """
    started: list[subprocess.Popen[bytes]] = []

    def start(*args: str | os.PathLike[str]) -> subprocess.Popen[bytes]:
        with (
            open(tmp_path / "gxo.out", "wb") as out,
            open(tmp_path / "gxo.err", "wb") as err,
        ):
            proc = subprocess.Popen(
                [*GXO, *map(str, args)],
                cwd=tmp_path,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=True,
            )
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)


@pytest.fixture
def playbook_file(tmp_path: Path) -> Callable[..., Path]:
    """Write playbook text (dedented, placeholders replaced) to ``tmp_path/name``."""
    import textwrap

    def write(text: str, name: str = "playbook.yaml", **subs: object) -> Path:
        path = tmp_path / name
        path.write_text(substitute(textwrap.dedent(text).lstrip(), tmp_path, **subs))
        return path

    return write


@pytest.fixture(autouse=True)
def _state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Runs write their journal under the test's directory, never the checkout's .gxo/."""
    monkeypatch.setenv("GXO_STATE_DIR", str(tmp_path / ".gxo"))
