"""One edge at the channel level: a real pipe, the writer in a thread, the reader here."""

from __future__ import annotations

import os
import select
import threading
from collections.abc import Callable
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gxo.streams import (
    ConsumersGone,
    InputSpec,
    OutputSpec,
    StreamOverflow,
    Streams,
    StreamTruncated,
    UpstreamFailed,
    make_pipe,
)
from gxo.streams.channel import POLICY_PIPE_BYTES, StreamReader, open_writer


def _produce(write_fd: int, body: Callable[[Streams], None], **spec: Any) -> threading.Thread:
    streams = Streams("p", outputs=[OutputSpec("c", write_fd, **spec)])

    def run() -> None:
        try:
            body(streams)
        finally:
            streams.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def _consume(read_fd: int) -> Streams:
    return Streams("c", inputs=[InputSpec("p", read_fd)])


records_strategy = st.lists(
    st.one_of(
        st.integers(-(2**63), 2**64 - 1),
        st.text(max_size=20),
        st.dictionaries(st.text(max_size=5), st.integers(-(2**63), 2**63 - 1), max_size=3),
        # Larger than a pipe buffer: the size matters, not the bytes (drawing 150 KB of random
        # bytes per record trips Hypothesis's data_too_large health check).
        st.tuples(st.integers(60_000, 150_000), st.binary(min_size=1, max_size=8)).map(
            lambda t: {"blob": (t[1] * (t[0] // len(t[1]) + 1))[: t[0]]}
        ),
    ),
    max_size=40,
)


@settings(max_examples=25, deadline=None)
@given(records=records_strategy, flush_every=st.integers(0, 7))
def test_every_record_arrives_once_in_order(records: list[Any], flush_every: int) -> None:
    """Whatever the sizes and wherever batches are cut (explicit flushes), order is kept."""
    read_fd, write_fd = make_pipe()

    def body(streams: Streams) -> None:
        for n, record in enumerate(records, 1):
            streams.emit(record)
            if flush_every and n % flush_every == 0:
                streams.writers[0].flush()
        streams.finish()

    thread = _produce(write_fd, body)
    consumer = _consume(read_fd)
    try:
        received = list(consumer.records())
    finally:
        consumer.close()
        thread.join()
    assert received == records
    assert consumer.readers[0].stats.records == len(records)


def test_eof_without_end_is_truncation() -> None:
    read_fd, write_fd = make_pipe()
    thread = _produce(write_fd, lambda s: (s.emit(1), s.writers[0].flush()))
    consumer = _consume(read_fd)
    try:
        with pytest.raises(StreamTruncated, match="ended without its end-of-stream mark"):
            list(consumer.records())
        assert isinstance(consumer.error, StreamTruncated)
    finally:
        consumer.close()
        thread.join()


def test_failed_frame_is_an_upstream_failure() -> None:
    read_fd, write_fd = make_pipe()
    thread = _produce(write_fd, lambda s: (s.emit(1), s.fail("module_failed", "boom")))
    consumer = _consume(read_fd)
    try:
        with pytest.raises(UpstreamFailed) as info:
            list(consumer.records())
        assert info.value.reason == "upstream_failed(module_failed)"
        assert "boom" in str(info.value)
    finally:
        consumer.close()
        thread.join()


@pytest.mark.parametrize("inputs", [1, 2])
def test_records_read_with_the_failure_reach_the_module_before_it(inputs: int) -> None:
    """Records and the failure frame after them, arriving in one read: the records are handed
    out, then the failure is raised (they were counted as received and then lost). With two
    inputs, the fan-in raises it at once, without waiting for the pipe's end."""
    pipes = [make_pipe() for _ in range(inputs)]
    producer = Streams("p", outputs=[OutputSpec("c", pipes[0][1])])
    producer.emit_many([{"n": n} for n in range(3)])
    producer.writers[0].flush()
    producer.fail("module_failed", "boom")  # the pipe stays open: no end of file to see
    consumer = Streams("c", inputs=[InputSpec(f"p{i}", read) for i, (read, _) in enumerate(pipes)])
    seen: list[Any] = []
    try:
        with pytest.raises(UpstreamFailed, match="boom"):
            seen.extend(consumer.records())  # extend keeps what came before the raise
        assert seen == [{"n": 0}, {"n": 1}, {"n": 2}]
        assert isinstance(consumer.error, UpstreamFailed)
    finally:
        consumer.close()
        producer.close()
        for _, write in pipes[1:]:
            os.close(write)


def test_writer_to_a_closed_reader_reports_consumers_gone() -> None:
    read_fd, write_fd = make_pipe()
    os.close(read_fd)
    streams = Streams("p", outputs=[OutputSpec("c", write_fd)])
    try:
        with pytest.raises(ConsumersGone):
            streams.emit_many({"n": n} for n in range(100_000))
    finally:
        streams.close()


def test_fan_out_keeps_writing_while_one_consumer_remains() -> None:
    r1, w1 = make_pipe()
    r2, w2 = make_pipe()
    os.close(r1)
    streams = Streams("p", outputs=[OutputSpec("a", w1), OutputSpec("b", w2)])
    consumer = Streams("b", inputs=[InputSpec("p", r2)])

    def body() -> None:
        try:
            for n in range(50_000):
                streams.emit(n)
            streams.finish()
        finally:
            streams.close()

    thread = threading.Thread(target=body)
    thread.start()
    try:
        assert list(consumer.records()) == list(range(50_000))
    finally:
        consumer.close()
        thread.join()
    assert streams.writers[0].gone
    assert not streams.writers[1].gone


def test_a_slow_producer_records_arrive_before_the_end() -> None:
    """The flusher thread writes a lone record: the consumer gets it while the producer waits.

    (The first record is a batch of its own; the second waits in a batch sized from it.)"""
    read_fd, write_fd = make_pipe()
    release = threading.Event()

    def body(streams: Streams) -> None:
        streams.emit({"first": True})
        streams.emit({"second": True})
        release.wait(30)
        streams.finish()

    thread = _produce(write_fd, body)
    consumer = _consume(read_fd)
    try:
        records = consumer.records()
        assert next(records) == {"first": True}
        assert next(records) == {"second": True}  # arrives although the batch is not full
        release.set()
        assert list(records) == []
    finally:
        release.set()
        consumer.close()
        thread.join()


def test_large_records_are_written_one_by_one_from_the_first() -> None:
    """A writer sizes its batches from the first record, which goes alone: large records are
    never held many at a time (64 records of 16 MiB made one 1 GiB frame, held whole by the
    producer's and the consumer's worker). No flusher thread here: only ``write`` writes."""
    read_fd, write_fd = make_pipe()
    writer = open_writer(write_fd, "p", "c")
    reader = StreamReader(read_fd, "p", "c")
    big = "x" * 40_000  # over half a batch's 64 KiB: one per batch (and the pipe holds one)
    try:
        for n in range(5):
            writer.write({"n": n, "big": big})
            assert select.select([read_fd], [], [], 0)[0], f"record {n} is still buffered"
            assert reader.read_once() == [[{"n": n, "big": big}]]
    finally:
        writer.close()
        reader.close()


@pytest.mark.parametrize("strategy", ["drop_new", "drop_oldest", "error"])
def test_overflow_strategies_without_a_reader(strategy: str) -> None:
    read_fd, write_fd = make_pipe(strategy)
    streams = Streams("p", outputs=[OutputSpec("c", write_fd, strategy=strategy, buffer_size=5)])
    count = POLICY_PIPE_BYTES  # far more than one page of small records
    raised = None
    try:
        for n in range(count):
            streams.emit(n)
    except StreamOverflow as exc:
        raised = exc
    writer = streams.writers[0]
    consumer = _consume(read_fd)
    thread = threading.Thread(
        target=lambda: (streams.fail("x", "y") if raised else streams.finish(), streams.close())
    )
    thread.start()
    try:
        if strategy == "error":
            assert raised is not None
            with pytest.raises(UpstreamFailed):
                list(consumer.records())
            return
        got = list(consumer.records())
    finally:
        consumer.close()
        thread.join()
    assert writer.stats.drops == count - len(got) > 0
    assert writer.stats.records == len(got)
    if strategy == "drop_new":
        assert got == list(range(len(got)))
    else:
        assert got[-5:] == list(range(count - 5, count))
        assert got == sorted(got)


@pytest.mark.parametrize("count", [1, 15, 16, 65_535, 65_536])
def test_forward_copies_encoded_batches(count: int) -> None:
    """A forwarding task passes batches on without decoding (array headers of every size)."""
    from gxo.streams.channel import _batch_count
    from gxo.wire import Batch

    encoded = bytearray(msgspec.msgpack.encode(Batch(list(range(count)))))
    assert _batch_count(encoded, 0, len(encoded)) == count

    r1, w1 = make_pipe()
    r2, w2 = make_pipe()
    producer = Streams("p", outputs=[OutputSpec("m", w1)])
    middle = Streams("m", inputs=[InputSpec("p", r1)], outputs=[OutputSpec("c", w2)])
    consumer = _consume(r2)

    def body() -> None:
        try:
            producer.writers[0].write_frame(bytes(encoded), count)
            producer.finish()
        finally:
            producer.close()

    def forward() -> None:
        try:
            assert middle.forward() == count
            middle.finish()
        finally:
            middle.close()

    threads = [threading.Thread(target=body), threading.Thread(target=forward)]
    for thread in threads:
        thread.start()
    try:
        assert list(consumer.records()) == list(range(count))
    finally:
        consumer.close()
        for thread in threads:
            thread.join()


@pytest.mark.parametrize("strategy", ["block", "drop_new"])
def test_finish_reports_consumers_gone_whatever_the_strategy(strategy: str) -> None:
    read_fd, write_fd = make_pipe(strategy)
    streams = Streams("p", outputs=[OutputSpec("c", write_fd, strategy=strategy, buffer_size=5)])
    os.close(read_fd)
    try:
        with pytest.raises(ConsumersGone):
            _emit_then_finish(streams, range(10_000))
    finally:
        streams.close()


def _emit_then_finish(streams: Streams, records: Any) -> None:
    streams.emit_many(records)
    streams.finish()
