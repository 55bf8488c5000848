"""Functions that change the worker process, and one that reports what the next task sees.

Run with ``--workers 1``, ``dirty`` then ``observe`` share one worker: whatever ``dirty``
leaves behind, ``observe`` would see, unless the worker restores its state in between.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import sys
import threading
from typing import Any

#: A global of the user's own module: the next task must see it fresh.
CALLS = 0


def _status_mask(field: str) -> int:
    with open("/proc/self/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1], 16)
    raise AssertionError(field)


def dirty(helper_dir: str) -> dict[str, Any]:
    """Change every piece of process state a pooled worker must restore."""
    global CALLS  # noqa: PLW0603 - the point: module state that must not survive the task
    CALLS += 1
    os.environ["GXO_LEAKED"] = "from dirty"
    os.environ.pop("HOME", None)
    os.chdir("/")
    os.umask(0o077)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGUSR1, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGALRM})
    sys.path.insert(0, helper_dir)
    import userhelper  # a module of the user's, imported by name

    userhelper.VALUE = "changed"
    os.close(0)
    os.close(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)  # stdout of the next commands would vanish
    os.close(devnull)
    return {"pid": os.getpid(), "calls": CALLS}


def observe(out: str, helper_dir: str) -> dict[str, Any]:
    """Write what this task sees of the process to the file ``out``."""
    sys.path.insert(0, helper_dir)
    import userhelper

    umask = os.umask(0)
    os.umask(umask)
    seen = {
        "pid": os.getpid(),
        "calls": CALLS,
        "leaked_env": os.environ.get("GXO_LEAKED"),
        "home": os.environ.get("HOME"),
        "cwd": os.getcwd(),
        "umask": umask,
        "sigterm_ignored": signal.getsignal(signal.SIGTERM) is signal.SIG_IGN,
        "sigusr1_default": signal.getsignal(signal.SIGUSR1) is signal.SIG_DFL,
        "blocked": sorted(int(s) for s in signal.pthread_sigmask(signal.SIG_BLOCK, [])),
        "helper": userhelper.VALUE,
        "fds": [_fd_ok(fd) for fd in (0, 1, 2)],
    }
    os.write(2, b"fd 2 reaches the parent\n")
    os.write(1, b"fd 1 reaches the parent\n")
    with open(out, "w", encoding="utf-8") as handle:
        json.dump(seen, handle)
    return seen


def _fd_ok(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


def worker_signals(out: str) -> dict[str, Any]:
    """Dispositions and limits in the worker; survives SIGINT/SIGUSR1/SIGUSR2/SIGHUP."""
    for signum in (signal.SIGINT, signal.SIGUSR1, signal.SIGUSR2, signal.SIGHUP):
        os.kill(os.getpid(), signum)  # ignored: the worker lives on
    seen = {
        "ignored_by_kernel": _status_mask("SigIgn"),
        "core": list(resource.getrlimit(resource.RLIMIT_CORE)),
        "pdeathsig": _pdeathsig(),
    }
    with open(out, "w", encoding="utf-8") as handle:
        json.dump(seen, handle)
    return seen


def _pdeathsig() -> int:
    import ctypes

    value = ctypes.c_int(0)
    ctypes.CDLL(None, use_errno=True).prctl(2, ctypes.byref(value), 0, 0, 0)  # PR_GET_PDEATHSIG
    return value.value


def leave_thread(marker: str) -> dict[str, Any]:
    """Start a non-daemon thread that never ends, and return."""
    never = threading.Event()
    threading.Thread(target=never.wait, name="left-behind", daemon=False).start()
    with open(marker, "w", encoding="utf-8") as handle:
        handle.write(str(os.getpid()))
    return {"left": True}
