"""Functions that produce too much, for the output-capture and caps tests (run in a worker)."""

from __future__ import annotations

import contextlib
import logging
import os
import signal


def big_result(size: int) -> dict[str, str]:
    return {"blob": "x" * size}


def small_result() -> dict[str, int]:
    return {"value": 1}


def log_lines(count: int) -> dict[str, int]:
    log = logging.getLogger("chatty")
    for i in range(count):
        log.warning("log line %d", i)
    return {"logged": count}


def kill_own_worker() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def send_bad_frame() -> None:
    """Write a frame header over the 1 GiB limit to every socket of the worker, then wait."""
    import socket
    import time

    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd <= 2:
            continue
        try:
            sock = socket.socket(fileno=os.dup(fd))
        except OSError:
            continue
        with sock:
            if sock.family == socket.AF_UNIX and sock.type == socket.SOCK_STREAM:
                with contextlib.suppress(OSError):
                    sock.sendall(b"\x7f\xff\xff\xff")
    time.sleep(60)  # the parent kills this worker long before


def talk(secret: str = "") -> dict[str, int]:
    import sys

    print("from print")
    print("to stderr", file=sys.stderr)
    logging.getLogger("talk").warning("a log record with %s", secret)
    os.write(1, b"from fd 1\n")
    return {"value": 1}


def talk_then_hang() -> None:
    import time

    print("about to hang", flush=True)
    time.sleep(3600)


class _HoldUntilFlush:
    """A stdout replacement that keeps what is written until it is flushed."""

    def __init__(self, target: object) -> None:
        self.target = target
        self.held: list[str] = []

    def write(self, text: str) -> int:
        self.held.append(text)
        return len(text)

    def flush(self) -> None:
        self.target.write("".join(self.held))  # type: ignore[attr-defined]
        self.held.clear()


def replace_stdout_then_print() -> dict[str, int]:
    """Print through a replaced ``sys.stdout`` that holds text until flushed, and an
    unterminated line on the worker's own stderr: both belong to this instance's output."""
    import sys

    sys.stdout = _HoldUntilFlush(sys.stdout)  # type: ignore[assignment]
    print("held until the worker flushes")
    sys.stderr.write("no newline at the end")
    return {"value": 1}
