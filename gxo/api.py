"""gxo as a Python library: validate and run playbooks, get the report back as objects.

::

    import gxo

    result = gxo.run("site.yaml", variables={"env": "staging"}, events=[print])
    if not result.ok:
        print(result.report.error)

A playbook is given as a path (``str`` without a newline, or ``os.PathLike``), as YAML text
(a ``str`` that contains a newline), as a mapping (the parsed YAML), as a
:class:`~gxo.config.Playbook` already returned by :func:`validate`, or as what :func:`load`
returned (then nothing is loaded or compiled again).

The services a run uses are injectable, each with a safe default: the event bus (none: no
events, no cost), the logger (``gxo``), the state store (an in-memory
:class:`MemoryStateStore`), the secrets provider (:class:`SecretsConfig`: environment
variables unless a directory is given), the Prometheus metrics registry and the
OpenTelemetry tracer provider (none: nothing is imported, nothing is recorded).

This module is the only door into gxo: the ``gxo`` command calls :func:`load` and
:func:`run` like any other user, and :mod:`gxo.engine` (the private wiring of one run) is
imported by nothing else. The run's events, metrics (fed from those events) and spans are
assembled here, once.
"""

from __future__ import annotations

import copy
import logging
import os
import threading
import weakref
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import msgspec

from gxo._util.arguments import (
    check_flag,
    check_mapping,
    check_number,
    check_one_of,
    check_whole,
    describe,
)
from gxo.config import InputLimits, Playbook
from gxo.config.load import load_plan, load_plan_data, load_plan_text
from gxo.dag import Plan, analyse
from gxo.errors import UsageError
from gxo.events import Event, EventBus, Subscriber, as_bus
from gxo.modules.registry import KnownTypes, ModuleRegistry
from gxo.pool.helpers import DEFAULT_START_METHOD
from gxo.report import ExecutionReport, TaskResult
from gxo.scheduler.partial import PartialRun

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from gxo import engine
    from gxo.executors.settings import DaskSettings  # only --executor dask builds one
    from gxo.observability.metrics import RunMetrics
    from gxo.otel import TracerProvider
    from gxo.run_options import RunOptions

__all__ = [
    "Loaded",
    "MemoryStateStore",
    "PlaybookSource",
    "RunHandle",
    "RunResult",
    "PartialRun",
    "SecretsConfig",
    "StateStore",
    "load",
    "run",
    "start",
    "validate",
]

#: ``gxo.run(modules=...)``: a registry, or type name -> Module class or ``"pkg.mod:Class"``.
Modules = ModuleRegistry | Mapping[str, Any]


@runtime_checkable
class StateStore(Protocol):
    """Where a run's initial state comes from and where its final state goes.

    ``initial()`` is read once before the run: its keys become playbook variables (overriding
    the playbook's ``vars``; ``variables=`` override both). ``save(state)`` receives the final
    state (variables and every registered result) when the run ends.
    """

    def initial(self) -> Mapping[str, Any]: ...

    def save(self, state: Mapping[str, Any]) -> None: ...


class MemoryStateStore:
    """The default store: a dict in memory; ``data`` holds the final state after a run."""

    def __init__(self, initial: Mapping[str, Any] | None = None) -> None:
        self.data: dict[str, Any] = dict(initial or {})

    def initial(self) -> Mapping[str, Any]:
        return self.data

    def save(self, state: Mapping[str, Any]) -> None:
        self.data = copy.deepcopy(dict(state))


@dataclass(frozen=True)
class SecretsConfig:
    """Where workers read the values of ``{{ secret('NAME') }}``.

    The default reads environment variables, as the workers see them: with the
    ``forkserver`` start method that is the environment when the forkserver started (the
    first run in the process), so set variables before that, or use ``directory``.
    """

    #: Read each secret from the file ``directory/NAME`` instead of the environment.
    directory: str | os.PathLike[str] | None = None
    #: Prepended to every name before it is looked up (``APP_`` + ``DB_PASSWORD``).
    prefix: str = ""


@dataclass(frozen=True)
class Loaded:
    """A validated playbook and its plan (DAG and compiled templates), ready to execute."""

    playbook: Playbook
    plan: Plan
    #: The module types given in code it was validated with (type name -> import path):
    #: :func:`run` given no ``modules=`` runs it with these, not without them.
    modules: Mapping[str, str] = field(default_factory=dict)


#: What :func:`run`, :func:`validate` and :func:`load` accept as a playbook: a path, YAML
#: text, a mapping, a validated :class:`~gxo.config.Playbook`, or what :func:`load` returned.
PlaybookSource = str | os.PathLike[str] | Mapping[str, Any] | Playbook | Loaded


@dataclass(frozen=True)
class RunResult:
    """What a run produced: the report, and a copy of the values tasks registered."""

    #: The run report (the same data ``gxo execute --report`` writes).
    report: ExecutionReport
    #: ``register`` name -> value, for every task that registered something.
    registered: Mapping[str, Any] = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        """The exit code ``gxo execute`` would give: 0, 1, 75 (drained or past the deadline
        with work left), or 128+N for the signal N that stopped it (129, 130, 143)."""
        return self.report.exit_code

    @property
    def ok(self) -> bool:
        """Every task completed or was skipped, or its failure was ignored."""
        return self.report.exit_code == 0

    @property
    def tasks(self) -> Mapping[str, TaskResult]:
        """Task name -> its result (status, reason, error, times, instances)."""
        return self.report.task_results


def load(
    playbook: PlaybookSource,
    *,
    variables: Mapping[str, Any] | None = None,
    state: Mapping[str, Any] | StateStore | None = None,
    strict: bool = False,
    limits: InputLimits | None = None,
    modules: Modules | None = None,
    task_defaults: Mapping[str, Any] | None = None,
    channel_policy: Mapping[str, Any] | None = None,
) -> Loaded:
    """Read, validate and plan a playbook.

    Args:
        playbook: a path, YAML text, a mapping, or a :class:`~gxo.config.Playbook`.
        variables: override or add playbook ``vars`` (what ``--var`` does).
        state: initial state (a mapping, or a :class:`StateStore`'s ``initial()``), applied
            under ``variables``.
        strict: an unknown module parameter is a problem, not a warning (``--strict``).
        limits: the input limits (one value's size, the number of tasks); the defaults
            when None.
        modules: module types given in code (see :func:`run`), known to validation.
        task_defaults: the engine's ``task_defaults`` (see :func:`run`).
        channel_policy: the engine's ``channel_policy`` (see :func:`run`).

    Raises:
        PlaybookError: every problem found, each with its location.
        ValueError: ``variables`` or ``state`` given with an already-loaded Playbook.
        TypeError: an argument of the wrong type (named in the message), or a variable whose
            value cannot be sent to a worker.
    """
    check_flag("strict", strict)
    if limits is not None and not isinstance(limits, InputLimits):
        raise TypeError(f"limits must be a gxo.config.InputLimits or None, got {describe(limits)}")
    check_mapping("task_defaults", task_defaults)
    check_mapping("channel_policy", channel_policy)
    overrides = _overrides(state, variables)
    defaults = {
        key: dict(value)
        for key, value in (("task_defaults", task_defaults), ("channel_policy", channel_policy))
        if value is not None
    }
    if isinstance(playbook, Loaded) and not overrides and not defaults:
        return playbook
    if isinstance(playbook, Loaded):
        playbook = playbook.playbook
    registry = as_registry(modules)
    if isinstance(playbook, Playbook):
        if overrides or defaults:
            raise ValueError(
                "variables, state, task_defaults and channel_policy cannot be applied to an "
                "already-loaded Playbook; pass them to validate() or load() instead"
            )
        return _with_reads(
            Loaded(playbook, analyse(playbook), dict(registry.targets)),
            _declared_reads(playbook, registry),
        )
    known = KnownTypes(registry.targets)
    limits = limits if limits is not None else InputLimits()
    if isinstance(playbook, Mapping):
        loaded = load_plan_data(
            playbook,
            overrides=overrides,
            known_types=known,
            strict=strict,
            limits=limits,
            defaults=defaults,
        )
    elif isinstance(playbook, str) and ("\n" in playbook or not playbook.strip()):
        # Text; so is an empty string ("the playbook is empty", not the directory ".").
        loaded = load_plan_text(
            playbook,
            overrides=overrides,
            known_types=known,
            strict=strict,
            limits=limits,
            defaults=defaults,
        )
    elif isinstance(playbook, str | os.PathLike):
        loaded = load_plan(
            Path(playbook),
            overrides=overrides,
            known_types=known,
            strict=strict,
            limits=limits,
            defaults=defaults,
        )
    else:
        raise TypeError(
            f"playbook must be a path, YAML text, a mapping or a Playbook, "
            f"got {type(playbook).__name__}"
        )
    made = Loaded(*loaded, dict(registry.targets))
    return _with_reads(made, _declared_reads(loaded[0], registry))


def _declared_reads(playbook: Playbook, modules: Modules | None) -> dict[str, tuple[str, ...]]:
    """Type name -> the state keys its module class declares in ``reads_state``, for the
    types ``playbook`` uses (see :meth:`ModuleRegistry.reads_state`)."""
    return as_registry(modules).reads_state({task.type for task in playbook.tasks})


def _with_reads(loaded: Loaded, reads: Mapping[str, tuple[str, ...]]) -> Loaded:
    """``loaded`` with each module's ``reads_state`` keys added to the state its tasks are
    sent, and the tasks registering them ordered before."""
    tasks = [t for t in loaded.playbook.tasks if reads.get(t.type)]
    if not tasks:
        return loaded
    templates = dict(loaded.plan.templates)
    for task in tasks:
        current = templates[task.name]
        templates[task.name] = msgspec.structs.replace(
            current, state_names=current.state_names | frozenset(reads[task.type])
        )
    return Loaded(loaded.playbook, analyse(loaded.playbook, templates), loaded.modules)


def validate(
    playbook: PlaybookSource,
    *,
    variables: Mapping[str, Any] | None = None,
    state: Mapping[str, Any] | StateStore | None = None,
    strict: bool = False,
    limits: InputLimits | None = None,
    modules: Modules | None = None,
    task_defaults: Mapping[str, Any] | None = None,
    channel_policy: Mapping[str, Any] | None = None,
) -> Playbook:
    """Check a playbook without running anything (what ``gxo validate`` does); the arguments
    as in :func:`load` (a Playbook cannot take ``variables``, ``state``, ``task_defaults`` or
    ``channel_policy`` once validated: give them here).

    Raises:
        PlaybookError: every problem found (syntax, schema, references, unknown module
            types, dependency cycles), each with its location.
    """
    return load(
        playbook,
        variables=variables,
        state=state,
        strict=strict,
        limits=limits,
        modules=modules,
        task_defaults=task_defaults,
        channel_policy=channel_policy,
    ).playbook


def run(
    playbook: PlaybookSource,
    *,
    workers: int | None = None,
    variables: Mapping[str, Any] | None = None,
    dry_run: bool = False,
    grace: float = 5.0,
    core_dumps: bool = False,
    start_method: str = DEFAULT_START_METHOD,
    events: EventBus | Iterable[Subscriber] | None = None,
    logger: logging.Logger | None = None,
    state: Mapping[str, Any] | StateStore | None = None,
    secrets: SecretsConfig | object | None = None,
    metrics_registry: CollectorRegistry | None = None,
    tracer_provider: TracerProvider | None = None,
    run_id: str | None = None,
    executor: str = "local",
    dask: DaskSettings | None = None,
    strict: bool = False,
    partial: PartialRun | None = None,
    verbose: int = 0,
    state_dir: str | os.PathLike[str] | None = None,
    output_capture: int | None = None,
    result_limit: int | None = None,
    record_limit: int | None = None,
    log_rate: float | None = None,
    # -- library surface (issue 15) --
    modules: Modules | None = None,
    task_defaults: Mapping[str, Any] | None = None,
    channel_policy: Mapping[str, Any] | None = None,
    redact_keywords: bool | Iterable[str] | None = None,
    _control: engine.RunCancel | None = None,
    _loaded: Loaded | None = None,
) -> RunResult:
    """Run a playbook on worker processes and return its result.

    Args:
        playbook: a path, YAML text, a mapping, or a :class:`~gxo.config.Playbook`.
        workers: worker processes (default: the CPUs this process may use).
        variables: override or add playbook ``vars`` (what ``--var`` does).
        dry_run: modules that support it report what they would do; nothing runs.
        grace: seconds between SIGTERM and SIGKILL when an instance is stopped.
        core_dumps: let a crashing worker or command write a core file (default: their
            core-file size limit is 0, as a core file can hold secrets).
        start_method: ``forkserver`` (default) or ``spawn``; ``fork`` is unsafe once an
            event bus has started its delivery thread.
        events: an :class:`~gxo.events.EventBus`, or callbacks to subscribe to a new one.
            Callbacks run on the bus's thread, never on the scheduler's.
        logger: where worker output goes (``<logger>.output``); default the ``gxo`` logger.
        state: the state store: a mapping of initial values, or a :class:`StateStore`
            (which also receives the final state).
        secrets: where secret values come from: a :class:`SecretsConfig` (default:
            environment variables), or a provider object implementing
            :class:`gxo.secrets.SecretProvider` (``get`` and ``options``), built again in each
            worker from its class's import path and ``options()`` (sent in the clear).
        metrics_registry: a ``prometheus_client.CollectorRegistry`` to count the run in
            (tasks by status, durations, retries, workers, stream edges), fed from the
            events. Runs given the same registry add to the same metrics.
        tracer_provider: an OpenTelemetry tracer provider: a span for the run and one per
            task instance, the workers' spans as their children.
        run_id: the run's id in logs, events and the report (default: a random one).
        executor: ``local`` (worker processes on this machine) or ``dask`` (a Dask cluster,
            ``pip install 'gxo[dask]'``): the scheduler stays here, every instance still runs
            in its own process on a Dask worker.
        dask: how to reach the cluster (:class:`gxo.DaskSettings`: a scheduler address, or a
            ``LocalCluster`` or dask-jobqueue cluster to start); default a local cluster.
        strict: an unknown module parameter is a problem (nothing runs), not a warning.
        partial: targets, fail-fast, the journal and resume, a deadline, resources (what
            ``gxo execute``'s options of that name do; default: run everything, keep going).
        verbose: 1: relay every line commands print while they run (``task | line``, to
            ``<logger>.output``); 2: also each instance's rendered params. Redacted.
        state_dir: the run directory (``--state-dir``): each attempt's stdout and stderr are
            written to ``<state_dir>/runs/<run_id>/<task>/attempt<N>.stdout|.stderr`` and the
            journal to ``<state_dir>/journal/`` (default: ``$GXO_STATE_DIR``, else ``.gxo`` in
            the current directory).
        output_capture: bytes of each stream of each attempt kept in its log file (default:
            the playbook's ``output_capture``, else 1 GiB).
        result_limit: the largest encoded result a task may return; a larger one fails it
            with ``result_too_large`` (default: 64 MiB).
        record_limit: the largest encoded stream record; a larger one fails its producer
            with ``record_too_large`` (default: 16 MiB).
        log_rate: lines a second of module logs and output relayed from each worker; the
            rest are counted and dropped (default: 1000, or no limit with ``verbose``; 0: no
            limit).
        modules: module types given in code: a :class:`~gxo.modules.ModuleRegistry`, or a
            mapping of type name to Module class (or ``"pkg.mod:Class"``). Workers import
            each class by name: one defined in ``__main__`` or a notebook is refused.
        task_defaults: ``{timeout, attempt_timeout, retry}`` for tasks that set none; the
            playbook's own ``task_defaults`` win key by key.
        channel_policy: ``{buffer_size, overflow_strategy}`` for stream edges into tasks that
            set none; the playbook's own ``channel_policy`` wins key by key.
        redact_keywords: ``True`` masks the value of ``key=value``, ``key: value`` and
            ``"key": "value"`` forms whose key contains a keyword of GXO's default list
            (:data:`gxo.secrets.redact.DEFAULT_KEYWORDS`); a list of words adds those to it.

    Returns:
        The result; a failed task does not raise, it makes ``result.ok`` false.

    Raises:
        PlaybookError: the playbook is invalid (nothing ran).
        UsageError: called in a daemonic process (a ``multiprocessing.Pool`` worker) with
            the local executor; the secrets directory does not exist, or the prefix is
            invalid; a module class or secrets provider cannot be imported by name in the
            workers; or
            ``partial`` cannot be met (an unknown target, resources that cannot fit, a
            journal another run holds). Nothing ran.
        TypeError, ValueError: an argument of the wrong type or value (``workers="2"``,
            ``dry_run=None``, ``grace=-1``, ``run_id="../x"``, a variable a worker cannot be
            sent), named in the message. Nothing ran.
    """
    _check_run_arguments(locals())  # first: nothing starts for an argument of the wrong kind
    # Once, here: it raises for what is neither a bus nor callbacks (and a generator of
    # callbacks can be read only once).
    bus = as_bus(events)
    if executor == "local":
        _check_not_daemonic()
        _prestart(playbook, start_method)  # its preload overlaps the loading below
    from gxo.secrets.config import redaction_keywords

    if modules is None and isinstance(playbook, Loaded):
        modules = playbook.modules  # what it was validated with: its tasks need them
    registry = as_registry(modules)
    # _loaded: what gxo.start loaded from these same arguments (loading again would warn
    # twice and ask a state store for its initial() twice).
    loaded = _loaded or load(
        playbook,
        variables=variables,
        state=state,
        strict=strict,
        modules=registry,
        task_defaults=task_defaults,
        channel_policy=channel_policy,
    )
    provider = None if secrets is None or isinstance(secrets, SecretsConfig) else secrets
    config = secrets if isinstance(secrets, SecretsConfig) else SecretsConfig()
    unsubscribe = None
    if metrics_registry is not None:
        bus = bus or EventBus()
        unsubscribe = bus.subscribe(_run_metrics(metrics_registry), name="metrics")
    keywords = redaction_keywords(redact_keywords)
    if log_rate is None and verbose:
        log_rate = 0  # verbose asked for every line

    from gxo.run_options import RunOptions  # light: the engine is imported below

    options = RunOptions(
        workers=workers,
        dry_run=dry_run,
        start_method=start_method,
        grace=grace,
        core_dumps=core_dumps,
        events=bus,
        logger=logger,
        secrets_dir=config.directory,
        secrets_prefix=config.prefix,
        tracer_provider=tracer_provider,
        executor=executor,
        dask=dask,
        partial=partial or PartialRun(),
        state_dir=state_dir,
        output_capture=output_capture,
        secrets_provider=provider,
        modules=registry.targets,
        redact_keywords=keywords,
        control=_control,
    )
    if run_id is not None:
        options.run_id = run_id
    options.verbose = verbose
    if result_limit is not None:
        options.result_limit = result_limit
    if record_limit is not None:
        options.record_limit = record_limit
    if log_rate is not None:
        options.log_rate = log_rate

    # The gxo command's first worker (given a run_id): asked for now (the forkserver it
    # forked starts it once its preload is done); if multiprocessing runs that forkserver,
    # only when it is ready, else tried again once the engine is imported.
    ahead = run_id is not None and executor == "local" and start_method == DEFAULT_START_METHOD
    if ahead:
        ahead = not _start_worker_ahead(loaded, options)
    from gxo import engine  # the pool and the scheduler: only a run imports them

    if ahead:  # the forkserver was not ready yet: it may be now (engine.execute overlaps it)
        _start_worker_ahead(loaded, options)
    try:
        outcome = engine.execute(loaded.playbook, loaded.plan, options)
    finally:
        if unsubscribe is not None:
            unsubscribe()
    final = outcome.state
    if isinstance(state, StateStore):
        state.save(final)
    names = _registered_names(loaded.playbook, outcome.report)
    registered = {name: copy.deepcopy(final[name]) for name in sorted(names) if name in final}
    return RunResult(report=outcome.report, registered=registered)


def _registered_names(playbook: Playbook, report: ExecutionReport) -> set[str]:
    """The ``register`` names a task of this run filled: those of the tasks that completed
    (restored by ``--resume`` too) or failed with ``ignore_errors``.

    Not every register name the final state holds: a skipped, failed or cancelled task
    registers nothing (README, "What a register holds"), and the state then holds whatever
    the name held before, a variable of that name, or what a state store's ``initial()``
    gave (a :class:`MemoryStateStore` hands a second run the registers of the first), which
    ``RunResult.registered`` used to report as registered by this run.
    """
    results = report.task_results
    names: set[str] = set()
    for task in playbook.tasks:
        result = results.get(task.name)
        if task.register is None or result is None:
            continue
        if result.status == "Completed" or (result.status == "Failed" and result.ignored):
            names.add(task.register)
    return names


def _start_worker_ahead(loaded: Loaded, options: RunOptions) -> bool:
    """Start the run's first worker now, before the engine, the pool and the scheduler are
    imported (or, on a second try, before the engine sets the run up), when the forkserver
    the ``gxo`` command forked is known (:func:`gxo.pool.entry.start_ahead`): its start-up
    then overlaps theirs. True if it was started.

    Its configuration is the one the engine gives its workers (the same options through the
    same :func:`gxo.run_options.worker_setup`); the pool takes the worker only if its own is
    equal, so a difference costs the head start, never a worker set up otherwise. Nothing is
    started when it cannot be known here (an invalid secrets setting: the engine says what
    is wrong), or multiprocessing runs that forkserver and it is still importing (asking
    would wait for it); a request to the forkserver multiprocessing does not know yet is
    not waited for.
    """
    from gxo.pool.helpers import forked_forkserver, forkserver_ready

    if forked_forkserver() is None and not forkserver_ready():
        return False  # not the gxo command's forked forkserver, or it is not ready yet
    from gxo.outputs import run_dir, state_dir
    from gxo.pool.entry import start_ahead
    from gxo.run_options import worker_setup

    def directory() -> str:
        # What the engine's run directory will be once it has made it (resolved the same).
        return str(run_dir(state_dir(options.state_dir), options.run_id).resolve())

    try:
        setup = worker_setup(options, loaded.playbook, loaded.plan, directory)
    except UsageError:
        return False
    return start_ahead(setup)


def _prestart(playbook: PlaybookSource, start_method: str) -> None:
    """Start the forkserver (the workers' parent) before anything else of the run, so that
    its start-up, a new interpreter importing the worker's modules, runs on another CPU
    while this process loads the playbook and imports the scheduler.

    Its preload leaves Jinja2 out when the playbook cannot hold a template (its text has
    no ``{{``, ``{%`` or ``{#``; a playbook already loaded by this process has compiled no
    template, so Jinja2 was never imported). A no-op when the forkserver is running."""
    from gxo.pool.helpers import prestart

    prestart(start_method, templates=_may_hold_templates(playbook))


def _may_hold_templates(playbook: PlaybookSource) -> bool:
    import sys

    from gxo._util.sniff import may_hold_templates

    if isinstance(playbook, Loaded | Playbook):
        return bool(sys.modules["gxo.template.paths"].CACHE)  # this process compiled one
    if isinstance(playbook, str) and "\n" in playbook:
        return may_hold_templates(playbook)
    if isinstance(playbook, str | os.PathLike):
        try:
            with open(playbook, "rb") as source:
                return may_hold_templates(source.read())
        except OSError:
            return True  # load() says what is wrong with the path
    return True  # a mapping: not worth walking for a hint


def as_registry(modules: Modules | None) -> ModuleRegistry:
    """``modules=`` as a :class:`ModuleRegistry` (checked: importable by name)."""
    if isinstance(modules, ModuleRegistry):
        return modules
    _check_modules(modules)
    return ModuleRegistry(modules)


def _check_modules(modules: object) -> None:
    if modules is not None and not isinstance(modules, ModuleRegistry | Mapping):
        raise TypeError(
            "modules must be a gxo.ModuleRegistry or a mapping of type name to Module class "
            f"(or 'pkg.mod:Class'), got {describe(modules)}"
        )


#: ``gxo.run(start_method=...)``: what ``--start-method`` offers.
START_METHODS = ("forkserver", "spawn", "fork")


def _check_run_arguments(given: Mapping[str, Any]) -> None:
    """:func:`run`'s arguments (its ``locals()`` on entry), as ``gxo execute`` checks its
    flags: :class:`TypeError` for a wrong type, :class:`ValueError` for a wrong value, each
    naming the argument (:mod:`gxo._util.arguments`). A variable's value is checked by
    :func:`load` (still before any worker starts), ``secrets`` by the secrets set-up
    (:class:`UsageError`)."""
    from gxo.outputs import MAX_RESULT_LIMIT

    check_whole("workers", given["workers"], minimum=1)
    check_flag("dry_run", given["dry_run"])
    check_flag("core_dumps", given["core_dumps"])
    check_number("grace", given["grace"], unit="seconds", none=False)
    check_one_of("start_method", given["start_method"], START_METHODS)
    check_one_of("executor", given["executor"], ("local", "dask"))
    verbose = given["verbose"]
    if not isinstance(verbose, bool):  # True is -v
        check_whole("verbose", verbose, minimum=0, none=False)
    check_whole("output_capture", given["output_capture"], minimum=0)
    check_whole("result_limit", given["result_limit"], minimum=1, maximum=MAX_RESULT_LIMIT)
    check_whole("record_limit", given["record_limit"], minimum=1)
    check_number("log_rate", given["log_rate"], unit="lines a second")
    _check_modules(given["modules"])
    # load() checks these too (it is called alone): here they are refused before the
    # forkserver starts, as the rest; a variable's value is checked there.
    check_flag("strict", given["strict"])
    check_mapping("variables", given["variables"])
    check_mapping("task_defaults", given["task_defaults"])
    check_mapping("channel_policy", given["channel_policy"])
    state = given["state"]
    if isinstance(state, Mapping):
        check_mapping("state", state)
    elif state is not None and not isinstance(state, StateStore):
        _initial(state)  # raises, naming it
    _check_run_id(given["run_id"])
    _check_instance("logger", given["logger"], logging.Logger, "a logging.Logger")
    _check_instance("partial", given["partial"], PartialRun, "a gxo.PartialRun")
    state_dir = given["state_dir"]
    if state_dir is not None and not isinstance(state_dir, str | os.PathLike):
        raise TypeError(f"state_dir must be a path (str or os.PathLike), got {describe(state_dir)}")
    if given["dask"] is not None:
        from gxo.executors.settings import DaskSettings

        _check_instance("dask", given["dask"], DaskSettings, "a gxo.DaskSettings")
    provider = given["tracer_provider"]
    if provider is not None and not callable(getattr(provider, "get_tracer", None)):
        raise TypeError(
            "tracer_provider must be an OpenTelemetry TracerProvider (with get_tracer()) or "
            f"None, got {describe(provider)}"
        )
    if given["metrics_registry"] is not None:
        from prometheus_client import CollectorRegistry

        _check_instance(
            "metrics_registry",
            given["metrics_registry"],
            CollectorRegistry,
            "a prometheus_client.CollectorRegistry",
        )
    keywords = given["redact_keywords"]
    if keywords is not None and not isinstance(keywords, bool):
        if isinstance(keywords, str | bytes) or not isinstance(keywords, Iterable):
            # A str would be read as a list of one-letter words: masking nearly everything.
            hint = (
                f" (one word: redact_keywords=[{keywords!r}])" if isinstance(keywords, str) else ""
            )
            raise TypeError(
                f"redact_keywords must be True, False or a list of words, got "
                f"{describe(keywords)}{hint}"
            )
        # Not a generator's words: reading them here would leave none for the run.
        for word in keywords if isinstance(keywords, Collection) else ():
            if not isinstance(word, str):
                raise TypeError(f"redact_keywords must hold strings, got {describe(word)}")


def _check_not_daemonic() -> None:
    """Refuse a local run in a daemonic process (a ``multiprocessing.Pool`` worker, a
    ``Process(daemon=True)``): multiprocessing forbids it children, and its assertion came
    from the pool's first worker, after the run had started (``RunStarted`` sent). Only a
    process multiprocessing started can be one, so it is not imported to ask (the ``gxo``
    command never imports it)."""
    import sys

    process = sys.modules.get("multiprocessing.process")
    if process is None or not process.current_process().daemon:
        return
    raise UsageError(
        "gxo.run cannot start worker processes here: this is a daemonic process (a "
        "multiprocessing.Pool worker, or a Process with daemon=True), which multiprocessing "
        "allows no children; call it from a concurrent.futures.ProcessPoolExecutor worker, "
        "a Process without daemon=True, or a thread (gxo.start)"
    )


def _check_instance(name: str, value: object, kind: type[Any], what: str) -> None:
    if value is not None and not isinstance(value, kind):
        raise TypeError(f"{name} must be {what} or None, got {describe(value)}")


def _check_run_id(run_id: object) -> None:
    """A run id names the run's directory (``<state_dir>/runs/<run_id>``): one path
    component, printable, so that ``run_id="../x"`` cannot put it (and its lock, its logs, and
    what ``gxo clean`` removes) anywhere else."""
    if run_id is None:
        return
    if not isinstance(run_id, str):
        raise TypeError(f"run_id must be a str or None, got {describe(run_id)}")
    if run_id in ("", ".", "..") or "/" in run_id or not run_id.isprintable():
        raise ValueError(
            f"run_id must be a non-empty name without '/' or control characters (it names the "
            f"run's directory, <state_dir>/runs/<run_id>), got {run_id!r}"
        )


class RunHandle:
    """A run going on in a thread of its own (:func:`start`): cancel it, wait for it, and
    read its events as they happen."""

    def __init__(self, thread_name: str) -> None:
        import queue  # only gxo.start's handle needs it

        from gxo import engine

        self._control = engine.RunCancel()
        self._events: queue.SimpleQueue[Event | None] = queue.SimpleQueue()
        self._done = threading.Event()
        self._result: RunResult | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name=thread_name, daemon=True)
        self._call: Any = None

    def _main(self) -> None:
        try:
            self._result = self._call()
        except BaseException as exc:  # noqa: BLE001 - re-raised by wait()
            self._error = exc
        finally:
            self._done.set()
            self._events.put(None)

    def cancel(self) -> None:
        """Stop the run as a first Ctrl-C would (a second call kills running tasks at once);
        the result says ``interrupted`` and its exit code is 130."""
        self._control.cancel()

    def drain(self) -> None:
        """Drain the run as SIGUSR1 drains ``gxo execute``: nothing new starts, running tasks
        finish; the result's exit code is 75 when work remains (``drained`` tasks), 0 when
        nothing did. :meth:`cancel` still stops it at once."""
        self._control.drain()

    def done(self) -> bool:
        """The run has ended (or failed to start)."""
        return self._done.is_set()

    def wait(self, timeout: float | None = None) -> RunResult:
        """The run's result, once it ended; re-raises what :func:`run` raised.

        Raises:
            TimeoutError: ``timeout`` seconds passed first (the run goes on).
        """
        if not self._done.wait(timeout):
            raise TimeoutError(f"the run did not end within {timeout} seconds")
        self._thread.join()
        if self._error is not None:
            raise self._error
        assert self._result is not None
        return self._result

    def events(self) -> Iterator[Event]:
        """The run's events as they happen, ending when the run ends (one reader)."""
        while True:
            event = self._events.get()
            if event is None:
                self._events.put(None)  # a later call ends at once too
                return
            yield event


def start(playbook: PlaybookSource, **options: Any) -> RunHandle:
    """Start :func:`run` in a thread of its own and return its :class:`RunHandle`.

    Takes what :func:`run` takes. The arguments are checked and the playbook is loaded first,
    here: an invalid one raises :class:`~gxo.errors.PlaybookError` (an argument of the wrong
    kind :class:`TypeError` or :class:`ValueError`) from ``start`` itself and nothing runs. Signal
    handlers are not installed (not the main thread): stop the run with ``handle.cancel()``.
    """
    import inspect  # only gxo.start binds its arguments

    # Checked here, not in the run's thread (where wait() would be the first to say so): an
    # unknown keyword, or a value run() would refuse.
    given = inspect.signature(run).bind(playbook, **options)
    given.apply_defaults()
    _check_run_arguments(given.arguments)
    bus = as_bus(options.pop("events", None)) or EventBus()
    names = ("variables", "state", "strict", "modules", "task_defaults", "channel_policy")
    loaded = load(playbook, **{key: options[key] for key in names if key in options})
    handle = RunHandle(f"gxo run {loaded.playbook.name or '?'}")
    unsubscribe = bus.subscribe(handle._events.put, name="run handle")

    def call() -> RunResult:
        # The caller's bus outlives the run (several gxo.start may share it): the handle's
        # queue leaves it with the run, or every later run would fill it, unread, too.
        try:
            return run(playbook, events=bus, _control=handle._control, _loaded=loaded, **options)
        finally:
            unsubscribe()

    handle._call = call
    handle._thread.start()
    return handle


#: One RunMetrics per registry: its collectors can be registered only once, and runs that
#: share a registry (a long-lived service) add to the same counters.
_metrics: weakref.WeakKeyDictionary[CollectorRegistry, RunMetrics] = weakref.WeakKeyDictionary()
#: Held while one is looked up or made: runs starting at once in several threads with one
#: registry would each make one, and the second to register its collectors raised
#: ``DuplicateTimeseries`` from gxo.run.
_metrics_lock = threading.Lock()


def _run_metrics(registry: CollectorRegistry) -> RunMetrics:
    from gxo.observability.metrics import RunMetrics  # imports prometheus_client

    with _metrics_lock:
        metrics = _metrics.get(registry)
        if metrics is None:
            metrics = _metrics[registry] = RunMetrics(registry)
    return metrics


def _initial(state: Mapping[str, Any] | StateStore | None) -> Mapping[str, Any]:
    if state is None:
        return {}
    if isinstance(state, Mapping):
        check_mapping("state", state)
        return state
    if not isinstance(state, StateStore):
        raise TypeError(
            "state must be a mapping of initial values or a gxo.StateStore (initial() and "
            f"save(state)), got {describe(state)}"
        )
    initial = state.initial()
    if not isinstance(initial, Mapping):
        raise TypeError(
            f"state: {type(state).__name__}.initial() must return a mapping, "
            f"got {describe(initial)}"
        )
    check_mapping(f"state: {type(state).__name__}.initial()", initial)
    return initial


def _overrides(
    state: Mapping[str, Any] | StateStore | None, variables: Mapping[str, Any] | None
) -> dict[str, Any] | None:
    """The initial state under ``variables``, checked: string names, and values a worker can
    be sent (what msgpack encodes: JSON's types, tuples, sets, bytes, dates, ...).

    A value that cannot be sent used to fail the run at the first dispatch of a task that
    reads it, workers started, with msgspec's words and no name; here it is a
    :class:`TypeError` naming the variable, before anything starts.
    """
    check_mapping("variables", variables)
    initial = _initial(state)
    overrides = {**initial, **(variables or {})}
    if not overrides:
        return None
    encode = msgspec.msgpack.encode
    for name, value in overrides.items():
        try:
            encode(value)
        except (TypeError, ValueError, OverflowError) as exc:
            origin = "variables" if variables is not None and name in variables else "state"
            raise TypeError(
                f"{origin}[{name!r}]: {exc} ({describe(value)}): give data a worker can be "
                "sent: str, int, float, bool, None, lists, dicts with string keys"
            ) from None
    return overrides
