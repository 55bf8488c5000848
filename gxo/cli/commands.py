"""The ``gxo`` subcommands: thin wrappers over :mod:`gxo.api` that print for people.

``gxo execute`` calls :func:`gxo.run` exactly as a library user would: the flags become its
arguments (a bus with the task lines and the progress display, a metrics registry, a tracer
provider), and the report it returns is printed and written where the flags say.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gxo._util.outputs import check_output_paths, save_output, write_atomic
from gxo.cli import start_run_gc
from gxo.errors import PlaybookError, UsageError
from gxo.observability.logging import setup_logging

if TYPE_CHECKING:
    from gxo.config import Playbook
    from gxo.config.limits import InputLimits
    from gxo.executors.settings import DaskSettings
    from gxo.modules.registry import ModuleRegistry

# What each command needs is imported where it is used: `gxo modules` and `gxo list` pay for
# no YAML, template or pool module, `gxo validate` for no pool (a test pins the sets).

if TYPE_CHECKING:
    import gxo

__all__ = ["limits_of", "parse_variables", "run_command"]

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
    _set_quiet(args)
    fmt = getattr(args, "log_format", "text")
    if args.command not in ("execute", "validate", "plan", "graph"):
        start_run_gc()  # only a load (and the run that follows it) starts without the collector
    if args.command == "modules":
        setup_logging(level, fmt)
        return _modules(args)
    if args.command == "bench":
        from gxo.cli.bench import bench_command

        # gxo.run's own info lines ("running ... on 2 worker processes") are noise here.
        setup_logging(getattr(args, "log_level", "warning"), fmt)
        return bench_command(args)
    from gxo.cli.partial import PARTIAL_COMMANDS, run_partial_command

    if args.command in PARTIAL_COMMANDS:
        setup_logging(level, fmt)
        return run_partial_command(args)
    import gxo

    run_id = os.urandom(6).hex()  # 12 hex digits, as uuid4 gave (uuid imports platform)
    setup_logging(level, fmt, run_id)
    variables = parse_variables(args.variables)
    modules = parse_modules(args.modules)
    if args.command == "execute":
        _check_not_the_playbook(args)  # before an invalid playbook's --report is written
    loaded = _load(args, variables, modules, run_id)
    buffer_size = getattr(args, "channel_buffer_size", None)
    if buffer_size is not None:
        loaded = gxo.load(_default_buffer_size(loaded.playbook, buffer_size))
    playbook, graph = loaded.playbook, loaded.plan.graph
    if args.command == "validate":
        tasks, edges = len(playbook.tasks), len(graph.edges)
        print(
            f"{args.playbook}: valid ({tasks} task{'' if tasks == 1 else 's'}, "
            f"{edges} dependenc{'y' if edges == 1 else 'ies'})"
        )
        return 0
    from gxo.cli import output

    if args.command == "plan":
        script = ""
        _dask_settings(args)  # --dask-* without --executor dask is refused, as by execute
        if args.executor == "dask" and args.dask_cluster not in ("", "local"):
            from gxo.executors.dask import job_script

            script = job_script(args.dask_cluster)
        if args.format != "text":  # one JSON document: the script is a field of it
            print(
                output.plan_json(playbook, graph, (args.dask_cluster, script) if script else None)
            )
            return 0
        print(output.plan_text(playbook, graph))
        if script:
            print(f"# the job script dask-jobqueue submits for --dask-cluster {args.dask_cluster}")
            print(script)
        return 0
    if args.command == "graph":
        print(
            output.graph_dot(playbook, graph)
            if args.format == "dot"
            else output.graph_mermaid(playbook, graph)
        )
        return 0
    return _execute(args, loaded, variables, modules, run_id, fmt)


def _execute(
    args: argparse.Namespace,
    loaded: gxo.Loaded,
    variables: dict[str, Any],
    modules: ModuleRegistry,
    run_id: str,
    fmt: str,
) -> int:
    """``gxo execute``: run, print the task lines and the summary, write the result files."""
    import gxo
    from gxo.cli import output

    playbook = loaded.playbook
    _check_outputs(args)
    from gxo.cli.observers import ObservabilityOptions, Observers
    from gxo.template.budget import DEFAULT_RENDER_BUDGET, RenderBudget, set_render_budget

    set_render_budget(
        RenderBudget(
            seconds=args.render_timeout or DEFAULT_RENDER_BUDGET.seconds,
            max_size=args.render_max_size or DEFAULT_RENDER_BUDGET.max_size,
        )
    )
    if args.dry_run and args.resume:
        from gxo.cli.partial import prediction_for, print_prediction

        predictions, where, count = prediction_for(args, variables)
        print(f"dry run of --resume: journal {where} ({count} completed instance record(s))")
        print_prediction(predictions, per_instance=True)
        return 0
    partial = _partial_run(args)
    colour = output.use_colour(args.color, fmt)
    output.configure(colour=colour, quiet=args.quiet)
    # The task lines are a subscriber like any other: a queue deep enough that a slow terminal
    # does not make the bus drop them on a large run (it would say so).
    bus = gxo.EventBus(maxsize=_CLI_EVENTS)
    lines = output.TaskLines(playbook, buffered=True)
    bus.subscribe(lines, name="task lines", flush=lines.flush)
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
            colour=colour,
        )
    )
    report = None
    start_run_gc()
    try:
        observers.start(bus)
        result = gxo.run(
            loaded,
            workers=args.workers,
            dry_run=args.dry_run,
            start_method=args.start_method,
            grace=args.grace,
            core_dumps=args.core_dumps,
            secrets=_secrets(args),
            events=bus,
            metrics_registry=observers.registry,
            tracer_provider=observers.tracer_provider,
            run_id=run_id,
            executor=args.executor,
            dask=_dask_settings(args),
            partial=partial,
            verbose=args.verbose,
            state_dir=args.state_dir,
            output_capture=args.output_capture,
            result_limit=args.result_limit,
            record_limit=args.record_limit or None,
            log_rate=args.log_rate,
            modules=modules,
            redact_keywords=args.redact_keyword or args.redact_keywords,
        )
        report = result.report
    except UsageError as exc:  # it cannot run as asked: nothing ran, the reports say why
        observers.finish(None, write=False)  # its files are those of a run that never started
        _write_invalid_reports(args, exc, run_id)
        raise
    finally:
        observers.finish(report)
    if args.report:
        from gxo.report import iter_report_json

        # Written as a stream: a huge loop's instances come from the run's spool one by one.
        save_output(
            "report", args.report, lambda: write_atomic(args.report, iter_report_json(report))
        )
    if args.junit:
        from gxo.observability.junit import write_junit

        junit = args.junit
        save_output("JUnit XML", junit, lambda: write_junit(junit, report))
    if args.state_out:
        state_out, registered = args.state_out, result.registered
        save_output(
            "state",
            state_out,
            lambda: output.write_state(state_out, playbook, registered, report),
        )
    output.summary(report)
    return report.exit_code


def _dask_settings(args: argparse.Namespace) -> DaskSettings | None:
    """The --dask-* flags, when --executor dask asks for a cluster. Without it they are
    refused: the run would silently use local worker processes instead of the cluster."""
    given = {
        name: getattr(args, f"dask_{name}")
        for name in ("scheduler", "cluster", "workers", "slots", "jobs")
        if getattr(args, f"dask_{name}") not in (None, "")
    }
    if args.executor != "dask":
        if given:
            flag = f"--dask-{next(iter(given))}"
            raise UsageError(
                f"{flag} needs --executor dask (without it, tasks run in local worker "
                f"processes): add --executor dask, or leave {flag} out"
            )
        return None
    from gxo.executors.settings import DaskSettings

    return DaskSettings(**given)


def parse_modules(items: list[str]) -> ModuleRegistry:
    """``--module NAME=pkg.mod:Class`` pairs as a registry (imported when first used)."""
    from gxo.modules.registry import ModuleRegistry

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
    from gxo._util.importable import import_target

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


def _set_quiet(args: argparse.Namespace) -> None:
    """--quiet: failures and the summary only. Set every time: main() may run more than once
    in one process (tests, the library)."""
    quiet_level = logging.WARNING if getattr(args, "quiet", False) else logging.NOTSET
    for name in ("gxo.progress", "gxo.output"):
        logging.getLogger(name).setLevel(quiet_level)


def _load(
    args: argparse.Namespace, variables: dict[str, Any], modules: ModuleRegistry, run_id: str
) -> Any:
    """The playbook, loaded as the flags say; an invalid one still gets its ``--report``."""
    import gxo

    try:
        return gxo.load(
            Path(args.playbook),
            variables=variables or None,
            strict=args.strict,
            limits=limits_of(args),
            modules=modules,
        )
    except PlaybookError as exc:
        _write_invalid_reports(args, exc, run_id)
        raise


def _write_invalid_reports(
    args: argparse.Namespace, error: PlaybookError | UsageError, run_id: str
) -> None:
    """``--report``, ``--junit``, ``--html-report`` and ``--metrics-file`` for a playbook that
    cannot run: Failed, its problems (or why it cannot run as asked), no task results (so a CI
    step that collects them always finds them). One that cannot be written is said (an error
    in the log) and skipped; the exit code stays 2."""
    asked = [
        (flag, target)
        for flag, target in (
            ("--report", getattr(args, "report", None)),
            ("--junit", getattr(args, "junit", None)),
            ("--html-report", getattr(args, "html_report", None)),
            ("--metrics-file", getattr(args, "metrics_file", None)),
        )
        if target
    ]
    wanted: dict[str, str] = {}
    for flag, target in asked:
        try:  # each checked alone: a bad one is said and skipped, the others still written
            check_output_paths([(flag, target)])
        except UsageError as exc:
            logging.getLogger("gxo").error("%s", exc)
            continue
        wanted[flag] = target
    if not wanted:
        return
    from gxo.report import invalid_playbook_report

    report = invalid_playbook_report(error, playbook_name=Path(args.playbook).stem, run_id=run_id)
    if path := wanted.get("--report"):
        data = report.to_json()
        save_output("report", path, lambda: write_atomic(path, data))
    if junit := wanted.get("--junit"):
        from gxo.observability.junit import write_junit

        save_output("JUnit XML", junit, lambda: write_junit(junit, report))
    if html := wanted.get("--html-report"):
        from gxo.observability.html_report import write_html

        save_output("HTML report", html, lambda: write_html(html, report))
    if metrics := wanted.get("--metrics-file"):
        try:
            from gxo.observability.metrics import not_run_metrics, write_textfile
        except ImportError as exc:  # prometheus-client missing: a broken install
            logging.getLogger("gxo").error("--metrics-file: cannot write it: %s", exc)
            return
        registry = not_run_metrics(report)
        save_output("metrics", metrics, lambda: write_textfile(metrics, registry))


def _default_buffer_size(playbook: Playbook, size: int) -> Playbook:
    """``playbook`` with ``size`` as its default ``channel_policy.buffer_size``
    (``--channel-buffer-size``, GXO's ``-channel-buffer-size``).

    The model holds each task's merged policy, so which tasks set ``buffer_size`` themselves
    is read from the file again; those keep their value.
    """
    import msgspec
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    data = yaml.load(Path(playbook.source).read_bytes(), Loader=loader)
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


def limits_of(args: argparse.Namespace) -> InputLimits:
    """The input limits, the defaults changed by --max-scalar-size and --max-tasks."""
    from gxo.config.limits import InputLimits

    given = {
        key: value
        for key, value in (
            ("max_scalar_bytes", args.max_scalar_size),
            ("max_tasks", args.max_tasks),
        )
        if value is not None
    }
    return InputLimits(**given)


#: The files ``gxo execute`` writes, by their flag (the ``args`` attribute is its name).
_WRITTEN = ("--report", "--html-report", "--metrics-file", "--junit", "--state-out", "--journal")


def _check_not_the_playbook(args: argparse.Namespace) -> None:
    """No file the run writes is the playbook itself (a slip: ``--report site.yaml
    site.yaml``): writing it would destroy the input. Exit 2, nothing runs."""
    for flag in _WRITTEN:
        path = getattr(args, flag[2:].replace("-", "_"), None)
        if not path:
            continue
        try:
            same = os.path.samefile(path, args.playbook)
        except OSError:  # either does not exist (yet): not the same file
            continue
        if same:
            raise UsageError(
                f"{flag} {path}: is the playbook itself; give it a file of its own "
                "(nothing was run)"
            )


def _check_outputs(args: argparse.Namespace) -> None:
    """Every file the run will write is writable, before anything runs (exit 2 if not)."""
    from gxo.otel import FILE_ENV

    check_output_paths(
        [
            ("--report", args.report),
            ("--html-report", args.html_report),
            ("--metrics-file", args.metrics_file),
            ("--junit", args.junit),
            ("--state-out", args.state_out),
            (FILE_ENV, os.environ.get(FILE_ENV) or None),
        ]
    )


#: Compiled on first use (``re``'s cache): only a ``--var`` needs it.
_LEADING_ZERO = r"[-+]?0[0-9]+"


def _partial_run(args: argparse.Namespace) -> Any:
    """Targets, fail-fast, journal and resume, deadline, resources (issue 16) as a PartialRun."""
    import os
    import time

    import gxo
    from gxo.pool.sizing import parse_deadline, slurm_end_time

    if args.no_journal and (args.resume or args.journal):
        given = " and ".join(
            o for o, v in (("--resume", args.resume), ("--journal", args.journal)) if v
        )
        raise UsageError(f"--no-journal contradicts {given}")
    text = args.deadline or os.environ.get("GXO_DEADLINE")
    deadline: float | None = None
    if text:
        where = "--deadline" if args.deadline else "GXO_DEADLINE"
        try:
            deadline = parse_deadline(text, time.time())
        except ValueError as exc:
            raise UsageError(f"{where}: {exc}") from None
    else:
        deadline = slurm_end_time(os.environ)
    return gxo.PartialRun(
        targets=args.targets,
        tags=args.tags,
        skip=args.skip,
        skip_tags=args.skip_tags,
        force=args.force,
        fail_fast=args.fail_fast,
        fail_fast_kill=args.fail_fast_kill,
        resume=args.resume,
        journal_enabled=not args.no_journal,
        journal=args.journal,
        checksum=args.checksum,
        deadline=deadline,
        oversubscribe=args.oversubscribe,
        resources=dict(args.resource),
    )


def parse_variables(items: list[str]) -> dict[str, Any]:
    """``--var KEY=VALUE`` pairs; the value is read as YAML (``3``, ``true``, ``[a, b]``)."""
    variables: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key.isidentifier():
            raise UsageError(f"--var expects KEY=VALUE with KEY a name, got {item!r}")
        if key == "_gxo":
            # Said here: a playbook's problem would point at its `vars:`, which lacks it.
            raise UsageError(
                f"--var {item}: a var cannot be named '_gxo': templates read that name as "
                "task statuses; rename it (for example '_gxo_name') and the templates that read it"
            )
        if re.fullmatch(_LEADING_ZERO, raw.strip()):
            number = raw.strip()
            octal = f"{int(number, 8)} for octal {number}, " if not set("89") & set(number) else ""
            raise UsageError(
                f"--var {item}: the number {number} has a leading zero, which YAML readers "
                f"disagree on (octal here, decimal in playbooks); write {octal}"
                f"{int(number)} for decimal, or --var '{key}=\"{number}\"' for text"
            )
        import yaml  # only a command line with --var pays for it

        from gxo.config.yaml_source import parse_value

        try:
            # As a playbook's values are read (YAML 1.2): yes/no/on/off, 1:30, 1_000 and
            # dates stay strings, 1e3 is a float. Text that is not YAML is taken as it is.
            value = parse_value(raw) if raw.strip() else ""
        except yaml.YAMLError:
            value = raw
        except ValueError as exc:
            raise UsageError(f"--var {item}: {exc}") from None
        variables[key] = value
    return variables


def _modules(args: argparse.Namespace) -> int:
    """List every module; a module that cannot be loaded is listed as broken (with why), the
    others still are, and the exit code is then 1."""
    import msgspec

    from gxo.cli import output
    from gxo.modules.registry import describe_all

    extra = parse_modules(args.modules).targets
    described = describe_all(extra)
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
