"""The ``gxo`` subcommands: thin wrappers over :mod:`gxo.api` that print for people.

``gxo execute`` calls :func:`gxo.run` exactly as a library user would: the flags become its
arguments (a bus with the task lines and the progress display, a metrics registry, a tracer
provider), and the report it returns is printed and written where the flags say.
"""

from __future__ import annotations

import argparse
import logging
import sys
import uuid
from pathlib import Path
from typing import Any

import msgspec
import yaml

from gxo.cli import output
from gxo.cli.observers import ObservabilityOptions, Observers
from gxo.config import Playbook
from gxo.errors import UsageError
from gxo.observability.logging import setup_logging

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
    import gxo

    run_id = uuid.uuid4().hex[:12]
    setup_logging(level, fmt, run_id)
    variables = parse_variables(args.variables)
    loaded = gxo.load(Path(args.playbook), variables=variables or None)
    buffer_size = getattr(args, "channel_buffer_size", None)
    if buffer_size is not None:
        loaded = gxo.load(_default_buffer_size(loaded.playbook, buffer_size))
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
    bus = gxo.EventBus()
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
        ).report
    finally:
        observers.finish(report)
    if args.report:
        Path(args.report).write_bytes(report.to_json())
    output.summary(report)
    return report.exit_code


def _default_buffer_size(playbook: Playbook, size: int) -> Playbook:
    """``playbook`` with ``size`` as its default ``channel_policy.buffer_size``
    (``--channel-buffer-size``, GXO's ``-channel-buffer-size``).

    The model holds each task's merged policy, so which tasks set ``buffer_size`` themselves
    is read from the file again; those keep their value.
    """
    data = yaml.load(Path(playbook.source).read_bytes(), Loader=_SafeLoader)
    raw_tasks = data.get("tasks") if isinstance(data, dict) else None
    own: set[int] = set()
    for index, raw in enumerate(raw_tasks if isinstance(raw_tasks, list) else []):
        policy = raw.get("channel_policy") if isinstance(raw, dict) else None
        if isinstance(policy, dict) and "buffer_size" in policy:
            own.add(index)
    tasks = tuple(
        task
        if task.index in own
        else msgspec.structs.replace(
            task, channel_policy=msgspec.structs.replace(task.channel_policy, buffer_size=size)
        )
        for task in playbook.tasks
    )
    policy = msgspec.structs.replace(playbook.channel_policy, buffer_size=size)
    return msgspec.structs.replace(playbook, tasks=tasks, channel_policy=policy)


_SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


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
