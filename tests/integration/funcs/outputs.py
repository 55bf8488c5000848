"""Functions that produce too much, for the output-capture and caps tests (run in a worker)."""

from __future__ import annotations

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
