"""The run report: GXO's ExecutionReport fields, plus per-instance attempts, reasons and costs.

Built from the scheduler's records at the end of a run (:mod:`gxo.scheduler.report`). It
holds only what the workers sent back, which they redacted, so it is safe to write to disk or
show to anyone.

Level 0: the report's shape only, readable by every layer.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import msgspec

from gxo._version import __version__
from gxo.errors import PlaybookError, Problem
from gxo.outputs import CapturedOutput
from gxo.wire import AttemptUsage, EdgeStats

__all__ = [
    "AttemptReport",
    "ExecutionReport",
    "InstanceReport",
    "TaskResult",
    "invalid_playbook_report",
    "report_as_dict",
]


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
    #: ``isolation: process``: the peaks measured (also on success) and the limits it ran
    #: under; None for a pooled attempt.
    usage: AttemptUsage | None = None


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
    #: Completed tasks restored from the journal by ``--resume`` (reason ``resumed``).
    cached_tasks: int = 0
    error: str = ""
    run_id: str = ""
    gxo_version: str = __version__
    dry_run: bool = False
    workers: int = 0
    worker_restarts: int = 0
    exit_code: int = 0
    task_results: dict[str, TaskResult] = {}
    #: Why the playbook could not run (an invalid playbook): every problem, with its place.
    problems: list[Problem] = []
    #: With tracing on, the run span's ids (hex), so records after the run can carry them.
    trace_id: str = ""
    span_id: str = ""

    def to_json(self) -> bytes:
        return msgspec.json.format(msgspec.json.encode(self), indent=2) + b"\n"


def invalid_playbook_report(
    error: PlaybookError, *, playbook_name: str, run_id: str = "", exit_code: int = 2
) -> ExecutionReport:
    """The report of a run that never started because the playbook is invalid: ``Failed``,
    the validation problems with their positions, no task results (so a CI step that
    collects reports always finds one)."""
    now = dt.datetime.now(dt.UTC)
    return ExecutionReport(
        playbook_name=playbook_name,
        overall_status="Failed",
        start_time=now,
        end_time=now,
        duration=0.0,
        duration_ns=0,
        total_tasks=0,
        completed_tasks=0,
        failed_tasks=0,
        skipped_tasks=0,
        cancelled_tasks=0,
        error=str(error),
        run_id=run_id,
        exit_code=exit_code,
        problems=list(error.problems),
    )


def report_as_dict(report: ExecutionReport) -> dict[str, Any]:
    """The report as plain data (for the library API and tests)."""
    result: dict[str, Any] = msgspec.to_builtins(report)
    return result
