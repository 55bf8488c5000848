"""What the ``gxo`` command prints for people: task lines, the summary, plans and graphs.

Task lines and the summary go through the ``gxo`` logger (stderr), so ``--log-format json``
turns them into structured records; plans, graphs and module lists go to stdout.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from typing import Any

import msgspec

from gxo.config.model import Playbook, Task
from gxo.dag import Graph
from gxo.events import Event, InstanceFinished, TaskStatusChanged
from gxo.modules.registry import ModuleInfo
from gxo.report import ExecutionReport
from gxo.secrets.redact import REDACTED
from gxo.template import compile_value
from gxo.template.budget import BudgetExceeded, run_bounded

__all__ = [
    "graph_dot",
    "graph_mermaid",
    "module_text",
    "plan_json",
    "plan_text",
    "summary",
    "TaskLines",
]

log = logging.getLogger("gxo.progress.task")
#: Lines of a task's stdout/stderr shown at --log-level debug (the report keeps all of it).
_OUTPUT_LINES = 20
summary_log = logging.getLogger("gxo")

#: What to do next, for the failure reasons a person fixes in the playbook or the environment
#: (README.md, "Errors"). ``{type}`` is the task's module type.
HINTS = {
    "bad_params": "check the task's params against `gxo modules` (it lists the parameters of "
    "{type} with their types)",
    "template_error": "fix the template in the task's params; `gxo plan PLAYBOOK` shows the "
    "params rendered with the playbook's vars",
    "secret_missing": "provide the secret to gxo: an environment variable, or a file in "
    "--secrets-dir (with --secrets-prefix prepended to its name)",
    "module_unavailable": "run `gxo modules` to list the installed module types; install the "
    "package that provides {type}",
    "import_failed": "check the function's module or file path in params (a relative file is "
    "looked up in the playbook's directory, then the current one) and that it imports",
}

_WORDS = {"Completed": "ok", "Failed": "FAILED", "Skipped": "skipped", "Cancelled": "cancelled"}


class TaskLines:
    """An event subscriber: one line when a task reaches a terminal status.

    At ``--log-level debug`` the line is followed by the last lines of each instance's
    stdout/stderr, taken from its ``InstanceFinished`` event.
    """

    def __init__(self, playbook: Playbook) -> None:
        self._tasks = {task.name: task for task in playbook.tasks}
        self._outputs: dict[str, list[tuple[str, Any]]] = {}

    def __call__(self, event: Event) -> None:
        if isinstance(event, InstanceFinished):
            if log.isEnabledFor(logging.DEBUG) and isinstance(event.summary, dict):
                self._outputs.setdefault(event.task, []).append((event.label, event.summary))
        elif isinstance(event, TaskStatusChanged) and event.status != "Running":
            self._line(event, self._outputs.pop(event.task, []))

    def _line(self, event: TaskStatusChanged, outputs: list[tuple[str, Any]]) -> None:
        status, reason, error, task = (
            event.status,
            event.reason,
            event.error,
            self._tasks[event.task],
        )
        word = "failed (ignored)" if event.ignored else _WORDS.get(status, status)
        if reason == "resumed":
            word = "cached"  # restored from the journal by --resume
        text = f"{word:<8} {event.task}"
        if status == "Completed" and reason == "resumed":
            text += " (restored from the journal)"
        elif status == "Completed":
            text += f" ({event.duration:.2f}s)"
            if task.loop is not None:
                text += f" [{event.instances} iterations]"
        elif reason:
            text += f": {reason}"
            if (error and status != "Skipped") or reason == "upstream_failed":
                text += f": {error}"
        level = logging.ERROR if status == "Failed" and not event.ignored else logging.INFO
        extra = {
            "gxo_task": event.task,
            "gxo_status": status,
            "gxo_reason": reason,
            "gxo_duration": round(event.duration, 6),
        }
        hint = HINTS.get(reason.split("(", 1)[0]) if status == "Failed" else None
        if hint is not None:
            text += f"\n    where: task {event.task!r} ($.tasks[{task.index}], type {task.type})"
            if "hint:" not in error:
                text += "\n    hint: " + hint.format(type=task.type)
        log.log(level, text, extra=extra)
        for label, result in outputs:
            for stream in ("stdout", "stderr"):
                output = result.get(stream)
                if isinstance(output, str) and output.strip():
                    lines = output.rstrip("\n").splitlines()
                    shown = lines[:_OUTPUT_LINES]
                    if len(lines) > _OUTPUT_LINES:
                        shown.append(f"... ({len(lines) - _OUTPUT_LINES} more lines)")
                    for line in shown:
                        log.debug("    %s %s| %s", label, stream[3:], line, extra=extra)


def summary(report: ExecutionReport) -> None:
    """The closing line of a run, with the failures' details."""
    level = logging.ERROR if report.overall_status == "Failed" else logging.INFO
    parts = [
        f"{report.completed_tasks} completed"
        + (f" ({report.cached_tasks} cached)" if report.cached_tasks else ""),
        f"{report.failed_tasks} failed",
        f"{report.skipped_tasks} skipped",
    ]
    if report.cancelled_tasks:
        parts.append(f"{report.cancelled_tasks} cancelled")
    summary_log.log(
        level,
        "playbook %r %s in %.2fs: %d tasks, %s%s",
        report.playbook_name,
        report.overall_status,
        report.duration,
        report.total_tasks,
        ", ".join(parts),
        f" ({report.error})" if report.error else "",
        extra={"trace_id": report.trace_id, "span_id": report.span_id} if report.trace_id else None,
    )


def plan_text(playbook: Playbook, graph: Graph) -> str:
    """Tasks in dependency order with what each waits for and how it runs."""
    lines = [f"playbook {playbook.name!r}: {len(playbook.tasks)} tasks"]
    lines += _enforcement_lines(playbook)
    for name in graph.topological_order():
        task = playbook.task(name)
        lines.append(f"- {name} ({task.type})")
        upstream = graph.upstream(name)
        if upstream:
            waits = [e for e in upstream if e.kind != "stream"]
            streams = [e for e in upstream if e.kind == "stream"]
            if waits:
                lines.append("    after: " + ", ".join(f"{e.source} [{e.kind}]" for e in waits))
            if streams:
                # Not "after": a stream group starts together.
                lines.append("    streams from: " + ", ".join(e.source for e in streams))
        if task.when is not None:
            lines.append(f"    when: {task.when}")
        if task.loop is not None:
            loop = task.loop if isinstance(task.loop, str) else f"{len(task.loop)} items"
            lines.append(f"    loop: {loop} (parallel {task.loop_control.parallel})")
        if task.retry.attempts > 1:
            r = task.retry
            lines.append(
                f"    retry: {r.attempts} attempts, delay {r.delay:g}s x{r.backoff_factor:g}"
                + (f" up to {r.max_delay:g}s" if r.max_delay else "")
            )
        if task.timeout:
            lines.append(f"    timeout: {task.timeout:g}s for the whole task")
        if task.attempt_timeout:
            lines.append(f"    attempt_timeout: {task.attempt_timeout:g}s per attempt")
        if task.isolation == "process":
            lines.append("    " + isolation_text(task))
        if task.ignore_errors:
            lines.append("    ignore_errors: true")
        if task.register:
            lines.append(f"    register: {task.register}")
        if task.params:
            params = plan_params(task.params, playbook.vars)
            lines.append("    params: " + json.dumps(params, ensure_ascii=False, default=str))
    return "\n".join(lines)


def isolation_text(task: Task) -> str:
    """``isolation: process (memory 256MiB, cpu 2s; network: off)`` for ``gxo plan``."""
    from gxo.pool.enforce import describe_limit

    parts = [f"{k} {describe_limit(k, v)}" for k, v in task.limits.process_limits().items()]
    text = ", ".join(parts)
    if not task.network:
        text += ("; " if text else "") + "network: off"
    if task.limits_mode == "best_effort":
        text += ("; " if text else "") + "limits_mode: best_effort"
    return f"isolation: process ({text})" if text else "isolation: process"


def _enforcement_lines(playbook: Playbook) -> list[str]:
    """How this machine would enforce the playbook's limits (what a run here would do)."""
    isolated = [t for t in playbook.tasks if t.isolation == "process"]
    if not isolated:
        return []
    from gxo.pool.enforce import LimitsUnenforceable, choose_enforcement

    try:
        enforcement, warnings = choose_enforcement(
            need_network=any(not t.network for t in isolated), strict=False
        )
    except LimitsUnenforceable as exc:
        return [f"limits cannot be enforced here: {exc}"]
    lines = [f"limits enforced here by {enforcement.describe()}"]
    lines += [f"  warning: {w}" for w in warnings]
    return lines


class _PlanFunctions:
    """``secret()`` for ``gxo plan``: the marker, and nothing is resolved."""

    def secret(self, name: str) -> str:
        return REDACTED

    def env(self, name: str) -> str:
        return os.environ.get(name, "")


_PLAN_FUNCTIONS = _PlanFunctions()


def plan_params(params: Any, variables: Mapping[str, Any]) -> Any:
    """``params`` with every template rendered against ``variables`` where it can be.

    ``secret()`` renders as ``[REDACTED_SECRET]`` without being resolved; a template that
    needs what only a run has (a registered result, the loop item, ``_gxo``), or that goes
    over the render budget, is shown as its template text.
    """
    if isinstance(params, str):
        if "{" not in params:
            return params
        try:
            # Bounded like `when`: `gxo plan` renders in this process (gxo.template.budget).
            compiled = compile_value(params, where="$")
            return run_bounded(lambda: compiled.render(variables, _PLAN_FUNCTIONS))
        except BudgetExceeded:
            return params
        except Exception:  # noqa: BLE001 - anything that cannot render yet is shown as is
            return params
    if isinstance(params, dict):
        return {key: plan_params(value, variables) for key, value in params.items()}
    if isinstance(params, list | tuple):
        return [plan_params(item, variables) for item in params]
    return params


def plan_json(playbook: Playbook, graph: Graph) -> str:
    data: dict[str, Any] = {
        "playbook": playbook.name,
        "order": list(graph.topological_order()),
        "tasks": {t.name: msgspec.to_builtins(t) for t in playbook.tasks},
        "rendered_params": {t.name: plan_params(t.params, playbook.vars) for t in playbook.tasks},
        "edges": [{"from": e.source, "to": e.target, "kind": e.kind} for e in graph.edges],
    }
    return msgspec.json.format(msgspec.json.encode(data), indent=2).decode()


def _quote(name: str) -> str:
    return '"' + name.replace('"', '\\"') + '"'


def graph_dot(playbook: Playbook, graph: Graph) -> str:
    """Graphviz DOT; stream edges are dashed, status edges dotted."""
    lines = [f"digraph {_quote(playbook.name)} {{", "  rankdir=LR;", "  node [shape=box];"]
    for task in playbook.tasks:
        label = _quote(task.name + "\\n" + task.type)
        lines.append(f"  {_quote(task.name)} [label={label}];")
    styles = {"stream": "dashed", "status": "dotted"}
    for edge in graph.edges:
        style = styles.get(edge.kind, "solid")
        lines.append(
            f"  {_quote(edge.source)} -> {_quote(edge.target)} "
            f"[label={_quote(edge.kind)}, style={style}];"
        )
    lines.append("}")
    return "\n".join(lines)


def graph_mermaid(playbook: Playbook, graph: Graph) -> str:
    """Mermaid flowchart; stream edges are dotted arrows."""
    ids = {task.name: f"t{task.index}" for task in playbook.tasks}
    lines = ["flowchart LR"]
    for task in playbook.tasks:
        lines.append(f'  {ids[task.name]}["{task.name}<br/>{task.type}"]')
    for edge in graph.edges:
        arrow = "-.->" if edge.kind == "stream" else "-->"
        lines.append(f"  {ids[edge.source]} {arrow}|{edge.kind}| {ids[edge.target]}")
    return "\n".join(lines)


def module_text(info: ModuleInfo) -> str:
    if info.broken:
        return f"{info.name}: BROKEN (cannot be loaded)\n    {info.broken}"
    lines = [f"{info.name}: {info.description}"]
    for param in info.parameters:
        flag = "required" if param.required else f"default {param.default!r}"
        lines.append(f"    {param.name}: {param.type} ({flag})")
    if info.supports_dry_run:
        lines.append("    supports --dry-run")
    return "\n".join(lines)
