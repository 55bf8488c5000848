"""Writes the run journal as the scheduler's instances and tasks end (level 4: does I/O).

It listens to the state machine's ``on_instance_end``/``on_task_end`` callbacks (chained after
whatever was there) and appends, through :class:`gxo.journal.JournalWriter`:

- an ``instance`` record for each instance that completed by running (not one reused from the
  journal, not a dry run): its fingerprint, the run time of its last attempt, its redacted
  result, whether a secret was masked in it, and its declared outputs' signatures;
- a ``task`` record for each task that completed with a register: the register's final value,
  so a later partial run that leaves the task out can restore it.

The run's first and last records say when it started and with which exit code.
"""

from __future__ import annotations

import time
from collections.abc import Callable
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
    from gxo.scheduler.partial import RunControl
    from gxo.scheduler.state import SchedulerState

__all__ = ["JournalRecorder"]


def _chain(
    first: Callable[[TaskRecord], None] | None, second: Callable[[TaskRecord], None]
) -> Callable[[TaskRecord], None]:
    if first is None:
        return second

    def both(record: TaskRecord) -> None:
        first(record)
        second(record)

    return both


class JournalRecorder:
    """Appends a run's records to its journal; attach with :meth:`attach`."""

    def __init__(
        self, writer: JournalWriter, control: RunControl, run_id: str, playbook: str
    ) -> None:
        self.writer = writer
        self.control = control
        self.run_id = run_id
        writer.append(RunEntry(run=run_id, playbook=playbook, gxo=__version__, at=time.time()))

    def attach(self, state: SchedulerState) -> None:
        """Listen to ``state`` (after the observers already listening)."""
        self.state = state
        previous = state.on_instance_end
        if previous is None:
            state.on_instance_end = self.instance_ended
        else:

            def both(inst: InstanceRecord) -> None:
                previous(inst)
                self.instance_ended(inst)

            state.on_instance_end = both
        state.on_task_end = _chain(state.on_task_end, self.task_ended)

    def instance_ended(self, inst: InstanceRecord) -> None:
        if inst.status is not Status.COMPLETED or inst.reason or not inst.attempts:
            return
        fingerprint = self.control.fingerprints.get(inst.id)
        fingerprinter = self.control.fingerprinter
        if fingerprint is None or fingerprinter is None:
            return
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
