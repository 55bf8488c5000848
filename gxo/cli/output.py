"""What the ``gxo`` command prints for people: task lines, the summary, plans and graphs.

Task lines and the summary go through the ``gxo`` logger (stderr), so ``--log-format json``
turns them into structured records; plans, graphs and module lists go to stdout.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import msgspec

from gxo._util.outputs import write_atomic
from gxo.events import Event, InstanceFinished, RetryScheduled, TaskStatusChanged
from gxo.observability.logging import RunIdFilter, TextFormatter
from gxo.secrets.redact import REDACTED

if TYPE_CHECKING:
    from gxo.config.model import Playbook, Task
    from gxo.dag import Graph
    from gxo.modules.registry import ModuleInfo
    from gxo.outputs import CapturedOutput
    from gxo.report import ExecutionReport

__all__ = [
    "configure",
    "graph_dot",
    "graph_mermaid",
    "module_text",
    "plan_json",
    "plan_text",
    "retry_line",
    "summary",
    "styled",
    "TaskLines",
    "use_colour",
    "write_state",
]

log = logging.getLogger("gxo.progress.task")
#: Lines of a task's stdout/stderr shown under a failure and at --log-level debug: the last
#: ones, where a failure is told (the report keeps them too).
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
#: ``template_error`` in ``when`` or ``loop``, which the scheduler renders (not the params).
_SCHEDULER_TEMPLATE_HINT = (
    "fix the task's {field} template: the scheduler renders it against vars, registers and "
    "_gxo.tasks before the task starts (it cannot see the loop variable)"
)


_WORDS = {"Completed": "ok", "Failed": "FAILED", "Skipped": "skipped", "Cancelled": "cancelled"}

#: rich styles of the words that start a line, when colour is on.
_STYLES = {
    "ok": "green",
    "FAILED": "bold red",
    "failed (ignored)": "yellow",
    "skipped": "dim",
    "cancelled": "magenta",
    "cached": "cyan",
    "retry": "yellow",
}


class _Display:
    """How this process prints task lines (set once per run by :func:`configure`)."""

    quiet = False
    #: Word -> the word wrapped in its colour's escape codes (empty: no colour).
    coloured: dict[str, str] = {}  # noqa: RUF012 - replaced whole, never mutated


def use_colour(
    choice: str, log_format: str = "text", stream: Any = None, env: Mapping[str, str] | None = None
) -> bool:
    """Whether to colour: ``--color always|never``, else NO_COLOR, FORCE_COLOR, a terminal.

    https://no-color.org: a non-empty ``NO_COLOR`` turns colour off; a non-empty
    ``FORCE_COLOR`` turns it on where it would be off. JSON logs are never coloured.
    """
    if log_format != "text" or choice == "never":
        return False
    if choice == "always":
        return True
    env = os.environ if env is None else env
    if env.get("NO_COLOR"):
        return False
    if env.get("FORCE_COLOR"):
        return True
    import sys

    stream = sys.stderr if stream is None else stream
    try:
        return bool(stream.isatty()) and env.get("TERM") != "dumb"
    except (AttributeError, ValueError):
        return False


def configure(*, colour: bool, quiet: bool = False) -> None:
    """Set up task lines for this run: colour (through rich, imported only then) and -q."""
    _Display.quiet = quiet
    _Display.coloured = _coloured_words() if colour else {}


def _coloured_words() -> dict[str, str]:
    import io

    from rich.console import Console

    buffer = io.StringIO()
    # The decision was made by use_colour (--color always beats NO_COLOR): rich must not
    # read the environment again.
    console = Console(
        file=buffer, force_terminal=True, color_system="standard", width=200, no_color=False
    )
    words: dict[str, str] = {}
    for word, style in _STYLES.items():
        console.print(word, style=style, end="", markup=False, highlight=False)
        words[word] = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    return words


def styled(word: str, width: int = 0) -> str:
    """``word`` padded to ``width``, in its colour when colour is on."""
    padding = " " * max(0, width - len(word))
    return _Display.coloured.get(word, word) + padding


#: Queued time is shown on a task line from this many seconds on.
QUEUED_SHOWN = 1.0


retry_log = logging.getLogger("gxo.progress.retry")


def retry_line(event: RetryScheduled) -> None:
    """One line per failed attempt that will be tried again,
    ``retry flaky: nonzero_exit(1): command exited with status 1; attempt 2/3 in 0.30s``."""
    text = f"{styled('retry')} {event.label}: {event.reason}"
    if event.error:
        lines = event.error.strip().splitlines() or [""]
        text += f": {lines[0]}"
        if len(lines) > 1 and lines[0].endswith(":"):  # a dead worker's "its last output:"
            text += f" {lines[-1]}"
    total = f"/{event.max_attempts}" if event.max_attempts else ""
    text += f"; attempt {event.attempt + 1}{total} in {event.delay:.2f}s"
    retry_log.info(
        text,
        extra={
            "gxo_task": event.task,
            "gxo_status": "Retrying",
            "gxo_reason": event.reason,
            "gxo_attempt": event.attempt,
        },
    )


#: Failed instances of one task explained under its FAILED line; the rest are counted.
_FAILURES_SHOWN = 5
#: Instances of one loop task listed under its line in a dry run; the rest are counted.
_DRY_RUN_SHOWN = 20


class TaskLines:
    """An event subscriber: what ``gxo execute`` prints as tasks end.

    - a line when a task reaches a terminal status, with its run time (and its queued time
      when that is large) and how many attempts it took;
    - under a FAILED line, per failed instance: the command, the exit code or signal and the
      last 20 lines of stdout and stderr (redacted by the worker), so a failure explains
      itself (Nextflow's "Command output" / "Command error");
    - a ``retry`` line per failed attempt that will be tried again;
    - in a dry run, under each task, what would have run (``would run: ARGV (cwd DIR)``) or
      that it was not run.

    At ``--log-level debug`` a task line is followed by the last lines of every instance's
    stdout and stderr. Only what is shown is kept: a few summaries per task, not all.
    """

    def __init__(self, playbook: Playbook, *, buffered: bool = False) -> None:
        self._tasks = {task.name: task for task in playbook.tasks}
        #: Task -> (label, summary, outputs) of the failed instances to show under its line.
        self._failed: dict[str, list[tuple[str, Any, list[CapturedOutput]]]] = {}
        self._failed_count: dict[str, int] = {}
        self._dry: dict[str, list[tuple[str, Any]]] = {}
        self._dry_count: dict[str, int] = {}
        self._outputs: dict[str, list[tuple[str, Any]]] = {}
        #: ``buffered``: plain lines wait in ``_pending`` for :meth:`flush` (the bus calls it
        #: after each batch of events), so a batch of task lines is one write, not one each.
        self._buffered = buffered
        self._pending: list[str] = []
        self._pending_to: logging.StreamHandler[Any] | None = None
        self._handle: dict[type[Any], Callable[[Any], None]] = {
            InstanceFinished: self._instance,
            RetryScheduled: self._retry,
            TaskStatusChanged: self._status,
        }
        #: The bus hands it only these (and builds no event nobody takes: ``TaskQueued``).
        self.event_kinds = frozenset(self._handle)

    def __call__(self, event: Event) -> None:
        handle = self._handle.get(type(event))
        if handle is not None:
            handle(event)

    def flush(self) -> None:
        """Write the buffered task lines (one write)."""
        pending, handler = self._pending, self._pending_to
        if not pending or handler is None:
            return
        text = "".join(pending)
        pending.clear()
        with handler.lock or contextlib.nullcontext():
            stream = handler.stream
            stream.write(text)
            stream.flush()

    def _retry(self, event: RetryScheduled) -> None:
        self.flush()  # the lines before it come first
        retry_line(event)

    def _status(self, event: TaskStatusChanged) -> None:
        if event.status != "Running":
            self._line(event)

    def _instance(self, event: InstanceFinished) -> None:
        summary, task = event.summary, event.task
        if event.status == "Failed":
            count = self._failed_count[task] = self._failed_count.get(task, 0) + 1
            if count <= _FAILURES_SHOWN:
                shown = summary
                if event.command is not None and not (
                    isinstance(summary, dict) and "command" in summary
                ):  # a killed attempt: what its command file said
                    shown = {"command": event.command, "cwd": event.cwd}
                    if event.exit_code is not None:
                        shown["exit_code"] = event.exit_code
                self._failed.setdefault(task, []).append((event.label, shown, event.outputs))
        if isinstance(summary, dict) and summary.get("dry_run"):
            count = self._dry_count[task] = self._dry_count.get(task, 0) + 1
            if count <= _DRY_RUN_SHOWN:
                self._dry.setdefault(task, []).append((event.label, summary))
        elif isinstance(summary, dict) and log.isEnabledFor(logging.DEBUG):
            self._outputs.setdefault(task, []).append((event.label, summary))

    def _line(self, event: TaskStatusChanged) -> None:
        status, reason, error, task = (
            event.status,
            event.reason,
            event.error,
            self._tasks[event.task],
        )
        failed = self._failed.pop(event.task, [])
        failed_count = self._failed_count.pop(event.task, 0)
        dry = self._dry.pop(event.task, [])
        dry_count = self._dry_count.pop(event.task, 0)
        outputs = self._outputs.pop(event.task, [])
        failed_here = status == "Failed" and not event.ignored
        if not failed_here and not log.isEnabledFor(logging.INFO):
            return  # -q: logging would drop the line (and the debug lines under it)
        word = "failed (ignored)" if event.ignored else _WORDS.get(status, status)
        if reason == "resumed":
            word = "cached"  # restored from the journal by --resume
        text = f"{styled(word, 8)} {event.task}"
        if status == "Completed" and reason == "resumed":
            text += " (restored from the journal)"
        elif status == "Completed":
            timing = f"{event.duration:.2f}s"
            if event.queued >= QUEUED_SHOWN:
                timing += f", queued {event.queued:.2f}s"
            text += f" ({timing})"
            if task.loop is not None:
                # A resumed loop that ran some items: the others were restored, say so.
                cached = f", {event.cached} cached" if event.cached else ""
                text += f" [{event.instances} iterations{cached}]"
            if event.attempts > 1:
                text += f" after {event.attempts} attempts"
        elif reason:
            text += f": {reason}"
            shown = (error and status != "Skipped") or reason in (
                "upstream_failed",
                "upstream_skipped",
            )
            first, newline, rest = error.partition("\n") if shown else ("", "", "")
            if shown:
                text += f": {first}"
            if status == "Failed" and event.attempts > 1:
                # On the error's first line: what follows it is a dead worker's last output.
                text += f" (after {event.attempts} attempts)"
            text += newline + rest
        hint = HINTS.get(reason.split("(", 1)[0]) if status == "Failed" else None
        if hint is not None and reason == "template_error":
            for field in ("when", "loop"):
                if error.startswith(f"$.tasks[{task.index}].{field}:"):
                    hint = _SCHEDULER_TEMPLATE_HINT.replace("{field}", f"`{field}`")
        if hint is not None:
            text += f"\n    where: task {event.task!r} ($.tasks[{task.index}], type {task.type})"
            if "hint:" not in error:
                text += "\n    hint: " + hint.format(type=task.type)
        loop = task.loop is not None
        if failed_here:
            text += failure_details(failed, failed_count, loop)
        if dry:
            text += dry_run_lines(dry, dry_count, loop, task.type)
        self._send(event, text, failed_here, outputs)

    def _send(
        self,
        event: TaskStatusChanged,
        text: str,
        failed_here: bool,
        outputs: list[tuple[str, Any]],
    ) -> None:
        """Write the line straight to gxo's text handler when that is all logging would do
        (buffered until :meth:`flush` if asked), else log it; then its debug lines."""
        if not failed_here:
            handler = plain_handler(log)  # _line checked the level
            if handler is not None:
                if self._buffered:
                    if handler is not self._pending_to:
                        self.flush()
                        self._pending_to = handler
                    self._pending.append(text + handler.terminator)
                else:
                    _write(handler, text + handler.terminator)
                if not outputs:
                    return
                text = ""
        self.flush()  # what was buffered is older than what is logged now
        extra = {
            "gxo_task": event.task,
            "gxo_status": event.status,
            "gxo_reason": event.reason,
            "gxo_ignored": event.ignored,
            "gxo_duration": round(event.duration, 6),
            "gxo_queued": round(event.queued, 6),
        }
        if text:
            log.log(logging.ERROR if failed_here else logging.INFO, text, extra=extra)
        for label, result in outputs:
            for line in _output_lines(result, label):
                log.debug("%s", line, extra=extra)


def plain_handler(logger: logging.Logger) -> Any:
    """gxo's own text handler, when writing an INFO line straight to it is all that logging
    would do with it; None when anything else might see or change the record: another
    handler or filter, JSON logs, tracing, a level that hides it on the handler. The caller
    has checked that ``logger`` is enabled for INFO.

    A task line per task is the one record a run logs per task; building a ``LogRecord``
    and passing it through the framework cost more than the rest of the line.
    """
    handler = None
    current: logging.Logger | None = logger
    while current is not None:
        if current.filters:
            return None
        for candidate in current.handlers:
            if handler is not None or not getattr(candidate, "_gxo_handler", False):
                return None
            handler = candidate
        if not current.propagate:
            break
        current = current.parent
    if (
        not isinstance(handler, logging.StreamHandler)
        or type(handler.formatter) is not TextFormatter
        or handler.level > logging.INFO
    ):
        return None
    for found in handler.filters:
        if type(found) is not RunIdFilter:
            return None
    return handler


def _write(handler: logging.StreamHandler[Any], text: str) -> None:
    with handler.lock or contextlib.nullcontext():
        stream = handler.stream
        stream.write(text)
        stream.flush()


def failure_details(
    failed: list[tuple[str, Any, list[CapturedOutput]]], count: int, loop: bool
) -> str:
    """Under a FAILED line, per failed instance: the command (argv, cwd), its exit code or
    signal, the last 20 lines of stdout and of stderr, and the path of each full log."""
    lines: list[str] = []
    for label, result, outputs in failed:
        prefix = f"{label}: " if loop else ""
        summary = result if isinstance(result, dict) else {}
        command = summary.get("command")
        if isinstance(command, list):
            # The directory the module reported (exec: always).
            cwd = f" (cwd {summary['cwd']})" if summary.get("cwd") else ""
            import shlex  # only where it is used: not at start-up

            lines.append(f"    {prefix}command: {shlex.join(map(str, command))}{cwd}")
        code = summary.get("exit_code")
        if isinstance(code, int) and not isinstance(code, bool):
            shown = f"killed by signal {_signal_name(-code)}" if code < 0 else str(code)
            lines.append(f"    {prefix}exit code: {shown}")
        if outputs:
            lines.extend(_captured_lines(outputs, label if loop else ""))
        else:
            lines.extend(_output_lines(summary, label if loop else ""))
    if count > len(failed):
        lines.append(f"    ... and {count - len(failed)} more failed items (see --report)")
    return "".join("\n" + line for line in lines)


def _captured_lines(outputs: list[CapturedOutput], label: str = "") -> list[str]:
    """The tails the worker captured (the last 20 lines of each stream), and the log paths."""
    lines: list[str] = []
    for out in outputs:
        where = f"{label} {out.name}" if label else out.name
        if out.tail:
            shown = "line" if len(out.tail) == 1 else f"{len(out.tail)} lines"
            lines.append(f"    {where} (last {shown} of {_size(out.bytes)}):")
            lines.extend(f"      | {line}" for line in out.tail)
        if out.path and out.bytes:
            cut = " (cut at the output_capture cap)" if out.truncated else ""
            lines.append(f"    {where} log: {out.path}{cut}")
    return lines


def _size(count: int) -> str:
    if count < 1024:
        return "1 byte" if count == 1 else f"{count} bytes"
    if count < 1 << 20:
        return f"{count / 1024:.1f} KiB"
    return f"{count / (1 << 20):.1f} MiB"


def dry_run_lines(dry: list[tuple[str, Any]], count: int, loop: bool, module: str) -> str:
    """Under a task of a dry run: what each instance would run, or that it was not run."""
    lines: list[str] = []
    for label, summary in dry:
        prefix = f"{label}: " if loop else ""
        if summary.get("supported") is False:
            name = summary.get("module") or module
            lines.append(f"    {prefix}not run ({name}: no dry-run support)")
        elif isinstance(summary.get("command"), list):
            argv = [str(x) for x in summary["command"]]
            cwd = summary.get("cwd") or "."
            import shlex  # only where it is used: not at start-up

            lines.append(f"    {prefix}would run: {shlex.join(argv)} (cwd {cwd})")
        elif summary.get("rendered") is False:
            error = summary.get("error", "")
            lines.append(f"    {prefix}not run: its params need results a dry run lacks ({error})")
    if lines and count > len(dry):
        lines.append(f"    ... and {count - len(dry)} more")
    return "".join("\n" + line for line in lines)


def _output_lines(summary: Any, label: str = "") -> list[str]:
    """The last :data:`_OUTPUT_LINES` lines of an ``exec`` summary's stdout and stderr."""
    if not isinstance(summary, dict):
        return []
    lines: list[str] = []
    for stream in ("stdout", "stderr"):
        output = summary.get(stream)
        if not isinstance(output, str) or not output.strip():
            continue
        all_lines = output.rstrip("\n").splitlines()
        tail = all_lines[-_OUTPUT_LINES:]
        where = f"{label} {stream}" if label else stream
        more = len(all_lines) - len(tail)
        lines.append(
            f"    {where}" + (f" (last {len(tail)} of {len(all_lines)} lines):" if more else ":")
        )
        lines.extend(f"      | {line}" for line in tail)
    return lines


def _signal_name(number: int) -> str:
    import signal

    try:
        return signal.Signals(number).name
    except ValueError:
        return str(number)


def summary(report: ExecutionReport) -> None:
    """The closing line of a run, with the failures' details (with -q: only on failure)."""
    if _Display.quiet and report.exit_code == 0:
        return
    level = logging.ERROR if report.overall_status == "Failed" else logging.INFO
    parts = [
        f"{report.completed_tasks} completed"
        + (f" ({report.cached_tasks} cached)" if report.cached_tasks else ""),
        f"{report.failed_tasks} failed",
        f"{report.skipped_tasks} skipped",
    ]
    ignored = sum(1 for result in report.task_results.values() if result.ignored)
    if ignored:  # else "Completed ... 4 failed" reads as a contradiction
        parts[1] += f" ({ignored} ignored)"
    if report.cancelled_tasks:
        parts.append(f"{report.cancelled_tasks} cancelled")
    summary_log.log(
        level,
        "playbook %r %s in %.2fs: %d task%s, %s%s",
        report.playbook_name,
        report.overall_status,
        report.duration,
        report.total_tasks,
        "" if report.total_tasks == 1 else "s",
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
            import json  # only `gxo plan` prints params; a run never needs json

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
        from gxo.template import compile_value  # Jinja2: only `gxo plan` pays for it
        from gxo.template.budget import BudgetExceeded, run_bounded

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


def plan_json(playbook: Playbook, graph: Graph, job_script: tuple[str, str] | None = None) -> str:
    """The plan as one JSON document; ``job_script`` (cluster kind, script) is the one
    dask-jobqueue would submit (``--executor dask --dask-cluster slurm``)."""
    data: dict[str, Any] = {
        "playbook": playbook.name,
        "order": list(graph.topological_order()),
        "tasks": {t.name: msgspec.to_builtins(t) for t in playbook.tasks},
        "rendered_params": {t.name: plan_params(t.params, playbook.vars) for t in playbook.tasks},
        "edges": [{"from": e.source, "to": e.target, "kind": e.kind} for e in graph.edges],
    }
    if job_script is not None:
        data["job_script"] = {"cluster": job_script[0], "script": job_script[1]}
    return msgspec.json.format(msgspec.json.encode(data), indent=2).decode()


def _quote(name: str) -> str:
    """A DOT quoted string: a backslash and a double quote are escaped (a playbook name
    ending in a backslash would otherwise escape the closing quote)."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def graph_dot(playbook: Playbook, graph: Graph) -> str:
    """Graphviz DOT; stream edges are dashed, status edges dotted."""
    lines = [f"digraph {_quote(playbook.name)} {{", "  rankdir=LR;", "  node [shape=box];"]
    for task in playbook.tasks:
        label = _quote(task.name)[:-1] + "\\n" + _quote(task.type)[1:]  # DOT's line break
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


def write_state(
    path: str, playbook: Playbook, registered: Mapping[str, Any], report: ExecutionReport
) -> None:
    """``--state-out``: the final state as JSON: the vars, then every registered value.

    Registered values are the copies the scheduler holds, which workers redacted; vars are
    the playbook's and ``--var``'s (never a secret: ``secret()`` is not allowed in vars), and
    a run does not change them.
    """
    data = {
        "run_id": report.run_id,
        "playbook": playbook.name,
        "vars": dict(playbook.vars),
        "registered": dict(registered),
    }
    text = msgspec.json.format(msgspec.json.encode(data, enc_hook=str), indent=2) + b"\n"
    write_atomic(path, text)  # in place into a pipe or a device (/dev/stdout, /dev/null)
