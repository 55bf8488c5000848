"""The run report, built once from the scheduler's final records.

Level 4: reads the state machine's records, fills :class:`gxo.report.ExecutionReport`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from gxo.report import (
    AttemptReport,
    ExecutionReport,
    InstanceReport,
    TaskResult,
    Upstream,
    cap_summary,
)
from gxo.scheduler.records import Attempt, InstanceRecord, Status
from gxo.scheduler.state import SchedulerState

__all__ = ["build_report"]


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
) -> ExecutionReport:
    """Turn the scheduler's records into the report."""

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
        instances = [_instance_report(inst, wall) for inst in record.instances]
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
            duration=max(0.0, end - start) if start is not None and end is not None else 0.0,
            queued_duration=(
                max(0.0, first - ready) if ready is not None and first is not None else 0.0
            ),
            upstream=[Upstream(task=e.source, kind=e.kind) for e in state.graph.upstream(name)],
            attempts=(
                len(record.instances[0].attempts)
                if len(record.instances) == 1
                else sum(len(i.attempts) for i in record.instances)
            ),
            instances=instances,
            streams=[edge for inst in record.instances for edge in inst.streams],
        )
    failed = state.failed or bool(state.interrupted)
    if not state.failed and state.interrupted in ("drained", "deadline"):
        failed = False  # a drain is not a failure; work_left says whether work remains
    work_left = not state.failed and state.work_left
    duration = ended_mono - started_mono
    return ExecutionReport(
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


def _instance_report(
    inst: InstanceRecord, wall: Callable[[float | None], dt.datetime | None]
) -> InstanceReport:
    attempts = inst.attempts
    first = attempts[0].started_at if attempts else None
    last = attempts[-1].ended_at if attempts else None
    ready = inst.ready_at
    return InstanceReport(
        instance_id=inst.id,
        label=inst.task if inst.loop_index is None else inst.label,
        loop_index=inst.loop_index,
        status=inst.status._value_,  # ``.value`` is a property: two calls
        reason=inst.reason,
        error=inst.error,
        traceback=inst.traceback,
        summary=cap_summary(inst.summary),
        ready_time=wall(ready),
        start_time=wall(first),
        end_time=wall(last),
        run_duration=max(0.0, last - first) if first is not None and last is not None else 0.0,
        queued_duration=(
            max(0.0, first - ready) if ready is not None and first is not None else 0.0
        ),
        attempts=[_attempt_report(a, wall) for a in attempts],
    )


def _attempt_report(
    attempt: Attempt, wall: Callable[[float | None], dt.datetime | None]
) -> AttemptReport:
    """One attempt: its output (tails, sizes, log paths) as its worker reported it, and the
    command, directory and exit code its own summary gave (``exec``; each attempt's)."""
    return AttemptReport(
        number=attempt.number,
        start_time=wall(attempt.started_at),
        end_time=wall(attempt.ended_at),
        duration=(
            max(0.0, attempt.ended_at - attempt.started_at)
            if attempt.started_at is not None and attempt.ended_at is not None
            else 0.0
        ),
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
