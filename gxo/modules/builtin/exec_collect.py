"""How ``exec`` collects one command: its output read as it arrives, its end noticed, what it
left running killed, in as few system calls as the common case allows.

This is :func:`gxo.modules.capture.pump`'s loop with the same behaviour (the drain after the
command's exit, ``limits.output``, ``stdout_records``, leftovers), specialised for the path
every command of a playbook takes. On this machine a system call costs a few microseconds,
and ``exec`` of a silent command that leaves nothing behind made 33 of them in the worker
besides spawning it; per command this loop saves:

- the two end-of-file ``read`` calls: a pipe that ``poll`` reports hung up and not readable
  is empty and has no writer left, so it is closed without reading it;
- the leftovers search when nothing can be left (:func:`_nothing_left`): the command's process
  group is gone and no thread of this process has a child besides the ``spare`` ones. The
  children files of this process's threads are kept open and re-read with ``pread`` (one
  call each, not ``open``/``read``/``close``); only when something is there does the full
  search of :func:`gxo.modules.capture.kill_leftovers` run. Like the worker's own sockets
  and pipes, these descriptors must not be closed by a task's code; if one was (and its
  number reused), what it reads is not a list of pids, and the full search runs.
"""

from __future__ import annotations

import contextlib
import math
import os
import select
import signal
import subprocess
import time
from collections.abc import Callable
from typing import Final

from gxo.modules import capture as _capture
from gxo.modules.capture import DRAIN_SECONDS, CommandOutcome, StreamCapture, kill_leftovers

__all__ = ["collect"]

_READ: Final = 1 << 16
_POLLIN: Final = select.POLLIN
#: A child file of the kernel's ``/proc/PID/task/TID/children`` over one page is read again
#: whole; under it the first ``pread`` gave everything.
_PAGE: Final = 4096


def collect(
    proc: subprocess.Popen[bytes],
    captures: dict[int, StreamCapture],
    *,
    output_limit: int = 0,
    on_stdout: Callable[[bytes], None] | None = None,
    owns_descendants: bool = False,
    spare: frozenset[int] = frozenset(),
    stdout_fd: int = -1,
) -> CommandOutcome:
    """Read the command's pipes until it exits (plus a short drain); reap it and its leftovers.

    The same contract as :func:`gxo.modules.capture.pump`: ``captures`` maps each pipe's read
    end (left blocking) to its capture; ``on_stdout`` receives the bytes of ``stdout_fd``
    instead of its capture; on any exception the command's processes are killed before it
    propagates. While it runs, :func:`gxo.modules.capture.command_running` is true (the
    worker's SIGTERM handler asks it).
    """
    reader = _Reader(proc, captures, output_limit, on_stdout, stdout_fd)
    _capture._pumping += 1  # read by command_running(): see its docstring
    try:
        reader.run()
    except BaseException:
        _kill_group(proc.pid)
        proc.wait()
        kill_leftovers(proc.pid, owns_descendants=owns_descendants, spare=spare)
        raise
    finally:
        _capture._pumping -= 1
        reader.close()
    code = proc.wait()
    killed = 0
    if not _nothing_left(proc.pid, owns_descendants, spare):
        killed = kill_leftovers(proc.pid, owns_descendants=owns_descendants, spare=spare)
    return CommandOutcome(code, leftovers_killed=killed, limit_exceeded=reader.limit_hit)


class _Reader:
    """The pipes and the child's pidfd in one ``poll`` (no kernel object per command, as a
    selector's epoll would be); the pipes stay blocking and are read only when ``poll`` says
    they hold data, so a read never waits."""

    def __init__(
        self,
        proc: subprocess.Popen[bytes],
        captures: dict[int, StreamCapture],
        output_limit: int,
        on_stdout: Callable[[bytes], None] | None,
        stdout_fd: int,
    ) -> None:
        self.proc = proc
        self.captures = captures
        self.output_limit = output_limit
        self.on_stdout = on_stdout
        self.stdout_fd = stdout_fd
        self.limit_hit = False
        self.drain_until: float | None = None
        self.open = len(captures)
        self.poller = select.poll()
        for fd in captures:
            self.poller.register(fd, _POLLIN)
        try:
            self.pidfd: int | None = os.pidfd_open(proc.pid)
        except (AttributeError, OSError):  # an old kernel: poll the child every 50 ms
            self.pidfd = None
        else:
            self.poller.register(self.pidfd, _POLLIN)

    def run(self) -> None:
        poll, pidfd = self.poller.poll, self.pidfd
        while self.open:
            for fd, events in poll(self._timeout()):
                if fd == pidfd:
                    self.poller.unregister(fd)
                    self.drain_until = time.monotonic() + DRAIN_SECONDS
                elif events & _POLLIN:
                    self._read(fd)
                elif events:  # hung up (or an error) with nothing to read: its end
                    self._closed(fd)
            if self.output_limit and self._total() > self.output_limit:
                self.limit_hit = True
                _kill_group(self.proc.pid)
                return
            if self.drain_until is None:
                if pidfd is None and self.proc.poll() is not None:
                    self.drain_until = time.monotonic() + DRAIN_SECONDS
            elif time.monotonic() >= self.drain_until:
                return  # what is still open is held by processes the command left behind

    def close(self) -> None:
        if self.pidfd is not None:
            os.close(self.pidfd)

    def _timeout(self) -> int | None:
        """Milliseconds ``poll`` may wait (None: until something happens)."""
        if self.drain_until is not None:
            return max(0, math.ceil((self.drain_until - time.monotonic()) * 1000))
        return 50 if self.pidfd is None else None

    def _read(self, fd: int) -> None:
        try:
            data = os.read(fd, _READ)
        except (BlockingIOError, InterruptedError):
            return  # poll again
        if not data:
            self._closed(fd)
        elif fd == self.stdout_fd and self.on_stdout is not None:
            self.on_stdout(data)
        else:
            self.captures[fd].feed(data)

    def _closed(self, fd: int) -> None:
        self.poller.unregister(fd)
        self.open -= 1

    def _total(self) -> int:
        return sum(capture.total for capture in self.captures.values())


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def _nothing_left(pgid: int, owns_descendants: bool, spare: frozenset[int]) -> bool:
    """Whether :func:`~gxo.modules.capture.kill_leftovers` would find nothing to kill or reap:
    no process is left in the command's group and (in a worker, ``owns_descendants``) no
    thread of this process but the ``spare`` ones has a child besides the ``spare`` ones.
    False when unsure: the full search then decides."""
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        pass  # as kill_leftovers: the group is gone
    else:
        return False
    if not owns_descendants:
        return True  # kill_leftovers only looks below this process in a worker
    try:
        tasks = os.listdir("/proc/self/task")
    except OSError:
        return False
    if len(_children_files) > len(tasks):
        _forget_threads(set(tasks))
    for tid in tasks:
        if int(tid) in spare:
            continue
        listing = _children_of(tid)
        if listing is None:
            return False
        try:
            if not spare.issuperset(map(int, listing.split())):
                return False
        except ValueError:  # not a children file any more (a task closed ours): start over
            _forget_threads(set())
            return False
    return True


#: Open ``/proc/self/task/TID/children`` files of this process's threads, by thread id.
_children_files: dict[str, int] = {}


def _children_of(tid: str) -> bytes | None:
    """The children file of this process's thread ``tid`` (None: it cannot be read)."""
    fd = _children_files.get(tid)
    try:
        if fd is None:
            fd = os.open(f"/proc/self/task/{tid}/children", os.O_RDONLY | os.O_CLOEXEC)
            _children_files[tid] = fd
        data = os.pread(fd, _READ, 0)
        if len(data) >= _PAGE:  # a long list: read it to its end
            chunks = [data]
            while chunk := os.pread(fd, _READ, sum(map(len, chunks))):
                chunks.append(chunk)
            data = b"".join(chunks)
    except OSError:  # the thread ended (or no children files): the full search decides
        _forget_threads(set(_children_files) - {tid})
        return None
    return data


def _forget_threads(keep: set[str]) -> None:
    """Close the children files of threads not in ``keep`` (ended threads)."""
    for tid in [tid for tid in _children_files if tid not in keep]:
        with contextlib.suppress(OSError):
            os.close(_children_files.pop(tid))


def _after_fork() -> None:
    """A forked child has other threads (and these files are its parent's): start over."""
    _forget_threads(set())


os.register_at_fork(after_in_child=_after_fork)
