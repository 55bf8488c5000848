"""Writes the run journal as the scheduler's instances and tasks end (level 4: does I/O).

It is the state machine's listener (passing every notification on to the run's observer) and
appends, through :class:`gxo.journal.JournalWriter`:

- an ``instance`` record for each instance that completed by running (not one reused from the
  journal, not a dry run): its fingerprint, the run time of its last attempt, its redacted
  result, whether a secret was masked in it, and its declared outputs' signatures;
- a ``task`` record for each task that completed with a register: the register's final value,
  so a later partial run that leaves the task out can restore it.

The run's first and last records say when it started and with which exit code.

Why an instance's record is built late: the fingerprint, the record and its encoding cost
the parent ~25 µs per instance when done as each instance ends, interleaved with the
scheduler's own work; put off to the batch write (:class:`gxo.journal.Pending`, once a
second), the same work runs in one tight loop at a fraction of that (benchmarks/README.md,
"Journal overhead"). What must be read at the instance's end is read then: its declared
outputs' signatures, and, for a task with ``inputs:``, its fingerprint (taken when it
starts, before it can change its inputs). Everything else the record needs (the namespace it
was sent with, its summary, its last attempt's times) stays on the instance's record.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from gxo._version import __version__
from gxo.journal import (
    EndEntry,
    InstanceEntry,
    JournalWriter,
    Pending,
    RunEntry,
    TaskEntry,
    has_redacted,
)
from gxo.scheduler.notify import HeldEvents
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
        #: The scheduler's times are monotonic: this maps them to wall time (as the report).
        self._wall_offset = time.time() - time.monotonic()
        #: Tasks with ``inputs:``: their fingerprint is taken when they start.
        self._with_inputs: frozenset[str] = frozenset()
        self._closed = False
        writer.append(RunEntry(run=run_id, playbook=playbook, gxo=__version__, at=time.time()))

    def bind(self, state: SchedulerState) -> None:
        """The state this recorder listens to (its store holds the registers)."""
        self.state = state
        self._with_inputs = frozenset(n for n, r in state.tasks.items() if r.task.inputs)

    # -- Listener ----------------------------------------------------------------------------

    def task_queued(self, record: TaskRecord) -> None:
        if self.inner is not None:
            self.inner.task_queued(record)

    def task_changed(self, record: TaskRecord) -> None:
        if self.inner is not None:
            self.inner.task_changed(record)
        if record.status is Status.COMPLETED and record.task.register is not None:
            self.task_ended(record)  # only a task that registers has a record of its own

    def instance_started(self, inst: InstanceRecord) -> None:
        if self.inner is not None:
            self.inner.instance_started(inst)
        if inst.task in self._with_inputs:  # its input files as they are before it runs
            assert self.state is not None
            self.control.fingerprint(inst.id, self.state.tasks[inst.task].task, inst.namespace)

    def instance_finished(self, inst: InstanceRecord) -> None:
        if self.inner is not None:
            self.inner.instance_finished(inst)
        self.instance_ended(inst)

    def retry_scheduled(self, inst: InstanceRecord, delay: float) -> None:
        if self.inner is not None:
            self.inner.retry_scheduled(inst, delay)

    # -- records -----------------------------------------------------------------------------

    def instance_ended(self, inst: InstanceRecord) -> None:
        """Queue the record of an instance that completed by running (built at the write)."""
        if inst.status is not Status.COMPLETED or inst.reason or not inst.attempts:
            self.control.fingerprints.pop(inst.id, None)
            return
        fingerprinter = self.control.fingerprinter
        if fingerprinter is None:
            return
        assert self.state is not None
        task = self.state.tasks[inst.task].task
        outputs: dict[str, str] = {}
        if task.outputs:
            if isinstance(self.inner, HeldEvents):
                self.inner.flush()  # its outputs may be hashed (--checksum): report it first
            outputs = fingerprinter.signatures(task.outputs)
        self.writer.append(_InstanceRecordLater(self, inst, outputs))

    def build_instance_entry(
        self, inst: InstanceRecord, outputs: dict[str, str]
    ) -> InstanceEntry | None:
        """The record of ``inst`` (its ``at``: its last attempt's end, in wall time)."""
        fingerprinter = self.control.fingerprinter
        if fingerprinter is None or self.state is None:
            return None
        task = self.state.tasks[inst.task].task
        fingerprint = self.control.fingerprints.pop(inst.id, None)
        if fingerprint is None:
            fingerprint = fingerprinter.instance(task, inst.namespace)
        attempt = inst.attempts[-1]
        started, ended = attempt.started_at, attempt.ended_at
        if ended is not None and started is not None:
            duration = ended - started
            at = ended + self._wall_offset
        else:
            duration = attempt.module_duration
            at = time.time()
        summary: Any = inst.summary
        return InstanceEntry(
            run=self.run_id,
            task=inst.task,
            fingerprint=fingerprint.value,
            parts=fingerprint.parts,
            duration=max(0.0, duration),
            at=at,
            loop_index=inst.loop_index,
            value=summary,
            redacted=summary is not None and has_redacted(summary),
            outputs=outputs,
        )

    def task_ended(self, record: TaskRecord) -> None:
        """Queue the register record of a task that completed (built at the write, like an
        instance's: its value, read now, is final; its definition's digest is not urgent)."""
        task = record.task
        if record.status is not Status.COMPLETED or task.register is None:
            return
        if record.reason == "resumed" or self.control.fingerprinter is None:
            return
        assert self.state is not None
        value = self.state.store.get(task.register)
        self.writer.append(_TaskRecordLater(self, record, value, time.time()))

    def build_task_entry(self, record: TaskRecord, value: Any, at: float) -> TaskEntry | None:
        """The register record of ``record``'s task: ``value`` as it ended, at ``at``."""
        fingerprinter = self.control.fingerprinter
        if fingerprinter is None:
            return None
        task = record.task
        return TaskEntry(
            run=self.run_id,
            task=task.name,
            definition=fingerprinter.definition(task),
            at=at,
            value=value,
            redacted=has_redacted(value),
            instances=record.total,
        )

    def close(self, exit_code: int) -> None:
        """The run's last record; flushes and releases the journal. Only the first call
        writes (the engine closes it before it reaps the workers)."""
        if self._closed:
            return
        self._closed = True
        try:
            self.writer.append(EndEntry(run=self.run_id, exit_code=exit_code, at=time.time()))
        finally:
            self.writer.close()


class _InstanceRecordLater(Pending):
    """An instance's record, built when its batch is written (see the module doc)."""

    __slots__ = ("inst", "outputs", "recorder")

    def __init__(
        self, recorder: JournalRecorder, inst: InstanceRecord, outputs: dict[str, str]
    ) -> None:
        self.recorder, self.inst, self.outputs = recorder, inst, outputs

    def build(self) -> InstanceEntry | None:
        return self.recorder.build_instance_entry(self.inst, self.outputs)


class _TaskRecordLater(Pending):
    """A task's register record, built when its batch is written (see the module doc)."""

    __slots__ = ("at", "record", "recorder", "value")

    def __init__(
        self, recorder: JournalRecorder, record: TaskRecord, value: Any, at: float
    ) -> None:
        self.recorder, self.record, self.value, self.at = recorder, record, value, at

    def build(self) -> TaskEntry | None:
        return self.recorder.build_task_entry(self.record, self.value, self.at)
