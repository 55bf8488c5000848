"""Frames: encode → split at arbitrary byte boundaries → decode gives the same messages."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gxo.wire import (
    MAX_FRAME,
    Done,
    FrameReader,
    FrameWriter,
    InvalidFrame,
    Run,
    Stop,
    ToParent,
    ToWorker,
    TruncatedFrame,
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=50),
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5)
    ),
    max_leaves=20,
)

runs = st.builds(
    Run,
    instance_id=st.integers(0, 10**9),
    task_index=st.integers(0, 10**5),
    task_name=st.text(min_size=1, max_size=20),
    module=st.sampled_from(["exec", "python", "passthrough"]),
    params=st.dictionaries(st.text(max_size=10), json_values, max_size=4),
    namespace=st.dictionaries(st.text(max_size=10), json_values, max_size=4),
    attempt=st.integers(1, 10),
    loop_index=st.none() | st.integers(0, 1000),
    dry_run=st.booleans(),
)


@given(st.lists(runs | st.just(Stop()), min_size=1, max_size=8), st.data())
def test_frames_survive_any_split(messages, data):
    writer = FrameWriter()
    for message in messages:
        writer.add(message)
    stream = writer.take()
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=10)))
    reader = FrameReader(ToWorker)
    received = []
    last = 0
    for cut in [*cuts, len(stream)]:
        received += reader.feed(stream[last:cut])
        last = cut
    reader.check_eof()
    assert received == messages


def test_several_frames_in_one_read_and_a_partial_one():
    writer = FrameWriter()
    writer.add(Done(1, ok=True, summary={"a": [1, 2]}))
    writer.add(Done(2, ok=False, reason="x"))
    writer.add(Done(3, ok=True))
    stream = writer.take()
    reader = FrameReader(ToParent)
    assert reader.feed(stream[:-3]) == [
        Done(1, ok=True, summary={"a": [1, 2]}),
        Done(2, ok=False, reason="x"),
    ]
    with pytest.raises(TruncatedFrame, match="bytes into a frame"):
        reader.check_eof()
    assert reader.feed(stream[-3:]) == [Done(3, ok=True)]
    reader.check_eof()


def test_a_huge_length_prefix_is_rejected_not_allocated():
    reader = FrameReader(ToParent)
    with pytest.raises(TruncatedFrame, match="exceeds the limit"):
        reader.feed((MAX_FRAME + 1).to_bytes(4, "big") + b"x")


def test_a_frame_that_is_not_the_message_expected_is_a_broken_channel_not_a_crash():
    """A worker's Done with a reason that is not a string (a third-party module's
    ``ModuleError(reason=123)`` before the worker checked it) stopped gxo with an internal
    error (exit 3): a msgspec ValidationError out of the pool's read. Every way of reading
    raises InvalidFrame, a TruncatedFrame, which the pool and the stream reader handle."""
    import msgspec

    wrong = msgspec.msgpack.encode(["done", 1, False, None, 123])  # reason: an int
    garbage = b"\xc1"  # never valid msgpack
    for payload in (wrong, garbage):
        frame = len(payload).to_bytes(4, "big") + payload
        with pytest.raises(InvalidFrame, match="not a valid message"):
            FrameReader(ToParent).feed(frame)  # one whole frame: decoded where it lies
        reader = FrameReader(ToParent)
        reader.feed(frame[:2])
        with pytest.raises(InvalidFrame):
            reader.feed(frame[2:])  # through the buffer
        with pytest.raises(InvalidFrame):
            FrameReader(ToParent).decode(payload)
        assert FrameReader(ToParent).feed_payloads(frame) == [payload]  # raw: not decoded
    assert issubclass(InvalidFrame, TruncatedFrame)


def test_writer_take_empties_the_buffer():
    writer = FrameWriter()
    assert not writer
    writer.add(Stop())
    assert writer
    assert writer.take()
    assert writer.take() == b""


def test_stream_frames_share_the_framing_and_the_size_limit() -> None:
    """Stream edges use the same writer framing and reader (and its limit) as the pool."""
    import msgspec

    from gxo.wire import Batch, End, StreamFrame, frame_into, header

    buffer = bytearray()
    encoder = msgspec.msgpack.Encoder()
    frame_into(encoder, Batch([1, 2]), buffer)
    frame_into(encoder, End(2), buffer)
    reader = FrameReader(StreamFrame)
    assert reader.feed(bytes(buffer)) == [Batch([1, 2]), End(2)]
    payloads = FrameReader(StreamFrame).feed_payloads(bytes(buffer))
    assert payloads[0] == msgspec.msgpack.encode(Batch([1, 2]))
    with pytest.raises(TruncatedFrame, match="exceeds the limit"):
        FrameReader(StreamFrame).feed(header(MAX_FRAME + 1))


def test_a_stream_reader_refuses_an_oversized_frame_as_a_stream_error() -> None:
    import os

    from gxo.streams import StreamError
    from gxo.streams.channel import StreamReader, make_pipe
    from gxo.wire import header

    read_fd, write_fd = make_pipe()
    os.write(write_fd, header(MAX_FRAME + 1))
    os.close(write_fd)
    reader = StreamReader(read_fd, "p", "c")
    try:
        with pytest.raises(StreamError, match="corrupt") as caught:
            reader.read_once()
        assert caught.value.reason == "stream_error"
    finally:
        reader.close()


def test_one_whole_frame_per_read_decoded_or_raw_then_a_split_one() -> None:
    """A read holding exactly one frame (the usual case) is decoded without being buffered;
    what follows is still framed correctly, decoded or kept raw."""
    messages = [Done(i, ok=True, summary={"i": i, "s": "x" * i}) for i in range(3)]
    frames = []
    for message in messages:
        writer = FrameWriter()
        writer.add(message)
        frames.append(writer.take())
    reader = FrameReader(ToParent)
    assert reader.feed(frames[0]) == [messages[0]]
    assert reader.feed(frames[1][:2]) == []
    assert reader.feed(frames[1][2:]) == [messages[1]]
    raw = reader.feed_payloads(frames[2])
    assert raw == [frames[2][4:]]
    assert isinstance(raw[0], bytes)
    assert reader.decode(raw[0]) == messages[2]
    reader.check_eof()
