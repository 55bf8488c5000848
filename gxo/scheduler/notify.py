"""The scheduler's listener: what the state machine and the pool report becomes bus events.

:class:`RunObserver` is given to the state at construction (its only listener) and to the
pool's worker callbacks; it builds every event of the run, once, and emits it on the
:class:`~gxo.events.EventBus` (which delivers on its own thread).

Level 4: reads the scheduler's records, emits :mod:`gxo.events`.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from gxo.events import (
    Event,
    EventBus,
    InstanceFinished,
    InstanceStarted,
    RetryScheduled,
    RunFinished,
    RunStarted,
    SecretAccessed,
    StreamEdgeClosed,
    TaskQueued,
    TaskStatusChanged,
    WorkerLost,
    WorkersBusy,
    WorkerSlots,
    WorkerStarted,
)
from gxo.scheduler.records import TERMINAL

if TYPE_CHECKING:
    from gxo.config.model import Playbook
    from gxo.report import ExecutionReport
    from gxo.scheduler.messages import Listener
    from gxo.scheduler.records import InstanceRecord, TaskRecord

__all__ = ["HeldEvents", "RunObserver"]


class RunObserver:
    """The run's events, built once: the state's :class:`~gxo.scheduler.messages.Listener`,
    the pool's worker callbacks, and the run's start and end.

    Every event goes through :meth:`_emit`, which stamps the run id and the time; an
    instance's events name it the same way (:func:`_instance`).

    Created by the engine only when the bus is :attr:`~EventBus.active`.
    """

    def __init__(self, bus: EventBus, run_id: str) -> None:
        self.bus = bus
        self.run_id = run_id
        #: Task name -> the attempts its ``retry`` allows (for the retry events).
        self._retry_attempts: dict[str, int] = {}

    def _emit(self, kind: type[Event], **fields: Any) -> None:
        self.bus.emit(kind(run_id=self.run_id, time=time.time(), **fields))

    def run_started(self, playbook: Playbook, workers: int, dry_run: bool) -> None:
        """``workers``: the worker processes the run starts with."""
        self._retry_attempts = {t.name: t.retry.attempts for t in playbook.tasks}
        self._emit(
            RunStarted,
            playbook=playbook.name,
            tasks=len(playbook.tasks),
            workers=workers,
            dry_run=dry_run,
        )

    def run_finished(self, report: ExecutionReport) -> None:
        self._emit(
            RunFinished,
            status=report.overall_status,
            exit_code=report.exit_code,
            duration=report.duration,
            completed=report.completed_tasks,
            failed=report.failed_tasks,
            skipped=report.skipped_tasks,
            cancelled=report.cancelled_tasks,
        )

    # The four calls below come once or twice per instance: they build their event directly
    # (no ``**fields`` dict, no field left at its default passed again), which halves what an
    # event costs the scheduler's thread.

    def task_queued(self, record: TaskRecord) -> None:
        wanted = self.bus.wanted
        if wanted is not None and TaskQueued not in wanted:
            return  # no subscriber takes it (the gxo command's task lines and progress)
        self.bus.emit(
            TaskQueued(
                run_id=self.run_id,
                time=time.time(),
                task=record.task.name,
                instances=record.total,
            )
        )

    def task_changed(self, record: TaskRecord) -> None:
        duration = queued = 0.0
        attempts = 0
        if record.ended_at is not None:  # a terminal status: run time and time queued
            first, start, end = record.run_span()
            ready = record.ready_at  # ``span`` twice, inlined
            if start is not None and end is not None and end > start:
                duration = end - start
            if ready is not None and first is not None and first > ready:
                queued = first - ready
            attempts = record.attempts_max  # every instance has ended
        self.bus.emit(
            TaskStatusChanged(
                run_id=self.run_id,
                time=time.time(),
                task=record.task.name,
                status=record.status._value_,  # ``.value`` is a property: two calls
                reason=record.reason,
                error=record.error,
                ignored=record.ignored,
                duration=duration,
                instances=record.total,
                queued=queued,
                attempts=attempts,
                cached=record.resumed,
            )
        )

    def instance_started(self, inst: InstanceRecord) -> None:
        attempt = inst.attempts[-1]
        self.bus.emit(
            InstanceStarted(
                run_id=self.run_id,
                time=time.time(),
                task=inst.task,
                instance_id=inst.id,
                label=inst.task if inst.loop_index is None else inst.label,
                attempt=attempt.number,
                worker_pid=attempt.worker_pid,
            )
        )

    def instance_finished(self, inst: InstanceRecord) -> None:
        attempts = inst.attempts
        last = attempts[-1] if attempts else None
        duration = 0.0  # ``span`` of its last attempt, inlined
        if last is not None and last.started_at is not None and last.ended_at is not None:
            duration = last.ended_at - last.started_at
        event = InstanceFinished(
            run_id=self.run_id,
            time=time.time(),
            task=inst.task,
            instance_id=inst.id,
            label=inst.task if inst.loop_index is None else inst.label,
            attempt=len(attempts),
            status=inst.status._value_,  # ``.value`` is a property: two calls
            reason=inst.reason,
            error=inst.error,
            duration=duration if duration > 0.0 else 0.0,
            summary=inst.summary,
            secrets_redacted=inst.secrets_redacted,
            outputs=list(last.outputs) if last is not None and last.outputs else [],
            command=last.command if last is not None else None,
            cwd=last.cwd if last is not None else None,
            exit_code=last.exit_code if last is not None else None,
        )
        self.bus.emit(event)
        for name in inst.secrets_accessed:
            self._emit(SecretAccessed, **_instance(inst), name=name)
        for edge in inst.streams:  # gxo.wire.EdgeStats, as the worker reported them
            self._emit(
                StreamEdgeClosed,
                producer=edge.producer,
                consumer=edge.consumer,
                side=edge.side,
                records=edge.records,
                bytes=edge.bytes,
                drops=edge.drops,
                blocked_seconds=edge.blocked_seconds,
                undelivered=edge.undelivered,
                drained=edge.drained,
            )

    def retry_scheduled(self, inst: InstanceRecord, delay: float) -> None:
        self._emit(
            RetryScheduled,
            **_instance(inst),
            attempt=len(inst.attempts),
            reason=inst.attempt.reason if inst.attempts else "",
            delay=delay,
            error=inst.attempt.error if inst.attempts else "",
            max_attempts=self._retry_attempts.get(inst.task, 0),
        )

    def worker_started(self, pid: int) -> None:
        self._emit(WorkerStarted, pid=pid)

    def worker_lost(self, pid: int, reason: str, instance: str) -> None:
        """``instance``: the label of the instance it was running, empty if none."""
        self._emit(WorkerLost, pid=pid, reason=reason, instance=instance)

    def workers_busy(self, workers: Iterable[tuple[str, str, int, int]]) -> None:
        """The executor's workers as (address, host, slots, busy slots)."""
        self._emit(
            WorkersBusy,
            workers=tuple(
                WorkerSlots(address=a, host=h, slots=slots, busy=busy)
                for a, h, slots, busy in workers
            ),
        )


def _instance(inst: InstanceRecord) -> dict[str, Any]:
    """The fields that name an instance in its events."""
    return {"task": inst.task, "instance_id": inst.id, "label": inst.label}


class HeldEvents:
    """A :class:`~gxo.scheduler.messages.Listener` that holds the notifications about what is
    final until :meth:`flush` (the engine's loop calls it after each dispatch), so building
    their events (~10 µs an instance) does not sit between a worker's result and the dispatch
    of the work it released (a chain's next link).

    Held: an instance that finished and a task that reached its terminal status (neither
    changes again), and a task queued (its name and instance count are set). Anything else
    (a task became Running, an attempt started, a retry) is passed on at once, after what is
    held: ``inner`` gets every call in the order the state made them, and each event says
    what it said before; only its ``time`` is that of the flush. At most :data:`HOLD_LIMIT`
    are held (a dispatch that ends a whole loop restored from the journal).

    The journal's recorder is not behind it: what it reads at an instance's end (its outputs'
    signatures) must be read before a dependent can start. Nothing slow runs while events
    are held: the state calls :meth:`flush` (its ``settle``) before it renders a ``when`` or
    a ``loop`` or consults the journal for ``--resume``, and the recorder before it hashes
    an instance's outputs, so a task's line never waits for that work.
    """

    __slots__ = ("_held", "inner")

    def __init__(self, inner: Listener) -> None:
        self.inner = inner
        self._held: list[tuple[Any, Any]] = []

    def flush(self) -> None:
        """Pass on what is held, in order."""
        while self._held:
            held, self._held = self._held, []
            for call, arg in held:
                call(arg)

    # Each method below holds or passes on inline (no ``_hold`` call, no ``flush`` call when
    # nothing is held): they come five times an instance.

    def task_queued(self, record: TaskRecord) -> None:
        held = self._held
        held.append((self.inner.task_queued, record))
        if len(held) >= HOLD_LIMIT:
            self.flush()

    def task_changed(self, record: TaskRecord) -> None:
        if record.status in TERMINAL:
            held = self._held
            held.append((self.inner.task_changed, record))
            if len(held) >= HOLD_LIMIT:
                self.flush()
            return
        if self._held:
            self.flush()
        self.inner.task_changed(record)

    def instance_started(self, inst: InstanceRecord) -> None:
        if self._held:
            self.flush()
        self.inner.instance_started(inst)

    def instance_finished(self, inst: InstanceRecord) -> None:
        held = self._held
        held.append((self.inner.instance_finished, inst))
        if len(held) >= HOLD_LIMIT:
            self.flush()

    def retry_scheduled(self, inst: InstanceRecord, delay: float) -> None:
        self.flush()
        self.inner.retry_scheduled(inst, delay)


#: Notifications :class:`HeldEvents` holds at most before passing them on.
HOLD_LIMIT = 256
