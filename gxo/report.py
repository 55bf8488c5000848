"""The run report: GXO's ExecutionReport fields, plus per-instance attempts, reasons and costs.

Built from the scheduler's records at the end of a run. It holds only what the workers sent
back, which they redacted, so it is safe to write to disk or show to anyone.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import msgspec

from gxo._version import __version__
from gxo.outputs import CapturedOutput
from gxo.scheduler.records import Status
from gxo.scheduler.state import SchedulerState
from gxo.streams.channel import EdgeStats

__all__ = ["AttemptReport", "ExecutionReport", "InstanceReport", "TaskResult", "build_report"]


class AttemptReport(msgspec.Struct, kw_only=True):
    number: int
    start_time: dt.datetime | None
    end_time: dt.datetime | None
    duration: float
    reason: str = ""
    error: str = ""
    worker_pid: int | None = None
    max_rss_kib: int = 0
    #: Per output stream of its command: size, whether the log was cut at ``output_capture``,
    #: the last 20 lines (redacted) and the log file in the run directory.
    outputs: list[CapturedOutput] = []
    #: Processes killed at its end: left running by its command, or stopped with it.
    processes_killed: int = 0


class InstanceReport(msgspec.Struct, kw_only=True):
    instance_id: int
    label: str
    loop_index: int | None
    status: str
    reason: str = ""
    error: str = ""
    traceback: str = ""
    #: Dry runs only: what the module said it would do (``exec``: the command), or
    #: ``{dry_run, supported: false}`` for a module that does not support dry-run.
    summary: Any = None
    attempts: list[AttemptReport] = []


class TaskResult(msgspec.Struct, kw_only=True):
    """One task's outcome. ``status``, ``error``, times and ``duration`` are GXO's fields."""

    status: str
    error: str = ""
    reason: str = ""
    ignored: bool = False
    start_time: dt.datetime | None = None
    end_time: dt.datetime | None = None
    duration: float = 0.0
    attempts: int = 0
    instances: list[InstanceReport] = []
    #: Per stream edge, as this task saw it: ``side`` ``out`` (it produced: records and bytes
    #: sent, drops, seconds blocked on backpressure) or ``in`` (it consumed: records and bytes
    #: received).
    streams: list[EdgeStats] = []


class ExecutionReport(msgspec.Struct, kw_only=True):
    """The whole run. Durations are seconds (GXO wrote nanoseconds; ``duration_ns`` keeps that)."""

    playbook_name: str
    overall_status: str
    start_time: dt.datetime
    end_time: dt.datetime
    duration: float
    duration_ns: int
    total_tasks: int
    completed_tasks: int
    failed_tasks: int
    skipped_tasks: int
    cancelled_tasks: int
    error: str = ""
    run_id: str = ""
    gxo_version: str = __version__
    dry_run: bool = False
    workers: int = 0
    worker_restarts: int = 0
    exit_code: int = 0
    task_results: dict[str, TaskResult] = {}

    def to_json(self) -> bytes:
        return msgspec.json.format(msgspec.json.encode(self), indent=2) + b"\n"


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
    duration = ended_mono - started_mono
    return ExecutionReport(
        playbook_name=state.playbook.name,
        overall_status="Failed" if failed else "Completed",
        start_time=fromtimestamp(started_wall, utc),
        end_time=fromtimestamp(offset + ended_mono, utc),
        duration=duration,
        duration_ns=int(duration * 1e9),
        total_tasks=len(state.tasks),
        completed_tasks=counts[Status.COMPLETED],
        failed_tasks=counts[Status.FAILED],
        skipped_tasks=counts[Status.SKIPPED],
        cancelled_tasks=counts[Status.CANCELLED],
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
    if state.interrupted:
        return "the run was interrupted"
    failed = [n for n, r in state.tasks.items() if r.status is Status.FAILED and not r.ignored]
    if failed:
        shown = ", ".join(failed[:5]) + (f" and {len(failed) - 5} more" if len(failed) > 5 else "")
        return f"{len(failed)} task(s) failed: {shown}"
    return ""


def report_as_dict(report: ExecutionReport) -> dict[str, Any]:
    """The report as plain data (for the library API and tests)."""
    result: dict[str, Any] = msgspec.to_builtins(report)
    return result
