"""The scheduler's only I/O: executor events in as the state's inputs, its instructions out.

::

    executor.wait() ──► Started/Finished/Lost/Returned ──► state.handle(Attempt…, now)
                                                                  │
    executor.submit(Run) ◄── Run (+ trace context) ◄── Dispatch ◄─┤ state.dispatch(capacity)
    executor.cancel(id)  ◄──────────────────────────── Kill ◄─────┘ (handle, tick, interrupt)

The loop dispatches while the executor has room, then blocks in ``executor.wait`` until a
worker reports, a worker dies, a deadline (retry, timeout, playbook timeout) comes due, or a
signal arrives through the wake-up fd. It ends as soon as every task is terminal: no tick,
no stall detector. It is the one place that builds a :class:`~gxo.wire.Run`, and the one that
numbers stimuli (each executor event, tick and interrupt gets the next id).

Level 4: drives any :class:`gxo.pool.Executor`; knows no particular one.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Protocol

from gxo.config.model import Task
from gxo.pool.executor import Executor, ExecutorEvent, Finished, Lost, Started
from gxo.scheduler.messages import (
    AttemptFinished,
    AttemptLost,
    AttemptStarted,
    Capacity,
    Dispatch,
    Input,
    InstanceReturned,
    Kill,
)
from gxo.scheduler.state import SchedulerState
from gxo.wire import Run, RunLimits, StreamOutput

__all__ = ["Interrupts", "run_loop"]

#: How many instances of short tasks a worker may hold at once (one running, the rest queued).
PIPELINE_DEPTH = 8

#: The W3C ``traceparent`` of an instance's span (when tracing is on).
TraceParent = Callable[[Dispatch], str]


class Interrupts(Protocol):
    """Signals received so far (set by the engine's handlers)."""

    @property
    def count(self) -> int: ...

    #: SIGUSR1/SIGUSR2 received: drain (start nothing new, let running instances finish).
    @property
    def drain(self) -> bool: ...


def run_loop(
    state: SchedulerState,
    executor: Executor,
    *,
    interrupts: Interrupts | None = None,
    run_timeout: float | None = None,
    clock: Callable[[], float] = time.monotonic,
    traceparent: TraceParent | None = None,
    housekeeping: Callable[[], float | None] | None = None,
) -> None:
    """Drive ``state`` to the end of the run on ``executor``.

    ``housekeeping`` (the report entries of ended instances, the journal's batch writes) is
    called after each dispatch, so it never delays one, and returns in how many seconds it
    wants to be called again (None: only when something happens): the wait never lasts
    longer, so a batch is written on time even when the run is quiet.
    """
    to_run = _run_messages(state, traceparent)
    stimulus = 0
    now = clock()
    run_deadline = now + run_timeout if run_timeout else None
    state.start(now)
    hurried = wound_down = False
    while not state.is_finished():
        signals = interrupts.count if interrupts is not None else 0
        if signals and state.stoppable:
            stimulus += 1
            _kill(executor, state.interrupt("interrupted", now, stimulus))
        if signals > 1 and not hurried:
            hurried = True
            executor.hurry()  # a second Ctrl-C: no more grace
        if run_deadline is not None and now >= run_deadline and state.stoppable:
            stimulus += 1
            _kill(executor, state.interrupt("run_timed_out", now, stimulus))
        if not state.interrupted:
            if interrupts is not None and getattr(interrupts, "drain", False):
                state.drain("drained", now)
            elif state.run_control.past_deadline(now):
                state.drain("deadline", now)
        if state.is_finished():
            break
        if state.interrupted and not wound_down:
            wound_down = True  # a signal, the run timeout, a drain or fail-fast
            executor.wind_down()
        _dispatch(state, executor, to_run, now)
        if state.is_finished():
            break  # everything left was restored from the journal or cancelled
        timeout = _timeout(state, run_deadline, now)
        if housekeeping is not None:
            again = housekeeping()
            if again is not None:
                timeout = again if timeout is None else min(timeout, again)
        events = executor.wait(timeout)
        now = clock()
        kills: list[Kill] = []
        finished, started = state.attempt_finished, state.attempt_started
        for event in events:
            stimulus += 1
            # The two events of every instance first: no input message, no type tests.
            if isinstance(event, Finished):
                kills += finished(event.done, stimulus, now)
            elif isinstance(event, Started):
                kills += started(event.instance_id, event.pid, stimulus, now)
            else:
                kills += state.handle(_as_input(event, stimulus), now)
        stimulus += 1
        kills += state.tick(now, stimulus)
        _kill(executor, kills)


def _as_input(event: ExecutorEvent, stimulus: int) -> Input:
    """The state machine's input for one executor event."""
    if isinstance(event, Finished):
        return AttemptFinished(event.done, stimulus)
    if isinstance(event, Started):
        return AttemptStarted(event.instance_id, event.pid, stimulus)
    if isinstance(event, Lost):
        return AttemptLost(
            event.instance_id,
            event.reason,
            event.detail,
            stimulus,
            outputs=tuple(event.outputs),
            processes_killed=event.processes_killed,
            command=None if event.command is None else tuple(event.command),
            cwd=event.cwd,
            exit_code=event.exit_code,
            usage=event.usage,
        )
    return InstanceReturned(event.instance_id, stimulus)


def _run_messages(
    state: SchedulerState, traceparent: TraceParent | None
) -> Callable[[Dispatch], Run]:
    """The function that turns a Dispatch instruction into the Run message a worker gets."""
    source = state.playbook.source
    playbook_dir = os.path.dirname(os.path.abspath(source)) if source[:1] != "<" else ""
    dry_run = state.dry_run
    isolated = {
        task.name: run_limits(task) for task in state.playbook.tasks if task.isolation == "process"
    }

    def to_run(d: Dispatch) -> Run:
        task = d.task
        return Run(
            instance_id=d.instance_id,
            task_index=task.index,
            task_name=task.name,
            module=task.type,
            params=task.params,
            namespace=d.namespace,
            attempt=d.attempt,
            loop_index=d.loop_index,
            dry_run=dry_run,
            playbook_dir=playbook_dir,
            inputs=d.inputs,
            outputs=tuple(StreamOutput(*edge) for edge in d.outputs) if d.outputs else (),
            skip_on_no_input=d.skip_on_no_input,
            traceparent=traceparent(d) if traceparent is not None else "",
            output_limit=task.limits.output or 0,
            isolated=isolated.get(task.name),
            output=task.output,
        )

    return to_run


def run_limits(task: Task) -> RunLimits:
    """What an ``isolation: process`` task's fresh process is held to (0: no limit)."""
    limits = task.limits
    return RunLimits(
        memory=limits.memory or 0,
        cpu=limits.cpu or 0.0,
        open_files=limits.open_files or 0,
        processes=limits.processes or 0,
        file_size=limits.file_size or 0,
        no_network=not task.network,
    )


def _dispatch(
    state: SchedulerState,
    executor: Executor,
    to_run: Callable[[Dispatch], Run],
    now: float = 0.0,
) -> None:
    """Hand the state's dispatches to the executor while it has room, then write them at once."""
    free_slots = executor.free_slots
    while True:
        capacity = Capacity(free_slots(), free_slots(queue_behind=True, depth=PIPELINE_DEPTH))
        batch = state.dispatch(capacity, now)
        if not batch:
            break
        if batch[0].inputs or batch[0].outputs:
            executor.submit_group([to_run(d) for d in batch])
            continue
        submit = executor.submit
        for d in batch:
            submit(to_run(d), queue_behind=d.queue_behind, depth=PIPELINE_DEPTH)
    executor.flush()


def _kill(executor: Executor, kills: list[Kill]) -> None:
    for kill in kills:
        executor.cancel(kill.instance_id, kill.reason)


def _timeout(state: SchedulerState, run_deadline: float | None, now: float) -> float | None:
    control = state.run_control
    stop_starting = (
        control.deadline - control.grace
        if control.deadline is not None and not state.interrupted
        else None
    )
    deadlines = [d for d in (state.next_deadline(), run_deadline, stop_starting) if d is not None]
    if not deadlines:
        return None
    return max(0.0, min(deadlines) - now)
