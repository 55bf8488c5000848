"""The acknowledgement slot: one 64-bit integer in memory shared by the parent and one worker.

The worker writes the id of the instance it is about to run and writes -1 once the result
was sent; the parent reads it only after the worker died, to know which instance the death
belongs to. A ``memfd`` of 8 bytes, mapped by both, passed to the worker like any other
descriptor when multiprocessing starts it (forkserver, spawn or fork), and closed with the
worker, so nothing outlives the pool (``multiprocessing.RawValue`` would keep an arena of the
global shared heap open for the life of the process).
"""

from __future__ import annotations

import errno
import mmap
import os
import resource
from typing import Any

from gxo.errors import UsageError

__all__ = ["AckSlot"]


def _fsize_limit() -> str:
    """The soft file-size limit as ``ulimit -f`` shows it (1024-byte blocks)."""
    soft = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
    return "unlimited" if soft == resource.RLIM_INFINITY else str(soft // 1024)


class AckSlot:
    """A shared ``int64``; ``value`` reads and writes it."""

    def __init__(self, fd: int | None = None) -> None:
        if fd is None:
            fd = os.memfd_create("gxo-ack", os.MFD_CLOEXEC)
            try:
                os.ftruncate(fd, 8)
            except OSError as exc:
                os.close(fd)
                if exc.errno != errno.EFBIG:
                    raise
                # The file-size limit (ulimit -f) applies to a memfd too: 8 bytes are refused.
                raise UsageError(
                    "cannot start a worker process: the file-size limit (ulimit -f "
                    f"{_fsize_limit()}) refuses even the 8-byte shared-memory slot each worker "
                    "needs; raise it (ulimit -f unlimited) and run again"
                ) from None
            created = True
        else:
            created = False
        self._fd = fd
        self._map = mmap.mmap(fd, 8)
        self._view: memoryview | None = memoryview(self._map).cast("q")
        if created:
            self.value = -1

    @property
    def value(self) -> int:
        assert self._view is not None, "slot is closed"
        return int(self._view[0])

    @value.setter
    def value(self, instance_id: int) -> None:
        assert self._view is not None, "slot is closed"
        self._view[0] = instance_id

    def fileno(self) -> int:
        """The ``memfd``'s descriptor (what a worker started is given)."""
        return self._fd

    def close(self) -> None:
        """Unmap and close (idempotent)."""
        if self._view is None:
            return
        self._view.release()
        self._view = None
        self._map.close()
        os.close(self._fd)

    def __reduce__(self) -> tuple[Any, tuple[Any]]:
        # Called while multiprocessing starts a worker: the descriptor travels with it.
        from multiprocessing import reduction

        return (_attach, (reduction.DupFd(self._fd),))


def _attach(dup: Any) -> AckSlot:
    return AckSlot(dup.detach())
