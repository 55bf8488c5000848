"""One run, end to end: load → validate → build the DAG → start the pool → schedule → report.

::

 playbook.yaml ─config.load─► Playbook ─dag.build─► Graph
                                                    │
        events (Started, Finished, Lost, Returned)  ▼
 pool ───────────────────────────────► scheduler.state  (pure decisions)
   ▲                                       │ instructions (dispatch, Kill)
   └──────────── scheduler.loop ◄──────────┘
   ║ AF_UNIX socketpairs: length-prefixed msgspec frames
 worker ─► render params → resolve secrets → run module → redact → Done

This is the only module that imports every subsystem.
"""

from __future__ import annotations

import logging
import os
import signal
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

import msgspec

from gxo.config import load_playbook
from gxo.config.model import Playbook
from gxo.dag import Plan, analyse
from gxo.errors import UsageError
from gxo.events import EventBus, RunObserver
from gxo.modules.registry import KnownTypes
from gxo.outputs import DEFAULT_OUTPUT_CAPTURE, DEFAULT_RESULT_LIMIT, run_dir, state_dir
from gxo.pool.process_pool import DEFAULT_START_METHOD, ProcessPool
from gxo.pool.protocol import WorkerConfig
from gxo.pool.relay import DEFAULT_LOG_RATE
from gxo.report import ExecutionReport, build_report
from gxo.scheduler.loop import run_loop
from gxo.scheduler.records import TaskRecord
from gxo.scheduler.state import SchedulerState
from gxo.secrets.providers import EnvProvider, FileProvider
from gxo.template.compiled import secret_names

if TYPE_CHECKING:
    from gxo.observability.tracing import RunTracer, TracerProvider
    from gxo.pool.protocol import Run
    from gxo.scheduler.records import InstanceRecord

__all__ = ["RunOptions", "default_workers", "execute", "load"]

log = logging.getLogger("gxo")
output_log = logging.getLogger("gxo.output")
#: Progress lines (what runs, what ended); ``--quiet`` raises it to warnings only.
progress_log = logging.getLogger("gxo.progress")

EXIT_OK = 0
EXIT_FAILED = 1


def default_workers() -> int:
    """The CPUs this process may run on (honours cgroups, SLURM cpusets and taskset)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


@dataclass
class RunOptions:
    """How to run a playbook (the CLI's ``execute`` flags, as data)."""

    workers: int | None = None
    dry_run: bool = False
    start_method: str = DEFAULT_START_METHOD
    #: Seconds between SIGTERM and SIGKILL when an instance is stopped.
    grace: float = 5.0
    #: Called with each task's record when it reaches a terminal status.
    on_task_end: Callable[[TaskRecord], None] | None = None
    #: Where run events go; nothing is emitted unless it has subscribers. Closed (drained,
    #: at most ``events_drain`` seconds) at the end of the run.
    events: EventBus | None = None
    events_drain: float = 5.0
    #: Called with the final state store (vars and registered results) when the run ends.
    on_state: Callable[[dict[str, Any]], None] | None = None
    #: Where the lines workers print go (``<logger>.output``); default the ``gxo`` logger.
    logger: logging.Logger | None = None
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    #: Read secrets from files in this directory (one file per secret) instead of the
    #: environment.
    secrets_dir: str | os.PathLike[str] | None = None
    #: Prepended to every secret name before it is looked up (``APP_`` + ``DB_PASSWORD``).
    secrets_prefix: str = ""
    #: Trace the run (a span per run and per task instance) with this OpenTelemetry tracer
    #: provider; workers trace their attempts as children, exporting as their environment's
    #: ``OTEL_*`` variables say. None: no tracing, and OpenTelemetry is not imported.
    tracer_provider: TracerProvider | None = None
    #: The state directory (attempt logs go to ``<state_dir>/runs/<run_id>/``); None:
    #: ``$GXO_STATE_DIR``, else ``.gxo`` in the current directory.
    state_dir: str | os.PathLike[str] | None = None
    #: ``--output-capture``: bytes of each stream kept in its log file per attempt; None:
    #: the playbook's ``output_capture``, else 1 GiB.
    output_capture: int | None = None
    #: ``--result-limit``: the largest encoded result a task may return.
    result_limit: int = DEFAULT_RESULT_LIMIT
    #: ``--record-limit``: the largest encoded stream record; 0: the default (16 MiB).
    record_limit: int = 0
    #: ``--log-rate``: lines a second relayed from each worker to the log (0: no limit).
    log_rate: float = DEFAULT_LOG_RATE


def load(
    path: str | os.PathLike[str], overrides: Mapping[str, Any] | None = None
) -> tuple[Playbook, Plan]:
    """Load, validate and plan a playbook; raises :class:`gxo.errors.PlaybookError`."""
    playbook = load_playbook(Path(path), overrides=overrides, known_types=KnownTypes())
    return playbook, analyse(playbook)


def execute(playbook: Playbook, plan: Plan, options: RunOptions | None = None) -> ExecutionReport:
    """Run a loaded playbook on a pool of worker processes and return its report.

    Ctrl-C and SIGTERM (when called from the main thread) stop the run cleanly: nothing new
    starts, running instances get SIGTERM then SIGKILL after the grace period, and the report
    says ``interrupted``; its ``exit_code`` is 130 or 143.
    """
    options = options or RunOptions()
    workers = options.workers or default_workers()
    worker_config = msgspec.structs.replace(
        secrets_config(plan, options),
        run_dir="" if options.dry_run else _run_directory(options),
        output_capture=_first(options.output_capture, playbook.output_capture),
        result_limit=options.result_limit,
        log_rate=options.log_rate,
        record_limit=options.record_limit,
    )
    tracing = _Tracing.start(playbook, plan, options) if options.tracer_provider else None
    state = tracing.state if tracing else SchedulerState(playbook, plan, dry_run=options.dry_run)
    if options.on_task_end is not None:
        state.on_task_end = options.on_task_end
    relay = options.logger.getChild("output") if options.logger is not None else output_log
    bus = tracing.bus if tracing else options.events
    observer = RunObserver(bus, options.run_id, state) if bus is not None and bus.active else None
    started_wall, started_mono = time.time(), time.monotonic()
    restarts = 0
    size = _pool_size(state, workers, _max_parallel(playbook))
    progress_log.info(
        "running %s (%d tasks) on %d worker process%s%s",
        playbook.name,
        len(playbook.tasks),
        size,
        "" if size == 1 else "es",
        " (dry run)" if options.dry_run else "",
    )
    with _catch_signals() as signals:
        pool = ProcessPool(
            size,
            start_method=options.start_method,
            wakeup_fd=signals.wakeup_fd,
            grace=options.grace,
            on_output=lambda iid, line: _relay_output(state, iid, line, relay),
            worker_config=worker_config,
            on_worker_started=observer.worker_started if observer else None,
            on_worker_lost=observer.worker_lost if observer else None,
            log_rate=options.log_rate,
        )
        try:
            if observer is not None:
                observer.run_started(workers)
            pool.start()
            run_loop(state, pool, interrupts=signals, run_timeout=playbook.timeout)
        except BaseException:
            if observer is not None:
                observer.bus.close(options.events_drain)
            if tracing is not None:
                tracing.close(None)
            raise
        finally:
            restarts = pool.restarts
            pool.close()
    if signals.last:
        exit_code = 128 + signals.last
    elif state.failed or state.interrupted:
        exit_code = EXIT_FAILED
    else:
        exit_code = EXIT_OK
    report = build_report(
        state,
        run_id=options.run_id,
        started_wall=started_wall,
        started_mono=started_mono,
        ended_mono=time.monotonic(),
        workers=workers,
        worker_restarts=restarts,
        exit_code=exit_code,
    )
    if options.on_state is not None:
        options.on_state(state.store)
    if observer is not None:
        observer.run_finished(report)
        observer.bus.close(options.events_drain)
    if tracing is not None:
        tracing.close(report)
    return report


class _TracedState(SchedulerState):
    """Sends each instance's trace context with its ``Run`` (only when tracing is on)."""

    def __init__(self, playbook: Playbook, plan: Plan, tracer: RunTracer, dry_run: bool) -> None:
        super().__init__(playbook, plan, dry_run=dry_run)
        self.tracer = tracer

    def make_run(self, inst: InstanceRecord) -> Run:
        run = super().make_run(inst)
        return msgspec.structs.replace(run, traceparent=self.tracer.traceparent(inst))


@dataclass
class _Tracing:
    """A traced run's tracer, its scheduler state and the bus the tracer listens on."""

    tracer: RunTracer
    state: SchedulerState
    bus: EventBus
    unsubscribe: Callable[[], None]

    @classmethod
    def start(cls, playbook: Playbook, plan: Plan, options: RunOptions) -> _Tracing:
        from gxo.observability.tracing import RunTracer

        assert options.tracer_provider is not None
        tracer = RunTracer(options.tracer_provider, options.run_id)
        bus = options.events if options.events is not None else EventBus()
        unsubscribe = bus.subscribe(tracer, name="tracing")
        state = _TracedState(playbook, plan, tracer, options.dry_run)
        workers = options.workers or default_workers()
        tracer.start_run(playbook.name, len(playbook.tasks), workers, options.dry_run)
        return cls(tracer, state, bus, unsubscribe)

    def close(self, report: ExecutionReport | None) -> None:
        """After the bus was drained: end the spans its events did not end."""
        self.unsubscribe()
        self.tracer.close(report)


def _run_directory(options: RunOptions) -> str:
    """Create this run's directory for attempt logs; warn once and return "" if it cannot be."""
    path = run_dir(state_dir(options.state_dir), options.run_id)
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".writable"
        probe.touch()
        probe.unlink()
    except OSError as exc:
        log.warning(
            "cannot write the run directory %s (%s): running without output logs; "
            "choose another place with --state-dir or GXO_STATE_DIR",
            path,
            exc.strerror or exc,
        )
        return ""
    return str(path.resolve())


def _first(*values: int | None) -> int:
    """The first value given, else the default ``output_capture``."""
    return next((v for v in values if v is not None), DEFAULT_OUTPUT_CAPTURE)


def _pool_size(state: SchedulerState, workers: int, max_parallel: int) -> int:
    """``workers``, no more than can be used, and never fewer than the largest stream group.

    A stream group's tasks run at the same time, each in its own worker: a group larger than
    the pool gets extra processes (with a warning), rather than a deadlock.
    """
    size = min(workers, max(1, max_parallel))
    groups = set(state.groups.values())
    largest = max(groups, key=len, default=())
    if len(largest) > workers:
        log.warning(
            "stream group %s needs %d workers to run at once; --workers is %d: "
            "starting %d worker processes",
            ", ".join(largest),
            len(largest),
            workers,
            len(largest),
        )
    return max(size, len(largest))


def secrets_config(plan: Plan, options: RunOptions) -> WorkerConfig:
    """What every worker needs to resolve and mask secrets: the provider and the names.

    The names are every literal ``secret('NAME')`` of the playbook's params: each worker
    resolves them into its redactor, so a value resolved by one task is masked in any other
    task's worker. The parent never reads a value. Raises :class:`UsageError` for a bad
    prefix or a secrets directory that does not exist.
    """
    directory = ""
    try:
        if options.secrets_dir is not None:
            directory = os.path.abspath(options.secrets_dir)
            if not os.path.isdir(directory):
                raise UsageError(f"secrets directory {str(options.secrets_dir)!r} not found")
            FileProvider(directory, options.secrets_prefix)
        else:
            EnvProvider(options.secrets_prefix)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    names = sorted({name for t in plan.templates.values() for name in secret_names(t.params)})
    return WorkerConfig(
        secrets_dir=directory,
        secrets_prefix=options.secrets_prefix,
        secret_names=tuple(names),
        log_level=logging.getLogger("gxo").getEffectiveLevel(),
    )


def _max_parallel(playbook: Playbook) -> int:
    """An upper bound on instances that can run at once: no point starting more workers."""
    total = 0
    for task in playbook.tasks:
        if task.loop is None:
            total += 1
        elif isinstance(task.loop, list):
            total += min(len(task.loop), task.loop_control.parallel)
        else:
            total += task.loop_control.parallel
    return total


def _relay_output(
    state: SchedulerState, instance_id: int | None, line: str, out: logging.Logger
) -> None:
    """A line a worker printed (already redacted by the worker for Python-level writes)."""
    label = "worker"
    if instance_id is not None and instance_id in state.instances:
        label = state.instances[instance_id].label
    out.info("%s | %s", label, line, extra={"gxo_task": label})


class _Signals:
    """Counts SIGINT/SIGTERM and wakes the scheduler through a pipe."""

    def __init__(self) -> None:
        self.count = 0
        self.last = 0
        self.wakeup_fd: int | None = None

    def handler(self, signum: int, frame: FrameType | None) -> None:
        self.count += 1
        self.last = signum
        if self.count == 1:
            log.warning(
                "received %s: stopping (running tasks get SIGTERM, then SIGKILL); "
                "press Ctrl-C again to kill them at once",
                signal.Signals(signum).name,
            )


@contextmanager
def _catch_signals() -> Iterator[_Signals]:
    signals = _Signals()
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield signals  # signal handlers can only be installed from the main thread
        return
    read_fd, write_fd = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    signals.wakeup_fd = read_fd
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    old_wakeup = signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
    try:
        for sig in previous:
            signal.signal(sig, signals.handler)
        yield signals
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        signal.set_wakeup_fd(old_wakeup)
        os.close(read_fd)
        os.close(write_fd)
