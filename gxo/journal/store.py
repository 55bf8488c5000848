"""The run journal on disk: where it lives, one writer at a time, crash-safe appends.

The journal is a JSON Lines file, one record per line, appended by every run of a playbook
(DESIGN §15): ``<state dir>/journal/<playbook stem>-<hash of its absolute path>.jsonl``, the
state dir being ``.gxo/`` in the current directory unless ``--state-dir`` or
``GXO_STATE_DIR`` moves it.

Why it survives crashes: records are buffered and written in batches (every
:data:`BATCH_RECORDS` records or :data:`BATCH_SECONDS` seconds, and when the run ends), each
batch with one ``write`` on an ``O_APPEND`` descriptor followed by ``fsync``. A record may be
buffered as a :class:`Pending` that builds it when the batch is written: the run's loop then
pays one list append per record, and the encoding work runs in one tight loop per batch.
A process killed in the middle of a write leaves at most one torn last line: readers ignore
it, and the next writer ends it with a newline first, so it never glues onto a later record.
A record the crash lost only means that instance runs again.

Why a lock file: two runs of the same playbook appending to one journal would each resume
from records the other is still writing. ``<journal>.lock`` is held with ``flock`` for the
whole run (the kernel drops it when the process dies, so a crash never leaves a stale lock);
a second run is refused with a message naming the first one's pid.

Level 0 in spirit: imports nothing from gxo but the error types, the version and the
state-dir resolver (gxo.outputs).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import stat
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Final

import msgspec

from gxo._util.digests import sha256_hex
from gxo.errors import UsageError
from gxo.outputs import state_dir as _resolve_state_dir
from gxo.secrets.redact import REDACTED

__all__ = [
    "BATCH_RECORDS",
    "BATCH_SECONDS",
    "EndEntry",
    "Entry",
    "InstanceEntry",
    "JournalContents",
    "JournalLocked",
    "JournalWriter",
    "Pending",
    "RunEntry",
    "TaskEntry",
    "default_state_dir",
    "has_redacted",
    "journal_path",
    "read_journal",
]

log = logging.getLogger("gxo")

#: A batch is written and fsynced when a record arrives this many seconds after the last
#: write (an fsync costs milliseconds, and the run's loop waits meanwhile)...
BATCH_SECONDS: Final = 1.0
#: ... or when this many records wait (a bound on memory and on what a crash can lose).
BATCH_RECORDS: Final = 20_000


class RunEntry(msgspec.Struct, tag="run", kw_only=True, omit_defaults=True):
    """A run started: its id, the playbook file, gxo's version, the wall-clock time."""

    run: str
    playbook: str
    gxo: str
    at: float


class InstanceEntry(msgspec.Struct, tag="instance", kw_only=True, omit_defaults=True):
    """One task instance completed.

    ``fingerprint`` is the digest of ``parts`` (``definition``, ``params``, ``state``,
    ``module``, ``inputs``: a short digest each, so ``gxo journal`` can say which one changed);
    ``outputs`` the declared output files as they were when it ended; ``value`` its redacted
    result; ``redacted`` whether a secret was masked in it (it cannot be restored then).
    """

    run: str
    task: str
    fingerprint: str
    parts: dict[str, str]
    duration: float
    at: float
    loop_index: int | None = None
    value: Any = None
    redacted: bool = False
    outputs: dict[str, str] = {}


class TaskEntry(msgspec.Struct, tag="task", kw_only=True, omit_defaults=True):
    """A task completed: its register's final value (a list for a loop), to restore it."""

    run: str
    task: str
    definition: str
    at: float
    value: Any = None
    redacted: bool = False
    instances: int = 1


class EndEntry(msgspec.Struct, tag="end", kw_only=True, omit_defaults=True):
    """A run ended with this exit code."""

    run: str
    exit_code: int
    at: float


Entry = RunEntry | InstanceEntry | TaskEntry | EndEntry


class Pending:
    """A record whose building is put off until its batch is written (see the module doc).

    :meth:`build` is called once, in the order the record was appended; ``None`` writes
    nothing.
    """

    __slots__ = ()

    def build(self) -> Entry | None:
        raise NotImplementedError


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(Entry)


#: The run directory: ``--state-dir``, else ``GXO_STATE_DIR``, else ``.gxo`` -- the same
#: resolver the attempt logs use, so the journal and ``runs/`` share one directory.
default_state_dir = _resolve_state_dir


def journal_path(playbook: str | os.PathLike[str], state_dir: str | os.PathLike[str]) -> Path:
    """``<state_dir>/journal/<stem>-<12 hex digits of the absolute path's SHA-256>.jsonl``.

    The hash keeps two playbooks called ``site.yaml`` in different directories apart; the
    stem keeps the name readable. The directory of a regular file is taken with its symbolic
    links resolved: ``gxo site.yaml`` (relative paths resolve through the physical current
    directory) and ``gxo $HOME/proj/site.yaml`` through a symlinked ``$HOME`` (common on
    clusters) name one file, and must share one journal and its lock, or a resume found
    nothing and two runs of the playbook went on at once. The file's own name is kept (a
    playbook that is a link is known by its name), and so is the path of what is not a
    regular file (``/dev/fd/63`` would resolve to a path of the reading process's own).
    """
    absolute = os.path.abspath(os.fspath(playbook))
    with contextlib.suppress(OSError):
        if stat.S_ISREG(os.stat(absolute).st_mode):
            directory, name = os.path.split(absolute)
            absolute = os.path.join(os.path.realpath(directory), name)
    digest = sha256_hex(absolute.encode())[:12]
    return Path(state_dir) / "journal" / f"{Path(absolute).stem}-{digest}.jsonl"


class JournalLocked(UsageError):
    """Another run holds the journal's lock (exit 2: nothing ran)."""


class JournalContents(msgspec.Struct):
    """What a journal file holds: its records, and how many lines could not be read."""

    entries: list[Entry] = msgspec.field(default_factory=list)
    #: The last line was cut short (a crash in the middle of a write): ignored.
    torn: bool = False
    #: Lines before the last one that were not records (ignored, with a warning).
    bad_lines: int = 0


def read_journal(path: str | os.PathLike[str]) -> JournalContents:
    """Every readable record of ``path``, oldest first; a missing file is an empty journal."""
    try:
        data = Path(path).read_bytes()
    except (FileNotFoundError, NotADirectoryError):
        return JournalContents()
    except OSError as exc:  # a directory, no permission: the user's to fix, not a gxo bug
        raise UsageError(
            f"cannot read the journal {os.fspath(path)}: {exc.strerror or exc}"
        ) from None
    contents = JournalContents()
    lines = data.split(b"\n")
    last = len(lines) - 1  # after a final newline this is b"": nothing torn
    for number, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            contents.entries.append(_decoder.decode(line))
        except (msgspec.DecodeError, msgspec.ValidationError):
            if number == last:
                contents.torn = True
            else:
                contents.bad_lines += 1
    if contents.bad_lines:
        log.warning(
            "journal %s: ignored %d unreadable line%s",
            path,
            contents.bad_lines,
            "" if contents.bad_lines == 1 else "s",
        )
    return contents


class JournalWriter:
    """Appends records to one journal file, holding its lock until :meth:`close`.

    ``clock`` is injectable so tests can drive the time-based batching.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        run_id: str = "",
        batch_records: int = BATCH_RECORDS,
        batch_seconds: float = BATCH_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = Path(path)
        self.lock_path = self.path.parent / (self.path.name + ".lock")
        self.run_id = run_id
        self._batch_records = batch_records
        self._batch_seconds = batch_seconds
        self._clock = clock
        self._buffer: list[Entry | Pending] = []
        self._last_write = clock()
        self._fd = -1
        self._lock_fd = -1
        #: Records written so far (for tests and the end-of-run log line).
        self.written = 0
        #: Why writing stopped (a full disk...), or empty while the journal is written.
        self.failed = ""

    def open(self) -> JournalWriter:
        """Create the directory, take the lock, and open the file for appending.

        Raises :class:`JournalLocked` when another process holds the lock, ``OSError`` when
        the directory cannot be written.
        """
        if self.path.is_dir():  # before its lock file is made beside it (`--journal .`)
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(self.path))
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock_fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(lock_fd, 200).decode(errors="replace").strip() or "unknown"
            os.close(lock_fd)
            raise JournalLocked(
                f"another gxo run is using the journal {self.path} ({holder}): a playbook's "
                "journal has one writer at a time. Wait for that run to end, or give this run "
                "its own journal with --journal FILE (or none with --no-journal)"
            ) from None
        except BaseException:
            os.close(lock_fd)
            raise
        self._lock_fd = lock_fd
        # Who holds it, for the message of a run refused: a note only. A full disk or a file
        # size limit must not fail the open with the lock still held (a library caller's
        # next run of the playbook in this process would be refused by its own lock).
        with contextlib.suppress(OSError):
            os.ftruncate(lock_fd, 0)
            os.pwrite(lock_fd, f"pid {os.getpid()}, run {self.run_id or '?'}\n".encode(), 0)
        try:
            self._fd = os.open(
                self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644
            )
            self._end_torn_line()
        except BaseException:
            self.close()
            raise
        return self

    def __enter__(self) -> JournalWriter:
        return self if self._fd >= 0 else self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _end_torn_line(self) -> None:
        """A crash mid-write left a line without its newline: end it, so it stays alone."""
        size = os.fstat(self._fd).st_size
        if size == 0:
            return
        with open(self.path, "rb") as file:
            file.seek(size - 1)
            if file.read(1) != b"\n":
                os.write(self._fd, b"\n")

    def append(self, entry: Entry | Pending) -> None:
        """Buffer one record; write the batch when it is full or old enough."""
        buffer = self._buffer
        buffer.append(entry)
        if (
            len(buffer) >= self._batch_records
            or self._clock() - self._last_write >= self._batch_seconds
        ):
            self.flush()

    def tick(self) -> float | None:
        """Write the batch if it is old enough; return in how many seconds to call again
        (None: nothing is buffered). Without it a batch would wait for the next record: a
        run that goes quiet (one long task) would keep the records before it in memory,
        and a ``kill -9`` would lose them."""
        if not self._buffer or self._fd < 0:
            return None
        left = self._last_write + self._batch_seconds - self._clock()
        if left > 0:
            return left
        self.flush()
        return None

    def flush(self) -> None:
        """Build what is pending, write and fsync the batch (a no-op when closed or empty)."""
        if not self._buffer or self._fd < 0:
            return
        buffered, self._buffer = self._buffer, []
        entries = [item.build() if isinstance(item, Pending) else item for item in buffered]
        entries = [entry for entry in entries if entry is not None]
        if not entries:
            return
        data = _encoder.encode_lines(entries)  # one call: one JSON document per line
        count = len(entries)
        start = os.lseek(self._fd, 0, os.SEEK_END)
        try:
            view = memoryview(data)
            while view:
                written = os.write(self._fd, view)
                view = view[written:]
            os.fsync(self._fd)
        except OSError as exc:
            self._give_up(exc, start)
            return
        self.written += count
        self._last_write = self._clock()

    def _give_up(self, exc: OSError, start: int) -> None:
        """A write failed (a full disk, a file size limit): cut the half-written batch off,
        say so once, and go on without a journal. The run and its exit code are not affected;
        what was written before stays usable for ``--resume``."""
        with contextlib.suppress(OSError):
            os.ftruncate(self._fd, start)
        os.close(self._fd)
        self._fd = -1
        self.failed = exc.strerror or str(exc)
        log.error(
            "could not write the journal %s: %s; the rest of this run is not journaled "
            "(the run goes on, its exit code is unchanged)",
            self.path,
            self.failed,
        )

    def close(self) -> None:
        """Flush, close the file and release the lock; safe to call twice."""
        if self._fd >= 0:
            try:
                self.flush()
            finally:
                if self._fd >= 0:  # a failed flush closed it already
                    os.close(self._fd)
                    self._fd = -1
        self._release_lock()

    def _release_lock(self) -> None:
        if self._lock_fd >= 0:
            with contextlib.suppress(OSError):
                os.ftruncate(self._lock_fd, 0)
            os.close(self._lock_fd)  # closing the descriptor releases the flock
            self._lock_fd = -1


def has_redacted(value: Any) -> bool:
    """Whether ``[REDACTED_SECRET]`` appears anywhere in ``value`` (keys included).

    Called for every instance the journal records: the exact types a decoded summary is
    made of are tested first (``isinstance`` against the ``Mapping`` ABC costs more than the
    rest of the walk), and a value with no containers costs one test.
    """
    kind = type(value)
    if kind is str:
        return REDACTED in value
    if value is None or kind is int or kind is float or kind is bool:
        return False
    stack = [value]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind is str:
            if REDACTED in item:
                return True
        elif kind is dict:
            stack.extend(item)
            stack.extend(item.values())
        elif kind is list or kind is tuple:
            stack.extend(item)
        elif item is None or kind is int or kind is float or kind is bool:
            continue
        elif isinstance(item, str):
            if REDACTED in item:
                return True
        elif isinstance(item, Mapping):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return False
