"""Redaction of what a worker prints or logs, on its way to the parent.

A worker's output reaches the parent through one socket (the *console*), read line by line.
Three kinds of writers feed it, and each goes through a :class:`RedactingWriter` first:

- Python-level ``sys.stdout`` / ``sys.stderr`` (``print``, ``traceback.print_exc``, a
  ``logging.StreamHandler``, ``sys.stdout.buffer.write``): replaced by redacting writers that
  write to the console synchronously, so the last lines a crashing module printed still
  reach the parent;
- file descriptors 1 and 2 (``os.write(1, ...)``, C extensions, and every child process that
  inherits them, such as ``subprocess.run(cmd)`` or ``os.system`` in a python function):
  a pipe drained by a thread of the worker, :class:`OutputPump`, which redacts the same way;
- the root logger: :class:`RedactionFilter` masks the formatted message, its arguments and
  exception text before any handler formats the record.

A writer keeps an unterminated line until its newline or until it grows past a bound;
then, as on ``flush()``, it emits all of it except a tail long enough to hold the beginning
of any registered form (see :meth:`Redactor.split_pending`), so a secret split across two
writes, even with a flush between them, is still masked. :meth:`RedactingWriter.drain`
(when an instance ends) emits everything. If redaction fails, a fixed marker line is
written instead of the text.
"""

from __future__ import annotations

import codecs
import contextlib
import fcntl
import io
import logging
import os
import select
import sys
import termios
import threading
import time
from collections.abc import Callable
from typing import Any, Final

from gxo.otel import log_ids
from gxo.secrets.redact import REDACTED, Redactor

__all__ = [
    "DECODE_ERRORS",
    "WITHHELD",
    "OutputPump",
    "RedactingWriter",
    "RedactionFilter",
    "WorkerOutput",
    "encode_output",
    "install_logging",
    "redirect_output",
]

#: How output bytes are decoded to be masked: bytes that are not UTF-8 become surrogate
#: escapes, so :func:`encode_output` gives them back unchanged (binary output stays exact).
DECODE_ERRORS: Final = "surrogateescape"
#: Written instead of output that could not be redacted.
WITHHELD = "[gxo: output withheld: redaction failed]\n"
#: An unterminated line longer than this is emitted (all but a tail) without its newline.
LINE_LIMIT = 1 << 16

Emit = Callable[[bytes], None]


class RedactingWriter(io.TextIOBase):
    """A line-buffered text stream that masks registered secrets before writing them.

    Args:
        emit: where redacted bytes go (whole lines, or parts of a very long line).
        redactor: the worker's registry of secret values.
        fileno: what :meth:`fileno` answers (the descriptor the stream stands for), or -1.
    """

    def __init__(self, emit: Emit, redactor: Redactor, *, fileno: int = -1) -> None:
        super().__init__()
        self._emit = emit
        self._redactor = redactor
        self._fileno = fileno
        self._pending = ""
        self._lock = threading.RLock()
        self._binary: _BinaryView | None = None

    # -- the TextIO surface ---------------------------------------------------------------

    encoding = "utf-8"
    errors = "replace"

    @property
    def line_buffering(self) -> bool:
        return True

    @property
    def buffer(self) -> _BinaryView:
        """A binary view: bytes written to it are decoded (UTF-8) and redacted the same way."""
        if self._binary is None:
            self._binary = _BinaryView(self)
        return self._binary

    def writable(self) -> bool:
        return True

    def readable(self) -> bool:
        return False

    def seekable(self) -> bool:
        return False

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        if self._fileno < 0:
            raise io.UnsupportedOperation("fileno")
        return self._fileno

    def close(self) -> None:
        """Drain; the stream stays usable (``sys.stdout`` is never really closed)."""
        self.drain()

    @property
    def closed(self) -> bool:
        return False

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        if not text:
            return 0
        with self._lock:
            pending = self._pending + text
            newline = pending.rfind("\n")
            if newline >= 0:
                self._send(self._masked(pending[: newline + 1]))
                pending = pending[newline + 1 :]
            self._pending = pending
            if len(pending) > LINE_LIMIT:
                self._emit_head()
        return len(text)

    def flush(self) -> None:
        """Emit what may be emitted: all but a tail that could begin a secret."""
        with self._lock:
            if self._pending:
                self._emit_head()

    def _emit_head(self) -> None:
        try:
            head, self._pending = self._redactor.split_pending(self._pending)
        except Exception:  # noqa: BLE001 - fail closed: the text never leaves
            head, self._pending = WITHHELD, ""
        self._send(head)

    def drain(self) -> None:
        """Emit everything held, the unterminated line included."""
        if not self._pending:  # read without the lock: a write after this is the next drain's
            return
        with self._lock:
            if self._pending:
                pending, self._pending = self._pending, ""
                self._send(self._masked(pending))

    # -- internals ------------------------------------------------------------------------

    def _masked(self, text: str) -> str:
        try:
            return self._redactor.redact_lines(text)
        except Exception:  # noqa: BLE001 - fail closed: the text never leaves
            return WITHHELD

    def _send(self, text: str) -> None:
        if text:
            with contextlib.suppress(OSError):  # the parent is gone: nothing to tell
                self._emit(encode_output(text))


def encode_output(text: str) -> bytes:
    """``text`` as the bytes it was decoded from: bytes that are not UTF-8 were decoded as
    surrogate escapes (:data:`DECODE_ERRORS`) and are written back as they came, so binary
    output is kept exact; any other lone surrogate (a ``str`` a module made) becomes ``?``."""
    try:
        return text.encode("utf-8", DECODE_ERRORS)
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace")


class _BinaryView(io.RawIOBase):
    """``sys.stdout.buffer``: bytes decoded incrementally, then written as text."""

    def __init__(self, text: RedactingWriter) -> None:
        super().__init__()
        self._text = text
        self._decoder = codecs.getincrementaldecoder("utf-8")(DECODE_ERRORS)

    def writable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self._text.fileno()

    def write(self, data: Any) -> int:
        raw = bytes(data)
        self._text.write(self._decoder.decode(raw))
        return len(raw)

    def flush(self) -> None:
        self._text.flush()


class SocketEmitter:
    """Writes everything to ``fd`` (a blocking socket), one piece at a time.

    Calling it also hands every (already redacted) piece to ``tee``, in the same order;
    :meth:`untee` writes without the tee (a command's live lines: they have their own log
    files, and teeing them would put them in the attempt's ``.output`` log a second time).
    """

    def __init__(self, fd: int, tee: Emit | None = None) -> None:
        self._fd = fd
        self._tee = tee
        self._lock = threading.Lock()
        #: Written (as it is) before the next piece: see :meth:`mark`.
        self._mark = b""
        self._marked = False

    def mark(self, data: bytes) -> None:
        """Write ``data`` before the next piece, in the same write, if one comes before
        :meth:`unmark`: not redacted, not teed (the mark of the instance starting, which
        costs nothing when the instance prints nothing)."""
        with self._lock:
            self._mark = data
            self._marked = False

    def unmark(self) -> bool:
        """Drop the mark if it was not written; whether it was (something was written since
        :meth:`mark`)."""
        with self._lock:
            marked, self._marked, self._mark = self._marked, False, b""
            return marked

    def __call__(self, data: bytes) -> None:
        self._send(data, self._tee)

    def untee(self, data: bytes) -> None:
        self._send(data, None)

    def _send(self, data: bytes, tee: Emit | None) -> None:
        with self._lock:
            if tee is not None:
                tee(data)
            if self._mark:
                data = self._mark + data
                self._mark = b""
                self._marked = True
            view = memoryview(data)
            while view:
                written = os.write(self._fd, view)
                view = view[written:]


class OutputPump:
    """Drains the pipe behind file descriptors 1 and 2, redacting it line by line.

    Started once per worker. :meth:`sync` waits (briefly) until everything written to the
    pipe so far was processed and flushes a pending partial line, so output is attributed to
    the instance that printed it.
    """

    def __init__(self, read_fd: int, writer: RedactingWriter) -> None:
        self._fd = read_fd
        self._writer = writer
        self._decoder = codecs.getincrementaldecoder("utf-8")(DECODE_ERRORS)
        self._lock = threading.Lock()
        os.set_blocking(read_fd, False)
        self._thread = threading.Thread(target=self._run, name="gxo-output", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        poller = select.poll()
        poller.register(self._fd, select.POLLIN)
        while True:
            try:
                poller.poll()
            except InterruptedError:
                continue
            except (OSError, ValueError):
                return
            with self._lock:
                if not self._read_available():
                    return

    def _read_available(self) -> bool:
        """Read and process what the pipe holds; False at end of file."""
        while True:
            try:
                data = os.read(self._fd, 1 << 16)
            except BlockingIOError:
                return True
            except InterruptedError:
                continue
            except OSError:
                return False
            if not data:
                self._writer.write(self._decoder.decode(b"", final=True))
                self._writer.drain()
                return False
            self._writer.write(self._decoder.decode(data))

    def sync(self, timeout: float = 0.5) -> None:
        """Process everything already in the pipe, then flush the partial line."""
        deadline = 0.0  # set once there is something to read (most instances print nothing)
        while True:
            with self._lock:
                if _unread(self._fd) == 0:
                    self._writer.drain()
                    return
                now = time.monotonic()
                if not deadline:
                    deadline = now + timeout
                elif now >= deadline:
                    self._writer.drain()
                    return
                self._read_available()


def _unread(fd: int) -> int:
    try:
        buf = fcntl.ioctl(fd, _FIONREAD, b"\0\0\0\0")
    except OSError:
        return 0
    return int.from_bytes(buf, sys.byteorder, signed=True)


_FIONREAD = termios.FIONREAD


class RedactionFilter(logging.Filter):
    """Masks a record's message (formatted with its arguments), exception and stack text.

    Installed on the worker's handlers, so it sees records from every logger that propagate
    to the root. A failure replaces the message with a fixed text and drops the rest.
    """

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self._redactor = redactor
        self._formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        redact = self._redactor.redact_lines
        try:
            record.msg = redact(record.getMessage())
            record.args = None
            if record.exc_info and not record.exc_text:
                record.exc_text = self._formatter.formatException(record.exc_info)
            if record.exc_text:
                record.exc_text = redact(record.exc_text)
            if record.stack_info:
                record.stack_info = redact(record.stack_info)
        except Exception:  # noqa: BLE001 - fail closed
            record.msg = f"[gxo: log record withheld: redaction failed; {REDACTED}]"
            record.args = None
            record.exc_info = None
            record.exc_text = None
            record.stack_info = None
        return True


class WorkerOutput:
    """The redacting writers and the pump of one worker process.

    ``relay`` writes to the console like the others but skips the attempt log's tee: it
    carries a command's lines relayed live (``-v``), which are logged in their own files.
    """

    def __init__(
        self,
        writers: tuple[RedactingWriter, ...],
        pump: OutputPump,
        relay: RedactingWriter,
        emitter: SocketEmitter | None = None,
    ) -> None:
        self.writers = (*writers, relay)
        self.pump = pump
        self.relay = relay
        self._emitter = emitter

    def mark(self, data: bytes) -> None:
        """Write ``data`` to the console as it is (not redacted, not in the attempt log)
        before whatever is printed next, if anything is: the mark that says which instance
        the output after it belongs to. An instance that prints nothing sends nothing."""
        if self._emitter is not None:
            self._emitter.mark(data)

    def unmark(self) -> bool:
        """The instance ends (its output synced): whether it printed anything, i.e. its
        mark went out; a mark not written is dropped."""
        return self._emitter.unmark() if self._emitter is not None else True

    def sync(self) -> None:
        """Everything printed so far (any channel) has reached the console: the instance's
        output goes out before its result."""
        for writer in self.writers:
            writer.drain()
        self.pump.sync()


def redirect_output(
    console_fd: int, redactor: Redactor, log_level: int, *, tee: Emit | None = None
) -> WorkerOutput:
    """Route every output channel of this process through redaction to ``console_fd``.

    ``sys.stdout``/``sys.stderr`` become redacting writers on the console; file descriptors
    1 and 2 become a pipe drained by :class:`OutputPump`; the root logger gets one handler
    on ``sys.stderr`` behind :class:`RedactionFilter`. The console descriptor stays private
    (close-on-exec, not 1 or 2): only the redacting writers write to it. ``tee`` receives a
    copy of everything written to the console (the worker's attempt log).
    """
    emit = SocketEmitter(console_fd, tee)
    read_fd, write_fd = os.pipe()  # close-on-exec; the dup2 copies below are inherited
    os.dup2(write_fd, 1)
    os.dup2(write_fd, 2)
    os.close(write_fd)
    pump = OutputPump(read_fd, RedactingWriter(emit, redactor))
    pump.start()
    stdout = RedactingWriter(emit, redactor, fileno=1)
    stderr = RedactingWriter(emit, redactor, fileno=2)
    sys.stdout = stdout
    sys.stderr = stderr
    install_logging(stderr, redactor, log_level)
    return WorkerOutput((stdout, stderr), pump, RedactingWriter(emit.untee, redactor), emit)


class _TracedFormatter(logging.Formatter):
    """The worker's log line; with tracing on, ``trace_id=... span_id=...`` of the attempt's
    span follow it (the parent's record of the relayed line carries the instance's)."""

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        ids = log_ids()
        if ids is not None:
            record.trace_id, record.span_id = ids
            text += f" trace_id={ids[0]} span_id={ids[1]}"
        return text


def install_logging(stream: io.TextIOBase, redactor: Redactor, level: int) -> logging.Handler:
    """Give the root logger one handler writing to ``stream``, behind a redaction filter."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(_TracedFormatter("%(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactionFilter(redactor))
    root = logging.getLogger()
    for logger in (root, logging.getLogger("gxo")):  # handlers inherited through fork
        for old in list(logger.handlers):
            logger.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    return handler
