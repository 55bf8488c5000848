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

from gxo._util.importable import import_target
from gxo.cli import output
from gxo.cli.observers import ObservabilityOptions, Observers
from gxo.config import Playbook
from gxo.errors import PlaybookError, UsageError
from gxo.modules.registry import ModuleRegistry
from gxo.observability.logging import setup_logging
from gxo.report import invalid_playbook_report

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
    modules = parse_modules(args.modules)
    try:
        loaded = gxo.load(Path(args.playbook), variables=variables or None, modules=modules)
    except PlaybookError as exc:
        if getattr(args, "report", None):
            _write_invalid_report(args.report, exc, args.playbook, run_id)
        raise
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
            secrets=_secrets(args),
            events=bus,
            metrics_registry=observers.registry,
            tracer_provider=observers.tracer_provider,
            run_id=run_id,
            modules=modules,
            redact_keywords=args.redact_keyword or args.redact_keywords,
        ).report
    finally:
        observers.finish(report)
    if args.report:
        Path(args.report).write_bytes(report.to_json())
    output.summary(report)
    return report.exit_code


def parse_modules(items: list[str]) -> ModuleRegistry:
    """``--module NAME=pkg.mod:Class`` pairs as a registry (imported when first used)."""
    registry = ModuleRegistry()
    for item in items:
        name, sep, target = item.partition("=")
        if not sep or not name.strip() or not target.strip():
            raise UsageError(f"--module expects NAME=PKG.MOD:CLASS, got {item!r}")
        registry.register(name.strip(), target.strip())
    return registry


def _secrets(args: argparse.Namespace) -> object:
    """``--secrets-dir``/``--secrets-prefix``, or the ``--secrets-provider`` object built
    with its ``--secrets-option KEY=VALUE`` keyword arguments."""
    import gxo

    if args.secrets_provider is None:
        if args.secrets_options:
            raise UsageError("--secrets-option needs --secrets-provider")
        return gxo.SecretsConfig(directory=args.secrets_dir, prefix=args.secrets_prefix)
    if args.secrets_dir is not None or args.secrets_prefix:
        raise UsageError(
            "--secrets-provider cannot be combined with --secrets-dir or --secrets-prefix"
        )
    options: dict[str, str] = {}
    for item in args.secrets_options:
        key, sep, value = item.partition("=")
        if not sep or not key.strip().isidentifier():
            raise UsageError(f"--secrets-option expects KEY=VALUE with KEY a name, got {item!r}")
        options[key.strip()] = value
    try:
        cls = import_target(args.secrets_provider)
    except Exception as exc:  # noqa: BLE001 - any import failure is the user's to fix
        raise UsageError(
            f"--secrets-provider {args.secrets_provider!r}: cannot import it: "
            f"{type(exc).__name__}: {exc}"
        ) from None
    try:
        provider: object = cls(**options)
    except Exception as exc:  # noqa: BLE001 - a bad option is the user's to fix
        raise UsageError(
            f"--secrets-provider {args.secrets_provider!r}: building it with "
            f"{sorted(options)} failed: {type(exc).__name__}: {exc}"
        ) from None
    return provider


def _write_invalid_report(path: str, error: PlaybookError, playbook: str, run_id: str) -> None:
    """``--report`` for a playbook that cannot run: Failed, its problems, no task results."""
    report = invalid_playbook_report(error, playbook_name=Path(playbook).stem, run_id=run_id)
    Path(path).write_bytes(report.to_json())


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

    extra = parse_modules(args.modules).targets
    described = [describe(name, extra) for name in available_types(extra)]
    if args.json:
        sys.stdout.write(msgspec.json.encode(described).decode() + "\n")
        return 0
    for info in described:
        print(output.module_text(info))
    return 0
