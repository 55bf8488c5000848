"""Where a worker process starts: the parent names this function, the child imports the rest.

The pool hands ``worker_main`` to multiprocessing as the process target, which the forkserver
(and spawn) receive by reference. Naming it here rather than in :mod:`gxo.pool.worker` keeps
the worker's own imports (module SDK, secrets, redaction, ctypes) out of the parent; the child
forked from the forkserver has them preloaded already.

:func:`launch` starts one (the pool's every worker); :func:`start_ahead` starts the first
one before there is a pool, for :func:`take_ahead` to hand to the pool that asks for a worker
with the same configuration.
"""

from __future__ import annotations

from typing import Any

TYPE_CHECKING = False  # typing.TYPE_CHECKING: see gxo.pool

if TYPE_CHECKING:
    import socket
    from multiprocessing.context import BaseContext
    from multiprocessing.process import BaseProcess

    from gxo.pool.slot import AckSlot
    from gxo.wire import WorkerConfig

    #: A started worker process and the parent's ends of its channels: the process, its
    #: acknowledgement slot, and its control, console and notices sockets.
    Launched = tuple[BaseProcess, AckSlot, socket.socket, socket.socket, socket.socket]

__all__ = ["launch", "start_ahead", "stop_ahead", "take_ahead", "worker_main"]


def worker_main(*args: Any) -> None:
    """Run :func:`gxo.pool.worker.worker_main` with ``args`` (in the worker process)."""
    from gxo.pool.worker import worker_main as main

    main(*args)


def launch(context: BaseContext, config: WorkerConfig | None, oneshot: bool) -> Launched:
    """Start a worker process of ``context`` with ``config``; its parent's ends of its
    channels (blocking, as made: the pool sets them up)."""
    import socket

    from gxo.pool.helpers import main_module_hidden
    from gxo.pool.slot import AckSlot

    control, child_control = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    console, child_console = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    notices, child_notices = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    slot = AckSlot()
    process: BaseProcess = context.Process(  # type: ignore[attr-defined]
        target=worker_main,
        args=(child_control, child_console, slot, config, oneshot, child_notices),
        name="gxo-attempt" if oneshot else "gxo-worker",
    )
    try:
        with main_module_hidden():
            process.start()
    except BaseException:
        for end in (control, console, notices, slot):
            end.close()
        raise
    finally:
        child_control.close()
        child_console.close()
        child_notices.close()
    return process, slot, control, console, notices


#: The worker :func:`start_ahead` started, with its configuration, until a pool takes it
#: (:func:`take_ahead`) or it is stopped (:func:`stop_ahead`).
_ahead: list[tuple[WorkerConfig, Launched]] = []


def start_ahead(config: WorkerConfig) -> bool:
    """Start the run's first pooled worker now, before the pool exists, if the forkserver
    the ``gxo`` command forked is ready (so this does not wait for it); True if started.

    Its start (the fork, the preparation data, its session, its guard, its threads: 6-8 ms)
    then overlaps what the parent does before its pool starts (importing the engine, the
    pool and the scheduler, opening the journal) instead of following it. The pool takes it
    only when it asks for a worker with exactly ``config`` (:func:`take_ahead`); it is the
    same process the pool would have started, only sooner.
    """
    from gxo.pool.helpers import forkserver_ready

    if _ahead or not forkserver_ready():
        return False
    import multiprocessing

    _ahead.append((config, launch(multiprocessing.get_context("forkserver"), config, False)))
    return True


def take_ahead(config: WorkerConfig | None) -> Launched | None:
    """The worker :func:`start_ahead` started, if it was started with ``config``; one with
    another configuration is stopped (the pool starts its own)."""
    if not _ahead:
        return None
    started, launched = _ahead.pop()
    if started == config:
        return launched
    _stop(launched)
    return None


def stop_ahead() -> None:
    """Stop and reap the worker :func:`start_ahead` started, if no pool took it (the run
    ended before its pool started: a usage error, an interrupt)."""
    while _ahead:
        _stop(_ahead.pop()[1])


def _stop(launched: Launched, timeout: float = 5.0) -> None:
    """Close a worker's channels (it exits at their end, as when its pool closes) and
    reap it; SIGKILL it after ``timeout`` seconds."""
    process, slot, control, console, notices = launched
    for end in (control, console, notices):
        end.close()
    process.join(timeout)
    if process.exitcode is None:
        import signal

        from gxo.pool.session import kill_session

        kill_session(process.pid or 0, signal.SIGKILL)
        process.join()
    slot.close()
    process.close()
