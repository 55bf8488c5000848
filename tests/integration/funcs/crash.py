"""Functions that misbehave in every way a module can, for the crash-isolation tests.

Each runs inside a gxo worker process, called by the ``python`` module.
"""

from __future__ import annotations

import ctypes
import os
import resource
import signal
import sys


def ok(value: int = 1) -> dict[str, int]:
    return {"value": value}


def raise_value_error() -> None:
    raise ValueError("bad value from the module")


def raise_keyboard_interrupt() -> None:
    raise KeyboardInterrupt


def sys_exit() -> None:
    sys.exit(4)


def os_exit() -> None:
    print("stdout: about to leave without cleanup", flush=True)
    print("stderr: last words before os._exit", file=sys.stderr, flush=True)
    os._exit(3)


def segfault() -> None:
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # no core file, no slow dump
    ctypes.string_at(0)


def sigkill_self() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def bad_summary() -> object:
    return object()


def deep_summary() -> list[object]:
    """A result nested far deeper than any encoder follows."""
    deep: list[object] = []
    for _ in range(100_000):
        deep = [deep]
    return deep


def bigint_summary() -> dict[str, int]:
    """Plain data that still cannot cross to the parent: msgpack integers stop at 64 bits."""
    return {"n": 2**70}


def fail_with_bad_summary() -> None:
    """A ModuleError whose kept summary is not plain data."""
    from gxo.modules import ModuleError

    raise ModuleError("could not finish", summary={"partial": object()})


class Unprintable(Exception):
    def __str__(self) -> str:
        raise RuntimeError("__str__ of the exception raised")


def raise_unprintable() -> None:
    """An exception whose message cannot be made: the worker must still report it."""
    raise Unprintable()


def module_error_not_strings() -> None:
    """A ModuleError whose reason and message are not strings (nothing checks a module's
    types at run time): the task fails with module_failed, the worker and gxo carry on."""
    from gxo.modules import ModuleError

    raise ModuleError(["not", "a", "message"], reason=123)  # type: ignore[arg-type]


def arm_timer(seconds: float = 0.05) -> str:
    """Leave an interval timer armed (as ``signal.alarm`` does), and return at once."""
    import signal

    signal.setitimer(signal.ITIMER_REAL, seconds)
    return "armed"


def outlive_timer(seconds: float = 0.5) -> str:
    """Run longer than the timer the task before left armed on this worker."""
    import time

    time.sleep(seconds)
    return "outlived"
