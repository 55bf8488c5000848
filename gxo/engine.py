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

import contextlib
import functools
import gc
import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

import msgspec

from gxo import run_options
from gxo._util.early_signals import DRAIN_SIGNALS, take_pending
from gxo.config.model import Playbook
from gxo.dag import Plan
from gxo.errors import UsageError
from gxo.events import EventBus
from gxo.journal.spool import InstanceSpool
from gxo.outputs import hold_run_dir, run_dir, state_dir
from gxo.pool.openfiles import ensure_open_files
from gxo.pool.process_pool import ProcessPool
from gxo.report import ExecutionReport, InstanceReport
from gxo.run_options import RunCancel, RunOptions
from gxo.scheduler.loop import run_loop
from gxo.scheduler.notify import HeldEvents, RunObserver
from gxo.scheduler.partial import RunControl
from gxo.scheduler.report import Spooler, build_report
from gxo.scheduler.state import SchedulerState
from gxo.template import allow_renders, interrupt_renders
from gxo.wire import WorkerConfig

if TYPE_CHECKING:
    from gxo.observability.tracing import RunTracer
    from gxo.pool.enforce import Enforcement
    from gxo.pool.executor import Executor
    from gxo.pool.sizing import Sizing
    from gxo.scheduler.journaling import JournalRecorder

__all__ = ["Outcome", "RunCancel", "RunOptions", "default_workers", "execute"]

log = logging.getLogger("gxo")
output_log = logging.getLogger("gxo.output")
#: Progress lines (what runs, what ended); ``--quiet`` raises it to warnings only.
progress_log = logging.getLogger("gxo.progress")

EXIT_OK = 0
EXIT_FAILED = 1
#: A check before anything ran failed (:class:`UsageError`): what the command exits with.
EXIT_USAGE = 2
#: Work remains: drained (SIGUSR1/2) or --deadline; requeue and --resume (DESIGN §15).
EXIT_WORK_REMAINS = 75


def default_workers() -> int:
    """The CPUs this job was given: the smallest of CPU affinity, ``SLURM_CPUS_PER_TASK`` and
    the cgroup CPU quota (see :mod:`gxo.pool.sizing`)."""
    from gxo.pool.sizing import default_workers as allocation

    return allocation().workers


class Outcome(msgspec.Struct, frozen=True):
    """What one run produced: its report and its final state (vars and registered values)."""

    report: ExecutionReport
    state: dict[str, Any]


def execute(playbook: Playbook, plan: Plan, options: RunOptions | None = None) -> Outcome:
    """Run a loaded playbook on a pool of worker processes; its report and final state.

    Ctrl-C, SIGTERM and SIGHUP (when called from the main thread) stop the run cleanly:
    nothing new starts, running instances get SIGTERM then SIGKILL after the grace period, and
    the report says ``interrupted``; its ``exit_code`` is 130, 143 or 129. SIGUSR1 and SIGUSR2
    drain it: nothing new starts, running instances finish, exit code 75 when work remains.

    Raises :class:`~gxo.errors.UsageError` (nothing ran) for a selection, resources or stream
    groups that cannot run as asked, or a journal another run holds.
    """
    options = options or RunOptions()
    from gxo.pool.sizing import default_workers as allocation

    sizing = None if options.workers else allocation()
    workers = options.workers or (sizing.workers if sizing is not None else 1)
    # Before anything is opened or started: a limit that cannot be enforced here is exit 2.
    # On Dask every node checks for itself when the run starts (gxo.executors.dask).
    limits = (None, "") if options.executor == "dask" else _check_limits(playbook)
    control, recorder = _run_control(playbook, plan, options, workers)
    try:
        with _fewer_collections():
            outcome = _execute(playbook, plan, options, control, recorder, workers, sizing, limits)
    except BaseException as exc:
        if recorder is not None:  # the journal's last line says what the command exits with
            recorder.close(EXIT_USAGE if isinstance(exc, UsageError) else EXIT_FAILED)
        raise
    if recorder is not None:
        recorder.close(outcome.report.exit_code)
    return outcome


#: The garbage collector's first threshold during a run (Python's default is 700).
GC_THRESHOLD = 10_000


@contextmanager
def _fewer_collections() -> Iterator[None]:
    """Run with the collector's youngest generation collected every 10,000 allocations, not
    every 700; the thresholds the process had are restored after the run.

    Each instance allocates a few dozen tracked objects in the parent (its records, messages,
    events, report entry) that live for a few loop iterations: at Python's default the
    collector ran ~40 times per 1,000 instances and promoted most of them to older
    generations, whose collections then walked them again (the loaded playbook too): 10-40 ms
    of a 2,000-task run, ~15 µs per task (benchmarks/README.md, "Parent per task, second
    pass"). Garbage cycles are collected as before, only in fewer, larger passes. A collector
    that is off, or set higher by the caller, is left as it is.
    """
    before = gc.get_threshold()
    if not gc.isenabled() or before[0] == 0 or before[0] >= GC_THRESHOLD:
        yield
        return
    gc.set_threshold(GC_THRESHOLD, *before[1:])
    try:
        yield
    finally:
        gc.set_threshold(*before)


def _execute(
    playbook: Playbook,
    plan: Plan,
    options: RunOptions,
    control: RunControl,
    recorder: JournalRecorder | None,
    workers: int,
    sizing: Sizing | None,
    limits: tuple[Enforcement | None, str],
) -> Outcome:
    # What the run holds until it ends, closed in reverse: the run directory's lock (then
    # `gxo clean` may remove the directory), the instance spool.
    with contextlib.ExitStack() as held:
        worker_setup = run_options.worker_setup(
            options, playbook, plan, functools.partial(_run_directory, options, held, control)
        )
        watch = _Watch.start(options)
        # The observer, behind HeldEvents: what ended is told after the dispatch it released.
        listener = watch.held
        if recorder is not None:
            recorder.inner = watch.held
            listener = recorder  # type: ignore[assignment]
        # Each instance's report entry goes to the run directory's spool as it ends, and the
        # state forgets finished loop iterations (issue 18: bounded parent memory).
        # Deferred: an entry is built after the dispatch its instance's end released (the
        # loop's housekeeping), not between a worker's result and that dispatch.
        # Kept: a small run's report takes the entries as they are, not read back and decoded.
        spooler = Spooler(InstanceSpool(worker_setup.run_dir), deferred=True, keep=True)
        held.callback(spooler.close)  # the report reads it back by name
        state = SchedulerState(
            playbook,
            plan,
            listener=listener,
            dry_run=options.dry_run,
            control=control,
            ended=spooler,
            release_finished=True,
            settle=watch.held.flush if watch.held is not None else None,
        )
        if recorder is not None:
            recorder.bind(state)
        if options.executor == "dask":
            return _execute_on_dask(
                playbook, state, options, worker_setup, watch, spooler, recorder
            )
        return _execute_locally(
            playbook,
            options,
            state,
            spooler,
            watch,
            recorder,
            worker_setup,
            workers,
            sizing,
            limits,
        )


def _execute_locally(
    playbook: Playbook,
    options: RunOptions,
    state: SchedulerState,
    spooler: Spooler,
    watch: _Watch,
    recorder: JournalRecorder | None,
    worker_setup: WorkerConfig,
    workers: int,
    sizing: Sizing | None,
    limits: tuple[Enforcement | None, str],
) -> Outcome:
    enforcement, enforced = limits
    observer, tracer = watch.observer, watch.tracer
    relay = options.logger.getChild("output") if options.logger is not None else output_log
    started_wall, started_mono = time.time(), time.monotonic()
    spooler.offset = started_wall - started_mono
    host = os.uname().nodename
    spooler.place = functools.partial(_place_locally, host=host)  # one Python call, not two
    size = _pool_size(state, workers, _max_parallel(playbook))
    ensure_open_files(size)  # before the start line: a refusal is all the run says
    if tracer is not None:
        tracer.start_run(playbook.name, len(playbook.tasks), size, options.dry_run)
    with _traced_logs(tracer):
        progress_log.info(
            "running %s (%d task%s) on %d worker process%s%s%s%s",
            playbook.name,
            len(playbook.tasks),
            "" if len(playbook.tasks) == 1 else "s",
            size,
            "" if size == 1 else "es",
            f" (--workers default: {sizing.decided_by})" if sizing is not None else "",
            " (dry run)" if options.dry_run else "",
            enforced,
        )

    def worker_lost(pid: int, reason: str, instance_id: int | None) -> None:
        assert observer is not None
        inst = state.instances.get(instance_id) if instance_id is not None else None
        observer.worker_lost(pid, reason, inst.label if inst is not None else "")

    with _catch_signals(options.grace) as signals:
        pool: ProcessPool | None = None
        try:
            with _traced_logs(tracer):
                if options.control is not None:
                    options.control._attach(signals)
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
                    enforcement=enforcement,
                )

                def begin() -> None:
                    if observer is not None:
                        observer.run_started(playbook, size, options.dry_run)
                    pool.start()

                # Told to exit, not waited for: the workers exit (their descendants' walk,
                # their guard's reap) while the report and the journal's last line are
                # written below; pool.close() reaps them after.
                _drive(
                    state,
                    pool,
                    playbook,
                    options,
                    watch,
                    spooler,
                    recorder,
                    signals,
                    begin=begin,
                    stop=pool.stop,
                )
                restarts = pool.restarts
            outcome = _finish(
                state,
                options,
                watch,
                (started_wall, started_mono),
                size,
                restarts,
                signals,
                spooler,
                lambda report: _executor_locally(report, host, size),
            )
            if recorder is not None:
                recorder.close(outcome.report.exit_code)  # execute()'s call is then a no-op
            return outcome
        finally:
            if pool is not None:
                pool.close()


def _drive(
    state: SchedulerState,
    executor: Executor,
    playbook: Playbook,
    options: RunOptions,
    watch: _Watch,
    spooler: Spooler,
    recorder: JournalRecorder | None,
    signals: _Signals,
    *,
    begin: Callable[[], None],
    stop: Callable[[], None],
) -> None:
    """The run on ``executor``, local or Dask: ``begin`` (it starts the executor and says
    the run started), the loop; then, however they ended, the run's control detached,
    ``stop`` (the executor told to stop), and the task lines still held logged (under the
    trace filter). If they raised, the events are closed without a report first."""
    try:
        begin()
        run_loop(
            state,
            executor,
            interrupts=signals,
            run_timeout=playbook.timeout,
            traceparent=watch.tracer.traceparent if watch.tracer is not None else None,
            housekeeping=_housekeeping(watch, spooler, recorder),
        )
    except BaseException:
        watch.close(None, options.events_drain)
        raise
    finally:
        if options.control is not None:
            options.control._attach(None)
        stop()
        watch.flush(options.events_drain)  # task lines logged under the trace filter


def _housekeeping(
    watch: _Watch, spooler: Spooler, recorder: JournalRecorder | None
) -> Callable[[], float | None]:
    """What the loop does after each dispatch, before it waits: the events held back
    (:class:`~gxo.scheduler.notify.HeldEvents`), the report entries of the instances that
    ended, then the journal's batch write when one is due (the seconds until the next one)."""
    held = watch.held.flush if watch.held is not None else None
    flush = spooler.flush
    tick = recorder.writer.tick if recorder is not None else None

    def housekeeping() -> float | None:
        if held is not None:
            held()
        flush()
        return tick() if tick is not None else None

    return housekeeping


def _check_limits(playbook: Playbook) -> tuple[Enforcement | None, str]:
    """At run start, on the machine that runs the tasks: how ``isolation: process`` limits
    are enforced here, and the start line's note (``; isolation: process by cgroup v1 ...``).

    Raises :class:`~gxo.pool.enforce.LimitsUnenforceable` (exit 2, nothing ran) for what
    cannot be enforced, unless every such task says ``limits_mode: best_effort`` (then a
    warning says what is not).
    """
    needed = _limits_needed(playbook)
    if needed is None:
        return None, ""
    from gxo.pool.enforce import choose_enforcement

    isolated = [t for t in playbook.tasks if t.isolation == "process"]
    enforcement, warnings = choose_enforcement(need_network=needed[0], strict=needed[1])
    for warning in warnings:
        log.warning("limits_mode: best_effort: %s", warning)
    count = len(isolated)
    return enforcement, (
        f"; isolation: process for {count} task{'s' if count != 1 else ''}, "
        f"enforced by {enforcement.describe()}"
    )


def _limits_needed(playbook: Playbook) -> tuple[bool, bool] | None:
    """For a node's check: (a task needs ``network: false``, a task is strict); None: no
    task is isolated."""
    isolated = [t for t in playbook.tasks if t.isolation == "process"]
    if not isolated:
        return None
    return (
        any(not t.network for t in isolated),
        any(t.limits_mode == "strict" for t in isolated),
    )


def _finish(
    state: SchedulerState,
    options: RunOptions,
    watch: _Watch,
    started: tuple[float, float],
    size: int,
    restarts: int,
    signals: _Signals,
    spooler: Spooler,
    place: Callable[[ExecutionReport], None],
    executor_lost: str = "",
) -> Outcome:
    """The report of a finished run (``started``: wall and monotonic times), its last event.

    ``place`` adds where things ran (the executor section: each attempt's host and worker
    were written with it, to the spool);
    ``executor_lost`` is the address of a Dask scheduler whose connection was lost (exit 75).
    """
    exit_code = _exit_code(state, signals.last)
    if executor_lost and exit_code == EXIT_FAILED and not state.failed:
        exit_code = EXIT_WORK_REMAINS
    report = build_report(
        state,
        run_id=options.run_id,
        started_wall=started[0],
        started_mono=started[1],
        ended_mono=time.monotonic(),
        workers=size,
        worker_restarts=restarts,
        exit_code=exit_code,
        spooler=spooler,
    )
    place(report)
    if executor_lost:
        report.error = (
            f"lost the connection to the Dask scheduler {executor_lost}: the run was stopped; "
            "run again with --resume once the cluster is back"
        )
    tracer = watch.tracer
    ids = tracer.log_ids(None) if tracer is not None else None
    if ids is not None:  # the run's span: what later records (the CLI's summary) carry
        report.trace_id, report.span_id = ids
    if watch.observer is not None:
        watch.observer.run_finished(report)
    watch.close(report, options.events_drain)
    return Outcome(report, state.store)


def _execute_on_dask(
    playbook: Playbook,
    state: SchedulerState,
    options: RunOptions,
    setup: WorkerConfig,
    watch: _Watch,
    spooler: Spooler,
    recorder: JournalRecorder | None = None,
) -> Outcome:
    """The same run on a Dask cluster: the scheduler, the state and the report stay here; a
    gxo pool on each Dask worker runs the instances (DESIGN §12)."""
    from gxo.executors.dask import dask_logging

    if options.partial.resources:
        log.warning(
            "--resource is not used on Dask: the Dask workers declare the resources tasks ask "
            "for (dask worker --resources, or the Dask setting distributed.worker.resources)"
        )
    with dask_logging(debug=logging.getLogger("gxo").isEnabledFor(logging.DEBUG)) as hush:
        return _run_on_dask(playbook, state, options, setup, watch, spooler, recorder, hush)


def _run_on_dask(
    playbook: Playbook,
    state: SchedulerState,
    options: RunOptions,
    setup: WorkerConfig,
    watch: _Watch,
    spooler: Spooler,
    recorder: JournalRecorder | None,
    hush: Callable[[], None],
) -> Outcome:
    """``_execute_on_dask`` with Dask's logging quietened (``hush``: see ``dask_logging``)."""
    from gxo.executors.dask import DaskExecutor, connect, dashboard_text, dask_resources
    from gxo.executors.settings import DaskSettings

    started = time.time(), time.monotonic()
    spooler.offset = started[0] - started[1]
    relay = options.logger.getChild("output") if options.logger is not None else output_log
    client, cluster = connect(options.dask or DaskSettings())
    address = str(client.scheduler.address)
    executor: DaskExecutor | None = None
    try:
        with _catch_signals(options.grace) as signals, _traced_logs(watch.tracer):
            if options.control is not None:
                options.control._attach(signals)
            executor = DaskExecutor(
                client,
                setup,
                {t.name: t.timeout for t in playbook.tasks},
                {t.name: dask_resources(t.resources) for t in playbook.tasks if t.resources},
                wakeup_fd=signals.wakeup_fd,
                grace=options.grace,
                run_id=options.run_id,
                on_output=lambda iid, line: _relay_output(state, iid, line, relay),
                on_scheduler_lost=lambda: _stop_for_lost_scheduler(hush, signals),
                on_load=watch.observer.workers_busy if watch.observer is not None else None,
            )
            spooler.place = executor.place_entry

            def begin() -> None:
                assert executor is not None
                source = playbook.source
                executor.start(
                    playbook_dir=os.path.dirname(os.path.abspath(source))
                    if source[:1] != "<"
                    else "",
                    largest_group=max((len(g) for g in state.groups.values()), default=0),
                    limits=_limits_needed(playbook),
                )
                nodes = len(client.nthreads())
                progress_log.info(
                    "running %s (%d task%s) on Dask at %s: %d slot%s on %d worker%s%s%s",
                    playbook.name,
                    len(playbook.tasks),
                    "" if len(playbook.tasks) == 1 else "s",
                    client.scheduler.address,
                    executor.size,
                    "" if executor.size == 1 else "s",
                    nodes,
                    "" if nodes == 1 else "s",
                    dashboard_text(client),
                    " (dry run)" if options.dry_run else "",
                )
                if watch.tracer is not None:
                    watch.tracer.start_run(
                        playbook.name, len(playbook.tasks), executor.size, options.dry_run
                    )
                if watch.observer is not None:
                    watch.observer.run_started(playbook, executor.size, options.dry_run)
                    watch.observer.workers_busy(sorted(executor.loads.values()))

            _drive(
                state,
                executor,
                playbook,
                options,
                watch,
                spooler,
                recorder,
                signals,
                begin=begin,
                stop=executor.close,
            )
    finally:
        _close_client(client, lost=executor is not None and bool(executor.scheduler_lost))
        if cluster is not None:
            _close_cluster(cluster)
    assert executor is not None  # else its construction raised
    return _finish(
        state,
        options,
        watch,
        started,
        executor.size,
        executor.restarts,
        signals,
        spooler,
        lambda report: _executor_on_dask(report, executor, address),
        executor_lost=executor.scheduler_lost,
    )


def _stop_for_lost_scheduler(hush: Callable[[], None], signals: _Signals) -> None:
    """Stop like SIGTERM, without a signal number (the exit code is 75: work remains), and
    leave Dask's reconnect errors unshown: gxo has said what happened."""
    hush()
    signals.interrupt(0)


def _close_client(client: Any, *, lost: bool) -> None:
    """Close the Dask client; after a lost scheduler, without waiting for it to come back."""
    if lost:
        # Closing interrupts the client's attempts to reconnect (logged as errors with
        # tracebacks unless hushed, as _execute_on_dask does).
        with contextlib.suppress(Exception):
            client.close(timeout=2)
        return
    client.close()


def _place_locally(entry: InstanceReport, host: str) -> None:
    """A local run: every attempt that started ran on this host."""
    for attempt in entry.attempts:
        if attempt.start_time is not None:
            attempt.host = host


def _executor_locally(report: ExecutionReport, host: str, size: int) -> None:
    """A local run: one executor worker, this machine, ``size`` slots."""
    from gxo.report import ExecutorReport, ExecutorWorker

    report.executor = ExecutorReport(
        kind="local", workers=[ExecutorWorker(address="", host=host, slots=size)]
    )


def _executor_on_dask(report: ExecutionReport, executor: Any, address: str) -> None:
    """A Dask run: the scheduler and each Dask worker's slots (each attempt's node and worker
    were written to the spool as its instance ended: ``DaskExecutor.place_entry``)."""
    from gxo.report import ExecutorReport, ExecutorWorker

    report.executor = ExecutorReport(
        kind="dask",
        scheduler=address,
        workers=[
            ExecutorWorker(address=load.address, host=load.host, slots=load.slots)
            for load in sorted(executor.loads.values())
        ],
    )


def _close_cluster(cluster: Any) -> None:
    """Stop the cluster gxo started. A cluster that cannot be stopped cleanly (dask-jobqueue's
    jobs never submitted: no ``sbatch`` on PATH) is said as a warning, so its error does not
    replace what ended the run (the usage error that no worker connected)."""
    try:
        cluster.close()
    except Exception as exc:  # noqa: BLE001 - whatever Dask raises, the run's outcome stands
        log.warning("the Dask cluster gxo started did not stop cleanly: %r", exc)


def _exit_code(state: SchedulerState, signum: int) -> int:
    """128+N for a stopping signal; 1 for a failure; 75 when a drain left work; else 0."""
    if signum:
        return 128 + signum
    if state.failed:
        return EXIT_FAILED
    if state.work_left and state.stoppable:  # drained, not stopped (run timeout) after it
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
    from gxo.dag.groups import stream_groups
    from gxo.scheduler.partial import check_capacity

    partial = options.partial
    if partial.force:
        from gxo.dag.select import check_forced

        check_forced(partial.force, plan.graph)
    on_dask = options.executor == "dask"
    if not on_dask:
        # On Dask, stream groups and resources are checked against the cluster's workers at
        # run start (the executor), and Dask places each instance where its resources are.
        check_capacity(
            playbook,
            stream_groups(plan.graph),
            workers,
            oversubscribe=partial.oversubscribe,
            capacity=partial.resources,
        )
    accounting = not on_dask and (
        bool(partial.resources)
        or any(t.cpus > 1 or len(t.resources) > ("cpus" in t.resources) for t in playbook.tasks)
    )
    control = RunControl(
        fail_fast=partial.fail_fast or partial.fail_fast_kill,
        fail_fast_kill=partial.fail_fast_kill,
        grace=options.grace,
        slots=workers,
        capacity=dict(partial.resources),
        accounting=accounting,
    )
    if partial.deadline is not None:
        control.deadline = time.monotonic() + (partial.deadline - time.time())
    recorder = None if options.dry_run else _open_journal(playbook, plan, options, control)
    if partial.selects:
        from gxo.dag.select import select_tasks  # only a partial run selects

        restorable: set[str] = set()
        if control.resumer is not None:
            resumer = control.resumer
            restorable = {t.name for t in playbook.tasks if resumer.restorable(t) is not None}
        try:
            control.selection = select_tasks(
                playbook,
                plan.graph,
                targets=partial.targets,
                tags=partial.tags,
                skip=partial.skip,
                skip_tags=partial.skip_tags,
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
    from gxo.journal import Fingerprinter, JournalWriter, default_state_dir, journal_path
    from gxo.scheduler.journaling import JournalRecorder

    partial = options.partial
    is_file = not playbook.source.startswith("<")
    wanted = partial.resume or partial.journal is not None
    if not (partial.journal_enabled or wanted):
        return None
    if partial.journal is None and not is_file:
        # Only a library call gets here (the command always has a file): a playbook given
        # as text or a mapping has no path to name its default journal after.
        unnamed = (
            "a playbook given as text or a mapping has no default journal (it is named "
            "after the playbook's file): give PartialRun(journal=PATH), or the playbook's path"
        )
        if partial.resume:
            raise UsageError(f"resume needs a journal, and {unnamed}")
        log.warning("journal_enabled: %s; running without a journal", unnamed)
        return None
    path = (
        Path(partial.journal)
        if partial.journal is not None
        else journal_path(playbook.source, default_state_dir(options.state_dir))
    )
    base_dir = os.path.dirname(os.path.abspath(playbook.source)) if is_file else ""
    fingerprinter = Fingerprinter(plan, base_dir=base_dir, checksum=partial.checksum)
    control.fingerprinter = fingerprinter
    if partial.resume or partial.deadline is not None:
        from gxo.journal import JournalIndex, read_journal  # resume: only when it is asked for

        control.index = JournalIndex(read_journal(path).entries)
    if partial.resume:
        from gxo.journal import JournalIndex, Resumer

        index = control.index or JournalIndex()
        control.resumer = Resumer(index, fingerprinter, force=partial.force)
    writer = JournalWriter(path, run_id=options.run_id)
    try:
        writer.open()
    except OSError as exc:
        if wanted:
            raise UsageError(f"cannot write the journal {path}: {exc.strerror or exc}") from None
        state = state_dir(options.state_dir)
        unusable = _unwritable(state) if partial.journal is None else None
        if unusable is not None:
            # The run directory, under it too, will fail the same way: one warning for both
            # (DESIGN §15: "warns once and runs without logs and journal").
            control.state_dir_unwritable = True
            log.warning(
                "cannot write the state directory %s (%s): running without a journal (so "
                "--resume cannot reuse this run's work) and without output logs; choose "
                "another place with --state-dir or GXO_STATE_DIR",
                state,
                unusable,
            )
        else:
            log.warning(
                "cannot write the journal %s (%s): running without it, so --resume cannot "
                "reuse this run's work; choose another place with --state-dir or "
                "GXO_STATE_DIR, or --journal FILE",
                path,
                exc.strerror or exc,
            )
        control.fingerprinter = None
        return None
    return JournalRecorder(writer, control, options.run_id, playbook.source)


class _Watch(msgspec.Struct):
    """Who watches the run: the observer that emits its events, and the tracer (itself a
    subscriber of the bus, plus the trace context of each dispatch)."""

    bus: EventBus | None
    observer: RunObserver | None
    tracer: RunTracer | None
    unsubscribe: Callable[[], None] | None
    #: The state's listener in front of ``observer`` (None without one).
    held: HeldEvents | None = None

    @classmethod
    def start(cls, options: RunOptions) -> _Watch:
        bus, tracer, unsubscribe = options.events, None, None
        if options.tracer_provider is not None:
            from gxo.observability.tracing import RunTracer

            tracer = RunTracer(options.tracer_provider, options.run_id)
            bus = bus if bus is not None else EventBus()
            unsubscribe = bus.subscribe(tracer, name="tracing")
        observer = RunObserver(bus, options.run_id) if bus is not None and bus.active else None
        held = HeldEvents(observer) if observer is not None else None
        return cls(bus, observer, tracer, unsubscribe, held)

    def flush(self, drain: float) -> None:
        """Deliver the events emitted so far (the bus hands them over every few ms)."""
        if self.held is not None:
            self.held.flush()
        if self.bus is not None:
            self.bus.flush(drain)

    def close(self, report: ExecutionReport | None, drain: float) -> None:
        """Deliver the queued events, then end the spans the events did not end."""
        if self.held is not None:
            self.held.flush()
        if self.bus is not None:
            self.bus.close(drain)
        if self.tracer is not None and self.unsubscribe is not None:
            self.unsubscribe()
            self.tracer.close(report)


def _unwritable(directory: Path) -> str | None:
    """Why files cannot be made in ``directory`` (created if missing), or None if they can."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        return "Not a directory"  # a file in its place
    except OSError as exc:
        return exc.strerror or str(exc)
    if not os.access(directory, os.W_OK | os.X_OK):
        return "Permission denied"
    return None


def _run_directory(options: RunOptions, held: contextlib.ExitStack, control: RunControl) -> str:
    """Create this run's directory for attempt logs and hold its lock (its descriptor is
    closed by ``held`` when the run ends); warn once and return "" if it cannot be written
    (silently when the journal found the whole state directory unwritable and said so)."""
    if control.state_dir_unwritable:
        return ""
    path = run_dir(state_dir(options.state_dir), options.run_id)
    try:
        held.callback(os.close, hold_run_dir(path))
    except BlockingIOError:
        # Its lock is held: a run going on with the same id (only a library caller chooses
        # one, gxo.run(run_id=...)); "cannot write (Resource temporarily unavailable)" said
        # nothing of that.
        log.warning(
            "the run directory %s is in use by another run with the same run id %r: running "
            "without output logs; give each run its own run_id",
            path,
            options.run_id,
        )
        return ""
    except OSError as exc:
        log.warning(
            "cannot write the run directory %s (%s): running without output logs; "
            "choose another place with --state-dir or GXO_STATE_DIR",
            path,
            exc.strerror or exc,
        )
        return ""
    return str(path.resolve())


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
    label = (state.label_of(instance_id) if instance_id is not None else None) or "worker"
    prefix = f"{label} | "
    out.info("%s", prefix + line.replace("\n", "\n" + prefix), extra={"gxo_task": label})


#: The signals that stop a run gracefully (TERM -> grace -> KILL; exit 128+N). SIGHUP (the
#: terminal closed, the ssh connection dropped) is treated like SIGTERM: a report is still
#: worth writing.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
#: Signals that drain a run (start nothing new, let running instances finish; exit 75).
_DRAIN_SIGNALS = DRAIN_SIGNALS
#: Stop signals that stay ignored when gxo starts with them ignored, as make leaves them:
#: ``nohup`` ignores SIGHUP so the run outlives the terminal, and a shell starts a script's
#: background job with SIGINT ignored so a Ctrl-C meant for the foreground does not stop it.
_KEPT_IGNORED = (signal.SIGHUP, signal.SIGINT)


#: What each stop signal usually means, and what a second one does, in words that are true
#: where it comes from (only a terminal has a Ctrl-C; a batch system sends SIGTERM).
_SIGNAL_WORDS: dict[signal.Signals, tuple[str, str]] = {
    signal.SIGINT: ("interrupted", "press Ctrl-C again to kill them at once"),
    signal.SIGTERM: ("asked to terminate", "a second SIGTERM or SIGINT kills them at once"),
    signal.SIGHUP: (
        "the terminal or connection was closed",
        "a second signal kills them at once",
    ),
}


class _Signals:
    """Counts SIGINT/SIGTERM/SIGHUP (and cancellations), notes SIGUSR1/2, and wakes the
    scheduler through a pipe."""

    def __init__(self, grace: float = 5.0) -> None:
        self.count = 0
        self.last = 0
        self.grace = grace
        self.drain = False
        self.wakeup_fd: int | None = None
        #: The pipe's write end: a byte there wakes the loop (a handler, or another thread).
        self.write_fd: int | None = None

    def interrupt(self, signum: int) -> None:
        """What a signal does, from any thread (a run handle's ``cancel()``)."""
        self.count += 1
        self.last = signum
        # Not interrupt_renders(): its flag is the process's, and other runs may share it
        # (several gxo.start handles); a render in progress ends within its budget anyway.
        self.wake()

    def wake(self) -> None:
        """Wake the scheduler's loop from any thread (a signal wakes it by itself)."""
        if self.write_fd is not None:
            with contextlib.suppress(OSError):  # full or closed: the loop is awake or gone
                os.write(self.write_fd, b"\0")

    def drain_handler(self, signum: int, frame: FrameType | None) -> None:
        self.drain_now(
            f"received {signal.Signals(signum).name}",
            "then gxo exits 75 if work remains: run again with --resume",
        )

    def drain_now(
        self,
        why: str,
        then: str = "then the exit code is 75 if work remains: run again with a journal "
        "and PartialRun(resume=True)",
    ) -> None:
        """Drain the run, from any thread (a signal handler, a run handle's ``drain()``):
        the loop is woken to see it (a signal wakes it by itself; another thread does not)."""
        if not self.drain:
            log.warning(
                "%s: draining (nothing new starts; running tasks finish, %s)",
                why,
                then,
            )
        self.drain = True
        self.wake()

    def handler(self, signum: int, frame: FrameType | None) -> None:
        self.count += 1
        self.last = signum
        interrupt_renders()  # a `when`/`loop` being rendered stops now, not at its deadline
        sig = signal.Signals(signum)
        name = sig.name
        if self.count == 1:
            meaning, again = _SIGNAL_WORDS.get(sig, ("stopping", "a second signal kills"))
            log.warning(
                "received %s (%s): stopping: no new task starts, running tasks get SIGTERM, "
                "then SIGKILL after %gs; %s",
                name,
                meaning,
                self.grace,
                again,
            )
        elif self.count == 2:
            log.warning("received %s again: killing running tasks now", name)


@contextmanager
def _traced_logs(tracer: RunTracer | None) -> Iterator[None]:
    """With tracing on, records gxo logs carry ``trace_id`` and ``span_id`` for the run (the
    instance's span for records about one) at every handler they reach: the ``gxo`` logger's
    and, as records propagate, its ancestors' up to the root (a library caller's
    ``logging.basicConfig`` handler sits only there)."""
    if tracer is None:
        yield
        return
    from gxo.observability.logging import TraceLogFilter

    trace_filter = TraceLogFilter(tracer.log_ids)
    handlers: list[logging.Handler] = []
    logger: logging.Logger | None = log
    while logger is not None:
        handlers += [h for h in logger.handlers if h not in handlers]
        logger = logger.parent if logger.propagate else None
    for handler in handlers:
        handler.addFilter(trace_filter)
    try:
        yield
    finally:
        for handler in handlers:
            handler.removeFilter(trace_filter)


@contextmanager
def _catch_signals(grace: float = 5.0) -> Iterator[_Signals]:
    signals = _Signals(grace)
    allow_renders()  # a signal to an earlier run of this process does not stop this one
    read_fd, write_fd = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    signals.wakeup_fd, signals.write_fd = read_fd, write_fd
    if threading.current_thread() is not threading.main_thread():
        try:  # signal handlers can only be installed from the main thread
            yield signals
        finally:
            signals.write_fd = None
            os.close(read_fd)
            os.close(write_fd)
        return
    previous = {sig: signal.getsignal(sig) for sig in (*STOP_SIGNALS, *_DRAIN_SIGNALS)}
    old_wakeup = signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
    try:
        for sig in STOP_SIGNALS:
            if sig in _KEPT_IGNORED and previous[sig] is signal.SIG_IGN:
                continue  # `nohup gxo ...`, a script's background job: it stays ignored
            signal.signal(sig, signals.handler)
        for sig in _DRAIN_SIGNALS:
            signal.signal(sig, signals.drain_handler)
        early = take_pending()  # a drain signal the gxo command kept before the run
        if early is not None:
            signals.drain_handler(early, None)
        yield signals
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        signal.set_wakeup_fd(old_wakeup)
        signals.write_fd = None
        os.close(read_fd)
        os.close(write_fd)
