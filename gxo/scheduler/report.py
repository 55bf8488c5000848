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
from typing import Any

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
from gxo.scheduler.records import Attempt, InstanceRecord, Status
from gxo.scheduler.state import SchedulerState

__all__ = ["INLINE_INSTANCES", "Spooler", "build_report", "instance_report"]

#: A run with more instances than this keeps them in the spool, not in the report in memory
#: (``TaskResult.instances`` empty; :func:`gxo.report.task_instances` reads them).
INLINE_INSTANCES = 5_000
#: Ended instances a deferred :class:`Spooler` holds at most before writing them.
DEFER_LIMIT = 256

Wall = Callable[[float | None], dt.datetime | None]


class Spooler:
    """Writes each instance's report entry to the spool as it ends (``SchedulerState(ended=)``).

    ``offset`` (wall minus monotonic time at the run's start) and ``place`` (fills each
    attempt's host and worker: this machine, or where Dask ran it) are set by the engine
    before the first instance can end.

    With ``deferred``, an instance that ends is only noted, and its entry is built and
    written at the next :meth:`flush` (the engine's loop calls it after each dispatch, and
    :func:`build_report` before reading the spool back): building and encoding the entry
    (~20-30 µs) then no longer sits between a worker's result and the dispatch of the work
    it released (a chain's next link). An ended instance is final, so its entry is the same
    whenever it is built; at most :data:`DEFER_LIMIT` wait, so memory stays bounded when one
    dispatch ends many (a loop restored from the journal).
    """

    def __init__(self, spool: InstanceSpool, *, deferred: bool = False, keep: bool = False) -> None:
        self.spool = spool
        self.offset = 0.0
        self.place: Callable[[InstanceReport], None] | None = None
        self.count = 0
        self._encode = msgspec.json.Encoder().encode
        self._deferred = deferred
        self._ended: list[InstanceRecord] = []
        #: With ``keep``: the entries written so far by task, while there are at most
        #: :data:`INLINE_INSTANCES` (the report of such a run holds them anyway): the report
        #: then takes them as they are instead of reading the spool back and decoding it
        #: (~10 µs an instance). Dropped past that (a big run's report reads the spool).
        self._kept: dict[str, list[InstanceReport]] | None = {} if keep else None

    def __call__(self, inst: InstanceRecord) -> None:
        if self._deferred:
            ended = self._ended
            ended.append(inst)
            if len(ended) >= DEFER_LIMIT:
                self.flush()
            return
        self._write(inst)

    def flush(self) -> None:
        """Write the entries of the instances noted since the last flush, in that order."""
        if self._ended:
            ended, self._ended = self._ended, []
            for inst in ended:
                self._write(inst)

    def close(self) -> None:
        """Write what is noted and close the spool (its lines stay readable)."""
        self.flush()
        self.spool.close()

    def kept(self) -> dict[str, list[InstanceReport]] | None:
        """Each task's entries in item order, as read back from the spool would give them;
        None when they were not kept (``keep`` off, or more than :data:`INLINE_INSTANCES`)."""
        kept = self._kept
        if kept is None:
            return None
        for entries in kept.values():
            if len(entries) > 1:  # a loop's items, in the order they ended
                entries.sort(key=_position)
        return kept

    def _write(self, inst: InstanceRecord) -> None:
        entry = instance_report(inst, None, self.offset)
        if self.place is not None:
            self.place(entry)
        self.spool.add(inst.task, inst.loop_index or 0, self._encode(entry))
        self.count += 1
        kept = self._kept
        if kept is not None:
            if self.count > INLINE_INSTANCES:
                self._kept = None
                return
            # Its summary as the spool gives it back (JSON's types, a value of its own, not
            # the register the state holds); everything else in it is already its own.
            summary = entry.summary
            if summary is not None:  # None (the usual no-op's) reads back as itself
                entry.summary = _read_back(summary)
            found = kept.get(inst.task)
            if found is None:
                kept[inst.task] = [entry]
            else:
                found.append(entry)


def _position(entry: InstanceReport) -> int:
    return entry.loop_index or 0


_json_encode = msgspec.json.encode
_json_decode = msgspec.json.decode


def _read_back(value: Any) -> Any:
    """``value`` after a JSON round trip (what decoding the spool's line gives)."""
    kind = type(value)
    if value is None or kind is str or kind is int or kind is bool:
        return value
    return _json_decode(_json_encode(value))


def instance_report(inst: InstanceRecord, wall: Wall | None, offset: float = 0.0) -> InstanceReport:
    """What the report says of one instance that ended.

    ``wall`` converts a monotonic time to a datetime; None: ``offset + time`` as UTC, inline
    (the spooler's way: three conversions an instance without a call each).
    """
    attempts = inst.attempts
    first = attempts[0].started_at if attempts else None
    last = attempts[-1].ended_at if attempts else None
    ready = inst.ready_at
    if wall is None:
        utc = dt.UTC
        start_time = None if first is None else _fromtimestamp(offset + first, utc)
        end_time = None if last is None else _fromtimestamp(offset + last, utc)
        ready_time = None if ready is None else _fromtimestamp(offset + ready, utc)
    else:
        start_time, end_time, ready_time = wall(first), wall(last), wall(ready)
    loop_index = inst.loop_index
    # ``span`` inlined (once per instance, twice): 0 when a time is unknown, never negative.
    run = last - first if first is not None and last is not None else 0.0
    queued = first - ready if first is not None and ready is not None else 0.0
    # An attempt's times are mostly the instance's own (one attempt: both), converted once:
    # a datetime is immutable, so the entries share it.
    if len(attempts) == 1:
        reports = [_attempt_report(attempts[0], start_time, end_time)]
    else:
        convert = wall if wall is not None else _converter(offset)
        reports = [
            _attempt_report(
                a,
                start_time if a.started_at == first else convert(a.started_at),
                end_time if a.ended_at == last else convert(a.ended_at),
            )
            for a in attempts
        ]
    return InstanceReport(
        instance_id=inst.id,
        label=inst.task if loop_index is None else inst.label,
        loop_index=loop_index,
        status=inst.status._value_,  # ``.value`` is a property: two calls
        reason=inst.reason,
        error=inst.error,
        traceback=inst.traceback,
        summary=cap_summary(inst.summary),
        ready_time=ready_time,
        start_time=start_time,
        end_time=end_time,
        run_duration=run if run > 0.0 else 0.0,
        queued_duration=queued if queued > 0.0 else 0.0,
        attempts=reports,
    )


_fromtimestamp = dt.datetime.fromtimestamp


def _converter(offset: float) -> Wall:
    """``offset + time`` as a UTC datetime (None stays None)."""

    def wall(mono: float | None) -> dt.datetime | None:
        return None if mono is None else _fromtimestamp(offset + mono, dt.UTC)

    return wall


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
    upstream_of = state.graph.upstream
    for name, record in state.tasks.items():
        counts[record.status] += 1
        seen.clear()
        live = record.instances
        instances = [] if spooler is not None else [instance_report(i, wall) for i in live]
        upstream = upstream_of(name)
        first, start, end = record.run_span()
        ready = record.ready_at
        # ``span`` twice, inlined: 0 when a time is unknown, never negative.
        took = end - start if start is not None and end is not None else 0.0
        queued = first - ready if first is not None and ready is not None else 0.0
        results[name] = TaskResult(
            status=record.status._value_,
            error=record.error,
            reason=record.reason,
            ignored=record.ignored,
            ready_time=wall(ready),
            start_time=wall(start),
            end_time=wall(end),
            duration=took if took > 0.0 else 0.0,
            queued_duration=queued if queued > 0.0 else 0.0,
            upstream=[Upstream(task=e.source, kind=e.kind) for e in upstream] if upstream else [],
            attempts=record.attempts_total,
            instances=instances,
            # Stream edges: only tasks without a loop stream, and those keep their instance.
            streams=[edge for inst in live for edge in inst.streams] if live else [],
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
        spooler.close()
        spool = spooler.spool
        attach_instances(report, spool)
        kept = spooler.kept() if spooler.count <= INLINE_INSTANCES else None
        if kept is not None:
            for name, result in results.items():
                result.instances = kept.get(name, [])
        elif spooler.count <= INLINE_INSTANCES:
            with spool.reading():  # one descriptor for every task, not one per task
                for name, result in results.items():
                    result.instances = list(task_instances(report, name))
    return report


def _attempt_report(
    attempt: Attempt, start_time: dt.datetime | None, end_time: dt.datetime | None
) -> AttemptReport:
    """One attempt (``start_time``, ``end_time``: its times as datetimes): its output (tails,
    sizes, log paths) as its worker reported it, and the command, directory and exit code its
    own summary gave (``exec``; each attempt's)."""
    started, ended = attempt.started_at, attempt.ended_at
    duration = ended - started if started is not None and ended is not None else 0.0
    return AttemptReport(
        number=attempt.number,
        start_time=start_time,
        end_time=end_time,
        duration=duration if duration > 0.0 else 0.0,  # ``span``, inlined
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
    if state.work_left and state.stoppable and not state.failed:
        left = sum(1 for r in state.tasks.values() if r.status is Status.CANCELLED)
        why = "drained (SIGUSR1/SIGUSR2)" if state.interrupted == "drained" else "--deadline"
        return f"{why}: {left} task(s) not done; run again with --resume"
    if state.interrupted == "fail_fast":
        failed = [n for n, r in state.tasks.items() if r.status is Status.FAILED and not r.ignored]
        return f"--fail-fast: stopped after {', '.join(failed[:5]) or 'a task'} failed"
    drained = state.interrupted in ("drained", "deadline")
    if state.interrupted and not drained:
        return "the run was interrupted"
    failed = [n for n, r in state.tasks.items() if r.status is Status.FAILED and not r.ignored]
    if failed:
        shown = ", ".join(failed[:5]) + (f" and {len(failed) - 5} more" if len(failed) > 5 else "")
        # A drain stops nothing that runs: what failed, failed on its own, and says why.
        why = (
            "; then drained (SIGUSR1/SIGUSR2)"
            if state.interrupted == "drained"
            else "; then --deadline reached"
            if drained
            else ""
        )
        return f"{len(failed)} task(s) failed: {shown}{why}"
    return ""  # a drain or --deadline that left nothing undone: the run Completed
