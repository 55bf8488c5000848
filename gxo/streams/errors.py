"""Typed stream errors. Each carries the ``reason`` the task fails with."""

from __future__ import annotations

from gxo.errors import GxoError

__all__ = [
    "BadRecord",
    "ConsumersGone",
    "RecordTooLarge",
    "StreamError",
    "StreamOverflow",
    "StreamTruncated",
    "UpstreamFailed",
]


class StreamError(GxoError):
    """Base class: something went wrong on a stream edge; ``reason`` names it for the report."""

    reason = "stream_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class StreamTruncated(StreamError):
    """An input ended (EOF) without its explicit end of stream: the producer died mid-stream."""

    reason = "stream_truncated"


class UpstreamFailed(StreamError):
    """The producer failed and said so on the stream (a ``Failed`` frame)."""

    def __init__(self, producer: str, producer_reason: str, message: str) -> None:
        super().__init__(f"producer '{producer}' failed ({producer_reason}): {message}")
        self.producer = producer
        self.producer_reason = producer_reason
        self.reason = f"upstream_failed({producer_reason})"


class ConsumersGone(StreamError):
    """Every consumer of this producer stopped reading (failed, crashed or returned early)."""

    reason = "consumers_gone"


class StreamOverflow(StreamError):
    """An edge with ``overflow_strategy: error`` was full."""

    reason = "stream_overflow"


class BadRecord(StreamError):
    """A record the task emitted cannot be encoded (not plain data, nested too deep, an
    integer too large); the records before it on the edge were sent."""

    reason = "bad_record"
    #: Index of the bad record in the batch being written (the ones before it were sent).
    position = 0


class RecordTooLarge(StreamError):
    """A record the task wrote encodes to more than the record limit (``--record-limit``);
    the records before it on the edge were sent (as for :class:`BadRecord`)."""

    reason = "record_too_large"
    #: Index of the large record in the batch being written (the ones before it were sent).
    position = 0
