"""Fixtures for the observability tests (defined in obs_support)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from obs_support import gxo, started_procs, write_playbook

__all__ = ["gxo", "started_procs", "write_playbook"]
