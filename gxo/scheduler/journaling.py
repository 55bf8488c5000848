"""Writes the run journal as the scheduler's instances and tasks end (level 4: does I/O).

It is the state machine's listener (passing every notification on to the run's observer) and
appends, through :class:`gxo.journal.JournalWriter`:

- an ``instance`` record for each instance that completed by running (not one reused from the
  journal, not a dry run): its fingerprint, the run time of its last attempt, its redacted
  result, whether a secret was masked in it, and its declared outputs' signatures;
- a ``task`` record for each task that completed with a register: the register's final value,
  so a later partial run that leaves the task out can restore it.

The run's first and last records say when it started and with which exit code.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from gxo._version import __version__
from gxo.journal import (
    EndEntry,
    InstanceEntry,
    JournalWriter,
    RunEntry,
    TaskEntry,
    has_redacted,
)
from gxo.scheduler.records import InstanceRecord, Status, TaskRecord

if TYPE_CHECKING:
    from gxo.scheduler.messages import Listener
    from gxo.scheduler.partial import RunControl
    from gxo.scheduler.state import SchedulerState

__all__ = ["JournalRecorder"]


class JournalRecorder:
    """Appends a run's records to its journal: the state machine's listener, passing every
    notification on to ``inner`` (the run's observer) first."""

    def __init__(
        self,
        writer: JournalWriter,
        control: RunControl,
        run_id: str,
        playbook: str,
        inner: Listener | None = None,
    ) -> None:
        self.writer = writer
        self.control = control
        self.run_id = run_id
        self.inner = inner
        self.state: SchedulerState | None = None
        writer.append(RunEntry(run=run_id, playbook=playbook, gxo=__version__, at=time.time()))

    def bind(self, state: SchedulerState) -> None:
        """The state this recorder listens to (its store holds the registers)."""
        self.state = state

    # -- Listener ----------------------------------------------------------------------------

    def task_queued(self, record: TaskRecord) -> None:
        if self.inner is not None:
            self.inner.task_queued(record)

    def task_changed(self, record: TaskRecord) -> None:
        if self.inner is not None:
            self.inner.task_changed(record)
        if record.status is Status.COMPLETED:
            self.task_ended(record)

    def instance_started(self, inst: InstanceRecord) -> None:
        if self.inner is not None:
            self.inner.instance_started(inst)

    def instance_finished(self, inst: InstanceRecord) -> None:
        if self.inner is not None:
            self.inner.instance_finished(inst)
        self.instance_ended(inst)

    def retry_scheduled(self, inst: InstanceRecord, delay: float) -> None:
        if self.inner is not None:
            self.inner.retry_scheduled(inst, delay)

    # -- records -----------------------------------------------------------------------------

    def instance_ended(self, inst: InstanceRecord) -> None:
        if inst.status is not Status.COMPLETED or inst.reason or not inst.attempts:
            return
        fingerprint = self.control.fingerprints.get(inst.id)
        fingerprinter = self.control.fingerprinter
        if fingerprint is None or fingerprinter is None:
            return
        assert self.state is not None
        task = self.state.tasks[inst.task].task
        attempt = inst.attempt
        duration = (
            attempt.ended_at - attempt.started_at
            if attempt.ended_at is not None and attempt.started_at is not None
            else attempt.module_duration
        )
        self.writer.append(
            InstanceEntry(
                run=self.run_id,
                task=inst.task,
                fingerprint=fingerprint.value,
                parts=fingerprint.parts,
                duration=max(0.0, duration),
                at=time.time(),
                loop_index=inst.loop_index,
                value=inst.summary,
                redacted=has_redacted(inst.summary),
                outputs=fingerprinter.signatures(task.outputs) if task.outputs else {},
            )
        )

    def task_ended(self, record: TaskRecord) -> None:
        task = record.task
        if record.status is not Status.COMPLETED or task.register is None:
            return
        if record.reason == "resumed" or self.control.fingerprinter is None:
            return
        assert self.state is not None
        value = self.state.store.get(task.register)
        self.writer.append(
            TaskEntry(
                run=self.run_id,
                task=task.name,
                definition=self.control.fingerprinter.definition(task),
                at=time.time(),
                value=value,
                redacted=has_redacted(value),
                instances=len(record.instances),
            )
        )

    def close(self, exit_code: int) -> None:
        """The run's last record; flushes and releases the journal."""
        try:
            self.writer.append(EndEntry(run=self.run_id, exit_code=exit_code, at=time.time()))
        finally:
            self.writer.close()
