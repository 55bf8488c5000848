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
from collections.abc import Callable, Iterator, Mapping, Sequence
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
from gxo.pool.process_pool import DEFAULT_START_METHOD, ProcessPool
from gxo.pool.protocol import WorkerConfig
from gxo.report import ExecutionReport, build_report
from gxo.scheduler.loop import run_loop
from gxo.scheduler.partial import RunControl
from gxo.scheduler.records import TaskRecord
from gxo.scheduler.state import SchedulerState
from gxo.secrets.providers import EnvProvider, FileProvider
from gxo.template.compiled import secret_names

if TYPE_CHECKING:
    from gxo.observability.tracing import RunTracer, TracerProvider
    from gxo.pool.protocol import Run
    from gxo.pool.sizing import Sizing
    from gxo.scheduler.journaling import JournalRecorder
    from gxo.scheduler.records import InstanceRecord

__all__ = ["RunOptions", "default_workers", "execute", "load"]

log = logging.getLogger("gxo")
output_log = logging.getLogger("gxo.output")
#: Progress lines (what runs, what ended); ``--quiet`` raises it to warnings only.
progress_log = logging.getLogger("gxo.progress")

EXIT_OK = 0
EXIT_FAILED = 1
#: Work remains: drained (SIGUSR1/2) or --deadline; requeue and --resume (DESIGN §15).
EXIT_WORK_REMAINS = 75


def default_workers() -> int:
    """The CPUs this job was given: the smallest of CPU affinity, ``SLURM_CPUS_PER_TASK`` and
    the cgroup CPU quota (see :mod:`gxo.pool.sizing`)."""
    from gxo.pool.sizing import default_workers as allocation

    return allocation().workers


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
    # -- partial runs, resume and batch systems (issue 16; see gxo.scheduler.partial) ------
    #: Run only these tasks (names or globs) and what they need; and/or the tasks with tags.
    targets: Sequence[str] = ()
    tags: Sequence[str] = ()
    #: Leave out tasks by name glob or by tag (Skipped, not_selected).
    skip: Sequence[str] = ()
    skip_tags: Sequence[str] = ()
    #: Run these again even when the journal says they are done (and what depends on them).
    force: Sequence[str] = ()
    fail_fast: bool = False
    fail_fast_kill: bool = False
    resume: bool = False
    #: Write the run journal (``gxo execute`` does unless --no-journal; the library does not
    #: unless asked), to ``journal`` or <state_dir>/journal/<stem>-<hash>.jsonl. A playbook
    #: that is not a file has no default journal.
    journal: str | os.PathLike[str] | None = None
    journal_enabled: bool = False
    state_dir: str | os.PathLike[str] | None = None
    checksum: bool = False
    #: Wall-clock time (``time.time()``) after which nothing that would not finish starts.
    deadline: float | None = None
    #: Allow a stream group larger than ``workers`` (extra processes). The library allows it
    #: by default, as before; ``gxo execute`` refuses unless --oversubscribe.
    oversubscribe: bool = True
    #: Consumable capacity for tasks' ``resources`` (``--resource NAME=N``).
    resources: Mapping[str, float] = field(default_factory=dict)


def load(
    path: str | os.PathLike[str], overrides: Mapping[str, Any] | None = None
) -> tuple[Playbook, Plan]:
    """Load, validate and plan a playbook; raises :class:`gxo.errors.PlaybookError`."""
    playbook = load_playbook(Path(path), overrides=overrides, known_types=KnownTypes())
    return playbook, analyse(playbook)


def execute(playbook: Playbook, plan: Plan, options: RunOptions | None = None) -> ExecutionReport:
    """Run a loaded playbook on a pool of worker processes and return its report.

    Ctrl-C, SIGTERM and SIGHUP (when called from the main thread) stop the run cleanly:
    nothing new starts, running instances get SIGTERM then SIGKILL after the grace period, and
    the report says ``interrupted``; its ``exit_code`` is 130, 143 or 129. SIGUSR1 and SIGUSR2
    drain it: nothing new starts, running instances finish, exit code 75 when work remains.

    Raises :class:`UsageError` (nothing ran) for a selection, resources or stream groups that
    cannot run as asked, or a journal another run holds.
    """
    options = options or RunOptions()
    from gxo.pool.sizing import default_workers as allocation

    sizing = None if options.workers else allocation()
    workers = options.workers or (sizing.workers if sizing is not None else 1)
    worker_config = secrets_config(plan, options)
    control, recorder = _run_control(playbook, plan, options, workers)
    try:
        report = _execute(
            playbook, plan, options, control, recorder, workers, sizing, worker_config
        )
    except BaseException:
        if recorder is not None:
            recorder.close(EXIT_FAILED)
        raise
    if recorder is not None:
        recorder.close(report.exit_code)
    return report


def _execute(
    playbook: Playbook,
    plan: Plan,
    options: RunOptions,
    control: RunControl,
    recorder: JournalRecorder | None,
    workers: int,
    sizing: Sizing | None,
    worker_config: WorkerConfig,
) -> ExecutionReport:
    tracing = _Tracing.start(playbook, plan, options, control) if options.tracer_provider else None
    state = (
        tracing.state
        if tracing
        else SchedulerState(playbook, plan, dry_run=options.dry_run, control=control)
    )
    if options.on_task_end is not None:
        state.on_task_end = options.on_task_end
    relay = options.logger.getChild("output") if options.logger is not None else output_log
    bus = tracing.bus if tracing else options.events
    observer = RunObserver(bus, options.run_id, state) if bus is not None and bus.active else None
    started_wall, started_mono = time.time(), time.monotonic()
    restarts = 0
    if recorder is not None:
        recorder.attach(state)
    size = _pool_size(state, workers, _max_parallel(playbook))
    progress_log.info(
        "running %s (%d tasks) on %d worker process%s%s%s",
        playbook.name,
        len(playbook.tasks),
        size,
        "" if size == 1 else "es",
        f" (--workers default: {sizing.decided_by})" if sizing is not None else "",
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
    exit_code = _exit_code(state, signals.last)
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


def _exit_code(state: SchedulerState, signum: int) -> int:
    """128+N for a stopping signal; 1 for a failure; 75 when a drain left work; else 0."""
    if signum:
        return 128 + signum
    if state.failed:
        return EXIT_FAILED
    if state.work_left:
        return EXIT_WORK_REMAINS
    if state.interrupted in ("drained", "deadline"):
        return EXIT_OK  # drained, but nothing was left to do
    return EXIT_FAILED if state.interrupted else EXIT_OK


def _run_control(
    playbook: Playbook, plan: Plan, options: RunOptions, workers: int
) -> tuple[RunControl, JournalRecorder | None]:
    """The run's partial-run controls, and the journal recorder when the journal is on.

    Everything that can refuse the run (a bad selection, resources that cannot fit, a journal
    another run holds) raises :class:`UsageError` here, before any process starts.
    """
    from gxo.dag.select import select_tasks
    from gxo.scheduler.partial import check_capacity
    from gxo.streams.groups import stream_groups

    check_capacity(
        playbook,
        stream_groups(plan.graph),
        workers,
        oversubscribe=options.oversubscribe,
        capacity=options.resources,
    )
    accounting = bool(options.resources) or any(
        t.cpus > 1 or len(t.resources) > ("cpus" in t.resources) for t in playbook.tasks
    )
    control = RunControl(
        fail_fast=options.fail_fast or options.fail_fast_kill,
        fail_fast_kill=options.fail_fast_kill,
        grace=options.grace,
        slots=workers,
        capacity=dict(options.resources),
        accounting=accounting,
    )
    if options.deadline is not None:
        control.deadline = time.monotonic() + (options.deadline - time.time())
    recorder = None if options.dry_run else _open_journal(playbook, plan, options, control)
    if any((options.targets, options.tags, options.skip, options.skip_tags)):
        restorable: set[str] = set()
        if control.resumer is not None:
            resumer = control.resumer
            restorable = {t.name for t in playbook.tasks if resumer.restorable(t) is not None}
        try:
            control.selection = select_tasks(
                playbook,
                plan.graph,
                targets=options.targets,
                tags=options.tags,
                skip=options.skip,
                skip_tags=options.skip_tags,
                restorable=restorable,
            )
        except BaseException:
            if recorder is not None:
                recorder.writer.close()
            raise
    return control, recorder


def _open_journal(
    playbook: Playbook, plan: Plan, options: RunOptions, control: RunControl
) -> JournalRecorder | None:
    """Read the journal (``--resume``, ``--deadline``) and take it for writing.

    A directory that cannot be written: a warning and no journal, unless ``--resume`` or
    ``--journal`` asked for it (then :class:`UsageError`: exit 2, nothing ran).
    """
    from gxo.journal import (
        Fingerprinter,
        JournalIndex,
        JournalWriter,
        Resumer,
        default_state_dir,
        journal_path,
        read_journal,
    )
    from gxo.scheduler.journaling import JournalRecorder

    is_file = not playbook.source.startswith("<")
    wanted = options.resume or options.journal is not None
    if not (options.journal_enabled or wanted) or (options.journal is None and not is_file):
        if options.resume:
            raise UsageError("--resume needs the journal: drop --no-journal, or give --journal")
        return None
    path = (
        Path(options.journal)
        if options.journal is not None
        else journal_path(playbook.source, default_state_dir(options.state_dir))
    )
    base_dir = os.path.dirname(os.path.abspath(playbook.source)) if is_file else ""
    fingerprinter = Fingerprinter(plan, base_dir=base_dir, checksum=options.checksum)
    control.fingerprinter = fingerprinter
    if options.resume or options.deadline is not None:
        control.index = JournalIndex(read_journal(path).entries)
    if options.resume:
        index = control.index or JournalIndex()
        control.resumer = Resumer(index, fingerprinter, force=options.force)
    writer = JournalWriter(path, run_id=options.run_id)
    try:
        writer.open()
    except OSError as exc:
        if wanted:
            raise UsageError(f"cannot write the journal {path}: {exc.strerror or exc}") from None
        log.warning("cannot write the journal %s (%s): running without it", path, exc.strerror)
        control.fingerprinter = None
        return None
    return JournalRecorder(writer, control, options.run_id, playbook.source)


class _TracedState(SchedulerState):
    """Sends each instance's trace context with its ``Run`` (only when tracing is on)."""

    def __init__(
        self,
        playbook: Playbook,
        plan: Plan,
        tracer: RunTracer,
        dry_run: bool,
        control: RunControl | None = None,
    ) -> None:
        super().__init__(playbook, plan, dry_run=dry_run, control=control)
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
    def start(
        cls, playbook: Playbook, plan: Plan, options: RunOptions, control: RunControl | None = None
    ) -> _Tracing:
        from gxo.observability.tracing import RunTracer

        assert options.tracer_provider is not None
        tracer = RunTracer(options.tracer_provider, options.run_id)
        bus = options.events if options.events is not None else EventBus()
        unsubscribe = bus.subscribe(tracer, name="tracing")
        state = _TracedState(playbook, plan, tracer, options.dry_run, control)
        workers = options.workers or default_workers()
        tracer.start_run(playbook.name, len(playbook.tasks), workers, options.dry_run)
        return cls(tracer, state, bus, unsubscribe)

    def close(self, report: ExecutionReport | None) -> None:
        """After the bus was drained: end the spans its events did not end."""
        self.unsubscribe()
        self.tracer.close(report)


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


#: Signals that stop a run (TERM -> grace -> KILL; exit 128+N). SIGHUP is handled like SIGTERM.
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
#: Signals that drain a run (start nothing new, let running instances finish; exit 75).
_DRAIN_SIGNALS = (signal.SIGUSR1, signal.SIGUSR2)


class _Signals:
    """Counts SIGINT/SIGTERM/SIGHUP, notes SIGUSR1/2, and wakes the scheduler through a pipe."""

    def __init__(self) -> None:
        self.count = 0
        self.last = 0
        self.drain = False
        self.wakeup_fd: int | None = None

    def drain_handler(self, signum: int, frame: FrameType | None) -> None:
        if not self.drain:
            log.warning(
                "received %s: draining (nothing new starts; running tasks finish, then gxo "
                "exits 75 if work remains: run again with --resume)",
                signal.Signals(signum).name,
            )
        self.drain = True

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
    previous = {sig: signal.getsignal(sig) for sig in (*_STOP_SIGNALS, *_DRAIN_SIGNALS)}
    old_wakeup = signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
    try:
        for sig in _STOP_SIGNALS:
            signal.signal(sig, signals.handler)
        for sig in _DRAIN_SIGNALS:
            signal.signal(sig, signals.drain_handler)
        yield signals
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        signal.set_wakeup_fd(old_wakeup)
        os.close(read_fd)
        os.close(write_fd)
