"""Functions with observable timing and state, for the scheduling integration tests.

State that must survive a worker (attempt counters, timestamps, rendezvous) lives in files.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any


def hang(seconds: float = 3600.0) -> None:
    time.sleep(seconds)


def fail_first(marker: str, failures: int) -> dict[str, int]:
    """Raise on the first ``failures`` calls (counted in the file ``marker``), then succeed."""
    path = Path(marker)
    calls = int(path.read_text()) + 1 if path.exists() else 1
    path.write_text(str(calls))
    if calls <= failures:
        raise ConnectionError(f"transient failure on call {calls}")
    return {"calls": calls}


def refuse(marker: str, retry: bool) -> None:
    """Count the call in ``marker``, then fail with a ModuleError that says whether to retry."""
    from gxo.modules import ModuleError

    path = Path(marker)
    calls = int(path.read_text()) + 1 if path.exists() else 1
    path.write_text(str(calls))
    raise ModuleError(f"refused on call {calls}", reason="credentials_refused", retry=retry)


def timed(item: Any, seconds: float) -> dict[str, Any]:
    """Sleep and return when it ran (wall clock, comparable across processes)."""
    start = time.time()
    time.sleep(seconds)
    return {"item": item, "start": start, "end": time.time(), "pid": os.getpid()}


def dump(path: str, value: Any) -> dict[str, str]:
    """Write ``value`` as JSON (how a test sees a registered value)."""
    Path(path).write_text(json.dumps(value))
    return {"path": path}


def rendezvous(mine: str, theirs: str, deadline: float = 20.0) -> dict[str, float]:
    """Create ``mine``, then wait (bounded) for another task to create ``theirs``."""
    Path(mine).touch()
    start = time.monotonic()
    while not os.path.exists(theirs):
        if time.monotonic() - start > deadline:
            raise TimeoutError(f"{theirs} never appeared: the other task did not run alongside")
        time.sleep(0.005)
    return {"waited": time.monotonic() - start}


def with_child(marker: str, sleep_arg: str) -> None:
    """Start a ``sleep`` child, publish "worker_pid child_pid" atomically, then wait for ever."""
    child = subprocess.Popen(["sleep", sleep_arg])
    tmp = marker + ".tmp"
    Path(tmp).write_text(f"{os.getpid()} {child.pid}")
    os.replace(tmp, marker)
    child.wait()


def with_daemon(marker: str, sleep_arg: str, die: bool = False) -> None:
    """Daemonise a ``sleep`` (double fork, ``setsid``: it leaves the worker's session and
    process group), publish "worker_pid daemon_pid" once the worker's guard has had several
    looks at it, then wait for ever, or (``die``) kill this worker with SIGKILL."""
    from gxo.pool.session import TRACK_INTERVAL

    read_fd, write_fd = os.pipe()
    middle = os.fork()
    if middle == 0:
        os.setsid()
        pid = os.fork()
        if pid == 0:
            os.execvp("sleep", ["sleep", sleep_arg])
        os.write(write_fd, str(pid).encode())
        os._exit(0)
    os.close(write_fd)
    daemon = int(os.read(read_fd, 64))
    os.close(read_fd)
    os.waitpid(middle, 0)  # the daemon's parent is this worker (the subreaper) from now on
    time.sleep(TRACK_INTERVAL * 5)  # the guard's looks at the tree, not the test's sync
    tmp = marker + ".tmp"
    Path(tmp).write_text(f"{os.getpid()} {daemon}")
    os.replace(tmp, marker)
    if die:
        os.kill(os.getpid(), signal.SIGKILL)
    while True:
        time.sleep(60)
