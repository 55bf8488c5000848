"""Where a worker process starts: the parent names this function, the child imports the rest.

The pool hands ``worker_main`` to multiprocessing as the process target, which the forkserver
(and spawn) receive by reference. Naming it here rather than in :mod:`gxo.pool.worker` keeps
the worker's own imports (module SDK, secrets, redaction, ctypes) out of the parent; the child
forked from the forkserver has them preloaded already.
"""

from __future__ import annotations

from typing import Any

__all__ = ["worker_main"]


def worker_main(*args: Any) -> None:
    """Run :func:`gxo.pool.worker.worker_main` with ``args`` (in the worker process)."""
    from gxo.pool.worker import worker_main as main

    main(*args)
