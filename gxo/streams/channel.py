"""One stream edge over an OS pipe: the producer's writer and the consumer's reader.

Wire format: :mod:`gxo.wire`'s frames (its writer's framing, its reader, its size limit),
each frame one of

- :class:`~gxo.wire.Batch` — a list of records, in order;
- :class:`~gxo.wire.End` — the explicit end of the stream, with the number of records sent;
- :class:`~gxo.wire.Failed` — the producer failed; its reason and (redacted) message.

A reader that reaches EOF without ``End`` raises :class:`StreamTruncated`: the producer died.
A reader that receives ``Failed`` raises :class:`UpstreamFailed`. So a consumer never takes a
cut stream for a finished one.

Writers batch records: a batch is encoded and written when it holds about 64 KiB (the number
of records per batch adapts to their encoded size), at the end, and when it has waited for
about :data:`FLUSH_INTERVAL` seconds (a per-process flusher thread writes stale batches, so a
slow producer's records arrive promptly). The ``block`` strategy uses blocking writes into a
pipe: a full pipe is backpressure, and a reader that goes away wakes a blocked writer
with EPIPE. The other strategies (``drop_new``, ``drop_oldest``, ``error``) write without
blocking from a user-space queue bounded by ``buffer_size`` records, into a one-page pipe.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any, Final, Protocol

import msgspec

from gxo.streams.errors import (
    BadRecord,
    ConsumersGone,
    RecordTooLarge,
    StreamError,
    StreamOverflow,
    StreamTruncated,
    UpstreamFailed,
)
from gxo.wire import (
    Batch,
    EdgeStats,
    End,
    Failed,
    FrameReader,
    StreamFrame,
    TruncatedFrame,
    frame_into,
    header,
)

__all__ = [
    "DEFAULT_RECORD_LIMIT",
    "FLUSH_INTERVAL",
    "StreamReader",
    "StreamWriter",
    "make_pipe",
]

#: Seconds a batch may wait in a writer before the flusher thread writes it.
FLUSH_INTERVAL: Final = 0.02
#: Target encoded size of one batch.
BATCH_BYTES: Final = 64 * 1024
#: Default ``--record-limit``: the largest encoded record a producer may send.
DEFAULT_RECORD_LIMIT: Final = 16 << 20
#: Upper bound of records per batch, whatever their size.
MAX_BATCH_RECORDS: Final = 4096
#: Records in a writer's first batch: one, whose encoded size sets the length of the next
#: batches (about :data:`BATCH_BYTES` each). Any more, and a stream of large records is first
#: held that many at a time: 64 records of 16 MiB made a 1 GiB frame, held whole (encoded and
#: decoded) by both the producer's and the consumer's worker.
_FIRST_BATCH_RECORDS: Final = 1
_READ_SIZE: Final = 256 * 1024
_F_SETPIPE_SZ: Final = 1031
#: Pipe capacity for ``block`` edges: the kernel's default. Measured: a 1 MiB pipe lets the
#: producer run far ahead and the consumer then reads cold data (about 40 % slower).
BLOCK_PIPE_BYTES: Final = 64 * 1024
#: Pipe capacity for the other strategies: one page, so ``buffer_size`` is the real bound.
POLICY_PIPE_BYTES: Final = 4096


class Redactor(Protocol):
    """What a writer needs from :class:`gxo.secrets.redact.Redactor`."""

    def __len__(self) -> int: ...

    def redact(self, obj: Any) -> Any: ...


def make_pipe(strategy: str = "block") -> tuple[int, int]:
    """A new pipe (read end, write end), close-on-exec, sized for the edge's strategy."""
    read_fd, write_fd = os.pipe2(os.O_CLOEXEC)
    size = BLOCK_PIPE_BYTES if strategy == "block" else POLICY_PIPE_BYTES
    with contextlib.suppress(OSError):  # above /proc/sys/fs/pipe-max-size: keep the default
        fcntl.fcntl(write_fd, _F_SETPIPE_SZ, size)
    return read_fd, write_fd


class _Outputs:
    """Shared by a producer's writers: how many are still connected."""

    __slots__ = ("alive",)

    def __init__(self) -> None:
        self.alive = 0


class StreamWriter:
    """The producer's end of one edge (``block`` strategy; see :class:`PolicyWriter`)."""

    #: The largest encoded record (``--record-limit``); a larger one fails the producer with
    #: ``record_too_large``. Checked per batch; records are encoded one by one only then.
    record_limit: int = DEFAULT_RECORD_LIMIT
    #: A stream error met by the flusher thread, raised to the producer at its next call.
    error: StreamError | None = None

    def __init__(
        self,
        fd: int,
        producer: str,
        consumer: str,
        *,
        outputs: _Outputs | None = None,
        strategy: str = "block",
        redactor: Redactor | None = None,
    ) -> None:
        self.fd = fd
        self._redactor = redactor
        self.stats = EdgeStats(producer=producer, consumer=consumer, side="out", strategy=strategy)
        self.gone = False
        self.closed = False
        self._outputs = outputs if outputs is not None else _Outputs()
        self._outputs.alive += 1
        self._buf: list[Any] = []
        self._limit = _FIRST_BATCH_RECORDS
        self._lock = threading.Lock()
        self._encoder = msgspec.msgpack.Encoder()
        self._out = bytearray()
        self._flushes = 0
        self._seen: tuple[int, bool] = (0, False)
        #: A record that could not be encoded or is too large (found by the flusher thread,
        #: raised to the producer at its next write or at the end).
        self.error: BadRecord | RecordTooLarge | None = None

    # -- the producer's side -----------------------------------------------------------------

    def write(self, record: Any) -> None:
        """Queue one record; writes a batch when it is full."""
        buf = self._buf
        buf.append(record)
        if len(buf) >= self._limit:
            self.flush()

    def write_many(self, records: Iterable[Any]) -> None:
        buf = self._buf
        buf.extend(records)
        if len(buf) >= self._limit:
            self.flush()

    def flush(self) -> None:
        """Write every queued record now."""
        with self._lock:
            self._flush_locked()

    def write_frame(self, payload: bytes | memoryview, count: int) -> None:
        """Write an already encoded ``Batch`` payload of ``count`` records, as it is."""
        with self._lock:
            self._flush_locked()
            if self.gone:
                return
            out = self._out
            del out[:]
            out += header(len(payload))
            out += payload
            self._flushes += 1
            try:
                sent = self._send(out)
            except ConsumersGone:
                self.stats.undelivered += count
                raise
            if sent:
                self.stats.records += count
            else:
                self.stats.undelivered += count

    def end(self, *, stand_in: bool = False) -> None:
        """Write what is queued and the end of stream (``stand_in``: see :class:`End`)."""
        with self._lock:
            self._flush_locked()
            if not self.gone:
                self._frame(End(self.stats.records, stand_in))

    def fail(self, reason: str, message: str) -> None:
        """Tell the consumer this producer failed (queued records are discarded)."""
        with self._lock:
            self._buf.clear()
            if not self.gone:
                with contextlib.suppress(ConsumersGone):
                    self._frame(Failed(reason, message))

    def close(self) -> None:
        with self._lock:  # never while the flusher thread writes to this fd
            if not self.closed:
                self.closed = True
                os.close(self.fd)

    # -- the flusher thread ------------------------------------------------------------------

    def flush_if_stale(self) -> None:
        """Flush when records have waited since the last check and no flush happened since."""
        seen = (self._flushes, bool(self._buf))
        if seen[1] and self._seen == seen:
            if self._lock.acquire(blocking=False):
                try:
                    if not self.closed:
                        # A stream error is kept in ``self.error`` for the producer.
                        with contextlib.suppress(StreamError, OSError):
                            self._flush_locked()
                finally:
                    self._lock.release()
            seen = (self._flushes, bool(self._buf))
        self._seen = seen

    # -- internals ---------------------------------------------------------------------------

    def _take(self) -> list[Any]:
        buf = self._buf
        count = len(buf)
        batch = buf[:count]
        del buf[:count]  # the producer may append meanwhile (flusher thread): keep those
        return batch

    def _flush_locked(self) -> None:
        if self.error is not None:
            self._buf.clear()
            raise self.error
        if self.gone:
            self.stats.undelivered += len(self._buf)
            self._buf.clear()
            if not self._outputs.alive:
                raise ConsumersGone(f"every consumer of '{self.stats.producer}' stopped reading")
            return
        if not self._buf:
            return
        batch = self._take()
        try:
            size = self._frame(Batch(batch))
        except (BadRecord, RecordTooLarge) as exc:
            self._send_good_part(batch, exc)
            raise
        except ConsumersGone:
            self.stats.undelivered += len(batch)
            raise
        if not size:
            self.stats.undelivered += len(batch)
        else:
            self.stats.records += len(batch)
            self._calibrate(size, len(batch))

    def _calibrate(self, size: int, count: int) -> None:
        """Size the next batches from the last one: ``count`` records in ``size`` bytes."""
        average = max(1, size // count)
        self._limit = max(1, min(MAX_BATCH_RECORDS, BATCH_BYTES // average))

    def _encode(self, frame: StreamFrame) -> bytearray:
        # Records are data between the tasks of one run: they carry real values, secrets
        # included. What a consumer does with them is redacted in the consumer's worker,
        # which knows every secret of the run (DESIGN §15, "Records and secrets").
        out = self._out
        del out[:]
        try:
            frame_into(self._encoder, frame, out)
        except (TypeError, ValueError, OverflowError, RecursionError, msgspec.EncodeError) as exc:
            if type(frame) is not Batch:
                raise
            raise _bad_record(self.stats, frame.records, exc) from None
        self._check_size(frame, out)
        return out

    def _send_good_part(self, batch: list[Any], exc: BadRecord | RecordTooLarge) -> None:
        """Send the records of ``batch`` before the bad one, then remember the error."""
        self.error = exc
        good = batch[: exc.position]
        if good and not self.gone:
            with contextlib.suppress(ConsumersGone):
                if self._frame(Batch(good)):
                    self.stats.records += len(good)

    def _check_size(self, frame: StreamFrame, out: bytearray) -> None:
        """Raise :class:`RecordTooLarge` when a batch holds a record over the limit."""
        if len(out) - 4 > self.record_limit and type(frame) is Batch:
            self._check_records(frame.records)

    def _check_records(self, records: list[Any]) -> None:
        """Raise :class:`RecordTooLarge` for the first record over the limit, if any.

        It names the record by its index among every record emitted on the edge (0-based),
        as :class:`BadRecord` does.
        """
        encode = self._encoder.encode
        for index, record in enumerate(records):
            size = len(encode(record))
            if size > self.record_limit:
                error = RecordTooLarge(
                    f"record {self.stats.records + index} written to the stream to "
                    f"'{self.stats.consumer}' is {size} bytes encoded, over the limit of "
                    f"{self.record_limit} bytes (--record-limit)"
                )
                error.position = index
                self.error = error
                raise error

    def _frame(self, frame: StreamFrame) -> int:
        """Encode and write one frame; its size, or 0 when the consumer is gone."""
        out = self._encode(frame)
        self._flushes += 1
        if not self._send(out):
            return 0
        return len(out)

    def _send(self, data: bytearray) -> bool:
        total = len(data)
        started = time.perf_counter()
        view = memoryview(data)
        try:
            written = os.write(self.fd, view)
            while written < total:
                written += os.write(self.fd, view[written:])
        except (BrokenPipeError, ConnectionResetError):
            self._lost()
            return False
        finally:
            view.release()
            self.stats.blocked_seconds += time.perf_counter() - started
        self.stats.bytes += total
        return True

    def _lost(self) -> None:
        """The consumer closed its end: this output is dropped."""
        if not self.gone:
            self.gone = True
            self._outputs.alive -= 1
        self.stats.undelivered += len(self._buf)
        self._buf.clear()
        if not self._outputs.alive:
            raise ConsumersGone(f"every consumer of '{self.stats.producer}' stopped reading")


class PolicyWriter(StreamWriter):
    """An edge whose consumer asked for ``drop_new``, ``drop_oldest`` or ``error``.

    Records wait in a queue of at most ``buffer_size`` records and are written without
    blocking; when the queue is full the strategy decides: drop the new record, drop the
    oldest queued one (both counted in ``drops``), or raise :class:`StreamOverflow`.
    The end of stream is written with blocking writes (it must arrive).
    """

    def __init__(
        self,
        fd: int,
        producer: str,
        consumer: str,
        *,
        outputs: _Outputs | None = None,
        strategy: str,
        buffer_size: int,
        redactor: Redactor | None = None,
    ) -> None:
        super().__init__(
            fd, producer, consumer, outputs=outputs, strategy=strategy, redactor=redactor
        )
        os.set_blocking(fd, False)
        self._capacity = max(1, buffer_size)
        self._queue: deque[Any] = deque()
        self._pending = b""
        #: Records in the batch ``_pending`` holds (0 once written, or for end/failure data).
        self._pending_records = 0

    def _encode_batch(self, batch: list[Any]) -> bytes:
        """One encoded Batch frame; on a bad record, the good ones before it are kept pending
        (sent with the end or the failure) and the error is raised and remembered."""
        try:
            data = bytes(self._encode(Batch(batch)))
        except (BadRecord, RecordTooLarge) as exc:
            self.error = exc
            self._queue.clear()
            good = batch[: exc.position]
            if good:
                self._pending += bytes(self._encode(Batch(good)))
                self.stats.records += len(good)
            raise
        self.stats.records += len(batch)
        self._calibrate(len(data), len(batch))
        return data

    def write(self, record: Any) -> None:
        with self._lock:
            if self.error is not None:
                raise self.error
            if self.gone:
                self.stats.undelivered += 1
                self._flush_locked()
                return
            self._offer(record)
            self._pump(force=False)

    def write_many(self, records: Iterable[Any]) -> None:
        for record in records:
            self.write(record)

    def _offer(self, record: Any) -> None:
        queue = self._queue
        if len(queue) >= self._capacity:
            strategy = self.stats.strategy
            if strategy == "drop_new":
                self.stats.drops += 1
                return
            if strategy == "drop_oldest":
                queue.popleft()
                self.stats.drops += 1
            else:
                raise StreamOverflow(
                    f"the stream from '{self.stats.producer}' to '{self.stats.consumer}' is full "
                    f"({self._capacity} record(s) buffered) and its overflow_strategy is 'error'"
                )
        queue.append(record)

    def _pump(self, *, force: bool) -> bool:
        """Write without blocking while the pipe has room; True when everything is out."""
        threshold = 1 if force else min(self._limit, self._capacity)
        while True:
            if not self._pending:
                if len(self._queue) < threshold or not self._queue:
                    return not self._queue
                count = min(len(self._queue), self._limit)
                batch = [self._queue.popleft() for _ in range(count)]
                self._pending = self._encode_batch(batch)
                self._pending_records = count
                self._flushes += 1
            try:
                started = time.perf_counter()
                written = os.write(self.fd, self._pending)
                self.stats.blocked_seconds += time.perf_counter() - started
            except BlockingIOError:
                return False
            except (BrokenPipeError, ConnectionResetError):
                self._pending = b""
                # The batch being written never arrived whole: not sent, undelivered.
                self.stats.records -= self._pending_records
                self.stats.undelivered += self._pending_records + len(self._queue)
                self._pending_records = 0
                self._queue.clear()
                self._lost()
                return True
            self.stats.bytes += written
            self._pending = self._pending[written:]
            if not self._pending:
                self._pending_records = 0

    def flush_if_stale(self) -> None:
        if self._queue and self._lock.acquire(blocking=False):
            try:
                if not self.closed:
                    with contextlib.suppress(StreamError, OSError):
                        self._pump(force=True)
            finally:
                self._lock.release()

    def flush(self) -> None:
        with self._lock:
            if self.error is not None:
                raise self.error
            self._pump(force=True)

    def end(self, *, stand_in: bool = False) -> None:
        with self._lock:
            if self.error is not None:
                raise self.error
            if self.gone:
                self._flush_locked()  # raises ConsumersGone when no output is left
                return
            os.set_blocking(self.fd, True)
            while self._queue:
                count = min(len(self._queue), self._limit)
                batch = [self._queue.popleft() for _ in range(count)]
                self._pending += self._encode_batch(batch)
            self._pending += bytes(self._encode(End(self.stats.records, stand_in)))
            data, self._pending = bytearray(self._pending), b""
            self._send(data)

    def fail(self, reason: str, message: str) -> None:
        with self._lock:
            self._queue.clear()
            if self.gone:
                return
            os.set_blocking(self.fd, True)
            data = bytearray(self._pending) + self._encode(Failed(reason, message))
            self._pending = b""
            with contextlib.suppress(ConsumersGone):
                self._send(data)


def _bad_record(stats: EdgeStats, records: list[Any], exc: BaseException) -> BadRecord:
    """The error naming the first record of ``records`` that cannot be encoded.

    Its index counts every record emitted on the edge (0-based), as the module emitted them.
    """
    encode = msgspec.msgpack.Encoder().encode
    position = 0
    for position, record in enumerate(records):  # noqa: B007 - the position is the result
        try:
            encode(record)
        except (TypeError, ValueError, OverflowError, RecursionError, msgspec.EncodeError) as one:
            exc = one
            break
    cause = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
    error = BadRecord(
        f"record {stats.records + position} emitted by '{stats.producer}' (a "
        f"{type(records[position]).__name__}) cannot be encoded: {cause}; records must be plain "
        f"data (dicts, lists, strings, numbers, booleans, None)"
    )
    error.position = position
    return error


def open_writer(
    fd: int,
    producer: str,
    consumer: str,
    *,
    strategy: str = "block",
    buffer_size: int = 100,
    outputs: _Outputs | None = None,
    redactor: Redactor | None = None,
) -> StreamWriter:
    """The writer for an edge with the consumer's ``channel_policy``."""
    if strategy == "block":
        return StreamWriter(fd, producer, consumer, outputs=outputs, redactor=redactor)
    return PolicyWriter(
        fd,
        producer,
        consumer,
        outputs=outputs,
        strategy=strategy,
        buffer_size=buffer_size,
        redactor=redactor,
    )


class StreamReader:
    """The consumer's end of one edge: decodes batches, checks the end of stream."""

    def __init__(self, fd: int, producer: str, consumer: str) -> None:
        self.fd = fd
        self.stats = EdgeStats(producer=producer, consumer=consumer, side="in")
        self.done = False
        self.closed = False
        self.error: Exception | None = None
        #: The end of stream said the stream is a dry run's stand-in (see ``gxo.wire.End``).
        self.stand_in = False
        #: Batches read ahead (by a peek) and not yet handed out.
        self.stash: deque[list[Any]] = deque()
        self._frames = FrameReader(StreamFrame)

    @property
    def producer(self) -> str:
        return self.stats.producer

    def read_once(self) -> list[list[Any]]:
        """One blocking read; the non-empty batches it completed (raises a StreamError)."""
        return self._read(raw=False)

    def read_raw_once(self) -> list[tuple[bytes, int]]:
        """One blocking read; the ``Batch`` payloads it completed, still encoded, with their
        record counts (for forwarding without decoding)."""
        return self._read(raw=True)

    def _read(self, *, raw: bool) -> list[Any]:
        if self.error is not None:
            self.done = True
            raise self.error
        if self.done:
            return []
        data = os.read(self.fd, _READ_SIZE)
        if not data:
            self._fail(
                StreamTruncated(
                    f"the stream from '{self.producer}' ended without its end-of-stream mark "
                    f"after {self.stats.records} record(s): the producer died or was killed"
                )
            )
        self.stats.bytes += len(data)
        frames = self._frames
        batches: list[Any] = []
        try:
            if raw:
                decoded = []
                for payload in frames.feed_payloads(data):
                    count = _batch_count(payload, 0, len(payload))
                    if count is None:
                        decoded.append(frames.decode(payload))
                    elif count:
                        self.stats.records += count
                        batches.append((payload, count))
            else:
                decoded = frames.feed(data)
        except TruncatedFrame as exc:
            self._fail(StreamError(f"the stream from '{self.producer}' is corrupt: {exc}"))
        for frame in decoded:
            if type(frame) is Batch:
                if frame.records:
                    self.stats.records += len(frame.records)
                    batches.append(frame.records)
            elif type(frame) is End:
                self.stand_in = frame.stand_in
                frames.clear()
                self._end(frame.count)
                break
            else:
                assert isinstance(frame, Failed)
                error = UpstreamFailed(self.producer, frame.reason, frame.message)
                if not batches:
                    self.done = True
                    self._fail(error)
                # The records that arrived before the failure, in this same read, are handed
                # out first (counted as received, they must reach the module); the next read
                # raises the failure. ``error`` is set now: a module that stops reading here
                # still fails (``Streams.error``), and the drain raises it.
                self.error = error
                frames.clear()
                break
        return batches

    def _end(self, count: int) -> None:
        self.done = True
        if count != self.stats.records:
            self._fail(
                StreamTruncated(
                    f"the stream from '{self.producer}' announced {count} record(s), "
                    f"{self.stats.records} arrived"
                )
            )

    def _fail(self, error: Exception) -> None:
        self.error = error
        raise error

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            os.close(self.fd)


def _batch_count(buffer: bytes | bytearray, start: int, length: int) -> int | None:
    """The record count of an encoded ``Batch`` frame, or None if it is another frame.

    A Batch is the msgpack array ``["b", [records...]]``: read the inner array's header.
    """
    if length < 4 or buffer[start : start + 3] != b"\x92\xa1b":
        return None
    head = buffer[start + 3]
    if 0x90 <= head <= 0x9F:
        return head & 0x0F
    if head == 0xDC and length >= 6:
        return int.from_bytes(buffer[start + 4 : start + 6], "big")
    if head == 0xDD and length >= 8:
        return int.from_bytes(buffer[start + 4 : start + 8], "big")
    return None


class _Flusher:
    """One daemon thread per process that writes batches left waiting by paused producers."""

    def __init__(self) -> None:
        self._writers: set[StreamWriter] = set()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid = 0

    def add(self, writer: StreamWriter) -> None:
        with self._lock:
            self._writers.add(writer)
            if self._thread is None or self._pid != os.getpid():
                self._pid = os.getpid()
                self._thread = threading.Thread(
                    target=self._run, name="gxo-stream-flusher", daemon=True
                )
                self._thread.start()
        self._wake.set()

    def discard(self, writer: StreamWriter) -> None:
        with self._lock:
            self._writers.discard(writer)

    def _run(self) -> None:
        sleep: Callable[[float], None] = time.sleep
        while True:
            with self._lock:
                writers = list(self._writers)
                if not writers:
                    self._wake.clear()
            if not writers:
                self._wake.wait()
                continue
            sleep(FLUSH_INTERVAL)
            for writer in writers:
                if not writer.closed and not writer.gone:
                    with contextlib.suppress(Exception):
                        writer.flush_if_stale()


FLUSHER: Final = _Flusher()
