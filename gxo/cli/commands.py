"""The ``gxo`` subcommands: thin wrappers over :mod:`gxo.api` that print for people."""

from __future__ import annotations

import argparse
import logging
import re
import sys
from pathlib import Path
from typing import Any

import msgspec
import yaml

from gxo.cli import output
from gxo.config.limits import InputLimits
from gxo.errors import UsageError
from gxo.observability.logging import setup_logging
from gxo.observability.session import ObservabilityOptions, ObservabilitySession
from gxo.template.budget import DEFAULT_RENDER_BUDGET, RenderBudget, set_render_budget

__all__ = ["parse_variables", "run_command"]

log = logging.getLogger("gxo")


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
    from gxo import api, engine

    options = engine.RunOptions()
    setup_logging(level, fmt, options.run_id)
    variables = parse_variables(args.variables)
    loaded = api.load(
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
    options.workers = args.workers
    options.dry_run = args.dry_run
    options.start_method = args.start_method
    options.grace = args.grace
    options.secrets_dir = args.secrets_dir
    options.secrets_prefix = args.secrets_prefix
    options.on_task_end = output.task_line
    session = ObservabilitySession(
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
    session.attach(options)
    report = None
    try:
        report = api.execute(loaded, options).report
    finally:
        session.finish(report)
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
