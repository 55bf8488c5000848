"""One run of a loaded playbook, wired: signals, the pool, the state, the loop, the report.

::

 gxo.api.run ─► engine.execute(playbook, plan, RunOptions)
                  │
   executor events (Started, Finished, Lost, Returned)
 pool ───────────────► scheduler.loop ──inputs──► scheduler.state  (pure decisions)
   ▲                        │   ◄──instructions── (Dispatch, Kill)  │ listener
   └──── Run / cancel ──────┘                                       ▼
   ║ AF_UNIX socketpairs: gxo.wire frames          scheduler.notify ─► EventBus ─► subscribers
 worker ─► render params → resolve secrets → run module → redact → Done

Private wiring: only :mod:`gxo.api` imports this module (a test checks it); everyone else,
the ``gxo`` command included, goes through :func:`gxo.run`. Level 5 (DESIGN §10).
"""

from __future__ import annotations

import logging
import os
import signal
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import FrameType
from typing import TYPE_CHECKING, Any

import msgspec

from gxo.config.model import Playbook
from gxo.dag import Plan
from gxo.events import EventBus
from gxo.outputs import DEFAULT_OUTPUT_CAPTURE, DEFAULT_RESULT_LIMIT, run_dir, state_dir
from gxo.pool.process_pool import DEFAULT_START_METHOD, ProcessPool
from gxo.pool.relay import DEFAULT_LOG_RATE
from gxo.report import ExecutionReport
from gxo.scheduler.loop import run_loop
from gxo.scheduler.notify import RunObserver
from gxo.scheduler.report import build_report
from gxo.scheduler.state import SchedulerState
from gxo.secrets.config import worker_config

if TYPE_CHECKING:
    from gxo.observability.tracing import RunTracer
    from gxo.otel import TracerProvider

__all__ = ["Outcome", "RunOptions", "default_workers", "execute"]

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
    """How to run a playbook: what :func:`gxo.api.run` was given, as data."""

    workers: int | None = None
    dry_run: bool = False
    start_method: str = DEFAULT_START_METHOD
    #: Seconds between SIGTERM and SIGKILL when an instance is stopped.
    grace: float = 5.0
    #: Where run events go; nothing is emitted unless it has subscribers. Closed (drained,
    #: at most ``events_drain`` seconds) at the end of the run.
    events: EventBus | None = None
    events_drain: float = 5.0
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
    #: ``-v``: 1 relays every line commands print while they run (``task | line``); 2 also
    #: logs each instance's rendered params. Both redacted in the worker.
    verbose: int = 0


@dataclass(frozen=True)
class Outcome:
    """What one run produced: its report and its final state (vars and registered values)."""

    report: ExecutionReport
    state: dict[str, Any]


def execute(playbook: Playbook, plan: Plan, options: RunOptions | None = None) -> Outcome:
    """Run a loaded playbook on a pool of worker processes; its report and final state.

    Ctrl-C and SIGTERM (when called from the main thread) stop the run cleanly: nothing new
    starts, running instances get SIGTERM then SIGKILL after the grace period, and the report
    says ``interrupted``; its ``exit_code`` is 130 or 143.
    """
    options = options or RunOptions()
    workers = options.workers or default_workers()
    worker_setup = msgspec.structs.replace(
        worker_config(
            (t.params for t in plan.templates.values()),
            directory=options.secrets_dir,
            prefix=options.secrets_prefix,
            log_level=logging.getLogger("gxo").getEffectiveLevel(),
        ),
        run_dir="" if options.dry_run else _run_directory(options),
        output_capture=_first(options.output_capture, playbook.output_capture),
        result_limit=options.result_limit,
        log_rate=options.log_rate,
        record_limit=options.record_limit,
        live_output=options.verbose >= 1,
        show_params=options.verbose >= 2,
    )
    watch = _Watch.start(options)
    observer, tracer = watch.observer, watch.tracer
    state = SchedulerState(playbook, plan, listener=observer, dry_run=options.dry_run)
    relay = options.logger.getChild("output") if options.logger is not None else output_log
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
    if tracer is not None:
        tracer.start_run(playbook.name, len(playbook.tasks), size, options.dry_run)

    def worker_lost(pid: int, reason: str, instance_id: int | None) -> None:
        assert observer is not None
        inst = state.instances.get(instance_id) if instance_id is not None else None
        observer.worker_lost(pid, reason, inst.label if inst is not None else "")

    with _catch_signals() as signals:
        pool = ProcessPool(
            size,
            start_method=options.start_method,
            wakeup_fd=signals.wakeup_fd,
            grace=options.grace,
            on_output=lambda iid, line: _relay_output(state, iid, line, relay),
            worker_config=worker_setup,
            on_worker_started=observer.worker_started if observer else None,
            on_worker_lost=worker_lost if observer else None,
            log_rate=options.log_rate,
        )
        try:
            if observer is not None:
                observer.run_started(playbook, size, options.dry_run)
            pool.start()
            run_loop(
                state,
                pool,
                interrupts=signals,
                run_timeout=playbook.timeout,
                traceparent=tracer.traceparent if tracer is not None else None,
            )
        except BaseException:
            watch.close(None, options.events_drain)
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
        workers=size,
        worker_restarts=restarts,
        exit_code=exit_code,
    )
    if observer is not None:
        observer.run_finished(report)
    watch.close(report, options.events_drain)
    return Outcome(report, state.store)


@dataclass
class _Watch:
    """Who watches the run: the observer that emits its events, and the tracer (itself a
    subscriber of the bus, plus the trace context of each dispatch)."""

    bus: EventBus | None
    observer: RunObserver | None
    tracer: RunTracer | None
    unsubscribe: Callable[[], None] | None

    @classmethod
    def start(cls, options: RunOptions) -> _Watch:
        bus, tracer, unsubscribe = options.events, None, None
        if options.tracer_provider is not None:
            from gxo.observability.tracing import RunTracer

            tracer = RunTracer(options.tracer_provider, options.run_id)
            bus = bus if bus is not None else EventBus()
            unsubscribe = bus.subscribe(tracer, name="tracing")
        observer = RunObserver(bus, options.run_id) if bus is not None and bus.active else None
        return cls(bus, observer, tracer, unsubscribe)

    def close(self, report: ExecutionReport | None, drain: float) -> None:
        """Deliver the queued events, then end the spans the events did not end."""
        if self.bus is not None:
            self.bus.close(drain)
        if self.tracer is not None and self.unsubscribe is not None:
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
    """Lines a worker printed (redacted by the worker), one record per batch.

    The pool hands over every line of one read at once (``\n``-separated): one log record
    per batch, each line prefixed ``task | ``, keeps a command that prints 100,000 lines
    from costing 100,000 records.
    """
    if not out.isEnabledFor(logging.INFO):
        return
    label = "worker"
    if instance_id is not None and instance_id in state.instances:
        label = state.instances[instance_id].label
    prefix = f"{label} | "
    out.info("%s", prefix + line.replace("\n", "\n" + prefix), extra={"gxo_task": label})


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
