"""A self-contained HTML page of a run (``gxo execute --html-report run.html``).

One file, no external resources (inline CSS and SVG, no script), rendered from Jinja2
templates in ``gxo/observability/templates`` with autoescaping on:

- the summary, then **failures first**: every failed instance with its command, exit code,
  error, traceback and the last lines of stdout and stderr;
- a timeline per instance: the time it waited for a worker (queued), then each attempt,
  coloured by outcome, with retries visible as separate bars; and a timeline per worker
  process;
- the DAG, laid out in columns by dependency depth, nodes coloured by status;
- the tasks, and every instance in a collapsible ``<details>`` with its attempts (retries),
  command, exit code, error, traceback and output tails.

Built from the run report only, which holds what the workers sent back, redacted: no secret
value. Large runs are cut at fixed limits (rows, nodes, instance details) with a note, so the
page stays usable.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass, field
from typing import Any

from gxo._util.outputs import write_atomic
from gxo.report import AttemptReport, ExecutionReport, InstanceReport, TaskResult

__all__ = ["COLOURS", "render_html", "write_html"]

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
MAX_TIMELINE_ROWS = 300
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
    return [(_LEFT + _WIDTH * k / 5, f"{span * k / 5:.2f}s") for k in range(6)]


def _span(report: ExecutionReport) -> float:
    ends = [
        s
        for r in report.task_results.values()
        for i in r.instances
        for a in i.attempts
        if (s := _seconds(a.end_time, report.start_time)) is not None
    ]
    return max(report.duration, 1e-6, *ends)


def _instances(report: ExecutionReport) -> list[tuple[str, TaskResult, InstanceReport]]:
    return [(n, r, i) for n, r in report.task_results.items() for i in r.instances]


def _instance_timeline(report: ExecutionReport) -> Timeline:
    """One row per instance that ran: queued (grey), then each attempt."""
    origin, span = report.start_time, _span(report)
    scale = _WIDTH / span
    ran = [(n, r, i) for n, r, i in _instances(report) if i.attempts]
    ran.sort(key=lambda t: t[2].ready_time or t[2].start_time or origin)
    rows: list[Row] = []
    for number, (_, _, inst) in enumerate(ran[:MAX_TIMELINE_ROWS]):
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
    return Timeline(
        _LEFT + _WIDTH + 20, height, _axis(span), rows, max(0, len(ran) - MAX_TIMELINE_ROWS)
    )


def _worker_timeline(report: ExecutionReport) -> Timeline:
    """One row per worker process: the attempts it ran (its utilisation)."""
    origin, span = report.start_time, _span(report)
    scale = _WIDTH / span
    by_pid: dict[int | None, list[Bar]] = {}
    drawn = hidden = 0
    for _, _, inst in _instances(report):
        for k, attempt in enumerate(inst.attempts):
            if drawn >= MAX_WORKER_BARS:
                hidden += 1
                continue
            drawn += 1
            start = _seconds(attempt.start_time, origin)
            if start is None:
                continue
            end = _seconds(attempt.end_time, origin)
            end = span if end is None else end
            width = max(1.5, (end - start) * scale)
            by_pid.setdefault(attempt.worker_pid, []).append(
                Bar(
                    _LEFT + start * scale,
                    width,
                    COLOURS.get(_attempt_status(inst, k), "#57606a"),
                    f"worker {attempt.worker_pid}: {inst.label} ({_attempt_status(inst, k)})",
                    inst.label if width > 8 * len(inst.label) else "",
                )
            )
    pids = sorted(p for p in by_pid if p is not None) + ([None] if None in by_pid else [])
    rows = [
        Row(f"worker {pid}" if pid is not None else "no worker", 24 + n * 26, by_pid[pid])
        for n, pid in enumerate(pids)
    ]
    return Timeline(_LEFT + _WIDTH + 20, 24 + 26 * len(rows) + 10, _axis(span), rows, hidden)


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


def _failures(report: ExecutionReport) -> list[tuple[str, TaskResult, InstanceReport | None]]:
    """Failed instances, those that failed the run first, then those ignore_errors absorbed;
    and failed tasks that never had an instance (a ``when`` or ``loop`` that did not render)."""
    failed: list[tuple[str, TaskResult, InstanceReport | None]] = [
        (n, r, i) for n, r, i in _instances(report) if i.status == "Failed"
    ]
    failed += [
        (n, r, None)
        for n, r in report.task_results.items()
        if r.status == "Failed" and not r.instances
    ]
    failed.sort(key=lambda t: t[1].ignored)
    return failed


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
    env.filters["seconds"] = lambda value: f"{value:.3f}s"
    env.globals["COLOURS"] = COLOURS
    return env


def render_html(report: ExecutionReport) -> str:
    """The HTML page of ``report`` (a complete document, self-contained)."""
    instances = _instances(report)
    template = _environment().get_template("report.html.j2")
    page: str = template.render(
        report=report,
        title=f"gxo run: {report.playbook_name}",
        started=report.start_time.isoformat(timespec="seconds"),
        failures=_failures(report),
        instance_timeline=_instance_timeline(report),
        worker_timeline=_worker_timeline(report),
        dag=_dag(report),
        node_w=_NODE_W,
        node_h=_NODE_H,
        instances=instances[:MAX_INSTANCE_DETAILS],
        hidden_instances=max(0, len(instances) - MAX_INSTANCE_DETAILS),
        legend=[(s, c) for s, c in COLOURS.items() if s != "Running"],
    )
    return page


def write_html(path: str | os.PathLike[str], report: ExecutionReport) -> None:
    """Write the page to ``path`` atomically; raises :class:`OSError`, leaves no temp file."""
    write_atomic(path, render_html(report).encode("utf-8"))
