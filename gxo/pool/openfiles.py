"""Enough open files for the pool in this process, or a clear refusal before anything runs.

Why a module of its own: the parent holds about seven descriptors per worker process (its
control, console and notices sockets, its acknowledgement slot, its sentinel, the pipes of
its start), so a low ``ulimit -n`` with many ``--workers`` ran out of them while starting the
pool: ``OSError: Too many open files`` out of the pool's start, reported as gxo's own bug
(exit 3) after the run had begun. As the Go original does (its runtime raises the soft
limit to the hard one), the soft limit of *this process* is raised when the pool needs
more; the forkserver, started before, and so the workers and the commands they run, keep
the limit the user set (workers started with ``--start-method spawn`` or ``fork`` inherit
the raised one). Past the hard limit, the run is refused (exit 2), saying what to do.
"""

from __future__ import annotations

from gxo.errors import UsageError

__all__ = ["FILES_PER_WORKER", "FILES_BASE", "ensure_open_files"]

#: Descriptors the parent holds per worker process (seven measured, one to spare).
FILES_PER_WORKER = 8
#: Descriptors the parent holds without workers (its own, the journal, the report, logs,
#: stream pipes in transit), with room to spare.
FILES_BASE = 64


def ensure_open_files(workers: int) -> None:
    """Make sure this process may open enough files for ``workers`` worker processes:
    raise its soft ``RLIMIT_NOFILE`` up to the hard one if needed, or raise
    :class:`~gxo.errors.UsageError` when even the hard limit is too low."""
    import resource

    need = FILES_BASE + FILES_PER_WORKER * workers
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= need:
        return
    if hard == resource.RLIM_INFINITY or hard >= need:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))
            return
        except (OSError, ValueError):
            pass  # refused (a kernel bound below the hard limit): say so below
    raise UsageError(
        f"{workers} worker process{'' if workers == 1 else 'es'} need about {need} open files "
        f"in gxo, and this process may open {soft} (hard limit {hard}): raise the limit "
        f"(ulimit -n {need}) or use fewer workers (--workers)"
    )
