"""Running a command and capturing its output, with every cap, for ``exec``.

Why this is more than ``subprocess.run(capture_output=True)``:

- **Bounded memory.** Each stream is written to its attempt log file as it arrives (redacted,
  up to the ``output_capture`` cap, past which the file is cut with a note and the command is
  still drained so it never blocks), and only the last :data:`~gxo.outputs.TAIL_BYTES` stay in
  memory. A command printing gigabytes costs the worker 128 KiB.
- **A hard limit.** ``limits.output`` counts stdout and stderr together; past it the command
  (and everything it started) is killed and the task fails with ``limit_exceeded(output)``.
- **No wait on leftovers.** A command that leaves a background process holding its stdout
  (``sleep 1000 & echo started``) ends when its direct child exits: reading stops after a
  short drain, and the processes it left behind are killed and counted.

The worker gives each attempt a :class:`CaptureSettings` through the module context
(``ctx.capture``); without one (a module run outside gxo) nothing is written to disk.
"""

from __future__ import annotations

import codecs
import contextlib
import math
import os
import select
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Final

import msgspec

from gxo.outputs import (
    CUT_MARK,
    DEFAULT_OUTPUT_CAPTURE,
    TAIL_BYTES,
    CapturedOutput,
    tail_lines,
)
from gxo.secrets.redact import Redactor

#: The surrogate escapes of bytes that are not UTF-8 (a character the cap cut in two).
_ESCAPES: Final = "".join(map(chr, range(0xDC80, 0xDD00)))
#: The longest unterminated line held back to be masked whole (as the relay's LINE_LIMIT).
_LINE_HOLD: Final = 1 << 16

__all__ = [
    "DRAIN_SECONDS",
    "CaptureSettings",
    "CommandOutcome",
    "StreamCapture",
    "command_running",
    "kill_left_behind",
    "kill_leftovers",
    "pump",
    "reap_children",
    "record_command",
]

#: After the direct child exits, how long output is still read from processes it left behind.
DRAIN_SECONDS: Final = 0.25
#: How long a command's pipes are read before its exit is watched too (see :class:`_Reader`).
_WATCH_AFTER: Final = 0.01
_READ: Final = 1 << 16
#: A child file of the kernel's ``/proc/PID/task/TID/children`` over one page is read again
#: whole; under it the first ``pread`` gave everything.
_PAGE: Final = 4096


@dataclass(frozen=True)
class CaptureSettings:
    """How one attempt's command output is kept (set by the worker for each attempt).

    Attributes:
        log_prefix: the attempt's log files are ``<log_prefix>.stdout`` and ``.stderr``;
            empty: no files (the run directory could not be written, or outside gxo).
        capture_limit: bytes of each stream written to its file (``output_capture``).
        output_limit: bytes of stdout and stderr together before the task fails
            (``limits.output``); 0 for none.
        redactor: masks secrets in what is written to the files.
        on_log_error: called with a message when a log file cannot be written (the worker
            warns once per run); the command still runs, without that file.
        owns_descendants: this process is a gxo worker: every process below it belongs to
            the attempt, so what a command left behind is killed even outside its process
            group (see :func:`kill_leftovers`).
        spare: processes below the worker that are not the command's and must live on (the
            worker's guard, :func:`gxo.pool.session.start_guard`).
    """

    log_prefix: str = ""
    capture_limit: int = DEFAULT_OUTPUT_CAPTURE
    output_limit: int = 0
    redactor: Redactor | None = None
    on_log_error: Callable[[str], None] | None = None
    #: Also write what the command prints to this process's own stdout/stderr as it arrives
    #: (``-v``): in a worker those are the redacting pipe whose lines the parent relays.
    live: bool = False
    #: Where live lines go instead of this process's fds 1 and 2 (a worker's relay to the
    #: parent, which does not copy them into the attempt's ``.output`` log); None: the fds.
    relay: Callable[[bytes], object] | None = None
    owns_descendants: bool = False
    spare: frozenset[int] = frozenset()
    #: Where :func:`record_command` records the command an attempt starts (the worker's
    #: file, :func:`gxo.outputs.command_file`); empty: not recorded.
    command_file: str = ""


_NO_SETTINGS: Final = CaptureSettings()


class StreamCapture:
    """One stream of one attempt: whole to its log file (up to the cap), its tail in memory."""

    def __init__(self, name: str, settings: CaptureSettings = _NO_SETTINGS) -> None:
        self.name = name
        self.total = 0
        self.kept = 0
        self.truncated = False
        self._tail = bytearray()
        self._settings = settings
        self._path = f"{settings.log_prefix}.{name}" if settings.log_prefix else ""
        self._file: IO[bytes] | None = None
        self._failed = not self._path
        self._pending = ""
        self._decoder: codecs.IncrementalDecoder | None = None

    def feed(self, data: bytes) -> None:
        """Take the next bytes the command wrote on this stream."""
        if self._settings.live:
            if self._settings.relay is not None:
                self._settings.relay(data)
            else:
                _write_all(2 if self.name == "stderr" else 1, data)
        self.total += len(data)
        tail = self._tail
        tail += data
        if len(tail) > 2 * TAIL_BYTES:  # trim in bulk: amortized O(1) per byte
            del tail[:-TAIL_BYTES]
        if self._failed or self.truncated:
            return
        room = self._settings.capture_limit - self.kept
        if len(data) > room:
            data = data[:room]
            self.truncated = True
        self.kept += len(data)
        if data:
            self._write(data)

    def tail(self) -> bytes:
        """The last :data:`TAIL_BYTES` (from the start of a line when output was cut)."""
        return self._cut_tail()[0]

    def _cut_tail(self) -> tuple[bytes, bool]:
        """The tail, and whether it starts inside a line (the cut found no line start)."""
        data = bytes(self._tail[-TAIL_BYTES:])
        if self.total > len(data):
            cut = data.find(b"\n")
            if 0 <= cut < len(data) - 1:
                return data[cut + 1 :], False
            return data, True
        return data, False

    def text(self) -> str:
        """The tail as text: the whole output when it fit in memory. When the cut went
        through a line, what it left of a value there is removed (:meth:`Redactor.trim_cut`)."""
        data, inside = self._cut_tail()
        text = data.decode("utf-8", errors="replace")
        redactor = self._settings.redactor
        if inside and redactor is not None and redactor.active:
            text = redactor.trim_cut(redactor.redact_text(text.lstrip("\ufffd")), start=True)
        return text

    def close(self) -> CapturedOutput:
        """Finish the log file (redact what is pending, note a truncation); describe the stream."""
        if self._file is not None:
            self._finish_file()
        written = self._path if self._file is not None else ""
        tail = tail_lines(self.tail())
        redactor = self._settings.redactor
        if tail and tail[0].startswith(CUT_MARK) and redactor is not None and redactor.active:
            # A line longer than the tail keeps its end: a value the cut went through
            # would show its last characters, which no match finds.
            rest = redactor.redact_text(tail[0][len(CUT_MARK) :])
            tail[0] = CUT_MARK + redactor.trim_cut(rest, start=True)
        return CapturedOutput(
            name=self.name,
            bytes=self.total,
            kept=self.kept if written else 0,
            truncated=self.truncated,
            tail=tail,
            path=written,
        )

    def _write(self, data: bytes) -> None:
        redactor = self._settings.redactor
        try:
            if self._file is None:
                os.makedirs(os.path.dirname(self._path), exist_ok=True)
                self._file = open(self._path, "wb", buffering=0)  # noqa: SIM115 - closed in close()
            if redactor is None or not redactor.active:
                if self._pending:
                    self._file.write(self._pending.encode())
                    self._pending = ""
                self._file.write(data)
                return
            if self._decoder is None:
                # Bytes that are not UTF-8 become surrogate escapes, written back as they
                # came: binary output is masked and still kept exact.
                self._decoder = codecs.getincrementaldecoder("utf-8")("surrogateescape")
            # Whole lines are masked as the relayed output is (values, and with
            # --redact-keywords the `key=value` forms, which only a whole line shows); an
            # unterminated line is held back, up to _LINE_HOLD, then cut where no value starts.
            text = self._pending + self._decoder.decode(data)
            head = ""
            newline = text.rfind("\n")
            if newline >= 0:
                head = redactor.redact_lines(text[: newline + 1])
                text = text[newline + 1 :]
            if len(text) > _LINE_HOLD:
                more, text = redactor.split_pending(text)
                head += more
            self._pending = text
            self._file.write(head.encode("utf-8", errors="surrogateescape"))
        except OSError as exc:
            self._give_up(exc)

    def _finish_file(self) -> None:
        assert self._file is not None
        redactor = self._settings.redactor
        try:
            if self._decoder is not None:
                self._pending += self._decoder.decode(b"", final=True)
            if self._pending:
                text = self._pending if redactor is None else redactor.redact_lines(self._pending)
                if self.truncated and redactor is not None:
                    # Cut at the cap: the beginning of a value the cut went through is
                    # not kept either (no match finds a part of one).
                    text = redactor.trim_cut(text.rstrip(_ESCAPES), end=True)
                self._file.write(text.encode("utf-8", errors="surrogateescape"))
                self._pending = ""
            if self.truncated:
                cap = self._settings.capture_limit
                self._file.write(
                    f"\n[gxo: output_capture limit of {cap} bytes reached: the last "
                    f"{self.total - self.kept} of {self.total} bytes were not kept]\n".encode()
                )
            self._file.close()
        except OSError as exc:
            self._give_up(exc)

    def _give_up(self, exc: OSError) -> None:
        if self._file is not None:
            with contextlib.suppress(OSError):
                self._file.close()
        self._file = None
        self._failed = True
        if self._settings.on_log_error is not None:
            self._settings.on_log_error(f"cannot write {self._path}: {exc.strerror or exc}")


def record_command(settings: CaptureSettings, command: list[str], cwd: str) -> None:
    """Record in ``settings.command_file`` the argv and directory of the command the attempt
    starts, redacted, with the attempt's ``log_prefix``. A worker killed before the attempt
    returns (a timeout) sends no summary; this file still says what ran
    (:func:`gxo.outputs.read_command`). The file is the worker's, overwritten by each command
    and kept open in a gxo worker (``owns_descendants``): no file or directory is created
    per command.
    Written only with a redactor (never a secret on disk); a failure is ignored."""
    redactor = settings.redactor
    path = settings.command_file
    if not path or redactor is None:
        return
    facts = redactor.redact({"command": command, "cwd": cwd})
    data = msgspec.json.encode({"attempt": settings.log_prefix, **facts})
    with contextlib.suppress(OSError):
        fd, size = _command_fds.get(path, (-1, 0))
        if fd < 0:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o666)
        try:
            # Padded with spaces (JSON ignores them) to the file's size rather than cut to
            # its own with ftruncate: a truncate is a costly ext4 metadata update.
            size = max(size, len(data))
            os.pwrite(fd, data.ljust(size), 0)
        finally:
            if settings.owns_descendants:
                _command_fds[path] = (fd, size)
            else:
                os.close(fd)


#: The command files this process keeps open (:func:`record_command`), by path: the
#: descriptor and the file's size.
_command_fds: dict[str, tuple[int, int]] = {}


def _write_all(fd: int, data: bytes) -> None:
    """Write every byte to ``fd`` (a relay pipe: a short write just continues)."""
    with contextlib.suppress(OSError):
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]


@dataclass
class CommandOutcome:
    """How the command ended: its exit code, what it left behind, whether a limit stopped it."""

    exit_code: int
    leftovers_killed: int = 0
    limit_exceeded: bool = False


#: How many commands :func:`pump` is collecting in this process now.
_pumping = 0


def command_running() -> bool:
    """Whether this process is collecting a command now (:func:`pump` has not returned).

    A worker's SIGTERM handler asks this rather than only listing its children: the command
    may already be dead and reaped (the signal reached it first) while its output and status
    are still being collected, and the attempt must then end with its result, not with the
    worker killing itself.
    """
    return _pumping > 0


def pump(
    proc: subprocess.Popen[bytes],
    captures: dict[int, StreamCapture],
    *,
    output_limit: int = 0,
    on_stdout: Callable[[bytes], None] | None = None,
    owns_descendants: bool = False,
    spare: frozenset[int] = frozenset(),
    stdout_fd: int | None = None,
) -> CommandOutcome:
    """Read the command's pipes until it exits (plus a short drain); reap it and its leftovers.

    ``captures`` maps each pipe's fd (the read ends, left blocking: see :class:`_Reader`) to
    its capture. ``on_stdout``, when given, receives the bytes of ``stdout_fd`` (default: the
    fd of ``proc.stdout``) instead of its capture (``stdout_records``: records are data, not
    output, so they are neither logged nor counted). On any exception (a failed
    ``on_stdout``) the command's processes are killed before it propagates.
    ``owns_descendants`` and ``spare``: see :func:`kill_leftovers`.
    """
    global _pumping  # noqa: PLW0603 - read by the worker's SIGTERM handler (command_running)
    if stdout_fd is None:
        stdout_fd = proc.stdout.fileno() if proc.stdout is not None else -1
    reader = _Reader(proc, captures, output_limit, on_stdout, stdout_fd)
    _pumping += 1
    try:
        reader.run()
    except BaseException:
        _kill_group(proc.pid)
        proc.wait()
        kill_leftovers(proc.pid, owns_descendants=owns_descendants, spare=spare)
        raise
    finally:
        _pumping -= 1
        reader.close()
    code = proc.wait()
    killed = 0
    if not _nothing_left(proc.pid, owns_descendants, spare):
        killed = kill_leftovers(proc.pid, owns_descendants=owns_descendants, spare=spare)
    return CommandOutcome(code, leftovers_killed=killed, limit_exceeded=reader.limit_hit)


_POLLIN: Final = select.POLLIN


class _Reader:
    """The read loop of :func:`pump`: the pipes, then also the child's pidfd, in one ``poll``.

    ``poll`` rather than a selector: nothing to create, register or close in the kernel per
    command (an epoll instance costs a handful of system calls per ``exec``), and the pipes
    stay blocking: only this thread reads them, and only when ``poll`` says they hold data,
    so a read never waits. A pipe that ``poll`` reports hung up and not readable is empty and
    has no writer left: it is closed without the end-of-file ``read``.

    The command's exit is watched (a pidfd, or ``proc.poll`` every 50 ms on a kernel without
    one) only from :data:`_WATCH_AFTER` seconds on: a command that ends sooner closes its
    pipes by exiting and the loop ends on their hang-ups, with no pidfd opened, registered
    and closed for it. A command whose leftovers still hold its pipes after it exited is
    seen as exited at that point at the latest (then drained for :data:`DRAIN_SECONDS`);
    it is not reaped before :func:`pump`'s ``wait``, so its pidfd can be opened late.
    """

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
        self.pidfd: int | None = None
        #: When the command's exit starts being watched; None: it is watched now.
        self.watch_at: float | None = time.monotonic() + _WATCH_AFTER

    def run(self) -> None:
        poll = self.poller.poll
        while self.open:
            for fd, events in poll(self._timeout()):
                if fd == self.pidfd:
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
                watch_at = self.watch_at
                if watch_at is not None:
                    if self.open and time.monotonic() >= watch_at:
                        self._watch()
                elif self.pidfd is None and self.proc.poll() is not None:
                    self.drain_until = time.monotonic() + DRAIN_SECONDS
            elif time.monotonic() >= self.drain_until:
                return  # what is still open is held by processes the command left behind

    def close(self) -> None:
        if self.pidfd is not None:
            os.close(self.pidfd)

    def _watch(self) -> None:
        """Watch the command's exit from now on: its pidfd in the ``poll`` (or, on an old
        kernel, ``proc.poll`` every 50 ms)."""
        self.watch_at = None
        try:
            self.pidfd = os.pidfd_open(self.proc.pid)
        except (AttributeError, OSError):  # an old kernel: poll the child every 50 ms
            self.pidfd = None
            if self.proc.poll() is not None:
                self.drain_until = time.monotonic() + DRAIN_SECONDS
        else:
            self.poller.register(self.pidfd, _POLLIN)

    def _timeout(self) -> int | None:
        """Milliseconds ``poll`` may wait (None: until something happens)."""
        if self.drain_until is not None:
            return max(0, math.ceil((self.drain_until - time.monotonic()) * 1000))
        if self.watch_at is not None:
            return max(0, math.ceil((self.watch_at - time.monotonic()) * 1000))
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
    return _no_children(spare)


def _no_children(spare: frozenset[int]) -> bool:
    """Whether no thread of this process but the ``spare`` ones has a child besides the
    ``spare`` ones (False when unsure)."""
    try:
        tasks = [str(os.getpid())] if _own_threads_only(spare) else os.listdir("/proc/self/task")
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
#: ``/proc/self/task`` held open, and its device and inode when opened (a module that closes
#: the descriptor cannot make another file pass for it).
_task_dir: tuple[int, int, int] | None = None
#: How many of the ``spare`` ids given are threads of this process (the rest are processes).
_spare_threads: dict[frozenset[int], int] = {}


def _own_threads_only(spare: frozenset[int]) -> bool:
    """Whether the caller is this process's main thread and its only other threads are
    ``spare`` ones (a worker's own, which live as long as it): then only the main thread's
    children file needs reading. One ``fstat`` of ``/proc/self/task``, whose link count is
    2 + the threads, instead of listing it (~4x the cost, once per instance in a worker)."""
    global _task_dir  # noqa: PLW0603 - one per process, reset after a fork
    me = os.getpid()
    if threading.get_native_id() != me:
        return False
    if _task_dir is None:
        fd = os.open("/proc/self/task", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        opened = os.fstat(fd)
        _task_dir = (fd, opened.st_dev, opened.st_ino)
    fd, dev, ino = _task_dir
    now = os.fstat(fd)
    if (now.st_dev, now.st_ino) != (dev, ino):
        _task_dir = None  # not ours any more (a module closed it): open it again next time
        return False
    own = _spare_threads.get(spare)
    if own is None:
        own = _spare_threads[spare] = len(spare & set(map(int, os.listdir("/proc/self/task"))))
    return now.st_nlink == 3 + own


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
    _close_proc_files()


def _close_proc_files() -> None:
    """Close the ``/proc`` files this process keeps open (the children files, the task
    directory): they are opened again when next needed."""
    global _task_dir  # noqa: PLW0603 - one per process
    _forget_threads(set())
    if _task_dir is not None:
        with contextlib.suppress(OSError):
            os.close(_task_dir[0])
        _task_dir = None
    _spare_threads.clear()


def kill_leftovers(
    pgid: int, *, owns_descendants: bool = False, spare: frozenset[int] = frozenset()
) -> int:
    """Kill what the command left running; return how many processes were killed.

    Leftovers are the processes of the command's process group (background jobs of a shell
    script stay in it) and, with ``owns_descendants`` (set only in a gxo worker, which leads
    its own session, is the subreaper of everything below it and runs nothing else), every
    remaining descendant of this process: one that left the group or the session is
    re-parented to the worker when its parent exits. Elsewhere (a module run in the caller's
    process) other children of the process are not the command's and are left alone.
    ``spare``: processes below this one that are not the command's (the worker's guard),
    never killed, and threads of this process that never start one (the worker's own):
    neither is searched.

    The common case, nothing left, costs a few system calls: the group is gone (one
    ``kill(-pgid, 0)``) and the only child lists read are this process's own threads'.
    """
    pids: set[int] = set()
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        group_alive = False  # no member can appear: only a member can join a group
    else:
        group_alive = True
        pids |= _group_members(pgid)
    me = os.getpid()
    if owns_descendants:
        pids |= _descendants(me, spare)
    pids.discard(me)
    pids -= spare
    killed = 0
    for pid in pids:
        if _zombie(pid):
            continue
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            continue
        killed += 1
        if owns_descendants:
            _killed.add(pid)  # counted here: kill_left_behind may still see it dying
    if group_alive:
        _kill_group(pgid)
    if owns_descendants and (killed or group_alive):
        reap_children()  # the worker also reaps after each instance: this is for the kills
    return killed


def kill_left_behind(spare: frozenset[int]) -> int:
    """In a worker (which is the subreaper of everything below it): kill every process
    below this one but the ``spare`` ones, what an instance started and left running (a
    ``python`` function's ``Popen`` it did not wait for, a daemon it forked); how many.

    Nothing left, the common case, costs a read of this process's threads' child lists.
    """
    counted = _killed.copy()
    _killed.clear()
    if _no_children(spare):
        return 0
    me = os.getpid()
    killed = 0
    sent: list[int] = []
    for pid in _descendants(me, spare) - spare - {me}:
        if _zombie(pid):
            continue
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            continue
        sent.append(pid)
        if pid not in counted:  # not a command's leftover, killed (and counted) already
            killed += 1
    _await_exit(sent)
    reap_children()
    return killed


#: How long in all a worker waits for the processes it killed to end: SIGKILL acts when a
#: process next runs; one in uninterruptible sleep may take longer and is not waited for.
_EXIT_WAIT: Final = 1.0


def _await_exit(pids: list[int]) -> None:
    """Wait until each of ``pids`` (just sent SIGKILL) has ended, up to :data:`_EXIT_WAIT` in
    all: the instance's leftovers are gone, not still exiting, when the next one starts."""
    deadline = time.monotonic() + _EXIT_WAIT
    for pid in pids:
        try:
            fd = os.pidfd_open(pid)
        except OSError:  # ended and reaped already, or no pidfd here (Linux < 5.3)
            continue
        try:
            select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        finally:
            os.close(fd)


#: Processes :func:`kill_leftovers` killed in a worker since :func:`kill_left_behind` last
#: ran: SIGKILL takes a moment, so they may still look alive to it.
_killed: set[int] = set()


def _group_members(pgid: int) -> set[int]:
    members = set()
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            pid = int(entry.name)
            with contextlib.suppress(OSError):
                if os.getpgid(pid) == pgid:
                    members.add(pid)
    return members


def _descendants(me: int, spare: frozenset[int] = frozenset()) -> set[int]:
    """Every descendant of this process (``me``), from each process's
    ``/proc/PID/task/*/children``; ``spare`` processes and threads are not searched.

    Walking the children files costs a few reads per descendant (usually none); psutil's
    ``children(recursive=True)`` reads every process on the machine, which after every
    command was most of an ``exec`` task's cost on a busy host. psutil is the fallback where
    the kernel has no children files.
    """
    children = _children(me, me, spare)
    if children is None:
        return set()
    found: set[int] = set()
    pending = list(children - spare)
    while pending:
        pid = pending.pop()
        if pid in found:
            continue
        found.add(pid)
        below = _children(pid, me)
        if below is None:  # no children files for it: ask psutil (a full scan)
            import psutil

            with contextlib.suppress(psutil.Error):
                below = {p.pid for p in psutil.Process(pid).children(recursive=True)}
        pending.extend((below or set()) - spare)
    return found


def _children(pid: int, me: int, quiet: frozenset[int] = frozenset()) -> set[int] | None:
    """The direct children of ``pid`` (every thread's but the ``quiet`` ones), or None if
    the kernel cannot say."""
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return set() if pid != me else None  # it exited: no children left
    children: set[int] = set()
    for tid in tasks:
        if quiet and int(tid) in quiet:
            continue
        try:
            listing = _read_proc(f"/proc/{pid}/task/{tid}/children")
        except FileNotFoundError:
            if not os.path.exists(f"/proc/{pid}/task/{tid}"):
                continue  # the thread ended meanwhile
            return None  # a kernel without CONFIG_PROC_CHILDREN
        except OSError:
            continue
        children.update(int(child) for child in listing.split())
    return children


def _read_proc(path: str) -> bytes:
    """A ``/proc`` file's content, with as few system calls as it takes (no buffered file
    object: its ``fstat``, ``ioctl`` and ``lseek`` cost more than the read)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        data = os.read(fd, _READ)
        if len(data) < 4096:  # less than one page: the kernel gave all it had
            return data
        chunks = [data]
        while data:
            data = os.read(fd, _READ)
            chunks.append(data)
        return b"".join(chunks)
    finally:
        os.close(fd)


def _zombie(pid: int) -> bool:
    try:
        stat = _read_proc(f"/proc/{pid}/stat")
    except OSError:
        return True
    return stat[stat.rfind(b")") + 2 : stat.rfind(b")") + 3] == b"Z"


def reap_children() -> None:
    """Reap every child of this process that has ended (zombies of processes killed here,
    and, in a worker, orphans re-parented to it as their subreaper), without blocking."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


os.register_at_fork(after_in_child=_after_fork)
