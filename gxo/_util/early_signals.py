"""A drain signal (SIGUSR1/SIGUSR2) that arrives before a run has its own handlers.

``gxo execute`` imports, parses its command line and loads the playbook before the run
installs its signal handlers (:func:`gxo.engine._catch_signals`): most of a short run's wall
time, longer for a large playbook. A SIGUSR1 in that window, whose default action ends the
process, killed gxo (exit status 138, no report, no journal), so a batch script that requeues
on 75 did not requeue. The command catches both signals first thing (:func:`catch_early`);
the run takes what arrived (:func:`take_pending`) and drains at once, exiting 75 as for a
signal received during the run. After the run the command's handler is back, so a signal
between the run's end and the process's is harmless too.
"""

from __future__ import annotations

import signal
import threading

__all__ = ["DRAIN_SIGNALS", "catch_early", "take_pending"]

#: The signals that drain a run (start nothing new, let running instances finish; exit 75).
DRAIN_SIGNALS = (signal.SIGUSR1, signal.SIGUSR2)

_pending: int | None = None


def _note(signum: int, frame: object) -> None:
    global _pending  # noqa: PLW0603 - one process, one pending drain
    if _pending is None:
        _pending = signum


def catch_early() -> None:
    """Keep a drain signal for the run instead of dying of it (main thread only).

    What an earlier command of this process kept and no run took is dropped: each command
    line starts clean (``main`` may be called more than once in a process)."""
    global _pending  # noqa: PLW0603 - see _note
    _pending = None
    if threading.current_thread() is threading.main_thread():
        for signum in DRAIN_SIGNALS:
            signal.signal(signum, _note)


def take_pending() -> int | None:
    """The drain signal received before the run (once), or None."""
    global _pending
    signum, _pending = _pending, None
    return signum
