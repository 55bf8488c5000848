"""The run's spool of finished instances: what the report says of each, on disk, not in memory.

Every instance that ends is written here at once, as one line of compact JSON (an
:class:`~gxo.report.InstanceReport`, built by :mod:`gxo.scheduler.report`), so the parent
does not keep per-attempt details of a 100,000-item loop (issue 18). The report is then
written as a stream from this file (:func:`gxo.report.iter_report_json`), each task's
instances in item order, whatever order they ended in.

The file is ``instances.jsonl`` in the run directory (next to the attempt logs, DESIGN
§15), append-only, one line per instance in the order they ended; it stays there after the
run, a readable record of every instance. Without a run directory (a dry run, or one that
cannot be written) it is a temporary file, removed when the spool is garbage-collected (the
report that reads it is gone) or at exit.

Lines are written in chunks of :data:`CHUNK` bytes (not one write per instance). A spool
that cannot be written (a full disk, ``RLIMIT_FSIZE``) must not cost the run or its report:
one error is logged and what was not written stays in memory, so the report is still whole.

In memory it keeps one ``(offset, length)`` pair per instance (16 bytes, in an ``array``),
so the report can read each task's instances back in order.

Level 1: files only; knows nothing of what the lines mean.
"""

from __future__ import annotations

import contextlib
import logging
import os
import weakref
from array import array
from collections.abc import Iterator

__all__ = ["CHUNK", "SPOOL_NAME", "InstanceSpool"]

log = logging.getLogger("gxo")

#: The spool's file name in the run directory.
SPOOL_NAME = "instances.jsonl"
#: Bytes gathered before one write to the file.
CHUNK = 256 * 1024


class InstanceSpool:
    """Append-only lines, each filed under a task and a position (its loop index, or 0).

    Args:
        directory: the run directory; ``""`` for a temporary file.
    """

    def __init__(self, directory: str = "") -> None:
        self.path = ""
        self._fd = -1
        #: Bytes from ``_durable`` on: written to the file on the next flush, or kept here
        #: for good once writing failed.
        self._tail = bytearray()
        self._durable = 0
        self._offset = 0
        self._failed = False
        #: Task -> [offset0, length0, offset1, length1, ...] by position; -1: not written.
        self._index: dict[str, array[int]] = {}
        #: The descriptor :meth:`reading` keeps open for a pass over many tasks, and how many
        #: passes hold it (``-1``: none; ``lines`` then opens one of its own).
        self._read_fd = -1
        self._readers = 0
        try:
            if directory:
                self.path = os.path.join(directory, SPOOL_NAME)
                flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC
                self._fd = os.open(self.path, flags, 0o666)
            else:
                import tempfile  # only without a run directory (a library run)

                self._fd, self.path = tempfile.mkstemp(prefix="gxo-instances-", suffix=".jsonl")
                weakref.finalize(self, _remove, self.path)
        except OSError as exc:
            self._give_up(exc)

    def add(self, task: str, position: int, line: bytes) -> None:
        """File ``line`` (no newline in it) as ``task``'s instance at ``position``."""
        index = self._index.get(task)
        offset, size = self._offset, len(line)
        if index is None and not position:  # a task's first (or only) one: in one step
            self._index[task] = array("q", (offset, size))
        else:
            if index is None:
                index = self._index[task] = array("q")
            need = 2 * (position + 1)
            if len(index) < need:
                index.extend([-1] * max(need - len(index), len(index)))
            index[2 * position] = offset
            index[2 * position + 1] = size
        tail = self._tail
        tail += line
        tail += b"\n"
        self._offset = offset + size + 1
        if len(tail) >= CHUNK:
            self._flush()

    def count(self, task: str) -> int:
        """How many instances of ``task`` were written."""
        index = self._index.get(task)
        return 0 if index is None else sum(1 for n in index[1::2] if n >= 0)

    def lines(self, task: str) -> Iterator[bytes]:
        """``task``'s lines in position order (positions never written are left out)."""
        index = self._index.get(task)
        if index is None:
            return
        self._flush()
        if self._read_fd >= 0 or not (self._durable or self._fd >= 0):  # held, or no file
            yield from self._read(index)
            return
        with self.reading():
            yield from self._read(index)

    @contextlib.contextmanager
    def reading(self) -> Iterator[None]:
        """One read descriptor for every :meth:`lines` call inside: a pass over every task
        (the report of a run of 2,000 tasks) opens and closes the file once, not per task."""
        if self._readers == 0 and (self._durable or self._fd >= 0):  # the file exists
            self._read_fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        self._readers += 1
        try:
            yield
        finally:
            self._readers -= 1
            if self._readers == 0 and self._read_fd >= 0:
                fd, self._read_fd = self._read_fd, -1
                os.close(fd)

    def _read(self, index: array[int]) -> Iterator[bytes]:
        fd = self._read_fd
        tail = self._tail
        for i in range(0, len(index), 2):
            offset, length = index[i], index[i + 1]
            if offset < 0:
                continue
            durable = self._durable
            if offset >= durable:  # never reached the file: kept in memory
                start = offset - durable
                yield bytes(tail[start : start + length])
            elif offset + length <= durable:
                yield os.pread(fd, length, offset)
            else:  # cut by a failed write: its start in the file, the rest in memory
                head = os.pread(fd, durable - offset, offset)
                yield head + bytes(tail[: length - len(head)])

    def close(self) -> None:
        """Write what is gathered and close the file; the lines stay readable."""
        self._flush()
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            with contextlib.suppress(OSError):
                os.close(fd)

    def _flush(self) -> None:
        if self._failed or self._fd < 0 or not self._tail:
            return
        view = memoryview(self._tail)
        written = 0
        try:
            while written < len(view):
                written += os.write(self._fd, view[written:])
        except OSError as exc:
            self._give_up(exc)
        finally:
            view.release()
            del self._tail[:written]
            self._durable += written

    def _give_up(self, exc: OSError) -> None:
        """Writing failed: keep the rest in memory (the report stays whole), say so once."""
        self._failed = True
        log.error(
            "could not write the instance spool %s: %s; the rest of this run's instance "
            "details stay in memory (the run goes on, its exit code is unchanged)",
            self.path or "(a temporary file)",
            exc.strerror or exc,
        )


def _remove(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)
