"""Worker processes that run task instances: the local executor.

::

    scheduler loop ── Executor.submit(Run) ──► ProcessPool ── control socket ──► worker_main
          ▲                                        │  (one per worker: Run/Stop frames in,      │
          └──── Executor.wait() ◄── ExecutorEvent ─┘   Done frames out; console socket;        │
                Started / Finished / Lost / Returned     sentinel; ack slot) ◄───────────────────┘

- :mod:`gxo.pool.executor`: the :class:`Executor` protocol and its events, all the loop
  knows of a backend (a Dask executor implements the same);
- :mod:`gxo.pool.process_pool`: :class:`~gxo.pool.process_pool.ProcessPool`, the local
  executor: start and replace workers, wait on sockets, sentinels and the wake-up fd, pin a
  death on one instance, the TERM → grace → KILL ladder;
- :mod:`gxo.pool.worker`: the child's main loop (render, resolve secrets, run, redact);
- :mod:`gxo.pool.slot`: the shared-memory acknowledgement slot; :mod:`gxo.pool.session`:
  finding and signalling everything a worker started.

Only the protocol is named here, and imported on first use: workers import
:mod:`gxo.pool.worker` without the parent's side, and the ``gxo`` command starts the
forkserver (:mod:`gxo.pool.helpers`, the standard library only) before it imports anything
else.
"""

from __future__ import annotations

import importlib

#: ``typing.TYPE_CHECKING`` without importing typing (and re): the ``gxo`` command imports
#: this package to start the forkserver, before anything else.
TYPE_CHECKING = False

if TYPE_CHECKING:
    from typing import Any

    from gxo.pool.executor import Executor as Executor
    from gxo.pool.executor import ExecutorEvent as ExecutorEvent
    from gxo.pool.executor import Finished as Finished
    from gxo.pool.executor import Lost as Lost
    from gxo.pool.executor import Returned as Returned
    from gxo.pool.executor import Started as Started

__all__ = ["Executor", "ExecutorEvent", "Finished", "Lost", "Returned", "Started"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        return getattr(importlib.import_module("gxo.pool.executor"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
