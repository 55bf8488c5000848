"""The run report, built once from the scheduler's final records.

Level 4: reads the state machine's records, fills :class:`gxo.report.ExecutionReport`.
"""

from __future__ import annotations

import datetime as dt

from gxo.report import AttemptReport, ExecutionReport, InstanceReport, TaskResult
from gxo.scheduler.records import Status
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

    def wall(mono: float | None) -> dt.datetime | None:
        # msgspec writes datetimes as RFC 3339 in C; formatting them here cost ~20 µs a task.
        return None if mono is None else fromtimestamp(offset + mono, utc)

    results: dict[str, TaskResult] = {}
    counts = dict.fromkeys(Status, 0)
    for name, record in state.tasks.items():
        counts[record.status] += 1
        instances = [
            InstanceReport(
                instance_id=inst.id,
                label=inst.label,
                loop_index=inst.loop_index,
                status=inst.status.value,
                reason=inst.reason,
                error=inst.error,
                traceback=inst.traceback,
                summary=inst.summary if state.dry_run else None,
                attempts=[
                    AttemptReport(
                        number=a.number,
                        start_time=wall(a.started_at),
                        end_time=wall(a.ended_at),
                        duration=_span(a.started_at, a.ended_at),
                        reason=a.reason,
                        error=a.error,
                        worker_pid=a.worker_pid,
                        max_rss_kib=a.max_rss_kib,
                        outputs=a.outputs,
                        processes_killed=a.processes_killed,
                        usage=a.usage,
                    )
                    for a in inst.attempts
                ],
            )
            for inst in record.instances
        ]
        results[name] = TaskResult(
            status=record.status.value,
            error=record.error,
            reason=record.reason,
            ignored=record.ignored,
            start_time=wall(record.started_at),
            end_time=wall(record.ended_at),
            duration=_span(record.started_at, record.ended_at),
            attempts=sum(len(i.attempts) for i in record.instances),
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


def _span(start: float | None, end: float | None) -> float:
    return max(0.0, end - start) if start is not None and end is not None else 0.0


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
