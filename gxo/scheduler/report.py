"""The run report: each instance's entry written to the run's spool as it ends, the rest
built once from the scheduler's final records.

An instance's entry (its attempts, outputs, times, summary) is final when it ends, so
:class:`Spooler` writes it then and the state can forget it (issue 18: a 100,000-item
loop). :func:`build_report` builds the report from the task records' counts; its instances
are read back from the spool into memory for a run of up to :data:`INLINE_INSTANCES`, and
left there (readable with :func:`gxo.report.task_instances`) past that.

Level 4: reads the state machine's records, fills :class:`gxo.report.ExecutionReport`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import msgspec

from gxo.journal.spool import InstanceSpool
from gxo.report import (
    AttemptReport,
    ExecutionReport,
    InstanceReport,
    TaskResult,
    Upstream,
    attach_instances,
    cap_summary,
    task_instances,
)
from gxo.scheduler.records import Attempt, InstanceRecord, Status, span
from gxo.scheduler.state import SchedulerState

__all__ = ["INLINE_INSTANCES", "Spooler", "build_report", "instance_report"]

#: A run with more instances than this keeps them in the spool, not in the report in memory
#: (``TaskResult.instances`` empty; :func:`gxo.report.task_instances` reads them).
INLINE_INSTANCES = 5_000

Wall = Callable[[float | None], dt.datetime | None]


class Spooler:
    """Writes each instance's report entry to the spool as it ends (``SchedulerState(ended=)``).

    ``offset`` (wall minus monotonic time at the run's start) and ``place`` (fills each
    attempt's host and worker: this machine, or where Dask ran it) are set by the engine
    before the first instance can end.
    """

    def __init__(self, spool: InstanceSpool) -> None:
        self.spool = spool
        self.offset = 0.0
        self.place: Callable[[InstanceReport], None] | None = None
        self.count = 0
        self._encode = msgspec.json.Encoder().encode

    def wall(self, mono: float | None) -> dt.datetime | None:
        # msgspec writes datetimes as RFC 3339 in C; formatting them here cost ~20 µs a task.
        return None if mono is None else dt.datetime.fromtimestamp(self.offset + mono, dt.UTC)

    def __call__(self, inst: InstanceRecord) -> None:
        entry = instance_report(inst, self.wall)
        if self.place is not None:
            self.place(entry)
        self.spool.add(inst.task, inst.loop_index or 0, self._encode(entry))
        self.count += 1


def instance_report(inst: InstanceRecord, wall: Wall) -> InstanceReport:
    """What the report says of one instance that ended."""
    first = inst.attempts[0].started_at if inst.attempts else None
    last = inst.attempts[-1].ended_at if inst.attempts else None
    return InstanceReport(
        instance_id=inst.id,
        label=inst.label,
        loop_index=inst.loop_index,
        status=inst.status.value,
        reason=inst.reason,
        error=inst.error,
        traceback=inst.traceback,
        summary=cap_summary(inst.summary),
        ready_time=wall(inst.ready_at),
        start_time=wall(first),
        end_time=wall(last),
        run_duration=span(first, last),
        queued_duration=span(inst.ready_at, first),
        attempts=[_attempt_report(a, wall) for a in inst.attempts],
    )


def build_report(
    state: SchedulerState,
    *,
    run_id: str,
    started_wall: float,
    started_mono: float,
    ended_mono: float,
    workers: int,
    worker_restarts: int,
    exit_code: int,
    spooler: Spooler | None = None,
) -> ExecutionReport:
    """Turn the scheduler's records into the report.

    With ``spooler`` (a run's), the instances come from its spool; without, from the
    records (a state that kept them: ``SchedulerState(release_finished=False)``).
    """

    offset = started_wall - started_mono
    utc = dt.UTC
    fromtimestamp = dt.datetime.fromtimestamp
    #: The datetimes of one task's times: an instance's times are mostly its task's and its
    #: attempt's too (3 distinct of 8 per task), so each is converted once. Cleared per task,
    #: and kept small (a loop's instances each have their own).
    seen: dict[float, dt.datetime] = {}

    def wall(mono: float | None) -> dt.datetime | None:
        # msgspec writes datetimes as RFC 3339 in C; formatting them here cost ~20 µs a task.
        if mono is None:
            return None
        found = seen.get(mono)
        if found is None:
            if len(seen) >= 8:
                seen.clear()
            found = seen[mono] = fromtimestamp(offset + mono, utc)
        return found

    results: dict[str, TaskResult] = {}
    counts = dict.fromkeys(Status, 0)
    for name, record in state.tasks.items():
        counts[record.status] += 1
        seen.clear()
        instances = (
            []
            if spooler is not None
            else [instance_report(inst, wall) for inst in record.instances]
        )
        first, start, end = record.run_span()
        ready = record.ready_at
        results[name] = TaskResult(
            status=record.status._value_,
            error=record.error,
            reason=record.reason,
            ignored=record.ignored,
            ready_time=wall(ready),
            start_time=wall(start),
            end_time=wall(end),
            duration=span(start, end),
            queued_duration=span(ready, first),
            upstream=[Upstream(task=e.source, kind=e.kind) for e in state.graph.upstream(name)],
            attempts=record.attempts_total,
            instances=instances,
            # Stream edges: only tasks without a loop stream, and those keep their instance.
            streams=[edge for inst in record.instances for edge in inst.streams],
        )
    failed = state.failed or bool(state.interrupted)
    if not state.failed and state.interrupted in ("drained", "deadline"):
        failed = False  # a drain is not a failure; work_left says whether work remains
    work_left = not state.failed and state.work_left
    duration = ended_mono - started_mono
    report = ExecutionReport(
        playbook_name=state.playbook.name,
        overall_status="Failed" if failed else "Cancelled" if work_left else "Completed",
        start_time=fromtimestamp(started_wall, utc),
        end_time=fromtimestamp(offset + ended_mono, utc),
        duration=duration,
        duration_ns=int(duration * 1e9),
        total_tasks=len(state.tasks),
        completed_tasks=counts[Status.COMPLETED],
        failed_tasks=counts[Status.FAILED],
        skipped_tasks=counts[Status.SKIPPED],
        cancelled_tasks=counts[Status.CANCELLED],
        cached_tasks=sum(1 for r in state.tasks.values() if r.reason == "resumed"),
        error=_overall_error(state),
        run_id=run_id,
        dry_run=state.dry_run,
        workers=workers,
        worker_restarts=worker_restarts,
        exit_code=exit_code,
        task_results=results,
    )
    if spooler is not None:
        spooler.spool.close()
        attach_instances(report, spooler.spool)
        if spooler.count <= INLINE_INSTANCES:
            for name, result in results.items():
                result.instances = list(task_instances(report, name))
    return report


def _attempt_report(attempt: Attempt, wall: Wall) -> AttemptReport:
    """One attempt: its output (tails, sizes, log paths) as its worker reported it, and the
    command, directory and exit code its own summary gave (``exec``; each attempt's)."""
    return AttemptReport(
        number=attempt.number,
        start_time=wall(attempt.started_at),
        end_time=wall(attempt.ended_at),
        duration=span(attempt.started_at, attempt.ended_at),
        reason=attempt.reason,
        error=attempt.error,
        worker_pid=attempt.worker_pid,
        max_rss_kib=attempt.max_rss_kib,
        command=attempt.command,
        cwd=attempt.cwd,
        exit_code=attempt.exit_code,
        outputs=attempt.outputs,
        processes_killed=attempt.processes_killed,
        usage=attempt.usage,
    )


def _overall_error(state: SchedulerState) -> str:
    if state.interrupted == "run_timed_out":
        return "the playbook timeout expired"
    if state.work_left and not state.failed:
        left = sum(1 for r in state.tasks.values() if r.status is Status.CANCELLED)
        why = "drained (SIGUSR1/SIGUSR2)" if state.interrupted == "drained" else "--deadline"
        return f"{why}: {left} task(s) not done; run again with --resume"
    if state.interrupted == "fail_fast":
        failed = [n for n, r in state.tasks.items() if r.status is Status.FAILED and not r.ignored]
        return f"--fail-fast: stopped after {', '.join(failed[:5]) or 'a task'} failed"
    if state.interrupted:
        return "the run was interrupted"
    failed = [n for n, r in state.tasks.items() if r.status is Status.FAILED and not r.ignored]
    if failed:
        shown = ", ".join(failed[:5]) + (f" and {len(failed) - 5} more" if len(failed) > 5 else "")
        return f"{len(failed)} task(s) failed: {shown}"
    return ""
