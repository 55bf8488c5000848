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
