"""The ``gxo`` subcommands: thin wrappers over :mod:`gxo.api` that print for people.

``gxo execute`` calls :func:`gxo.run` exactly as a library user would: the flags become its
arguments (a bus with the task lines and the progress display, a metrics registry, a tracer
provider), and the report it returns is printed and written where the flags say.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec
import yaml

from gxo.cli import output
from gxo.cli.observers import ObservabilityOptions, Observers
from gxo.errors import UsageError
from gxo.observability.logging import setup_logging

if TYPE_CHECKING:
    import gxo

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
    loaded = gxo.load(Path(args.playbook), variables=variables or None)
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
    return _execute(args, loaded, run_id, fmt)


def _execute(args: argparse.Namespace, loaded: gxo.Loaded, run_id: str, fmt: str) -> int:
    """``gxo execute``: run, print the task lines and the summary, write the result files."""
    import gxo

    playbook = loaded.playbook
    _check_output_paths(args)
    output.configure(colour=output.use_colour(args.color, fmt), quiet=args.quiet)
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
        result = gxo.run(
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
            verbose=args.verbose,
            state_dir=args.state_dir,
            output_capture=args.output_capture,
            result_limit=args.result_limit,
            record_limit=args.record_limit or 0,
            log_rate=args.log_rate,
        )
        report = result.report
    finally:
        observers.finish(report)
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
