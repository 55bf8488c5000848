"""The scheduler's typed inputs and instructions, and the listener it notifies.

::

    inputs (each with a stimulus id)           instructions out
    ────────────────────────────────           ────────────────
    AttemptStarted(instance, pid)      ──►
    AttemptFinished(outcome)           ──►     Kill(instance, reason)
    AttemptLost(instance, reason)      ──►     Dispatch(instance, task, namespace, …)
    InstanceReturned(instance)         ──►

A stimulus id names the event that caused a decision (the loop numbers the executor's events;
timers and interrupts have their own), so a kill or a retry can be traced back to it. The
attempt outcome is the worker's :class:`~gxo.wire.Done` as it arrived, whatever executor
carried it. Nothing here refers to a pool or builds a wire message: the loop turns a
:class:`Dispatch` into a :class:`~gxo.wire.Run`.

Level 3: imports the model, :mod:`gxo.wire` (the outcome's type) and :mod:`gxo.outputs` only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

import msgspec

from gxo.config.model import Task
from gxo.outputs import CapturedOutput
from gxo.wire import AttemptUsage, Done

if TYPE_CHECKING:
    from gxo.scheduler.records import InstanceRecord, TaskRecord

__all__ = [
    "AttemptFinished",
    "AttemptLost",
    "AttemptStarted",
    "Capacity",
    "Dispatch",
    "Input",
    "InstanceReturned",
    "Kill",
    "Listener",
    "StreamEdge",
]


class AttemptStarted(msgspec.Struct, frozen=True, gc=False):
    """An executor started the instance's next attempt in process ``pid``."""

    instance_id: int
    pid: int
    stimulus_id: int = 0


class AttemptFinished(msgspec.Struct, frozen=True):
    """The attempt ended and its (redacted) outcome arrived."""

    outcome: Done
    stimulus_id: int = 0


class AttemptLost(msgspec.Struct, frozen=True, gc=False):
    """The process running the attempt died or was killed; ``reason`` says how.

    ``outputs``: what its command printed before that (tails, sizes, log paths);
    ``processes_killed``: how many processes it had started were killed with it.
    """

    instance_id: int
    reason: str
    detail: str
    stimulus_id: int = 0
    outputs: tuple[CapturedOutput, ...] = ()
    processes_killed: int = 0
    #: The command it ran, where, and its exit status, when known (see ``executor.Lost``).
    command: tuple[str, ...] | None = None
    cwd: str | None = None
    exit_code: int | None = None
    #: ``isolation: process``: what the attempt used until it ended.
    usage: AttemptUsage | None = None


class InstanceReturned(msgspec.Struct, frozen=True, gc=False):
    """The instance was handed back unstarted (its worker died first)."""

    instance_id: int
    stimulus_id: int = 0


Input = AttemptStarted | AttemptFinished | AttemptLost | InstanceReturned


class Kill(NamedTuple):
    """Instruction: stop this running instance (its worker is replaced)."""

    instance_id: int
    reason: str
    stimulus_id: int = 0


class StreamEdge(NamedTuple):
    """One stream output of an instance, with its consumer's ``channel_policy``."""

    consumer: str
    buffer_size: int
    overflow_strategy: str


class Dispatch(msgspec.Struct, frozen=True):
    """Instruction: run the instance's next attempt.

    ``queue_behind``: it may wait behind another instance on a busy worker (short tasks).
    ``inputs``/``outputs``: the stream edges of a stream group's member; the members of one
    group are dispatched together, in one batch, each to its own idle worker.
    """

    instance_id: int
    task: Task
    namespace: dict[str, Any]
    attempt: int
    loop_index: int | None
    label: str
    queue_behind: bool = False
    inputs: tuple[str, ...] = ()
    outputs: tuple[StreamEdge, ...] = ()
    skip_on_no_input: bool = False


class Capacity(NamedTuple):
    """How many instances the executor takes now: on idle workers, and when short ones may
    also wait behind others (``Executor.free_slots`` with and without ``queue_behind``)."""

    idle: int
    pipelined: int


class Listener(Protocol):
    """Told what the state machine decided; given once, at construction.

    Called on the scheduler's thread, in the order things happen; it must not change the state
    (the run's :class:`gxo.scheduler.notify.RunObserver` turns the calls into bus events).
    """

    def task_queued(self, record: TaskRecord) -> None:
        """The task's instances were queued for workers (it is still Pending)."""

    def task_changed(self, record: TaskRecord) -> None:
        """The task became Running (its first instance started), or reached its terminal
        status."""

    def instance_started(self, inst: InstanceRecord) -> None:
        """An attempt of the instance started (``inst.attempt`` is it)."""

    def instance_finished(self, inst: InstanceRecord) -> None:
        """The instance reached its final status."""

    def retry_scheduled(self, inst: InstanceRecord, delay: float) -> None:
        """The failed attempt will be tried again after ``delay`` seconds."""
