"""The acknowledgement slot: one 64-bit integer in memory shared by the parent and one worker.

The worker writes the id of the instance it is about to run and writes -1 once the result
was sent; the parent reads it only after the worker died, to know which instance the death
belongs to. A ``memfd`` of 8 bytes, mapped by both, passed to the worker like any other
descriptor when multiprocessing starts it (forkserver, spawn or fork), and closed with the
worker, so nothing outlives the pool (``multiprocessing.RawValue`` would keep an arena of the
global shared heap open for the life of the process).
"""

from __future__ import annotations

import mmap
import os
from typing import Any

__all__ = ["AckSlot"]


class AckSlot:
    """A shared ``int64``; ``value`` reads and writes it."""

    def __init__(self, fd: int | None = None) -> None:
        if fd is None:
            fd = os.memfd_create("gxo-ack", os.MFD_CLOEXEC)
            os.ftruncate(fd, 8)
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
