"""A self-contained HTML page of a run (``gxo execute --html-report run.html``).

One file, no external resources (inline CSS and SVG, no script): the summary, a timeline of
every attempt on the worker process that ran it, coloured by outcome (hover for details), and
tables of tasks and instances with their status, reason, attempts and durations. Built from the
run report only, which holds what the workers sent back, redacted: no secret value.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from html import escape

from gxo._util.outputs import write_atomic
from gxo.report import ExecutionReport

__all__ = ["render_html", "write_html"]

#: Fill colour of a bar / badge, by status (an attempt that was retried is "Retried").
COLOURS = {
    "Completed": "#2e9d4f",
    "Failed": "#d1383d",
    "Retried": "#e6a23c",
    "Skipped": "#9aa0a6",
    "Cancelled": "#8e6bbf",
    "Running": "#3b82c4",
}

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px;
color:#1f2328;background:#fff}
h1{font-size:20px;margin:0 0 4px}h2{font-size:16px;margin:28px 0 8px}
.meta{color:#57606a;margin-bottom:12px}
.cards{display:flex;gap:12px;flex-wrap:wrap;margin:12px 0}
.card{border:1px solid #d0d7de;border-radius:6px;padding:8px 14px;min-width:90px}
.card b{display:block;font-size:20px}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;color:#fff;font-size:12px}
table{border-collapse:collapse;width:100%;font-size:13px}
th,td{border-bottom:1px solid #d8dee4;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f6f8fa}td.num{text-align:right;font-variant-numeric:tabular-nums}
.err{color:#82071e;white-space:pre-wrap;font-family:ui-monospace,monospace;font-size:12px}
.legend span{margin-right:14px}.legend i{display:inline-block;width:10px;height:10px;
margin-right:4px;border-radius:2px}
svg text{font:11px ui-monospace,monospace;fill:#1f2328}
.timeline{overflow-x:auto;border:1px solid #d0d7de;border-radius:6px;padding:8px}
"""


@dataclass
class _Bar:
    pid: int | None
    start: float
    end: float
    label: str
    status: str
    detail: str


def _seconds(moment: dt.datetime | None, origin: dt.datetime) -> float | None:
    return None if moment is None else (moment - origin).total_seconds()


def _badge(status: str) -> str:
    colour = COLOURS.get(status, "#57606a")
    return f'<span class="badge" style="background:{colour}">{escape(status)}</span>'


def _bars(report: ExecutionReport) -> list[_Bar]:
    origin = report.start_time
    bars = []
    for result in report.task_results.values():
        for inst in result.instances:
            for i, attempt in enumerate(inst.attempts):
                start = _seconds(attempt.start_time, origin)
                if start is None:
                    continue
                end = _seconds(attempt.end_time, origin)
                end = report.duration if end is None else end
                last = i == len(inst.attempts) - 1
                status = inst.status if last else "Retried"
                detail = f"{inst.label} attempt {attempt.number}: {status}"
                if attempt.reason:
                    detail += f" ({attempt.reason})"
                detail += f", {attempt.duration:.3f}s"
                if attempt.worker_pid is not None:
                    detail += f", worker {attempt.worker_pid}"
                bars.append(_Bar(attempt.worker_pid, start, end, inst.label, status, detail))
    return bars


def _timeline(report: ExecutionReport) -> str:
    bars = _bars(report)
    if not bars:
        return '<p class="meta">No task instance ran (nothing to draw).</p>'
    pids = sorted({b.pid for b in bars if b.pid is not None})
    rows: dict[int | None, int] = {pid: i for i, pid in enumerate(pids)}
    if any(b.pid is None for b in bars):
        rows[None] = len(pids)
    span = max(report.duration, 1e-6, *(b.end for b in bars))
    left, width, row_h, top = 110, 900, 26, 24
    height = top + row_h * len(rows) + 10
    scale = width / span
    parts = [
        f'<svg width="{left + width + 20}" '
        f'height="{height}" role="img" aria-label="timeline of task instances per worker">'
    ]
    for k in range(6):  # time axis
        x = left + width * k / 5
        parts.append(
            f'<line x1="{x:.1f}" y1="{top - 6}" x2="{x:.1f}" y2="{height - 6}" stroke="#d8dee4"/>'
        )
        parts.append(
            f'<text x="{x:.1f}" y="{top - 10}" text-anchor="middle">{span * k / 5:.2f}s</text>'
        )
    for pid, row in rows.items():
        y = top + row * row_h
        name = f"worker {pid}" if pid is not None else "no worker"
        parts.append(f'<text x="4" y="{y + 16}">{escape(name)}</text>')
    for bar in bars:
        y = top + rows[bar.pid] * row_h + 3
        x = left + bar.start * scale
        w = max(1.5, (bar.end - bar.start) * scale)
        colour = COLOURS.get(bar.status, "#57606a")
        parts.append(
            f'<rect x="{x:.2f}" y="{y}" width="{w:.2f}" height="{row_h - 6}" rx="2" '
            f'fill="{colour}" stroke="#fff" stroke-width="0.5">'
            f"<title>{escape(bar.detail)}</title></rect>"
        )
        if w > 8 * len(bar.label):
            parts.append(
                f'<text x="{x + 3:.2f}" y="{y + 14}" style="fill:#fff">{escape(bar.label)}</text>'
            )
    parts.append("</svg>")
    legend = "".join(
        f'<span><i style="background:{c}"></i>{escape(s)}</span>'
        for s, c in COLOURS.items()
        if s != "Running"
    )
    return f'<div class="timeline">{"".join(parts)}</div><p class="legend">{legend}</p>'


def _error_cell(text: str) -> str:
    if not text:
        return "<td></td>"
    shown = text if len(text) <= 2000 else text[:2000] + " ..."
    return f'<td class="err">{escape(shown)}</td>'


def render_html(report: ExecutionReport) -> str:
    """The HTML page of ``report`` (a complete document, self-contained)."""
    title = f"gxo run: {report.playbook_name}"
    cards = [
        ("status", _badge(report.overall_status)),
        ("duration", f"{report.duration:.2f}s"),
        ("tasks", str(report.total_tasks)),
        ("completed", str(report.completed_tasks)),
        ("failed", str(report.failed_tasks)),
        ("skipped", str(report.skipped_tasks)),
        ("cancelled", str(report.cancelled_tasks)),
        ("workers", str(report.workers)),
        ("worker restarts", str(report.worker_restarts)),
    ]
    out = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(title)}</title>",
        f"<style>{_CSS}</style>",
        "</head>",
        "<body>",
        f"<h1>{escape(title)}</h1>",
        f'<div class="meta">run {escape(report.run_id)} · started '
        f"{escape(report.start_time.isoformat(timespec='seconds'))} · exit code "
        f"{report.exit_code} · gxo {escape(report.gxo_version)}"
        f"{' · dry run' if report.dry_run else ''}</div>",
    ]
    if report.error:
        out.append(f'<p class="err">{escape(report.error)}</p>')
    out.append('<div class="cards">')
    out.extend(f'<div class="card">{escape(k)}<b>{v}</b></div>' for k, v in cards)
    out.append("</div>")
    out.append("<h2>Timeline (each attempt, on the worker that ran it)</h2>")
    out.append(_timeline(report))
    out.append("<h2>Tasks</h2>")
    out.append(
        "<table><thead><tr><th>task</th><th>status</th><th>reason</th>"
        '<th class="num">duration</th><th class="num">instances</th>'
        '<th class="num">attempts</th><th>error</th></tr></thead><tbody>'
    )
    for name, result in report.task_results.items():
        status = result.status + (" (ignored)" if result.ignored else "")
        out.append(
            f'<tr id="task-{escape(name)}"><td>{escape(name)}</td><td>{_badge(status)}</td>'
            f"<td>{escape(result.reason)}</td>"
            f'<td class="num">{result.duration:.3f}s</td>'
            f'<td class="num">{len(result.instances)}</td>'
            f'<td class="num">{result.attempts}</td>{_error_cell(result.error)}</tr>'
        )
    out.append("</tbody></table>")
    out.append("<h2>Instances</h2>")
    out.append(
        "<table><thead><tr><th>instance</th><th>task</th><th>status</th><th>reason</th>"
        '<th class="num">attempts</th><th class="num">duration</th><th>workers</th>'
        '<th class="num">max RSS</th><th>error</th></tr></thead><tbody>'
    )
    for name, result in report.task_results.items():
        for inst in result.instances:
            duration = sum(a.duration for a in inst.attempts)
            pids = ", ".join(str(a.worker_pid) for a in inst.attempts if a.worker_pid)
            rss = max((a.max_rss_kib for a in inst.attempts), default=0)
            out.append(
                f"<tr><td>{escape(inst.label)}</td><td>{escape(name)}</td>"
                f"<td>{_badge(inst.status)}</td><td>{escape(inst.reason)}</td>"
                f'<td class="num">{len(inst.attempts)}</td>'
                f'<td class="num">{duration:.3f}s</td><td>{escape(pids)}</td>'
                f'<td class="num">{rss // 1024} MiB</td>{_error_cell(inst.error)}</tr>'
            )
    out.append("</tbody></table>")
    out.append("</body>")
    out.append("</html>")
    return "\n".join(out) + "\n"


def write_html(path: str | os.PathLike[str], report: ExecutionReport) -> None:
    """Write the page to ``path`` atomically; raises :class:`OSError`, leaves no temp file."""
    write_atomic(path, render_html(report).encode("utf-8"))
