"""Small file-descriptor chores shared by the executors' wait loops."""

from __future__ import annotations

import os

__all__ = ["drain"]


def drain(fd: int) -> None:
    """Read and drop everything waiting on non-blocking ``fd`` (a wake-up pipe: its bytes
    only say "look again")."""
    try:
        while os.read(fd, 4096):
            pass
    except (BlockingIOError, InterruptedError):
        pass
