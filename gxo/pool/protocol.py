"""Messages between the scheduler (parent) and a worker, and their length-prefixed framing.

Every message is a msgspec Struct in a tagged union, encoded as msgpack, and sent as one frame:
a 4-byte big-endian length, then the payload. Several frames may share one ``send`` (the worker
sends a result and the acknowledgement of its next task together), and one ``recv`` may hold
several frames or part of one, so the reader is a small incremental parser.

Parent → worker: :class:`Run` (one task instance), :class:`Stop`.
Worker → parent: :class:`Done` (the instance's redacted result).

The acknowledgement that pins a death on one instance is not a message: the worker writes the
instance id into a shared-memory slot before starting it and clears it only after its
``Done`` was sent (see ``gxo.pool.worker``). That costs no syscall and no wake-up of the
parent, which reads the slot only when the worker dies.

Errors cross as data (type name, message, traceback text), never as pickled exceptions.
"""

from __future__ import annotations

import struct
from typing import Any

import msgspec

from gxo.outputs import DEFAULT_OUTPUT_CAPTURE, DEFAULT_RESULT_LIMIT, CapturedOutput
from gxo.streams.channel import EdgeStats

__all__ = [
    "MAX_FRAME",
    "Done",
    "FrameReader",
    "FrameWriter",
    "Run",
    "Stop",
    "StreamOutput",
    "TruncatedFrame",
    "ToParent",
    "ToWorker",
    "WorkerConfig",
]

#: Frames larger than this are a protocol error, not an allocation.
MAX_FRAME = 1 << 30
_LENGTH = struct.Struct(">I")


class StreamOutput(msgspec.Struct, array_like=True, frozen=True):
    """One stream output of a task instance, with the consumer's ``channel_policy``."""

    consumer: str
    buffer_size: int = 100
    overflow_strategy: str = "block"


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
    #: What the attempt's commands printed: tails, sizes, truncation, log paths (redacted).
    outputs: list[CapturedOutput] = []
    #: Processes a command left running when it exited, killed by the worker.
    leftovers_killed: int = 0


class WorkerConfig(msgspec.Struct, frozen=True):
    """How a worker is set up, given once when it starts (never a secret value).

    ``secrets_dir`` empty means secrets come from the environment; ``secret_names`` are the
    literal names the playbook passes to ``secret()``, resolved by each worker into its
    redactor before its first instance, so a value resolved by one task is masked in every
    worker. ``log_level`` is the level of the worker's root logger.
    """

    secrets_dir: str = ""
    secrets_prefix: str = ""
    secret_names: tuple[str, ...] = ()
    log_level: int = 30
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


ToWorker = Run | Stop
ToParent = Done


class TruncatedFrame(Exception):
    """The stream ended inside a frame: the writer died mid-message."""


class FrameWriter:
    """Encodes messages into one buffer of frames, ready for a single ``sendall``."""

    __slots__ = ("_buffer", "_encoder")

    def __init__(self) -> None:
        self._encoder = msgspec.msgpack.Encoder()
        self._buffer = bytearray()

    def add(self, message: msgspec.Struct) -> None:
        """Append one framed message to the pending buffer."""
        start = len(self._buffer)
        self._encoder.encode_into(message, self._buffer, start + 4)
        self._buffer[start : start + 4] = _LENGTH.pack(len(self._buffer) - start - 4)

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
        buffer = self._buffer
        buffer += data
        messages: list[Any] = []
        offset = 0
        end = len(buffer)
        with memoryview(buffer) as view:
            while end - offset >= 4:
                (length,) = _LENGTH.unpack_from(view, offset)
                if length > MAX_FRAME:
                    raise TruncatedFrame(f"frame of {length} bytes exceeds the limit")
                start = offset + 4
                if end - start < length:
                    break
                messages.append(self._decoder.decode(view[start : start + length]))
                offset = start + length
        if offset:
            del buffer[:offset]
        return messages

    def check_eof(self) -> None:
        """Call at end of stream: raises :class:`TruncatedFrame` if a frame was cut short."""
        if self._buffer:
            raise TruncatedFrame(f"stream ended {len(self._buffer)} bytes into a frame")
