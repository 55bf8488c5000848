"""The ``gxo`` subcommands: thin wrappers over :mod:`gxo.api` that print for people.

``gxo execute`` calls :func:`gxo.run` exactly as a library user would: the flags become its
arguments (a bus with the task lines and the progress display, a metrics registry, a tracer
provider), and the report it returns is printed and written where the flags say.
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
import uuid
from pathlib import Path
from typing import Any

import msgspec
import yaml

from gxo.cli import output
from gxo.cli.observers import ObservabilityOptions, Observers
from gxo.config.limits import InputLimits
from gxo.errors import UsageError
from gxo.observability.logging import setup_logging
from gxo.template.budget import DEFAULT_RENDER_BUDGET, RenderBudget, set_render_budget

__all__ = ["parse_variables", "run_command"]

log = logging.getLogger("gxo")

#: Events the command's bus holds for delivery (about 4 per task instance).
_CLI_EVENTS = 200_000


def run_command(args: argparse.Namespace) -> int:
    """Dispatch a parsed command line; return the exit code."""
    # main() may run several times in one process (tests, the library): leave the ``gxo``
    # logger as it was found, or later callers' records never reach the root logger.
    logger = logging.getLogger("gxo")
    saved = logger.propagate, logger.level
    try:
        return _run_command(args)
    finally:
        logger.propagate, logger.level = saved


def _run_command(args: argparse.Namespace) -> int:
    level = getattr(args, "log_level", "info")
    # --quiet: failures and the summary only. Set every time: main() may run more than once
    # in one process (tests, the library).
    quiet_level = logging.WARNING if getattr(args, "quiet", False) else logging.NOTSET
    for name in ("gxo.progress", "gxo.output"):
        logging.getLogger(name).setLevel(quiet_level)
    fmt = getattr(args, "log_format", "text")
    if args.command == "modules":
        setup_logging(level, fmt)
        return _modules(args)
    import gxo

    run_id = uuid.uuid4().hex[:12]
    setup_logging(level, fmt, run_id)
    variables = parse_variables(args.variables)
    loaded = gxo.load(
        Path(args.playbook),
        variables=variables or None,
        strict=args.strict,
        limits=_limits(args),
    )
    playbook, graph = loaded.playbook, loaded.plan.graph
    if args.command == "validate":
        print(
            f"{args.playbook}: valid ({len(playbook.tasks)} tasks, {len(graph.edges)} dependencies)"
        )
        return 0
    if args.command == "plan":
        print(
            output.plan_text(playbook, graph)
            if args.format == "text"
            else output.plan_json(playbook, graph)
        )
        return 0
    if args.command == "graph":
        print(
            output.graph_dot(playbook, graph)
            if args.format == "dot"
            else output.graph_mermaid(playbook, graph)
        )
        return 0
    set_render_budget(
        RenderBudget(
            seconds=args.render_timeout or DEFAULT_RENDER_BUDGET.seconds,
            max_size=args.render_max_size or DEFAULT_RENDER_BUDGET.max_size,
        )
    )
    # The task lines are a subscriber like any other: a queue deep enough that a slow terminal
    # does not make the bus drop them on a large run (it would say so).
    bus = gxo.EventBus(maxsize=_CLI_EVENTS)
    bus.subscribe(output.TaskLines(playbook), name="task lines")
    observers = Observers(
        ObservabilityOptions(
            metrics_file=args.metrics_file,
            metrics_port=args.metrics_port,
            metrics_addr=args.metrics_addr,
            otel=args.otel,
            progress=not (args.no_progress or args.quiet),
            progress_interval=args.progress_interval,
            log_format=fmt,
            html_report=args.html_report,
        )
    )
    report = None
    try:
        observers.start(bus)
        report = gxo.run(
            loaded,
            workers=args.workers,
            dry_run=args.dry_run,
            start_method=args.start_method,
            grace=args.grace,
            secrets=gxo.SecretsConfig(directory=args.secrets_dir, prefix=args.secrets_prefix),
            events=bus,
            metrics_registry=observers.registry,
            tracer_provider=observers.tracer_provider,
            run_id=run_id,
            state_dir=args.state_dir,
            output_capture=args.output_capture,
            result_limit=args.result_limit,
            record_limit=args.record_limit or None,
            log_rate=args.log_rate,
        ).report
    finally:
        observers.finish(report)
    if args.report:
        Path(args.report).write_bytes(report.to_json())
    output.summary(report)
    return report.exit_code


def _limits(args: argparse.Namespace) -> InputLimits:
    """The input limits, the defaults changed by --max-scalar-size and --max-tasks."""
    given = {
        key: value
        for key, value in (
            ("max_scalar_bytes", args.max_scalar_size),
            ("max_tasks", args.max_tasks),
        )
        if value is not None
    }
    return InputLimits(**given)


_LEADING_ZERO = re.compile(r"[-+]?0[0-9]+")


def parse_variables(items: list[str]) -> dict[str, Any]:
    """``--var KEY=VALUE`` pairs; the value is read as YAML (``3``, ``true``, ``[a, b]``)."""
    variables: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key.isidentifier():
            raise UsageError(f"--var expects KEY=VALUE with KEY a name, got {item!r}")
        if _LEADING_ZERO.fullmatch(raw.strip()):
            number = raw.strip()
            octal = f"{int(number, 8)} for octal {number}, " if not set("89") & set(number) else ""
            raise UsageError(
                f"--var {item}: the number {number} has a leading zero, which YAML readers "
                f"disagree on (octal here, decimal in playbooks); write {octal}"
                f"{int(number)} for decimal, or --var '{key}=\"{number}\"' for text"
            )
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            value = raw
        if isinstance(value, bool) and raw.strip().lower() not in ("true", "false"):
            value = raw  # YAML 1.2, as in playbooks: yes/no/on/off stay strings
        variables[key] = value
    return variables


def _modules(args: argparse.Namespace) -> int:
    """List every module; a module that cannot be loaded is listed as broken (with why), the
    others still are, and the exit code is then 1."""
    from gxo.modules.registry import describe_all

    described = describe_all()
    if args.json:
        sys.stdout.write(msgspec.json.encode(described).decode() + "\n")
    else:
        for info in described:
            print(output.module_text(info))
    broken = [info.name for info in described if info.broken]
    if broken:
        log.error(
            "%d module type%s cannot be loaded: %s",
            len(broken),
            "" if len(broken) == 1 else "s",
            ", ".join(broken),
        )
        return 1
    return 0
