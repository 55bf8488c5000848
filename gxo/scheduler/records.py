"""What the scheduler knows about each task and task instance: statuses, attempts, outcomes.

These records are the scheduler's memory and, at the end, the source of the run report.
Times are monotonic seconds as passed in by the caller; the engine maps them to wall time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from gxo.config.model import Task

__all__ = ["TERMINAL", "Attempt", "InstanceRecord", "Phase", "Status", "TaskRecord"]


class Status(StrEnum):
    """Task and instance statuses, with GXO's names (visible as ``_gxo.tasks.X.status``)."""

    PENDING = "Pending"
    RUNNING = "Running"
    COMPLETED = "Completed"
    FAILED = "Failed"
    SKIPPED = "Skipped"
    CANCELLED = "Cancelled"


TERMINAL = frozenset({Status.COMPLETED, Status.FAILED, Status.SKIPPED, Status.CANCELLED})


class Phase(StrEnum):
    """Where an instance is in its life, finer than its status."""

    WAITING = "waiting"  # created, held back by loop_control.parallel
    QUEUED = "queued"  # ready to be sent to a worker
    DISPATCHED = "dispatched"  # sent, not yet acknowledged
    RUNNING = "running"  # acknowledged by a worker
    RETRY_WAIT = "retry_wait"  # failed an attempt, waiting for the retry delay
    HELD = "held"  # a producer whose consumers all closed: its end waits for theirs
    DONE = "done"


@dataclass(slots=True)  # no __dict__: a 100,000-item loop keeps one of these per item
class Attempt:
    """One try of one instance."""

    number: int
    started_at: float | None = None
    ended_at: float | None = None
    reason: str = ""
    error: str = ""
    worker_pid: int | None = None
    max_rss_kib: int = 0
    module_duration: float = 0.0
    #: What its commands printed (``gxo.outputs.CapturedOutput``: tails, sizes, log paths).
    outputs: list[Any] = field(default_factory=list)
    #: Processes killed at its end: left behind by a command, or stopped with the instance.
    processes_killed: int = 0
    #: What its module reported it ran (``exec``: argv, directory, exit status), from this
    #: attempt's own summary (:func:`gxo.outputs.command_facts`), or for a killed attempt
    #: from the command file it left; None when it did not say.
    command: list[str] | None = None
    cwd: str | None = None
    exit_code: int | None = None
    #: ``isolation: process``: what it used (``gxo.wire.AttemptUsage``), and its limits.
    usage: Any = None


@dataclass(slots=True)  # no __dict__: a 100,000-item loop keeps one of these per item
class InstanceRecord:
    """One run of a task: the task itself, or one iteration of its loop."""

    id: int
    task: str
    loop_index: int | None
    namespace: dict[str, Any]
    status: Status = Status.PENDING
    phase: Phase = Phase.WAITING
    reason: str = ""
    error: str = ""
    traceback: str = ""
    summary: Any = None
    attempts: list[Attempt] = field(default_factory=list)
    #: When it was first queued for a worker (its upstream done, ``loop_control.parallel``
    #: allowing): the time from here to its first attempt's start is time spent queued.
    ready_at: float | None = None
    retry_at: float | None = None
    deadline: float | None = None
    killing: str = ""
    worker_deaths: int = 0
    returns: int = 0
    #: Stream edge counters of the last attempt (``gxo.streams.EdgeStats``).
    streams: list[Any] = field(default_factory=list)
    #: Names of the secrets its attempts resolved (reported by the workers; never values).
    secrets_accessed: list[str] = field(default_factory=list)
    #: Substitutions redaction made in its attempts (a count, reported by the workers).
    secrets_redacted: int = 0

    @property
    def label(self) -> str:
        """``task`` or ``task[3]`` for a loop iteration."""
        return self.task if self.loop_index is None else f"{self.task}[{self.loop_index}]"

    @property
    def attempt(self) -> Attempt:
        return self.attempts[-1]


@dataclass
class TaskRecord:
    """A task's status and its instances."""

    task: Task
    status: Status = Status.PENDING
    reason: str = ""
    error: str = ""
    ignored: bool = False
    #: When its upstream was done and its instances were queued for workers (still Pending).
    ready_at: float | None = None
    #: When its first instance started on a worker (it became Running), or when it ended
    #: without ever running; its clock and its run time count from here.
    started_at: float | None = None
    ended_at: float | None = None
    instances: list[InstanceRecord] = field(default_factory=list)
    #: Upstream edges not yet satisfied.
    waiting_on: int = 0
    #: Set when an upstream ends in a way that means this task must not run.
    doomed_by: str = ""
    doomed_reason: str = ""
    #: Index of the first instance that may still be WAITING: instances leave WAITING in
    #: order, so everything before it has been queued (see ``SchedulerState._queue_more``).
    next_waiting: int = 0
    #: Instances in phase DONE: the task ends when this reaches ``len(instances)``.
    done_count: int = 0
    #: Mean module duration so far, to decide whether instances may queue behind others.
    duration_total: float = 0.0
    duration_count: int = 0
    #: When the task's ``timeout`` expires: its first attempt's start plus ``timeout``.
    deadline: float | None = None
    #: The task's ``timeout`` expired: nothing more of it runs, and it fails ``timed_out``.
    timed_out: bool = False

    @property
    def name(self) -> str:
        return self.task.name

    def run_span(self) -> tuple[float | None, float | None, float | None]:
        """``(first_start, start, end)``: its first attempt's start (None if nothing ran) and
        the span its run time covers, to its last attempt's end.

        The one reading of a task's clock for the task line, the report and the HTML report,
        so they agree: attempts' times are the workers' own clock readings. A task that never
        ran spans its ``started_at`` to its ``ended_at`` (zero: both are its end).
        """
        instances = self.instances
        if len(instances) == 1:  # most tasks: no lists, no generators
            attempts = instances[0].attempts
            first = attempts[0].started_at if attempts else None
            last = attempts[-1].ended_at if attempts else None
            return (
                first,
                first if first is not None else self.started_at,
                last if last is not None else self.ended_at,
            )
        starts = [i.attempts[0].started_at for i in self.instances if i.attempts]
        ends = [i.attempts[-1].ended_at for i in self.instances if i.attempts]
        first = min((t for t in starts if t is not None), default=None)
        last = max((t for t in ends if t is not None), default=None)
        start = first if first is not None else self.started_at
        return first, start, last if last is not None else self.ended_at
