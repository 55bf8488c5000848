"""What the scheduler knows about each task and task instance: statuses, attempts, outcomes.

These records are the scheduler's memory and, at the end, the source of the run report.
Times are monotonic seconds as passed in by the caller; the engine maps them to wall time.

The records are msgspec Structs rather than dataclasses: a dataclass is built at import by
an ``exec`` of generated code (~0.5-1 ms each, on every run's start-up), a Struct class in
microseconds (benchmarks/README.md, "Start-up, fourth pass").
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

import msgspec

from gxo.config.model import Task

__all__ = [
    "TERMINAL",
    "Attempt",
    "InstanceRecord",
    "Phase",
    "Status",
    "TaskRecord",
    "loop_item_result",
]


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


class Attempt(msgspec.Struct):  # no __dict__: a 100,000-item loop keeps one per item
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
    outputs: list[Any] = msgspec.field(default_factory=list)
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


class InstanceRecord(msgspec.Struct):  # no __dict__: a 100,000-item loop keeps one per item
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
    attempts: list[Attempt] = msgspec.field(default_factory=list)
    #: When it was first queued for a worker (its upstream done, ``loop_control.parallel``
    #: allowing): the time from here to its first attempt's start is time spent queued.
    ready_at: float | None = None
    retry_at: float | None = None
    deadline: float | None = None
    killing: str = ""
    worker_deaths: int = 0
    returns: int = 0
    #: Stream edge counters of the last attempt (``gxo.streams.EdgeStats``).
    streams: list[Any] = msgspec.field(default_factory=list)
    #: Names of the secrets its attempts resolved (reported by the workers; never values).
    secrets_accessed: list[str] = msgspec.field(default_factory=list)
    #: Substitutions redaction made in its attempts (a count, reported by the workers).
    secrets_redacted: int = 0

    @property
    def label(self) -> str:
        """``task`` or ``task[3]`` for a loop iteration."""
        return self.task if self.loop_index is None else f"{self.task}[{self.loop_index}]"

    @property
    def attempt(self) -> Attempt:
        return self.attempts[-1]


def loop_item_result(summary: Any, *, failed: bool, reason: str, error: str | None) -> Any:
    """One loop item's entry in the loop's register (GXO documents a list, in item order).

    A mapping summary gets the item's own ``failed``, ``reason`` and ``error``; a completed
    item whose summary is not a mapping keeps it as it is. The scheduler and ``gxo journal``'s
    prediction (:func:`gxo.journal.resume.predict`) build the list with this one function: a
    resumed run's fingerprints of what reads the register are only equal to the first run's
    when the restored list is the same value.
    """
    if not isinstance(summary, dict):
        if not failed:
            return summary
        summary = {}
    return {**summary, "failed": failed, "reason": reason, "error": error}


def span(start: float | None, end: float | None) -> float:
    """Seconds from ``start`` to ``end``: 0 when either is unknown, never negative (the
    workers' clock readings can come out a hair before the parent's)."""
    return max(0.0, end - start) if start is not None and end is not None else 0.0


class TaskRecord(msgspec.Struct):
    """A task's status, its live instances, and counts of the ones that ended.

    A loop's items become instances only when ``loop_control.parallel`` lets them queue
    (``created`` of ``total``), and with ``SchedulerState(release_finished=True)`` an
    iteration that ended leaves ``instances`` (and the state) once the run's spool has its
    details: what the task still needs of it is counted here (``counts``, ``firsts``, the
    span, the attempts) and, when the task registers, its item's result in ``register``.
    """

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
    #: Its instances that exist now, in the order they were created (item order): all of
    #: them, or with ``release_finished`` those not yet ended (and a few that ended since the
    #: last compaction).
    instances: list[InstanceRecord] = msgspec.field(default_factory=list)
    #: How many instances it has (a loop: its items), and how many exist so far.
    total: int = 0
    created: int = 0
    #: A loop's items and the namespace they are added to (until every item is created).
    items: list[Any] | None = None
    base: dict[str, Any] | None = None
    #: Upstream edges not yet satisfied.
    waiting_on: int = 0
    #: Set when an upstream ends in a way that means this task must not run.
    doomed_by: str = ""
    doomed_reason: str = ""
    #: Instances in phase DONE: the task ends when this reaches ``total``.
    done_count: int = 0
    #: Ended instances per status, and the first (in item order) of each status.
    counts: dict[Status, int] = msgspec.field(default_factory=dict)
    firsts: dict[Status, InstanceRecord] = msgspec.field(default_factory=dict)
    #: Ended instances whose reason is ``resumed`` (restored from the journal).
    resumed: int = 0
    #: Over ended instances: the first attempt's start, the last attempt's end, attempts in
    #: all and the most any one had.
    first_start: float | None = None
    last_end: float | None = None
    attempts_total: int = 0
    attempts_max: int = 0
    #: A registering loop's result per item (None until the item ends): the register.
    register: list[Any] | None = None
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

    def note_ended(self, inst: InstanceRecord) -> None:
        """Count ``inst``, which just ended (its status, attempts and times are final)."""
        status = inst.status
        self.counts[status] = self.counts.get(status, 0) + 1
        first = self.firsts.get(status)
        if first is None or (inst.loop_index or 0) < (first.loop_index or 0):
            self.firsts[status] = inst
        if inst.reason == "resumed":
            self.resumed += 1
        attempts = inst.attempts
        if attempts:
            self.attempts_total += len(attempts)
            self.attempts_max = max(self.attempts_max, len(attempts))
            start, end = attempts[0].started_at, attempts[-1].ended_at
            if start is not None and (self.first_start is None or start < self.first_start):
                self.first_start = start
            if end is not None and (self.last_end is None or end > self.last_end):
                self.last_end = end

    def run_span(self) -> tuple[float | None, float | None, float | None]:
        """``(first_start, start, end)``: its first attempt's start (None if nothing ran) and
        the span its run time covers, to its last attempt's end.

        The one reading of a task's clock for the task line, the report and the HTML report,
        so they agree: attempts' times are the workers' own clock readings. A task that never
        ran spans its ``started_at`` to its ``ended_at`` (zero: both are its end). Ended
        instances are counted in ``first_start``/``last_end``; live ones are looked at here.
        """
        first, last = self.first_start, self.last_end
        for inst in self.instances:  # a loop, not generators: read once or twice per task
            attempts = inst.attempts
            if attempts and inst.phase is not Phase.DONE:
                begun, ended = attempts[0].started_at, attempts[-1].ended_at
                if begun is not None and (first is None or begun < first):
                    first = begun
                if ended is not None and (last is None or ended > last):
                    last = ended
        start = first if first is not None else self.started_at
        return first, start, last if last is not None else self.ended_at
