"""A self-contained HTML page of a run (``gxo execute --html-report run.html``).

One file, no external resources (inline CSS and SVG, no script), rendered from Jinja2
templates in ``gxo/observability/templates`` with autoescaping on:

- the summary, then **failures first**: every failed instance with its command, exit code,
  error, traceback and the last lines of stdout and stderr;
- a timeline per instance: the time it waited for a worker (queued), then each attempt,
  coloured by outcome, with retries visible as separate bars; past
  :data:`TIMELINE_AGGREGATE_ABOVE` instances that ran, one bar per task instead (its first
  start to its last end) with a table per task: instances, first start, last end, a
  histogram of statuses and its slowest :data:`SLOWEST` instances; and a timeline per worker
  process (its first :data:`MAX_WORKER_BARS` attempts);
- the DAG, laid out in columns by dependency depth, nodes coloured by status;
- the tasks, and every instance in a collapsible ``<details>`` with its attempts (retries),
  command, exit code, error, traceback and output tails.

Built from the run report only, which holds what the workers sent back, redacted: no secret
value. Large runs are cut at fixed limits (failures, nodes, instance details) with a note, so
the page stays usable; the instances are read in one pass (from the run's spool for a big
run, :func:`gxo.report.task_instances`), keeping only what is drawn, so a 100,000-instance
run renders in bounded memory and a page of bounded size.
"""

from __future__ import annotations

import datetime as dt
import heapq
import os
import shlex
from dataclasses import dataclass, field
from typing import Any

from gxo._util.outputs import write_atomic
from gxo.observability.junit import clean_text, exit_code_text
from gxo.report import (
    AttemptReport,
    ExecutionReport,
    InstanceReport,
    TaskResult,
    task_instances,
)

__all__ = ["COLOURS", "TIMELINE_AGGREGATE_ABOVE", "render_html", "write_html"]

#: Fill colour of a bar / badge, by status (an attempt that was retried is "Retried").
COLOURS = {
    "Completed": "#2e9d4f",
    "Failed": "#d1383d",
    "Retried": "#e6a23c",
    "Skipped": "#9aa0a6",
    "Cancelled": "#8e6bbf",
    "Queued": "#d0d7de",
    "Running": "#3b82c4",
}

#: Limits that keep the page usable for very large runs.
#: Up to this many instances that ran, one timeline row each; more: one row per task.
TIMELINE_AGGREGATE_ABOVE = 300
#: The slowest instances listed per task in an aggregated timeline.
SLOWEST = 5
#: Failed instances shown in full (the rest are counted).
MAX_FAILURES = 200
MAX_WORKER_BARS = 5000
MAX_DAG_NODES = 300
MAX_INSTANCE_DETAILS = 2000
#: Characters of an error or traceback shown.
MAX_TEXT = 4000

_LEFT, _WIDTH, _ROW = 150, 900, 22
_NODE_W, _NODE_H, _COL_GAP, _ROW_GAP = 170, 30, 60, 14


@dataclass
class Bar:
    x: float
    width: float
    colour: str
    title: str
    label: str = ""


@dataclass
class Row:
    name: str
    y: float
    bars: list[Bar] = field(default_factory=list)


@dataclass
class Timeline:
    width: float
    height: float
    ticks: list[tuple[float, str]]
    rows: list[Row]
    hidden: int = 0


@dataclass
class Node:
    name: str
    type_status: str
    x: float
    y: float
    colour: str


@dataclass
class Link:
    path: str
    kind: str


@dataclass
class Dag:
    width: float
    height: float
    nodes: list[Node]
    links: list[Link]
    too_large: int = 0


def _seconds(moment: dt.datetime | None, origin: dt.datetime) -> float | None:
    return None if moment is None else (moment - origin).total_seconds()


def _clip(text: str) -> str:
    """At most :data:`MAX_TEXT` characters of ``text``, without the ANSI colour codes and
    control characters a command printed (a page cannot show them; the JUnit file drops
    them too)."""
    text = clean_text(text)
    return text if len(text) <= MAX_TEXT else text[:MAX_TEXT] + " ..."


def _attempt_status(inst: InstanceReport, index: int) -> str:
    return inst.status if index == len(inst.attempts) - 1 else "Retried"


def _attempt_title(inst: InstanceReport, index: int, attempt: AttemptReport) -> str:
    status = _attempt_status(inst, index)
    title = f"{inst.label} attempt {attempt.number}: {status}"
    if attempt.reason:
        title += f" ({attempt.reason})"
    title += f", {attempt.duration:.3f}s"
    if attempt.worker_pid is not None:
        title += f", worker {attempt.worker_pid}"
    return title


def _axis(span: float) -> list[tuple[float, str]]:
    """Six ticks, with the decimals that tell them apart: a run of 30 ms was labelled
    ``0.00s 0.01s 0.01s 0.02s 0.03s 0.03s`` with two."""
    for decimals in range(2, 7):
        texts = [f"{span * k / 5:.{decimals}f}s" for k in range(6)]
        if len(set(texts)) == len(texts):
            break
    return [(_LEFT + _WIDTH * k / 5, text) for k, text in enumerate(texts)]


@dataclass
class TaskSpan:
    """One task's instances, aggregated (the timeline of a big run)."""

    name: str
    count: int = 0
    ran: int = 0
    first_start: float | None = None
    last_end: float | None = None
    statuses: dict[str, int] = field(default_factory=dict)
    #: (run seconds, label, status) of its slowest instances, slowest first once sorted.
    slowest: list[tuple[float, str, str]] = field(default_factory=list)

    def add(self, inst: InstanceReport, origin: dt.datetime) -> None:
        self.count += 1
        self.statuses[inst.status] = self.statuses.get(inst.status, 0) + 1
        if not inst.attempts:
            return
        self.ran += 1
        start, end = _seconds(inst.start_time, origin), _seconds(inst.end_time, origin)
        if start is not None and (self.first_start is None or start < self.first_start):
            self.first_start = start
        if end is not None and (self.last_end is None or end > self.last_end):
            self.last_end = end
        entry = (inst.run_duration, inst.label, inst.status)
        if len(self.slowest) < SLOWEST:
            heapq.heappush(self.slowest, entry)
        elif entry > self.slowest[0]:
            heapq.heapreplace(self.slowest, entry)

    @property
    def colour(self) -> str:
        for status in ("Failed", "Cancelled", "Completed", "Skipped"):
            if self.statuses.get(status):
                return COLOURS[status]
        return "#57606a"

    @property
    def histogram(self) -> str:
        return ", ".join(f"{s} {n}" for s, n in sorted(self.statuses.items()))


@dataclass
class Collected:
    """What the page shows of the instances, gathered in one pass over them."""

    span: float
    tasks: dict[str, TaskSpan]
    #: The instances that ran, while there are at most TIMELINE_AGGREGATE_ABOVE of them.
    ran: list[InstanceReport] | None
    ran_count: int
    #: (label, status, worker pid, start, end) of the first MAX_WORKER_BARS attempts.
    attempts: list[tuple[str, str, int | None, float, float | None]]
    hidden_attempts: int
    failures: list[tuple[str, TaskResult, InstanceReport | None]]
    hidden_failures: int
    details: list[tuple[str, TaskResult, InstanceReport]]
    hidden_details: int


def _collect(report: ExecutionReport) -> Collected:
    """One pass over every instance (read one at a time for a big run)."""
    origin = report.start_time
    tasks: dict[str, TaskSpan] = {}
    ran: list[InstanceReport] | None = []
    ran_count = hidden_attempts = hidden_failures = hidden_details = 0
    attempts: list[tuple[str, str, int | None, float, float | None]] = []
    failures: list[tuple[str, TaskResult, InstanceReport | None]] = []
    details: list[tuple[str, TaskResult, InstanceReport]] = []
    last = max(report.duration, 1e-6)
    for name, result in report.task_results.items():
        summary = tasks[name] = TaskSpan(name)
        for inst in task_instances(report, name):
            summary.add(inst, origin)
            if len(details) < MAX_INSTANCE_DETAILS:
                details.append((name, result, inst))
            else:
                hidden_details += 1
            if inst.status == "Failed":
                if len(failures) < MAX_FAILURES:
                    failures.append((name, result, inst))
                else:
                    hidden_failures += 1
            if not inst.attempts:
                continue
            ran_count += 1
            if ran is not None:
                ran.append(inst)
                if len(ran) > TIMELINE_AGGREGATE_ABOVE:
                    ran = None  # aggregated: one row per task
            for k, attempt in enumerate(inst.attempts):
                end = _seconds(attempt.end_time, origin)
                if end is not None and end > last:
                    last = end
                start = _seconds(attempt.start_time, origin)
                if start is None:
                    continue
                if len(attempts) >= MAX_WORKER_BARS:
                    hidden_attempts += 1
                    continue
                status = _attempt_status(inst, k)
                attempts.append((inst.label, status, attempt.worker_pid, start, end))
        if result.status == "Failed" and not summary.count:
            failures.append((name, result, None))  # a when or loop that did not render
    failures.sort(key=lambda t: t[1].ignored)
    return Collected(
        last,
        tasks,
        ran,
        ran_count,
        attempts,
        hidden_attempts,
        failures,
        hidden_failures,
        details,
        hidden_details,
    )


def _instance_timeline(report: ExecutionReport, seen: Collected) -> Timeline:
    """One row per instance that ran: queued (grey), then each attempt; or, past
    :data:`TIMELINE_AGGREGATE_ABOVE` of them, one row per task: first start to last end."""
    origin, span = report.start_time, seen.span
    scale = _WIDTH / span
    rows: list[Row] = []
    if seen.ran is None:
        for summary in seen.tasks.values():
            if summary.first_start is None:
                continue
            end = span if summary.last_end is None else summary.last_end
            title = (
                f"{summary.name}: {summary.ran} instance(s) ran, {summary.histogram}; "
                f"first start {summary.first_start:.3f}s, last end {end:.3f}s"
            )
            row = Row(summary.name, 24 + len(rows) * _ROW)
            row.bars.append(
                Bar(
                    _LEFT + summary.first_start * scale,
                    max(1.5, (end - summary.first_start) * scale),
                    summary.colour,
                    title,
                )
            )
            rows.append(row)
        height = 24 + _ROW * len(rows) + 10
        return Timeline(_LEFT + _WIDTH + 20, height, _axis(span), rows)
    ran = sorted(seen.ran, key=lambda i: i.ready_time or i.start_time or origin)
    for number, inst in enumerate(ran):
        row = Row(inst.label, 24 + number * _ROW)
        ready = _seconds(inst.ready_time, origin)
        start = _seconds(inst.start_time, origin)
        if ready is not None and start is not None and start > ready:
            row.bars.append(
                Bar(
                    _LEFT + ready * scale,
                    max(1.0, (start - ready) * scale),
                    COLOURS["Queued"],
                    f"{inst.label} queued {inst.queued_duration:.3f}s (waiting for a worker)",
                )
            )
        for k, attempt in enumerate(inst.attempts):
            a_start = _seconds(attempt.start_time, origin)
            if a_start is None:
                continue
            a_end = _seconds(attempt.end_time, origin)
            a_end = span if a_end is None else a_end
            row.bars.append(
                Bar(
                    _LEFT + a_start * scale,
                    max(1.5, (a_end - a_start) * scale),
                    COLOURS.get(_attempt_status(inst, k), "#57606a"),
                    _attempt_title(inst, k, attempt),
                )
            )
        rows.append(row)
    height = 24 + _ROW * len(rows) + 10
    return Timeline(_LEFT + _WIDTH + 20, height, _axis(span), rows)


def _worker_timeline(seen: Collected) -> Timeline:
    """One row per worker process: the attempts it ran (its utilisation)."""
    span = seen.span
    scale = _WIDTH / span
    by_pid: dict[int | None, list[Bar]] = {}
    for label, status, pid, start, ended in seen.attempts:
        end = span if ended is None else ended
        width = max(1.5, (end - start) * scale)
        by_pid.setdefault(pid, []).append(
            Bar(
                _LEFT + start * scale,
                width,
                COLOURS.get(status, "#57606a"),
                f"worker {pid}: {label} ({status})",
                label if width > 8 * len(label) else "",
            )
        )
    pids = sorted(p for p in by_pid if p is not None) + ([None] if None in by_pid else [])
    rows = [
        Row(f"worker {pid}" if pid is not None else "no worker", 24 + n * 26, by_pid[pid])
        for n, pid in enumerate(pids)
    ]
    return Timeline(
        _LEFT + _WIDTH + 20, 24 + 26 * len(rows) + 10, _axis(span), rows, seen.hidden_attempts
    )


def _dag(report: ExecutionReport) -> Dag:
    """Tasks in columns by dependency depth (longest path from a root), edges as curves."""
    results = report.task_results
    if len(results) > MAX_DAG_NODES:
        return Dag(0, 0, [], [], too_large=len(results))
    depth: dict[str, int] = {}

    def level(name: str, seen: frozenset[str] = frozenset()) -> int:
        if name not in depth:
            ups = [u.task for u in results[name].upstream if u.task in results]
            ups = [u for u in ups if u not in seen]  # a cycle cannot run; stay finite anyway
            depth[name] = 1 + max((level(u, seen | {name}) for u in ups), default=-1)
        return depth[name]

    columns: dict[int, list[str]] = {}
    for name in results:
        columns.setdefault(level(name), []).append(name)
    where: dict[str, tuple[float, float]] = {}
    nodes: list[Node] = []
    for col, names in sorted(columns.items()):
        for row, name in enumerate(names):
            x = 10 + col * (_NODE_W + _COL_GAP)
            y = 10 + row * (_NODE_H + _ROW_GAP)
            where[name] = (x, y)
            result = results[name]
            status = result.status + (" (ignored)" if result.ignored else "")
            nodes.append(Node(name, status, x, y, COLOURS.get(result.status, "#57606a")))
    links: list[Link] = []
    for name, result in results.items():
        tx, ty = where[name]
        for up in result.upstream:
            if up.task not in where:
                continue
            sx, sy = where[up.task]
            x1, y1 = sx + _NODE_W, sy + _NODE_H / 2
            x2, y2 = tx, ty + _NODE_H / 2
            mid = (x1 + x2) / 2
            path = f"M{x1:.1f},{y1:.1f} C{mid:.1f},{y1:.1f} {mid:.1f},{y2:.1f} {x2:.1f},{y2:.1f}"
            links.append(Link(path, up.kind))
    width = 20 + (max(columns, default=0) + 1) * (_NODE_W + _COL_GAP)
    height = 20 + max((len(v) for v in columns.values()), default=0) * (_NODE_H + _ROW_GAP)
    return Dag(width, height, nodes, links)


def _environment() -> Any:
    from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

    env = Environment(
        loader=PackageLoader("gxo.observability", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["clip"] = _clip
    env.filters["clean"] = clean_text
    env.filters["exit_code"] = exit_code_text
    env.filters["shell_join"] = shlex.join  # a command as the FAILED line and a shell show it
    env.filters["seconds"] = lambda value: f"{value:.3f}s"
    env.globals["COLOURS"] = COLOURS
    return env


def render_html(report: ExecutionReport) -> str:
    """The HTML page of ``report`` (a complete document, self-contained)."""
    seen = _collect(report)
    template = _environment().get_template("report.html.j2")
    aggregated = seen.ran is None
    page: str = template.render(
        report=report,
        title=f"gxo run: {report.playbook_name}",
        started=report.start_time.isoformat(timespec="seconds"),
        failures=seen.failures,
        hidden_failures=seen.hidden_failures,
        instance_timeline=_instance_timeline(report, seen),
        aggregated=aggregated,
        aggregate_above=TIMELINE_AGGREGATE_ABOVE,
        ran_count=seen.ran_count,
        task_spans=[(t, sorted(t.slowest, reverse=True)) for t in seen.tasks.values() if t.count]
        if aggregated
        else [],
        counts={name: t.count for name, t in seen.tasks.items()},
        worker_timeline=_worker_timeline(seen),
        dag=_dag(report),
        node_w=_NODE_W,
        node_h=_NODE_H,
        instances=seen.details,
        hidden_instances=seen.hidden_details,
        legend=[(s, c) for s, c in COLOURS.items() if s != "Running"],
    )
    return page


def write_html(path: str | os.PathLike[str], report: ExecutionReport) -> None:
    """Write the page to ``path`` atomically; raises :class:`OSError`, leaves no temp file."""
    write_atomic(path, render_html(report).encode("utf-8"))
