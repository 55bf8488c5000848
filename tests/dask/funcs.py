"""Module functions the Dask tests run on the nodes (by file path, as users do)."""

from __future__ import annotations

import ctypes
import os
import signal
from pathlib import Path

import psutil


def segfault() -> None:
    ctypes.string_at(0)


def hard_exit(code: int) -> None:
    os._exit(code)


def boom() -> None:
    raise RuntimeError("bad input")


def kill_dask_worker_once(marker: str) -> dict[str, int]:
    """On the first call, SIGKILL the Dask worker process this instance runs under.

    gxo's worker process is a child of the node's forkserver, itself a child of the Dask
    worker: the Dask worker is the nearest ancestor whose command line is not gxo's.
    """
    path = Path(marker)
    if path.exists():
        return {"survived": 1}
    path.write_text("killed")
    forkserver = psutil.Process(os.getppid())
    dask_worker = forkserver.parent()
    assert dask_worker is not None
    os.kill(dask_worker.pid, signal.SIGKILL)
    signal.pause()  # the node's gxo pool goes down with its Dask worker
    return {"survived": 0}
