"""The gxo version, read by packaging and by ``gxo --version``."""

from __future__ import annotations

import os
import sys

__version__ = "0.1.0"


def version_text() -> str:
    """What ``gxo --version`` prints, in GXO's five lines: version, commit, build time,
    interpreter and OS/architecture.

    The commit and build time come from ``gxo/_build_info.py``, written when gxo is built or
    installed (``scripts/build_backend.py``; not in git); without it, or outside a git
    checkout, they read ``unknown``. No subprocess runs here: ``--version`` stays as fast
    as starting Python.
    """
    try:
        from gxo._build_info import BUILT, COMMIT  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        COMMIT = BUILT = "unknown"
    system = os.uname()
    return (
        f"gxo version {__version__}\n"
        f"commit: {COMMIT}\n"
        f"built: {BUILT}\n"
        f"python version: {sys.version.split()[0]} ({sys.implementation.name})\n"
        f"os/arch: {system.sysname.lower()}/{system.machine}"
    )
