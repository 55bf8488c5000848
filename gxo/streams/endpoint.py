"""A task instance's stream ends: its inputs (one reader per producer) and outputs (one writer
per consumer), as the module context exposes them.

The worker builds a :class:`Streams` from the descriptors the parent sent with the ``Run``,
drains the inputs the module did not read when it returns (``drain``), ends every output
(``finish``), tells consumers when it failed (``fail``), and closes every descriptor when the
instance ends, whatever happened (``close``). A module that wants to stop reading early closes
its inputs (``close_inputs``): its producers then see their consumer gone.
"""

from __future__ import annotations

import select
from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import chain
from typing import Any, NamedTuple, TypeVar, cast

from gxo.streams.channel import (
    DEFAULT_RECORD_LIMIT,
    FLUSHER,
    Redactor,
    StreamReader,
    StreamWriter,
    _Outputs,
    open_writer,
)
from gxo.streams.errors import ConsumersGone, StreamError
from gxo.wire import EdgeStats

__all__ = ["InputSpec", "OutputSpec", "Streams"]

_Batch = TypeVar("_Batch")


class InputSpec(NamedTuple):
    producer: str
    fd: int


class OutputSpec(NamedTuple):
    consumer: str
    fd: int
    strategy: str = "block"
    buffer_size: int = 100


class Streams:
    """Inputs and outputs of one task instance."""

    def __init__(
        self,
        task: str,
        inputs: Sequence[InputSpec] = (),
        outputs: Sequence[OutputSpec] = (),
        *,
        redactor: Redactor | None = None,
        record_limit: int = DEFAULT_RECORD_LIMIT,
    ) -> None:
        """``redactor`` is accepted and not used: records are data within the run and carry
        real values; the consumer's worker redacts what leaves it (DESIGN §15).
        ``record_limit``: the largest encoded record an output may carry."""
        self.task = task
        self._redactor = redactor
        self.record_limit = record_limit
        self.readers = [StreamReader(spec.fd, spec.producer, task) for spec in inputs]
        self._outputs = _Outputs()
        self.writers: list[StreamWriter] = [
            open_writer(
                spec.fd,
                task,
                spec.consumer,
                strategy=spec.strategy,
                buffer_size=spec.buffer_size,
                outputs=self._outputs,
                redactor=redactor,
            )
            for spec in outputs
        ]
        self.emitted = 0
        #: The module did not really run (a dry run of a module without dry-run support):
        #: the outputs end as stand-ins (``gxo.wire.End.stand_in``).
        self.stand_in = False
        for writer in self.writers:
            writer.record_limit = record_limit
            FLUSHER.add(writer)
        if len(self.writers) == 1:
            only = self.writers[0]
            self.emit = only.write  # type: ignore[method-assign]
            self.emit_many = only.write_many  # type: ignore[method-assign]

    # -- inputs ------------------------------------------------------------------------------

    @property
    def input_names(self) -> tuple[str, ...]:
        return tuple(reader.producer for reader in self.readers)

    @property
    def error(self) -> StreamError | None:
        """The first stream error an input raised (even if the module caught it)."""
        for reader in self.readers:
            if isinstance(reader.error, StreamError):
                return reader.error
        return None

    def batches(self) -> Iterator[list[Any]]:
        """Lists of records from every input, as they arrive (fan-in)."""
        return _fan_in(self.readers, StreamReader.read_once, stashed=True)

    def raw_batches(self) -> Iterator[tuple[bytes, int]]:
        """Like :meth:`batches`, but each batch still encoded, with its record count."""
        return _fan_in(self.readers, StreamReader.read_raw_once, stashed=False)

    def forward(self) -> int:
        """Send every input record to every output, unchanged; the number forwarded.

        Batches are copied as encoded bytes (no decoding) when every output blocks on a full
        pipe; otherwise records are decoded and re-sent.
        """
        count = 0
        for reader in self.readers:  # read ahead by a peek: already decoded
            while reader.stash:
                batch = reader.stash.popleft()
                count += len(batch)
                self.emit_many(batch)
        raw = all(type(w) is StreamWriter for w in self.writers)
        if not raw:
            for batch in self.batches():
                count += len(batch)
                self.emit_many(batch)
            return count
        writers = self.writers
        for payload, records in self.raw_batches():
            count += records
            for writer in writers:
                writer.write_frame(payload, records)
        return count

    def records(self) -> Iterator[Any]:
        """Every record from every input."""
        return chain.from_iterable(self.batches())  # no Python frame per record

    def input(self, producer: str) -> Iterator[Any]:
        """The records of one producer, in order."""
        for reader in self.readers:
            if reader.producer == producer:
                return _one(reader)
        names = ", ".join(repr(n) for n in self.input_names) or "none"
        raise KeyError(f"no stream input from {producer!r} (inputs: {names})")

    def close_inputs(self) -> None:
        """Stop reading every input now: close the read ends (the producers' writes fail, and
        they end ``consumer_closed``); records read ahead are discarded, nothing is drained."""
        for reader in self.readers:
            reader.stash.clear()
            reader.done = True
            reader.close()

    def drain(self) -> int:
        """Read every input the module left unread to its end, discarding the records.

        GXO does this after a consumer returns, so a producer whose consumer stopped reading
        still completes. The records are counted in each input's ``drained``; a producer that
        failed still raises its stream error here (a consumer never succeeds on a cut input).
        """
        total = 0
        for reader in self.readers:
            stats = reader.stats
            while reader.stash:
                stats.drained += len(reader.stash.popleft())
            while not reader.done:
                for batch in reader.read_raw_once():  # counted, never decoded
                    stats.drained += batch[1] if isinstance(batch, tuple) else len(batch)
            total += stats.drained
        return total

    @property
    def inputs_stand_in(self) -> bool:
        """Whether an input that ended was a dry run's stand-in (``gxo.wire.End.stand_in``)."""
        return any(reader.stand_in for reader in self.readers)

    def all_empty(self) -> bool:
        """Read ahead until every input has sent a record or ended; True if all ended empty."""
        for reader in self.readers:
            while not reader.done and not reader.stash:
                for batch in reader.read_once():
                    reader.stash.append(batch)
        return all(r.done and not r.stash for r in self.readers)

    # -- outputs -----------------------------------------------------------------------------

    def emit(self, record: Any) -> None:
        """Send ``record`` to every output (fan-out)."""
        for writer in self.writers:
            writer.write(record)

    def emit_many(self, records: Iterable[Any]) -> None:
        """Send each record to every output."""
        if not isinstance(records, list):
            records = list(records)
        for writer in self.writers:
            writer.write_many(records)

    def finish(self) -> None:
        """End every output (raises ConsumersGone when every consumer went away).

        The ends are stand-ins when the module did not really run or read a stand-in input
        (in a dry run only): what comes after it in the pipeline is a stand-in too.
        """
        gone = None
        stand_in = self.stand_in or self.inputs_stand_in
        for writer in self.writers:
            try:
                writer.end(stand_in=stand_in)
            except ConsumersGone as exc:
                gone = exc
        if gone is not None and self.writers:
            raise gone

    def fail(self, reason: str, message: str) -> None:
        """Tell every consumer this producer failed."""
        for writer in self.writers:
            writer.fail(reason, message)

    def close(self) -> None:
        """Close every descriptor (idempotent)."""
        for writer in self.writers:
            FLUSHER.discard(writer)
            writer.close()
        for reader in self.readers:
            reader.close()

    def stats(self) -> list[EdgeStats]:
        return [r.stats for r in self.readers] + [w.stats for w in self.writers]


def _fan_in(
    readers: list[StreamReader], read: Callable[[StreamReader], list[_Batch]], *, stashed: bool
) -> Iterator[_Batch]:
    """What ``read`` returns from each input as the inputs become readable, until every one
    has ended (first, with ``stashed``, the decoded batches a peek read ahead). One input is
    read without polling. A generator of its own, called straight from :meth:`Streams.batches`
    and :meth:`Streams.raw_batches`: no generator in between on the path of every batch."""
    if stashed:  # decoded batches: only with read_once, whose batches they are
        for reader in readers:
            while reader.stash:
                yield cast(_Batch, reader.stash.popleft())
    active = {r.fd: r for r in readers if not r.done}
    if len(active) == 1:
        (reader,) = active.values()
        while not reader.done:
            yield from read(reader)
        return
    poller = select.poll()
    for fd in active:
        poller.register(fd, select.POLLIN)
    while active:
        for fd, _ in poller.poll():
            reader = active[fd]
            batches = read(reader)
            if reader.done:
                poller.unregister(fd)
                del active[fd]
            yield from batches
            if reader.error is not None:
                read(reader)  # the failure that came after these batches: raised now


def _one(reader: StreamReader) -> Iterator[Any]:
    return chain.from_iterable(_one_batches(reader))


def _one_batches(reader: StreamReader) -> Iterator[list[Any]]:
    while reader.stash:
        yield reader.stash.popleft()
    while not reader.done:
        yield from reader.read_once()
