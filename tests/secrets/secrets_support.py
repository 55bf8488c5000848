"""Names the secrets suite's tests import (a module of its own: ``from conftest import`` would
pick whichever ``conftest`` module pytest loaded first when several test directories run)."""

from __future__ import annotations

import subprocess
from collections.abc import Callable

#: The ``run_gxo`` fixture: runs the real ``gxo`` command and returns the finished process.
RunGxo = Callable[..., subprocess.CompletedProcess[str]]
