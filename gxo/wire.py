"""Everything that crosses a process boundary: the messages, their framing, one size limit.

Every message is a msgspec Struct in a tagged union, encoded as msgpack, and sent as one frame:
a 4-byte big-endian length, then the payload. Several frames may share one ``send`` (the worker
sends a result and the acknowledgement of its next task together), and one ``recv`` may hold
several frames or part of one, so the reader is a small incremental parser. One
:class:`FrameWriter` and one :class:`FrameReader` serve both kinds of traffic, and the reader
refuses a frame over :data:`MAX_FRAME` on both:

- parent ↔ worker (the control socket of each worker):
  parent → worker :class:`Run` (one task instance), :class:`Stop`, :class:`ResolveSecrets`
  (resolve these secret names into your redactor), :class:`SecretsKnown` (every worker did);
  worker → parent :class:`Done` (the instance's redacted result), :class:`SecretsFound` (an
  instance resolved secret names no worker knew: tell the others), :class:`SecretsResolved`;
  a worker is set up with a :class:`WorkerConfig` when it starts;
- worker ↔ worker (one OS pipe per stream edge, see :mod:`gxo.streams.channel`):
  :class:`Batch` (records, in order), :class:`End` (the end of stream, with the count),
  :class:`Failed` (the producer failed); each side counts the edge in :class:`EdgeStats`.

The acknowledgement that pins a death on one instance is not a message: the worker writes the
instance id into a shared-memory slot before starting it and clears it only after its
``Done`` was sent (see ``gxo.pool.worker``). That costs no syscall and no wake-up of the
parent, which reads the slot only when the worker dies.

Errors cross as data (type name, message, traceback text), never as pickled exceptions.

Level 0: imports nothing from gxo but :mod:`gxo.errors`.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from typing import Any, Literal

import msgspec

from gxo.errors import GxoError
from gxo.outputs import DEFAULT_OUTPUT_CAPTURE, DEFAULT_RESULT_LIMIT, CapturedOutput

__all__ = [
    "MAX_FRAME",
    "AttemptUsage",
    "Batch",
    "Done",
    "EdgeStats",
    "End",
    "Failed",
    "FrameReader",
    "FrameWriter",
    "InvalidFrame",
    "ResolveSecrets",
    "SecretsFound",
    "SecretsKnown",
    "SecretsResolved",
    "Run",
    "RunLimits",
    "Stop",
    "StreamFrame",
    "StreamOutput",
    "ToParent",
    "ToWorker",
    "TruncatedFrame",
    "WorkerConfig",
    "console_mark",
    "frame_into",
    "header",
]

#: Frames larger than this are a protocol error, not an allocation.
MAX_FRAME = 1 << 30
_LENGTH = struct.Struct(">I")

#: What a worker writes on its console socket, with the instance id and a NUL, before the
#: output of each instance it starts (with its first output: an instance that prints nothing
#: sends no mark, and its result says so, ``Done.printed``). The console is a byte stream
#: apart from the control socket, so the parent cannot tell from its own state which instance
#: printed a line (the worker starts its next queued instance as soon as it sent a result);
#: this mark, in the stream itself, says it.
CONSOLE_MARK = b"\0gxo-instance:"


def console_mark(instance_id: int) -> bytes:
    """The mark that starts ``instance_id``'s output on a worker's console."""
    return b"%s%d\0" % (CONSOLE_MARK, instance_id)


# -- stream edges (worker ↔ worker) ---------------------------------------------------------


class Batch(msgspec.Struct, tag="b", array_like=True):
    """Records a producer wrote, in order."""

    records: list[Any]


class End(msgspec.Struct, tag="e", array_like=True):
    """The explicit end of a stream, with the number of records sent on this edge.

    ``stand_in``: a dry run's stand-in stream, which says nothing of a real run's records: its
    producer's module was not run (it does not support dry runs), or read such a stream. Its
    consumers then do not apply ``skip_on_no_input`` (a real run may well send records).
    """

    count: int
    stand_in: bool = False


class Failed(msgspec.Struct, tag="f", array_like=True):
    """The producer failed: its reason and (redacted) message."""

    reason: str
    message: str


StreamFrame = Batch | End | Failed


class EdgeStats(msgspec.Struct, kw_only=True):
    """Counters of one edge, as one side saw it (``side`` ``out``: producer, ``in``: consumer).

    ``blocked_seconds`` is the time the producer spent in writes on this edge (a write into a
    pipe with room returns in microseconds, so this is the time blocked on backpressure).
    ``undelivered`` (producer side): records discarded because the consumer had closed its
    end. ``drained`` (consumer side): records gxo read from the pipe and discarded after the
    module returned without reading its input to the end, so the producer could finish (they
    are in ``records`` too; records already read ahead when the module stopped are not).
    """

    producer: str
    consumer: str
    side: Literal["out", "in"]
    records: int = 0
    bytes: int = 0
    drops: int = 0
    blocked_seconds: float = 0.0
    strategy: str = "block"
    undelivered: int = 0
    drained: int = 0


# -- parent ↔ worker ------------------------------------------------------------------------


class StreamOutput(msgspec.Struct, array_like=True, frozen=True):
    """One stream output of a task instance, with the consumer's ``channel_policy``."""

    consumer: str
    buffer_size: int = 100
    overflow_strategy: str = "block"


class RunLimits(msgspec.Struct, array_like=True, frozen=True):
    """An ``isolation: process`` attempt's limits (0: none); the executor enforces them."""

    memory: int = 0
    cpu: float = 0.0
    open_files: int = 0
    processes: int = 0
    file_size: int = 0
    #: ``network: false``: a network namespace of its own, loopback only.
    no_network: bool = False

    def as_dict(self) -> dict[str, float]:
        """The limits that are set, by ``limits`` key (what the report shows)."""
        return {
            key: value
            for key in ("memory", "cpu", "open_files", "processes", "file_size")
            if (value := getattr(self, key))
        }


class AttemptUsage(msgspec.Struct, kw_only=True, frozen=True):
    """What an ``isolation: process`` attempt used, measured by the executor (also on success,
    so users can choose limits), and the limits it ran under.

    ``memory_peak``: peak resident memory of the whole process tree, in bytes (the cgroup's
    peak, or the highest of the sums the watch saw and the attempt process's own measure);
    ``cpu_seconds``: CPU time of the tree (user + system), the highest of its last look and
    the process's own measure; ``processes_peak`` and ``open_files_peak``: the most processes
    and open descriptors the tree held at once (gxo's own guard process not counted). The
    attempt's process sends its own measure with its result
    (:func:`gxo.pool.enforce.measure_attempt`); the executor merges it in.
    ``enforcement``: ``cgroup v1``, ``cgroup v2`` or ``rlimit+watch``.
    """

    enforcement: str = ""
    limits: dict[str, float] = {}
    memory_peak: int = 0
    cpu_seconds: float = 0.0
    processes_peak: int = 0
    open_files_peak: int = 0


class Run(msgspec.Struct, tag="run", array_like=True, frozen=True):
    """Run one attempt of one task instance.

    ``params`` are the task's raw parameters (templates not yet rendered); ``namespace`` is
    the copy of exactly the state the task's templates reference, loop variable included.
    """

    instance_id: int
    task_index: int
    task_name: str
    module: str
    params: dict[str, Any]
    namespace: dict[str, Any]
    attempt: int = 1
    loop_index: int | None = None
    dry_run: bool = False
    playbook_dir: str = ""
    #: Stream inputs: the producer of each read end sent with this message, in fd order.
    inputs: tuple[str, ...] = ()
    #: Stream outputs: the consumer of each write end, after the inputs' fds.
    outputs: tuple[StreamOutput, ...] = ()
    #: ``task_policy.skip_on_no_input``: skip the module when every input ends empty.
    skip_on_no_input: bool = False
    #: W3C ``traceparent`` of the instance's span when tracing is on (the worker then traces
    #: the attempt as its child); empty when it is off, and OpenTelemetry is never imported.
    traceparent: str = ""
    #: ``limits.output``: bytes a command may write (stdout and stderr together); 0: none.
    output_limit: int = 0
    #: ``isolation: process``: a fresh process for this attempt, under these limits (None:
    #: a pooled worker).
    isolated: RunLimits | None = None
    #: The task's ``output`` key: ``stream``, ``capture`` or ``quiet`` (relay while running).
    output: str = "capture"


class Stop(msgspec.Struct, tag="stop", array_like=True, frozen=True):
    """Finish the current instance (if any) and exit cleanly."""


class Done(msgspec.Struct, tag="done", array_like=True, frozen=True):
    """The outcome of one attempt, already redacted by the worker.

    ``reason`` is empty on success. ``summary`` is kept on failure when the module gave one
    (``exec`` keeps stdout/stderr/exit_code). ``duration`` is the module's own run time.
    """

    instance_id: int
    ok: bool
    summary: Any = None
    reason: str = ""
    error: str = ""
    traceback: str = ""
    duration: float = 0.0
    max_rss_kib: int = 0
    #: ``time.monotonic()`` in the worker when the attempt started (the clock is system-wide).
    started_at: float = 0.0
    #: Counters of each stream edge of the instance (inputs, then outputs).
    streams: list[EdgeStats] = []
    #: The module did not run: ``skip_on_no_input`` and every input ended empty.
    skipped: bool = False
    #: Names (never values) of the secrets this attempt resolved, for the SecretAccessed event.
    secrets_accessed: list[str] = []
    #: False when the module said another attempt cannot succeed (``ModuleError(retry=False)``).
    retry: bool = True
    #: What the attempt's commands printed: tails, sizes, truncation, log paths (redacted).
    outputs: list[CapturedOutput] = []
    #: Processes a command left running when it exited, killed by the worker.
    leftovers_killed: int = 0
    #: How many substitutions redaction made in this attempt (a count, never what it masked).
    secrets_redacted: int = 0
    #: ``isolation: process``: what the attempt used (filled in by the executor).
    usage: AttemptUsage | None = None
    #: The attempt wrote to the worker's console: its mark (:data:`CONSOLE_MARK`) and output
    #: are there before this result. False: nothing of it to read.
    printed: bool = False


class WorkerConfig(msgspec.Struct, frozen=True):
    """How a worker is set up, given once when it starts (never a secret value).

    ``secrets_provider`` is the import path of the secrets provider's class, built in the
    worker with ``secrets_options`` (plain configuration, never a value; environment variables
    by default); ``modules`` maps module types given in code to their import paths
    (``gxo.run(modules=...)``); ``redact_keywords`` turns on masking of ``key=value`` forms
    for those keywords; ``secret_names`` are the literal names the playbook passes to
    ``secret()``, resolved by each worker into its redactor before its first instance, so a
    value resolved by one task is masked in every worker. ``log_level`` is the level of the
    worker's root logger.
    """

    secrets_provider: str = "gxo.secrets.providers:EnvProvider"
    secrets_options: dict[str, Any] = {}
    secret_names: tuple[str, ...] = ()
    log_level: int = 30
    #: Keep the core-file size limit gxo started with (``--core-dumps``); otherwise workers
    #: and their commands get ``RLIMIT_CORE`` 0.
    core_dumps: bool = False
    #: The run directory for attempt logs (``gxo.outputs``); empty: no log files.
    run_dir: str = ""
    #: ``output_capture``: bytes of each stream kept in its log file, per attempt.
    output_capture: int = DEFAULT_OUTPUT_CAPTURE
    #: The largest encoded result a worker sends; a larger one fails ``result_too_large``.
    result_limit: int = DEFAULT_RESULT_LIMIT
    #: The largest encoded stream record (``--record-limit``); 0: the default, 16 MiB.
    record_limit: int = 0
    #: Log records a second a module may emit; the rest are dropped and counted (0: all).
    log_rate: float = 1000
    modules: dict[str, str] = {}
    redact_keywords: tuple[str, ...] = ()
    #: ``-v``: relay what commands print, line by line, while they run (redacted here).
    live_output: bool = False
    #: ``-vv``: log each instance's rendered params (redacted) before its module runs.
    show_params: bool = False


class SecretsFound(msgspec.Struct, tag="found", array_like=True, frozen=True):
    """An instance resolved secrets whose names were computed at run time (never the values).

    The worker waits for :class:`SecretsKnown` before it runs the module: records the task
    streams carry real values, so every worker that may receive them, or a result holding
    them, must be able to mask them first (DESIGN §15, "Records and secrets").
    """

    names: tuple[str, ...]


class ResolveSecrets(msgspec.Struct, tag="resolve", array_like=True, frozen=True):
    """Resolve these names into your redactor now (even while an instance runs), then answer
    :class:`SecretsResolved` with ``seq``."""

    seq: int
    names: tuple[str, ...]


class SecretsResolved(msgspec.Struct, tag="resolved", array_like=True, frozen=True):
    seq: int


class SecretsKnown(msgspec.Struct, tag="known", array_like=True, frozen=True):
    """Every live worker resolved the names the worker announced: run the module."""


ToWorker = Run | Stop | ResolveSecrets | SecretsKnown
ToParent = Done | SecretsFound | SecretsResolved


# -- framing --------------------------------------------------------------------------------


class TruncatedFrame(GxoError):
    """A frame was cut short (the writer died mid-message) or is over :data:`MAX_FRAME`."""


class InvalidFrame(TruncatedFrame):
    """A whole frame that does not decode as the message expected: what the peer sent is not
    a message (a corrupted or misbehaving worker, a module writing into a stream pipe), so
    the channel is broken, as for a truncated frame: the reader never raises a decoding
    error of its own (a worker's bad message must not become a gxo internal error)."""


def _invalid(error: msgspec.DecodeError) -> InvalidFrame:
    return InvalidFrame(f"a frame is not a valid message: {error}")


def header(length: int) -> bytes:
    """The length prefix of a payload of ``length`` bytes (for a payload encoded elsewhere)."""
    return _LENGTH.pack(length)


def frame_into(encoder: msgspec.msgpack.Encoder, message: object, buffer: bytearray) -> int:
    """Append one frame (length prefix, then ``message`` encoded) to ``buffer``; its size."""
    start = len(buffer)
    encoder.encode_into(message, buffer, start + 4)
    size = len(buffer) - start
    _LENGTH.pack_into(buffer, start, size - 4)
    return size


class FrameWriter:
    """Encodes messages into one buffer of frames, ready for a single ``sendall``."""

    __slots__ = ("_buffer", "_encoder")

    def __init__(self) -> None:
        self._encoder = msgspec.msgpack.Encoder()
        self._buffer = bytearray()

    def add(self, message: msgspec.Struct) -> None:
        """Append one framed message to the pending buffer."""
        frame_into(self._encoder, message, self._buffer)

    def add_all(self, messages: Iterable[msgspec.Struct]) -> None:
        """Append several framed messages (:func:`frame_into` inlined: no call per message)."""
        buffer, encode_into, pack_into = self._buffer, self._encoder.encode_into, _LENGTH.pack_into
        for message in messages:
            start = len(buffer)
            encode_into(message, buffer, start + 4)
            pack_into(buffer, start, len(buffer) - start - 4)

    def take(self) -> bytes:
        """Everything added since the last ``take``, and an empty buffer."""
        data = bytes(self._buffer)
        self._buffer.clear()
        return data

    def __bool__(self) -> bool:
        return bool(self._buffer)


class FrameReader:
    """Splits a byte stream into frames and decodes them with a typed decoder."""

    __slots__ = ("_buffer", "_decoder")

    def __init__(self, message_type: Any) -> None:
        self._decoder: msgspec.msgpack.Decoder[Any] = msgspec.msgpack.Decoder(message_type)
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[Any]:
        """Add received bytes; return every message now complete, in order."""
        return self._feed(data, raw=False)

    def feed_payloads(self, data: bytes) -> list[bytes]:
        """Like :meth:`feed`, but the payloads still encoded (to forward them as they are)."""
        return self._feed(data, raw=True)

    def _feed(self, data: bytes, *, raw: bool) -> list[Any]:
        buffer = self._buffer
        if not buffer and len(data) >= 4:
            # The usual case (one whole frame per read: a chain's next task, a result):
            # decoded where it lies, without going through the buffer.
            (length,) = _LENGTH.unpack_from(data)
            if len(data) - 4 == length <= MAX_FRAME:
                payload = memoryview(data)[4:]
                if raw:
                    return [bytes(payload)]
                with payload:
                    try:
                        return [self._decoder.decode(payload)]
                    except msgspec.DecodeError as exc:  # ValidationError included
                        raise _invalid(exc) from None
        buffer += data
        out: list[Any] = []
        offset = 0
        end = len(buffer)
        decode = self._decoder.decode
        with memoryview(buffer) as view:
            while end - offset >= 4:
                (length,) = _LENGTH.unpack_from(view, offset)
                if length > MAX_FRAME:
                    raise TruncatedFrame(f"frame of {length} bytes exceeds the limit")
                start = offset + 4
                if end - start < length:
                    break
                offset = start + length
                if raw:
                    out.append(bytes(view[start:offset]))
                    continue
                try:
                    out.append(decode(view[start:offset]))
                except msgspec.DecodeError as exc:
                    raise _invalid(exc) from None
        if offset:
            del buffer[:offset]
        return out

    def decode(self, payload: bytes | memoryview) -> Any:
        """One payload returned by :meth:`feed_payloads`, decoded."""
        try:
            return self._decoder.decode(payload)
        except msgspec.DecodeError as exc:
            raise _invalid(exc) from None

    def clear(self) -> None:
        """Drop what is buffered (the stream ended; nothing after it counts)."""
        self._buffer.clear()

    def check_eof(self) -> None:
        """Call at end of stream: raises :class:`TruncatedFrame` if a frame was cut short."""
        if self._buffer:
            raise TruncatedFrame(f"stream ended {len(self._buffer)} bytes into a frame")
