"""How the pool reads a worker's console stream: lines are given to the instance whose mark
(``gxo.wire.console_mark``) came before them, however the stream is cut into reads.

The pool's reader is driven directly, over a socketpair standing for a worker's console; the
end-to-end behaviour (``gxo -v`` through real workers) is in tests/cli/test_task_lines.py.
"""

from __future__ import annotations

import socket
from collections import deque
from types import SimpleNamespace
from typing import Any

import pytest

from gxo.pool.process_pool import ProcessPool
from gxo.pool.relay import LINE_LIMIT, RateLimit
from gxo.secrets.output import SocketEmitter
from gxo.wire import console_mark


def _read_all(chunks: list[bytes]) -> list[tuple[int | None, str]]:
    """Feed ``chunks`` to the pool's console reader one read at a time; what it relayed."""
    relayed: list[tuple[int | None, str]] = []
    pool: Any = ProcessPool.__new__(ProcessPool)
    pool._on_output = lambda instance, text: relayed.extend(
        (instance, line) for line in text.split("\n")
    )
    ours, theirs = socket.socketpair()
    worker: Any = SimpleNamespace(
        console=ours,
        console_partial=b"",
        console_instance=None,
        console_tail=deque(maxlen=20),
        instance_tail=[],
        relay_limit=RateLimit(0),
        console_open=False,  # nothing registered with a selector here
    )
    try:
        ours.setblocking(False)
        for chunk in chunks:
            theirs.sendall(chunk)
            while pool._read_console(worker):
                pass
        theirs.close()
        pool._read_console(worker, final=True)
    finally:
        ours.close()
    return relayed


def test_a_mark_split_across_reads_after_a_long_unterminated_line() -> None:
    """An unterminated line longer than the line limit is relayed in pieces of the limit, but
    the start of a mark at its end is kept for the next read, not relayed as text and lost as
    a mark."""
    long_line = b"x" * (70 * 1024)
    mark = console_mark(7)
    stream = console_mark(6) + long_line + mark + b"seven\n"
    cut = len(console_mark(6)) + len(long_line) + 5  # inside the second mark
    relayed = _read_all([stream[:cut], stream[cut:]])
    assert relayed == [(6, "x" * LINE_LIMIT), (6, "x" * (70 * 1024 - LINE_LIMIT)), (7, "seven")]


@pytest.mark.parametrize("step", [1, 3, 7, 4096])
def test_lines_follow_the_marks_whatever_the_reads(step: int) -> None:
    stream = (
        console_mark(1)
        + b"one\n\npartial"
        + console_mark(2)
        + b"two\n"
        + console_mark(13)
        + b"thirteen\n"
    )
    relayed = _read_all([stream[i : i + step] for i in range(0, len(stream), step)])
    assert relayed == [(1, "one"), (1, ""), (1, "partial"), (2, "two"), (13, "thirteen")]


def _emitted(steps: list[tuple[str, bytes]]) -> tuple[bytes, list[bool]]:
    """Run ``steps`` (``mark``, ``write``, ``unmark``) on a worker's console emitter over a
    socketpair: the bytes the parent would read, and what each ``unmark`` answered."""
    ours, theirs = socket.socketpair()
    answers: list[bool] = []
    try:
        emit = SocketEmitter(theirs.fileno())
        for step, data in steps:
            if step == "mark":
                emit.mark(data)
            elif step == "write":
                emit(data)
            else:
                answers.append(emit.unmark())
        theirs.shutdown(socket.SHUT_WR)
        received = b""
        while chunk := ours.recv(4096):
            received += chunk
    finally:
        ours.close()
        theirs.close()
    return received, answers


def test_an_instance_that_prints_nothing_sends_nothing() -> None:
    """The mark goes out with an instance's first output only: a silent instance costs the
    console (and the parent) no write and no read, and its result says it printed nothing."""
    received, answers = _emitted(
        [("mark", console_mark(1)), ("unmark", b""), ("mark", console_mark(2)), ("unmark", b"")]
    )
    assert received == b""
    assert answers == [False, False]


def test_the_mark_goes_before_the_first_output_once() -> None:
    received, answers = _emitted(
        [
            ("mark", console_mark(1)),
            ("unmark", b""),
            ("mark", console_mark(2)),
            ("write", b"a\n"),
            ("write", b"b\n"),
            ("unmark", b""),
            ("write", b"between\n"),  # the worker's own, between instances: no mark
            ("mark", console_mark(3)),
            ("write", b"c\n"),
            ("unmark", b""),
        ]
    )
    assert received == console_mark(2) + b"a\nb\nbetween\n" + console_mark(3) + b"c\n"
    assert answers == [False, True, True]
