"""The build backend: setuptools, after recording the git commit in ``gxo/_build_info.py``.

Why: ``gxo --version`` prints the commit it was built from, like GXO's ``-version``, but must
not run git when it starts. So the commit and the build time are written into a small module
when a wheel, an sdist or an editable install is built (``pip install .``, ``pip install -e .``).
The file is not in git (.gitignore); outside a git checkout it records ``unknown``.
"""

from __future__ import annotations

import datetime
import subprocess
from pathlib import Path
from typing import Any

from setuptools import build_meta as _setuptools
from setuptools.build_meta import *  # noqa: F403 - every hook setuptools defines

_ROOT = Path(__file__).resolve().parent.parent
_TARGET = _ROOT / "gxo" / "_build_info.py"


def _record() -> None:
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"],
            cwd=_ROOT,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=_ROOT,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        if dirty:
            commit += "-dirty"
    except (OSError, subprocess.SubprocessError):
        commit = "unknown"
    built = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    _TARGET.write_text(
        '"""Written by scripts/build_backend.py when gxo was built; not in git."""\n\n'
        f"COMMIT = {commit or 'unknown'!r}\nBUILT = {built!r}\n"
    )


def build_wheel(wheel_directory: str, *args: Any, **kwargs: Any) -> str:
    _record()
    return str(_setuptools.build_wheel(wheel_directory, *args, **kwargs))


def build_editable(wheel_directory: str, *args: Any, **kwargs: Any) -> str:
    _record()
    return str(_setuptools.build_editable(wheel_directory, *args, **kwargs))


def build_sdist(sdist_directory: str, *args: Any, **kwargs: Any) -> str:
    _record()
    return str(_setuptools.build_sdist(sdist_directory, *args, **kwargs))
