"""The ``gxo`` subcommands: thin wrappers over :mod:`gxo.api` that print for people."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec
import yaml

from gxo.cli import output
from gxo.errors import UsageError
from gxo.events import EventBus
from gxo.observability.logging import setup_logging
from gxo.observability.session import ObservabilityOptions, ObservabilitySession

if TYPE_CHECKING:
    from gxo import api, engine

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
    loaded = api.load(Path(args.playbook), variables=variables or None)
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
    return _execute(args, loaded, options, fmt)


def _execute(
    args: argparse.Namespace, loaded: api.Loaded, options: engine.RunOptions, fmt: str
) -> int:
    """``gxo execute``: run, print the task lines and the summary, write the result files."""
    from gxo import api

    playbook = loaded.playbook
    options.workers = args.workers
    options.dry_run = args.dry_run
    options.start_method = args.start_method
    options.grace = args.grace
    options.secrets_dir = args.secrets_dir
    options.secrets_prefix = args.secrets_prefix
    options.state_dir = args.state_dir
    options.output_capture = args.output_capture
    if args.result_limit is not None:
        options.result_limit = args.result_limit
    if args.record_limit:
        options.record_limit = args.record_limit
    if args.log_rate is not None:
        options.log_rate = args.log_rate
    elif args.verbose:
        options.log_rate = 0  # -v asked for every line
    options.verbose = args.verbose
    _check_output_paths(args)
    output.configure(colour=output.use_colour(args.color, fmt), quiet=args.quiet)
    options.events = EventBus()
    options.events.subscribe(output.TaskLines(playbook), name="task lines")
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
        result = api.execute(loaded, options)
        report = result.report
    finally:
        session.finish(report)
    if args.report:
        Path(args.report).write_bytes(report.to_json())
    if args.junit:
        from gxo.observability.junit import write_junit

        write_junit(args.junit, report)
    if args.state_out:
        output.write_state(args.state_out, playbook, result.registered, report)
    output.summary(report)
    return report.exit_code


def _check_output_paths(args: argparse.Namespace) -> None:
    """Files a run will write must have a directory to go to: say so before anything runs."""
    for flag, path in (
        ("--report", args.report),
        ("--junit", args.junit),
        ("--state-out", args.state_out),
    ):
        if path is None:
            continue
        directory = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(directory):
            raise UsageError(
                f"{flag}: directory {directory!r} does not exist; create it or choose another path"
            )


def parse_variables(items: list[str]) -> dict[str, Any]:
    """``--var KEY=VALUE`` pairs; the value is read as YAML (``3``, ``true``, ``[a, b]``)."""
    variables: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key.isidentifier():
            raise UsageError(f"--var expects KEY=VALUE with KEY a name, got {item!r}")
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            value = raw
        if isinstance(value, bool) and raw.strip().lower() not in ("true", "false"):
            value = raw  # YAML 1.2, as in playbooks: yes/no/on/off stay strings
        variables[key] = value
    return variables


def _modules(args: argparse.Namespace) -> int:
    from gxo.modules.registry import available_types, describe

    described = [describe(name) for name in available_types()]
    if args.json:
        sys.stdout.write(msgspec.json.encode(described).decode() + "\n")
        return 0
    for info in described:
        print(output.module_text(info))
    return 0
