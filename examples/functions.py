"""Python functions the example playbooks call through the `python` module.

Each one runs inside a gxo worker process; whatever it returns (JSON-compatible data) is the
task's summary, available to later tasks under the task's `register` name.
"""

from __future__ import annotations

import ctypes
import os
import time
from pathlib import Path


def count_words(text: str) -> dict[str, int]:
    return {"count": len(text.split())}


def flaky(item: str, marker_dir: str, failures: int = 1) -> dict[str, str]:
    """Fail the first `failures` times it is called for `item`, then succeed.

    The attempt count is kept in a file so it survives across worker processes.
    """
    marker = Path(marker_dir) / f"{item}.attempts"
    attempts = int(marker.read_text()) + 1 if marker.exists() else 1
    marker.write_text(str(attempts))
    if attempts <= failures:
        raise ConnectionError(f"{item}: transient failure on attempt {attempts}")
    return {"item": item, "attempts": str(attempts)}


def segfault() -> None:
    """Crash the interpreter the hard way: a NULL pointer dereference."""
    ctypes.string_at(0)


def exit_hard(code: int = 3) -> None:
    """Leave without cleanup, as buggy C extensions and careless scripts do."""
    print("about to call os._exit", flush=True)
    os._exit(code)


def hang(seconds: float = 3600) -> None:
    """Never come back in time (a task timeout stops it)."""
    time.sleep(seconds)


def raise_error(message: str = "something broke") -> None:
    raise RuntimeError(message)


def square(n: int) -> dict[str, int]:
    return {"n": n, "square": n * n}
