"""The run report: GXO's ExecutionReport fields, plus per-instance attempts, reasons and costs.

Built from the scheduler's records at the end of a run. It holds only what the workers sent
back, which they redacted, so it is safe to write to disk or show to anyone.

Its JSON form is published as a JSON Schema, ``gxo/report.schema.json`` (generated from these
Structs by ``scripts/gen-report-schema``; a test checks every report the tests write against
it). ``schema_version`` changes its major number only when a field is removed or changes
meaning; new fields are added under the same major version.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable
from typing import Any

import msgspec

from gxo._version import __version__
from gxo.scheduler.records import Attempt, InstanceRecord, Status
from gxo.scheduler.state import SchedulerState
from gxo.streams.channel import EdgeStats

__all__ = [
    "SCHEMA_VERSION",
    "SUMMARY_LIMIT",
    "AttemptReport",
    "ExecutionReport",
    "InstanceReport",
    "OutputTail",
    "TaskResult",
    "Upstream",
    "build_report",
    "cap_summary",
    "schema_path",
]

#: The version of the report's JSON Schema (``gxo/report.schema.json``).
SCHEMA_VERSION = "1.0"
#: The largest registered value (summary) the report keeps per instance, as JSON bytes; a
#: larger one is replaced by ``{truncated: true, bytes, preview}``.
SUMMARY_LIMIT = 64 * 1024
#: Characters of JSON kept as the ``preview`` of a summary over :data:`SUMMARY_LIMIT`.
_PREVIEW = 4096
#: Lines of each output stream an attempt record carries (DESIGN §15: the last 20).
TAIL_LINES = 20


class OutputTail(msgspec.Struct, kw_only=True):
    """One output stream (stdout or stderr) of one attempt: its last lines and its size."""

    #: The last (up to 20) lines, redacted by the worker, without line ends.
    tail: list[str] = []
    #: Bytes the command wrote to the stream (what the worker saw).
    bytes: int = 0
    #: The stream's log file was cut at the capture cap.
    truncated: bool = False
    #: The attempt's full log of this stream in the run directory ("" when none was written).
    path: str = ""


class AttemptReport(msgspec.Struct, kw_only=True):
    """One try of one instance."""

    number: int
    start_time: dt.datetime | None
    end_time: dt.datetime | None
    duration: float
    reason: str = ""
    error: str = ""
    worker_pid: int | None = None
    max_rss_kib: int = 0
    #: ``exec``: the argv that ran (or would run, in a dry run); null for other modules.
    command: list[str] | None = None
    #: ``exec``: the directory it ran in (null: gxo's own working directory).
    cwd: str | None = None
    #: ``exec``: the command's exit status (negative: killed by that signal); null when it
    #: never ran or the module is not ``exec``.
    exit_code: int | None = None
    #: What the attempt printed (null when it is not known: a module that captures nothing).
    stdout: OutputTail | None = None
    stderr: OutputTail | None = None


class InstanceReport(msgspec.Struct, kw_only=True):
    instance_id: int
    label: str
    loop_index: int | None
    status: str
    reason: str = ""
    error: str = ""
    traceback: str = ""
    #: The instance's result (its registered value: the module's summary), redacted by the
    #: worker and capped at 64 KiB of JSON. In a dry run, what the module said it would do
    #: (``exec``: the command), or ``{dry_run, supported: false}`` for a module without
    #: dry-run support.
    summary: Any = None
    #: When it was queued for a worker (its upstream done); null if it never was.
    ready_time: dt.datetime | None = None
    #: When its first attempt started on a worker, and when its last attempt ended.
    start_time: dt.datetime | None = None
    end_time: dt.datetime | None = None
    #: Seconds from its first attempt's start to its last attempt's end (retry waits
    #: included), and seconds it waited for a worker (ready to first start).
    run_duration: float = 0.0
    queued_duration: float = 0.0
    attempts: list[AttemptReport] = []


class Upstream(msgspec.Struct, kw_only=True):
    """One edge of the DAG, as its downstream task sees it."""

    task: str
    kind: str


class TaskResult(msgspec.Struct, kw_only=True):
    """One task's outcome. ``status``, ``error``, times and ``duration`` are GXO's fields."""

    status: str
    error: str = ""
    reason: str = ""
    ignored: bool = False
    start_time: dt.datetime | None = None
    end_time: dt.datetime | None = None
    duration: float = 0.0
    #: Seconds from its first attempt's start to its last attempt's end; ``duration`` counts
    #: from when the task became ready, so it includes ``queued_duration``, the time its
    #: first instance waited for a worker.
    run_duration: float = 0.0
    queued_duration: float = 0.0
    attempts: int = 0
    #: The tasks it waits for, each with the edge's kind (``register``, ``depends_on``,
    #: ``status``, ``stream``): the DAG.
    upstream: list[Upstream] = []
    instances: list[InstanceReport] = []
    #: Per stream edge, as this task saw it: ``side`` ``out`` (it produced: records and bytes
    #: sent, drops, seconds blocked on backpressure) or ``in`` (it consumed: records and bytes
    #: received).
    streams: list[EdgeStats] = []


class ExecutionReport(msgspec.Struct, kw_only=True):
    """The whole run. Durations are seconds (GXO wrote nanoseconds; ``duration_ns`` keeps that)."""

    #: The version of ``gxo/report.schema.json`` this report follows.
    schema_version: str = SCHEMA_VERSION
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
                summary=cap_summary(inst.summary),
                ready_time=wall(inst.ready_at),
                start_time=wall(_first_start(inst)),
                end_time=wall(_last_end(inst)),
                run_duration=_span(_first_start(inst), _last_end(inst)),
                queued_duration=_span(inst.ready_at, _first_start(inst)),
                attempts=[
                    _attempt_report(a, wall, inst.summary if k == len(inst.attempts) - 1 else None)
                    for k, a in enumerate(inst.attempts)
                ],
            )
            for inst in record.instances
        ]
        starts = [t for t in map(_first_start, record.instances) if t is not None]
        ends = [t for t in map(_last_end, record.instances) if t is not None]
        first, last = min(starts, default=None), max(ends, default=None)
        results[name] = TaskResult(
            status=record.status.value,
            error=record.error,
            reason=record.reason,
            ignored=record.ignored,
            start_time=wall(record.started_at),
            end_time=wall(record.ended_at),
            duration=_span(record.started_at, record.ended_at),
            run_duration=_span(first, last),
            queued_duration=_span(record.started_at, first),
            upstream=[Upstream(task=e.source, kind=e.kind) for e in state.graph.upstream(name)],
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


def _attempt_report(
    attempt: Attempt, wall: Callable[[float | None], dt.datetime | None], summary: Any
) -> AttemptReport:
    """One attempt; the command, exit code and output come from the summary of the last one
    (``exec`` returns them; earlier attempts' summaries are not kept by the scheduler)."""
    report = AttemptReport(
        number=attempt.number,
        start_time=wall(attempt.started_at),
        end_time=wall(attempt.ended_at),
        duration=_span(attempt.started_at, attempt.ended_at),
        reason=attempt.reason,
        error=attempt.error,
        worker_pid=attempt.worker_pid,
        max_rss_kib=attempt.max_rss_kib,
    )
    if isinstance(summary, dict):
        command = summary.get("command")
        if isinstance(command, list) and all(isinstance(x, str) for x in command):
            report.command = command
        cwd = summary.get("cwd")
        report.cwd = cwd if isinstance(cwd, str) else None
        code = summary.get("exit_code")
        if isinstance(code, int) and not isinstance(code, bool) and not summary.get("dry_run"):
            report.exit_code = code
        for name in ("stdout", "stderr"):
            text = summary.get(name)
            if isinstance(text, str) and not summary.get("dry_run"):
                setattr(report, name, output_tail(text))
    return report


def output_tail(text: str, lines: int = TAIL_LINES) -> OutputTail:
    """The last ``lines`` lines of an output stream held in memory, and its size."""
    return OutputTail(tail=text.splitlines()[-lines:], bytes=len(text.encode("utf-8", "replace")))


def cap_summary(summary: Any, limit: int = SUMMARY_LIMIT) -> Any:
    """``summary`` if its JSON is at most ``limit`` bytes, else a small stand-in with a preview.

    The value is already redacted (by the worker that produced it); the cap keeps a report
    readable when a task registered megabytes.
    """
    if summary is None or isinstance(summary, bool | int | float):
        return summary
    try:
        encoded = msgspec.json.encode(summary)
    except (TypeError, ValueError, OverflowError):
        return {"unserializable": True, "type": type(summary).__name__}
    if len(encoded) <= limit:
        return summary
    preview = encoded[:_PREVIEW].decode("utf-8", "ignore")
    return {"truncated": True, "bytes": len(encoded), "preview": preview}


def schema_path() -> str:
    """The path of the report's JSON Schema, shipped in the package."""
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "report.schema.json")


def _first_start(inst: InstanceRecord) -> float | None:
    return inst.attempts[0].started_at if inst.attempts else None


def _last_end(inst: InstanceRecord) -> float | None:
    return inst.attempts[-1].ended_at if inst.attempts else None


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


def report_json_schema() -> dict[str, Any]:
    """The JSON Schema of :class:`ExecutionReport`, as shipped in ``gxo/report.schema.json``.

    Generated from the Structs (``msgspec.json.schema``) so it cannot drift from them, then
    closed: every object lists all its properties (``additionalProperties: false``), so a
    field added to a Struct without regenerating the file fails the schema test. Only
    ``summary`` (a module's own data) is open.
    """
    schema: dict[str, Any] = msgspec.json.schema(ExecutionReport)
    for definition in schema.get("$defs", {}).values():
        if definition.get("type") == "object" and "properties" in definition:
            definition["additionalProperties"] = False
            # Every field is always written (the report omits nothing).
            definition["required"] = list(definition["properties"])
    # The version changes with every release; the schema does not.
    schema["$defs"]["ExecutionReport"]["properties"]["gxo_version"].pop("default", None)
    return {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "title": "gxo run report",
        "description": (
            "What `gxo execute --report FILE` writes: GXO's ExecutionReport fields, plus "
            f"per instance and per attempt what happened. schema_version {SCHEMA_VERSION}."
        ),
        **schema,
    }
