"""The no-op function every Python-task benchmark calls (gxo's ``python`` module and the floors).

gxo reaches it as ``/abs/path/benchmarks/noop_tasks.py:noop``; the stdlib floors import it
(``multiprocessing.Pool`` pickles it by reference). It accepts and ignores any arguments, so a
chained task can pass the previous task's register to it.
"""

from __future__ import annotations

from typing import Any


def noop(*args: Any, **kwargs: Any) -> None:
    """Do nothing and return None (the smallest possible summary)."""
