"""The run report: GXO's ExecutionReport fields, plus per-instance attempts, reasons and costs.

Built from the scheduler's records at the end of a run (:mod:`gxo.scheduler.report`). It
holds only what the workers sent back, which they redacted, so it is safe to write to disk or
show to anyone.

Its JSON form is published as a JSON Schema, ``gxo/report.schema.json`` (generated from these
Structs by ``scripts/gen-report-schema``; a test checks every report the tests write against
it). ``schema_version`` changes its major number only when a field is removed or changes
meaning; new fields are added under the same major version.

Level 0: the report's shape only, readable by every layer.
"""

from __future__ import annotations

import datetime as dt
import os
import weakref
from collections.abc import Iterator
from typing import Any, Protocol

import msgspec

from gxo._version import __version__
from gxo.errors import PlaybookError, Problem, UsageError
from gxo.outputs import CapturedOutput
from gxo.wire import AttemptUsage, EdgeStats

__all__ = [
    "SCHEMA_VERSION",
    "SUMMARY_LIMIT",
    "AttemptReport",
    "ExecutionReport",
    "ExecutorReport",
    "ExecutorWorker",
    "InstanceReport",
    "InstanceSource",
    "TaskResult",
    "attach_instances",
    "invalid_playbook_report",
    "iter_report_json",
    "task_instances",
    "Upstream",
    "cap_summary",
    "report_as_dict",
    "report_json_schema",
    "schema_path",
]

#: The version of the report's JSON Schema (``gxo/report.schema.json``).
SCHEMA_VERSION = "1.0"
#: The largest registered value (summary) the report keeps per instance, as JSON bytes; a
#: larger one is replaced by ``{truncated: true, bytes, preview}``.
SUMMARY_LIMIT = 64 * 1024
#: Characters of JSON kept as the ``preview`` of a summary over :data:`SUMMARY_LIMIT`.
_PREVIEW = 4096


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
    #: ``exec``: the argv this attempt ran (or would run, in a dry run); null for other
    #: modules, and for an attempt whose worker was killed (it reported nothing).
    command: list[str] | None = None
    #: The directory the module reported it ran in (``exec``: absolute; in a dry run as
    #: given); null when it was not reported.
    cwd: str | None = None
    #: ``exec``: this attempt's exit status (negative: killed by that signal); null when it
    #: never ran, its worker was killed, or the module is not ``exec``.
    exit_code: int | None = None
    #: Per output stream of its command (``stdout``, ``stderr``): bytes written, bytes kept in
    #: the log, whether the log was cut at ``output_capture``, the last 20 lines (redacted)
    #: and the log file in the run directory.
    outputs: list[CapturedOutput] = []
    #: Processes killed at its end: left running by its command, or stopped with it.
    processes_killed: int = 0
    #: The host it ran on (this machine for a local run, the node on Dask); null if it never
    #: started.
    host: str | None = None
    #: On Dask, the address of the Dask worker that ran it (``tcp://10.0.0.7:40123``).
    executor_worker: str | None = None
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
    #: When its upstream was done and it was queued for a worker; null if it never was.
    ready_time: dt.datetime | None = None
    #: Its first attempt's start and its last attempt's end (a task that never ran: its end),
    #: and ``duration``, the seconds between them: its run time, retry waits included.
    start_time: dt.datetime | None = None
    end_time: dt.datetime | None = None
    duration: float = 0.0
    #: Seconds from ready to its first attempt's start: waiting for a worker.
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


class ExecutorWorker(msgspec.Struct, kw_only=True):
    """One worker of the executor: a Dask worker (its address), or this machine's pool."""

    address: str
    host: str = ""
    #: gxo worker processes it runs at once (a Dask worker's threads; ``--workers`` locally).
    slots: int = 0


class ExecutorReport(msgspec.Struct, kw_only=True):
    """Where the run's instances ran: ``local`` (this machine's pool) or ``dask``."""

    kind: str
    #: The Dask scheduler's address (``tcp://host:8786``); empty for a local run.
    scheduler: str = ""
    workers: list[ExecutorWorker] = []


# In memory, a run of more than gxo.scheduler.report.INLINE_INSTANCES instances leaves each
# TaskResult.instances empty: they are in the run's spool, read with task_instances(), and
# iter_report_json() (--report) and to_json() write them in. (A comment, not the docstring:
# the docstring is the published schema's description.)
class ExecutionReport(msgspec.Struct, kw_only=True, weakref=True):
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
    #: Completed tasks restored from the journal by ``--resume`` (reason ``resumed``).
    cached_tasks: int = 0
    error: str = ""
    run_id: str = ""
    gxo_version: str = __version__
    dry_run: bool = False
    #: gxo worker processes that ran instances: ``--workers`` locally, the slots of every Dask
    #: worker on Dask (``executor.workers`` lists them).
    workers: int = 0
    worker_restarts: int = 0
    #: Where instances ran; null only in a report of a run that never started.
    executor: ExecutorReport | None = None
    exit_code: int = 0
    task_results: dict[str, TaskResult] = {}
    #: Why the playbook could not run (an invalid playbook): every problem, with its place.
    problems: list[Problem] = []
    #: With tracing on, the run span's ids (hex), so records after the run can carry them.
    trace_id: str = ""
    span_id: str = ""

    def to_json(self) -> bytes:
        """The ``--report`` JSON, every instance in it (read from the spool for a big run;
        ``iter_report_json`` gives it in pieces instead of one ``bytes``)."""
        return b"".join(iter_report_json(self))


class InstanceSource(Protocol):
    """Where a report's instances are when they are not in memory (the run's spool)."""

    def lines(self, task: str) -> Iterator[bytes]:
        """``task``'s instances, in item order, each one :class:`InstanceReport` as JSON."""
        ...


#: id(report) -> the source of its instances, while that report lives (Structs are not
#: hashable, so not a WeakKeyDictionary: a finalizer drops the entry with the report).
_SOURCES: dict[int, InstanceSource] = {}
_instance_decoder = msgspec.json.Decoder(InstanceReport)


def attach_instances(report: ExecutionReport, source: InstanceSource) -> None:
    """Say where ``report``'s instances are (its ``TaskResult.instances`` stay empty)."""
    key = id(report)
    _SOURCES[key] = source
    weakref.finalize(report, _SOURCES.pop, key, None)


def task_instances(report: ExecutionReport, task: str) -> Iterator[InstanceReport]:
    """Task ``task``'s instances, in item order: from memory, or read one at a time from the
    run's spool for a big run (so a reader of 100,000 instances holds one at a time)."""
    result = report.task_results[task]
    source = _SOURCES.get(id(report))
    if result.instances or source is None:
        yield from result.instances
        return
    for line in source.lines(task):
        yield _instance_decoder.decode(line)


#: Where each instance's JSON goes in ``--report``'s layout (``to_json``: indent 2).
_INSTANCES = b'"instances": []'
_ITEM_INDENT = b"\n" + b" " * 8


def iter_report_json(report: ExecutionReport) -> Iterator[bytes]:
    """The report as :meth:`ExecutionReport.to_json` writes it, in pieces: for a report whose
    instances are in the spool, each one is read, formatted and written in turn, so writing
    the report of a 100,000-item loop holds one instance in memory, not the whole file.

    The rest (tasks, counts, the executor) is formatted whole; each task's empty
    ``"instances": []`` in it is where its instances go (that text cannot occur elsewhere:
    quotes inside JSON strings are escaped).
    """
    source = _SOURCES.get(id(report))
    if source is None or any(r.instances for r in report.task_results.values()):
        yield msgspec.json.format(msgspec.json.encode(report), indent=2) + b"\n"
        return
    skeleton = msgspec.json.format(msgspec.json.encode(report), indent=2)
    pos = 0
    for name in report.task_results:
        at = skeleton.index(_INSTANCES, pos)
        yield skeleton[pos:at]
        pos = at + len(_INSTANCES)
        opened = False
        for line in source.lines(name):
            item = msgspec.json.format(line, indent=2).replace(b"\n", _ITEM_INDENT)
            yield (b",\n        " if opened else b'"instances": [\n        ') + item
            opened = True
        yield b"\n      ]" if opened else _INSTANCES
    yield skeleton[pos:] + b"\n"


def invalid_playbook_report(
    error: PlaybookError | UsageError,
    *,
    playbook_name: str,
    run_id: str = "",
    exit_code: int = 2,
) -> ExecutionReport:
    """The report of a run that never started: the playbook is invalid (``Failed``, the
    validation problems with their positions) or cannot run as asked (a :class:`UsageError`
    of the run's start: its message as ``error``, no problems); no task results either way
    (so a CI step that collects reports always finds one)."""
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
        problems=list(error.problems) if isinstance(error, PlaybookError) else [],
    )


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
