"""Redaction of a worker's output channels: text writers, the fd pump, the log filter."""

from __future__ import annotations

import itertools
import logging
import os
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gxo.secrets import REDACTED, Redactor
from gxo.secrets.output import (
    LINE_LIMIT,
    WITHHELD,
    OutputPump,
    RedactingWriter,
    RedactionFilter,
)

SECRET = "s3cr3t-VALUE-42"


class Sink:
    def __init__(self) -> None:
        self.chunks: list[bytes] = []

    def __call__(self, data: bytes) -> None:
        self.chunks.append(data)

    @property
    def text(self) -> str:
        return b"".join(self.chunks).decode()


def writer(*values: str) -> tuple[RedactingWriter, Sink]:
    sink = Sink()
    return RedactingWriter(sink, Redactor(values), fileno=1), sink


def test_whole_lines_are_redacted_and_emitted_at_the_newline() -> None:
    out, sink = writer(SECRET)
    out.write(f"a {SECRET} b")
    assert sink.text == ""  # held until the newline
    out.write("\nnext")
    assert sink.text == f"a {REDACTED} b\n"
    out.drain()
    assert sink.text == f"a {REDACTED} b\nnext"


@pytest.mark.parametrize("cut", range(1, len(SECRET)))
def test_a_secret_split_across_two_writes_is_caught(cut: int) -> None:
    out, sink = writer(SECRET)
    out.write("x" + SECRET[:cut])
    out.write(SECRET[cut:] + "y\n")
    assert sink.text == f"x{REDACTED}y\n"


@pytest.mark.parametrize("cut", [1, 7, len(SECRET) - 1])
def test_a_secret_split_across_a_flush_is_caught(cut: int) -> None:
    out, sink = writer(SECRET)
    out.write("p" * 50 + SECRET[:cut])
    out.flush()  # print(..., end="", flush=True): emits all but a tail that may start a secret
    assert sink.text.startswith("p" * 30)
    out.write(SECRET[cut:] + "\n")
    assert sink.text == "p" * 50 + REDACTED + "\n"


def test_drain_emits_everything() -> None:
    out, sink = writer(SECRET)
    out.write(SECRET)
    out.flush()
    assert sink.text == ""
    out.drain()
    assert sink.text == REDACTED


def test_a_very_long_line_is_emitted_in_parts_without_cutting_a_secret() -> None:
    out, sink = writer(SECRET)
    filler = "z" * (LINE_LIMIT - 3)
    out.write(filler)
    out.write(SECRET[:7])  # the line now passes the limit with half a secret at its end
    out.write(SECRET[7:])
    out.write(" end\n")
    assert SECRET not in sink.text
    assert sink.text == filler + REDACTED + " end\n"
    assert len(sink.chunks) >= 2  # it was emitted before the newline


def test_a_secret_spanning_the_cut_of_a_long_line_is_caught() -> None:
    out, sink = writer(SECRET)
    out.write("q" * (LINE_LIMIT + 5) + SECRET + "r" * 3)
    out.drain()
    assert SECRET not in sink.text
    assert sink.text.count(REDACTED) == 1


@settings(max_examples=200, deadline=None)
@given(
    prefix=st.text(alphabet="ab\n ", max_size=30),
    suffix=st.text(alphabet="ab\n ", max_size=30),
    cuts=st.lists(st.integers(min_value=0, max_value=80), max_size=6),
)
def test_any_split_of_the_writes_never_leaks(prefix: str, suffix: str, cuts: list[int]) -> None:
    text = prefix + SECRET + suffix + "\n"
    out, sink = writer(SECRET)
    points = sorted({min(c, len(text)) for c in cuts} | {0, len(text)})
    for start, end in itertools.pairwise(points):
        out.write(text[start:end])
        if start % 3 == 0:
            out.flush()
    out.drain()
    assert SECRET not in sink.text
    assert sink.text == prefix + REDACTED + suffix + "\n"


def test_short_values_only_mask_whole_lines() -> None:
    out, sink = writer("ab1")
    out.write("ab1\nxab1x\nab1\r\n")
    assert sink.text == f"{REDACTED}\nxab1x\n{REDACTED}\r\n"


def test_the_binary_view_is_redacted_too() -> None:
    out, sink = writer("pässwort-1")
    data = "value=pässwort-1\n".encode()
    out.buffer.write(data[:8])  # cuts the two-byte 'ä'
    out.buffer.write(data[8:])
    assert sink.text == f"value={REDACTED}\n"
    assert out.buffer.fileno() == 1


def test_failing_redaction_writes_a_marker_instead() -> None:
    class Broken(Redactor):
        def redact_lines(self, text: str) -> str:
            raise RuntimeError("boom")

    sink = Sink()
    out = RedactingWriter(sink, Broken([SECRET]))
    out.write(f"{SECRET}\n")
    assert sink.text == WITHHELD


def test_writer_behaves_like_a_text_stream() -> None:
    out, sink = writer(SECRET)
    print("hello", SECRET, file=out)
    assert sink.text == f"hello {REDACTED}\n"
    assert out.writable()
    assert not out.isatty()
    assert out.encoding == "utf-8"
    assert out.fileno() == 1
    with pytest.raises(TypeError):
        out.write(b"bytes")  # type: ignore[arg-type]
    out.close()
    assert not out.closed


def test_pump_redacts_what_is_written_to_the_descriptor() -> None:
    read_fd, write_fd = os.pipe()
    sink = Sink()
    pump = OutputPump(read_fd, RedactingWriter(sink, Redactor([SECRET])))
    pump.start()
    try:
        os.write(write_fd, f"raw {SECRET[:5]}".encode())
        os.write(write_fd, f"{SECRET[5:]} tail\npartial".encode())
        pump.sync(timeout=2.0)
        assert sink.text == f"raw {REDACTED} tail\npartial"
    finally:
        os.close(write_fd)
        pump._thread.join(2.0)
        os.close(read_fd)


def _record(msg: str, *args: object, exc: bool = False) -> logging.LogRecord:
    exc_info = None
    if exc:
        try:
            try:
                raise KeyError(f"inner {SECRET}")
            except KeyError as inner:
                raise ValueError("outer") from inner
        except ValueError:
            exc_info = sys.exc_info()
    return logging.LogRecord("t", logging.WARNING, __file__, 1, msg, args, exc_info)


def test_log_filter_redacts_message_args_and_exception_text() -> None:
    record = _record("got %s and %r", SECRET, {"k": SECRET}, exc=True)
    assert RedactionFilter(Redactor([SECRET])).filter(record)
    formatted = logging.Formatter().format(record)
    assert SECRET not in formatted
    assert f"got {REDACTED} and {{'k': '{REDACTED}'}}" in formatted
    assert f"KeyError: 'inner {REDACTED}'" in formatted
    assert "The above exception was the direct cause" in formatted


def test_log_filter_fails_closed() -> None:
    class Broken(Redactor):
        def redact_lines(self, text: str) -> str:
            raise RuntimeError("boom")

    record = _record("value %s", SECRET, exc=True)
    assert RedactionFilter(Broken([SECRET])).filter(record)
    formatted = logging.Formatter().format(record)
    assert SECRET not in formatted
    assert "redaction failed" in formatted


def test_split_pending_keeps_a_tail_that_may_start_a_secret() -> None:
    redactor = Redactor([SECRET])
    head, tail = redactor.split_pending("x" * 40 + SECRET[:6])
    assert head + tail == "x" * 40 + SECRET[:6]
    assert len(tail) >= 6
    head, tail = redactor.split_pending("x" * 40 + SECRET + "yy")
    assert SECRET not in head
    assert head + tail in {
        "x" * 40 + REDACTED + "yy",
        "x" * 40 + SECRET + "yy",
    }
    assert Redactor().split_pending("abc") == ("abc", "")
