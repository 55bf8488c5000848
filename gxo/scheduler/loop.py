"""The scheduler's only I/O: feed executor events into the state machine, carry out its kills.

The loop dispatches while the executor has room, then blocks in ``executor.wait`` until a
worker reports, a worker dies, a deadline (retry, timeout, playbook timeout) comes due, or a
signal arrives through the wake-up fd. It ends as soon as every task is terminal: no tick,
no stall detector.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from typing import Protocol

from gxo.pool.process_pool import Finished, Lost, PoolEvent, Returned, Started
from gxo.pool.protocol import Run
from gxo.scheduler.state import Kill, SchedulerState
from gxo.streams.channel import make_pipe

__all__ = ["Executor", "Interrupts", "run_loop"]

#: Instances of a task whose mean run time is under this may queue behind another instance
#: on a busy worker, so the worker starts them without waiting for a round trip.
SHORT_TASK_SECONDS = 0.005

#: How many instances of short tasks a worker may hold at once (one running, the rest queued).
PIPELINE_DEPTH = 8


class Executor(Protocol):
    """What the loop needs from a backend (the process pool; later a Dask cluster)."""

    def free_slots(self, *, queue_behind: bool = False, depth: int = 2) -> int: ...

    def submit(
        self, run: Run, *, queue_behind: bool = False, depth: int = 2, fds: Sequence[int] = ()
    ) -> bool: ...

    def flush(self) -> None: ...

    def cancel(self, instance_id: int, reason: str) -> None: ...

    def wait(self, timeout: float | None) -> list[PoolEvent]: ...

    def hurry(self) -> None: ...


class Interrupts(Protocol):
    """Signals received so far (set by the engine's handlers)."""

    @property
    def count(self) -> int: ...


def run_loop(
    state: SchedulerState,
    executor: Executor,
    *,
    interrupts: Interrupts | None = None,
    run_timeout: float | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Drive ``state`` to the end of the run on ``executor``."""
    now = clock()
    run_deadline = now + run_timeout if run_timeout else None
    state.start(now)
    hurried = False
    while not state.is_finished():
        signals = interrupts.count if interrupts is not None else 0
        if signals and not state.interrupted:
            _kill(executor, state.interrupt("interrupted", now))
        if signals > 1 and not hurried:
            hurried = True
            executor.hurry()  # a second Ctrl-C: no more grace
        if run_deadline is not None and now >= run_deadline and not state.interrupted:
            _kill(executor, state.interrupt("run_timed_out", now))
        if state.is_finished():
            break
        _dispatch(state, executor)
        events = executor.wait(_timeout(state, run_deadline, now))
        now = clock()
        kills: list[Kill] = []
        for event in events:
            if isinstance(event, Finished):
                state.finished_attempt(event.done, now)
            elif isinstance(event, Started):
                kills += state.started(event.instance_id, event.pid, now)
            elif isinstance(event, Lost):
                state.lost(
                    event.instance_id,
                    event.reason,
                    event.detail,
                    now,
                    event.outputs,
                    event.processes_killed,
                )
            elif isinstance(event, Returned):
                state.returned(event.instance_id, now)
        kills += state.tick(now)
        _kill(executor, kills)


def _dispatch(state: SchedulerState, executor: Executor) -> None:
    """Hand ready instances to the executor while it has room, then write them at once."""
    while state.has_ready():
        group = state.peek_ready_group()
        if group:
            if executor.free_slots() < group:
                break  # a stream group starts on that many idle workers at once
            _submit_group(executor, [state.make_run(i) for i in state.take_group()])
            continue
        task = state.peek_ready_task()
        short = task.timeout is None and state.is_short(task, SHORT_TASK_SECONDS)
        room = executor.free_slots(queue_behind=short, depth=PIPELINE_DEPTH)
        if not room:
            break
        for _ in range(room):
            inst = state.take_ready()
            if inst is None:
                break
            executor.submit(state.make_run(inst), queue_behind=short, depth=PIPELINE_DEPTH)
            if not state.has_ready() or state.peek_ready_task() is not task:
                break
    executor.flush()


def _submit_group(executor: Executor, runs: list[Run]) -> None:
    """Create one pipe per stream edge of the group and send each end with its run.

    The executor owns the ends once submitted and closes its copies after sending them, so
    only the producer holds a write end and only the consumer its read end.
    """
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
    for run in runs:
        fds = [pipes[producer, run.task_name][0] for producer in run.inputs]
        fds += [pipes[run.task_name, output.consumer][1] for output in run.outputs]
        executor.submit(run, fds=fds)


def _kill(executor: Executor, kills: list[Kill]) -> None:
    for kill in kills:
        executor.cancel(kill.instance_id, kill.reason)


def _timeout(state: SchedulerState, run_deadline: float | None, now: float) -> float | None:
    deadlines = [d for d in (state.next_deadline(), run_deadline) if d is not None]
    if not deadlines:
        return None
    return max(0.0, min(deadlines) - now)
