"""Fixtures for the secrets suite: the real ``gxo`` command, in a child process."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest
from secrets_support import RunGxo

GXO = [sys.executable, "-m", "gxo"]


@pytest.fixture
def gxo_tmpdir(tmp_path: Path) -> Path:
    """The TMPDIR gxo runs with: every temporary file it (or a task) creates lands here."""
    path = tmp_path / "gxo-tmp"
    path.mkdir()
    return path


@pytest.fixture
def run_gxo(tmp_path: Path, gxo_tmpdir: Path) -> RunGxo:
    """Run ``gxo ARGS...`` to completion with extra environment variables."""

    def run(
        *args: str | os.PathLike[str], env: Mapping[str, str] | None = None, timeout: float = 90.0
    ) -> subprocess.CompletedProcess[str]:
        full_env = {**os.environ, "TMPDIR": str(gxo_tmpdir), **(env or {})}
        return subprocess.run(
            [*GXO, *map(str, args)],
            cwd=tmp_path,
            env=full_env,
            capture_output=True,
            text=True,
            encoding="utf-8",
            errors="surrogateescape",
            timeout=timeout,
            check=False,
        )

    return run
