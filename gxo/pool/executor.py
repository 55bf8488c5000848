"""What runs task instances, as the scheduler's loop sees it: one protocol and its events.

The loop (:mod:`gxo.scheduler.loop`) drives any executor through :class:`Executor`: it submits
:class:`~gxo.wire.Run` messages while the executor has room, cancels instances, and blocks in
:meth:`Executor.wait`, which returns what happened as :data:`ExecutorEvent` values. The
executor knows nothing of the scheduler; the loop turns its events into the state machine's
inputs. :class:`gxo.pool.ProcessPool` is the local implementation; a Dask cluster is another
(a backend implements this module's protocol and nothing else).

Events, in the order things happened:

- :class:`Started`: the instance is running now, in the process ``pid`` (an executor tells
  this as soon as it knows: at once for an idle worker, or when the instance before it ends);
- :class:`Finished`: the attempt ended and its result (a :class:`~gxo.wire.Done`) arrived;
- :class:`Lost`: the process running it died or was killed (``reason`` from
  :mod:`gxo.reasons`: ``worker_signaled(SIGSEGV)``, ``timed_out`` …), with what its command
  printed before that and how many processes were killed with it;
- :class:`Returned`: it was sent to a worker that died before starting it: dispatch it again.

Level 3: imports :mod:`gxo.wire`, :mod:`gxo.outputs` and the pipe maker of :mod:`gxo.streams`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import NamedTuple, Protocol

import msgspec

from gxo.outputs import CapturedOutput
from gxo.wire import AttemptUsage, Done, Run

__all__ = [
    "Executor",
    "ExecutorEvent",
    "Finished",
    "Lost",
    "Returned",
    "Started",
    "stream_pipes",
    "submit_with_pipes",
]


# The two events of every instance are Structs, not NamedTuples: a NamedTuple is built by a
# Python ``__new__`` (two calls an event, twice an instance, on the parent's busiest path).


class Started(msgspec.Struct, frozen=True, gc=False):
    """The instance is running now in the worker ``pid``."""

    instance_id: int
    pid: int


class Finished(msgspec.Struct, frozen=True):
    """The instance's attempt ended and the worker sent its result."""

    done: Done


class Lost(NamedTuple):
    """The worker died (or was killed) while running the instance.

    ``outputs``: what its command printed before the end (from the result when the worker
    still sent one, else from the attempt's log files); ``processes_killed``: how many
    processes other than the worker were signalled to stop it.
    """

    instance_id: int
    reason: str
    detail: str
    outputs: Sequence[CapturedOutput] = ()
    processes_killed: int = 0
    #: The command it ran and where, and its exit status when it ended in the grace period
    #: (from its result, else its command file; None when unknown).
    command: list[str] | None = None
    cwd: str | None = None
    exit_code: int | None = None
    #: ``isolation: process``: what the attempt used until it ended.
    usage: AttemptUsage | None = None


class Returned(NamedTuple):
    """The instance was sent to a worker that died before starting it: dispatch it again."""

    instance_id: int


ExecutorEvent = Started | Finished | Lost | Returned


class Executor(Protocol):
    """A backend that runs task instances (the local process pool; later a Dask cluster)."""

    def free_slots(self, *, queue_behind: bool = False, depth: int = 2) -> int:
        """How many instances :meth:`submit` would accept now.

        Without ``queue_behind``, idle workers only; with it, instances may also wait behind
        others on a busy worker, up to ``depth`` per worker (short tasks start without a
        round trip).
        """
        ...

    def submit(
        self, run: Run, *, queue_behind: bool = False, depth: int = 2, fds: Sequence[int] = ()
    ) -> bool:
        """Queue ``run``; False when nothing can take it. ``fds`` (stream pipe ends, owned by
        the executor from now on) travel with it. Nothing is sent before :meth:`flush`."""
        ...

    def submit_group(self, runs: Sequence[Run]) -> bool:
        """Queue a stream group's runs to start together, with a pipe per stream edge between
        them (made where they run: here for local processes, on the node for a cluster).
        False when the group cannot start now."""
        ...

    def flush(self) -> None:
        """Send everything submitted since the last flush."""
        ...

    def cancel(self, instance_id: int, reason: str) -> None:
        """Stop the instance (TERM, grace, KILL); it ends as ``Lost`` with ``reason``."""
        ...

    def wait(self, timeout: float | None) -> list[ExecutorEvent]:
        """Block until something happens or ``timeout`` seconds pass; what happened."""
        ...

    def hurry(self) -> None:
        """Skip the rest of every grace period (a second Ctrl-C)."""
        ...

    def wind_down(self) -> None:
        """Nothing new will be submitted (the run was interrupted or is draining): a worker
        that dies from now on is not replaced."""
        ...


def stream_pipes(runs: Sequence[Run]) -> list[list[int]]:
    """One pipe per stream edge of a group: the ends each run needs, in the order its
    ``inputs`` and ``outputs`` list them (read ends of its inputs, then write ends).

    :mod:`gxo.streams` is imported here, by the first stream group: a run without streams
    does not load the package (~1.5 ms of the parent's start-up)."""
    from gxo.streams.channel import make_pipe

    pipes: dict[tuple[str, str], tuple[int, int]] = {}
    try:
        for run in runs:
            for output in run.outputs:
                pipes[run.task_name, output.consumer] = make_pipe(output.overflow_strategy)
    except BaseException:
        for read_fd, write_fd in pipes.values():
            os.close(read_fd)
            os.close(write_fd)
        raise
    ends = []
    for run in runs:
        fds = [pipes[producer, run.task_name][0] for producer in run.inputs]
        fds += [pipes[run.task_name, output.consumer][1] for output in run.outputs]
        ends.append(fds)
    return ends


def submit_with_pipes(executor: Executor, runs: Sequence[Run]) -> bool:
    """Submit a stream group's runs, each with its pipe ends (:func:`stream_pipes`).

    For executors whose instances run in processes of this machine. The executor owns the
    ends once submitted and closes its copies after sending them, so only the producer holds
    a write end and only the consumer its read end.
    """
    accepted = True
    for run, fds in zip(runs, stream_pipes(runs), strict=True):
        accepted = executor.submit(run, fds=fds) and accepted
    return accepted
