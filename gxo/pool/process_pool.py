"""The pool of worker processes, seen from the parent.

::

    scheduler loop ── submit(Run) ──► _Worker.control (AF_UNIX socketpair) ──► worker_main
          ▲                                                                       │
          └── wait(timeout) ◄── selector: control sockets (Done frames),         │
                                console sockets (stdout/stderr lines),  ◄────────┘
                                process sentinels (death), wake-up fd (signals)

``wait`` is the only place the parent blocks, and it wakes on any of those at once (the
pattern of CPython's ``concurrent.futures.process``): a worker that dies in any way is seen
through its sentinel, never by a read that hangs. A death is pinned on the instance whose id
the worker wrote in its acknowledgement slot (shared memory) before starting it; instances
sent to it that never started are handed back to be dispatched elsewhere. A dead worker is
replaced at once.

A worker runs the instances it is sent in order, so the pool knows when each one starts
without being told: at once when sent to an idle worker, otherwise when the result of the
one before it arrives. Those are the ``Started`` events; the result itself carries the exact
start time.

Killing an instance (timeout, interrupt) is a ladder that never blocks the loop: SIGTERM to the
worker's session at once, SIGKILL when the grace period ends, both driven by ``wait``.

``isolation: process`` (a :class:`~gxo.wire.Run` with ``isolated`` limits): the attempt gets a
worker of its own, forked from the same forkserver, put into its cgroup (or watched) before it
is sent the run, and retired after it. It borrows the slot of an idle pooled worker for its
lifetime, so ``workers`` still bounds how many instances run at once. ``wait`` looks at its
process tree when a look is due (every :data:`~gxo.pool.enforce.WATCH_INTERVAL` when the
watch enforces a limit, :data:`~gxo.pool.enforce.PEAK_INTERVAL` otherwise) and kills the tree
at once when it breaks a limit (:mod:`gxo.pool.enforce`).
"""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import socket
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import msgspec

from gxo._util.fds import drain
from gxo.errors import InternalError
from gxo.outputs import command_facts
from gxo.pool.capture import command_from_files, outputs_from_files
from gxo.pool.entry import launch, launch_forked, take_ahead
from gxo.pool.executor import ExecutorEvent, Finished, Lost, Returned, Started, submit_with_pipes
from gxo.pool.helpers import (
    DEFAULT_START_METHOD,
    adopt_forked,
    forkserver_preload,
    main_module_hidden,
    pool_closed,
    prestart,
    start_tracker,
    stop_helpers,
)
from gxo.pool.openfiles import ensure_open_files
from gxo.pool.relay import (
    DEFAULT_LOG_RATE,
    LINE_LIMIT,
    NOTICE_PREFIX,
    RateLimit,
    dropped_notice,
)
from gxo.pool.session import guard_sessions, guards_of, kill_session, signal_processes
from gxo.pool.slot import AckSlot
from gxo.reasons import format_reason
from gxo.wire import (
    CONSOLE_MARK,
    Done,
    FrameReader,
    FrameWriter,
    ResolveSecrets,
    Run,
    SecretsFound,
    SecretsKnown,
    SecretsResolved,
    Stop,
    ToParent,
    TruncatedFrame,
    WorkerConfig,
)

if TYPE_CHECKING:
    from multiprocessing.context import BaseContext
    from multiprocessing.process import BaseProcess

    # Only for ``isolation: process``, imported by the code that enforces it.
    from gxo.pool.enforce import AttemptLimits, Enforcement
    from gxo.pool.entry import WorkerProcess

__all__ = ["DEFAULT_START_METHOD", "ProcessPool", "prestart", "start_tracker", "stop_helpers"]

_CONSOLE_TAIL = 20
#: Bytes asked for per ``recv``: below glibc's mmap threshold (128 KiB). Python allocates the
#: whole size and then shrinks it to what came: at 256 KiB every read of a 200-byte result
#: cost an ``mmap``, an ``mremap`` and a ``munmap`` (~20 µs, on a chain's critical path);
#: at 64 KiB it comes from the heap (~3 µs). A larger message takes a few reads.
_RECV_SIZE = 1 << 16
#: The longest mark of an instance's output (``gxo.wire.console_mark``): its prefix, 20 digits
#: and the NUL.
_MARK_SIZE = len(CONSOLE_MARK) + 21


class _Worker(msgspec.Struct, eq=False):
    process: WorkerProcess
    slot: AckSlot
    control: socket.socket
    console: socket.socket
    reader: FrameReader
    #: Secrets messages to the worker (``ResolveSecrets``, ``SecretsKnown``): a channel of
    #: their own, read by a thread of the worker even while it runs a module, while
    #: ``control`` (runs, stop) is read by its main thread only when idle.
    notices: socket.socket
    #: Instances sent, in the order the worker runs them; the first one is running.
    inflight: deque[Run] = msgspec.field(default_factory=deque)
    #: The instance reported Started and not yet finished.
    running: int | None = None
    #: Instances submitted but not yet written to the socket (see ``ProcessPool.flush``).
    outbox: list[Run] = msgspec.field(default_factory=list)
    #: Stream pipe ends to send with the outbox (SCM_RIGHTS), owned by the pool until sent.
    outfds: list[int] = msgspec.field(default_factory=list)
    kill_reason: str = ""
    #: Why it was killed, when the pool killed it itself (not a timeout or an interrupt).
    kill_detail: str = ""
    kill_deadline: float | None = None
    #: Everything signalled when the stop began; SIGKILLed at the end of the grace period
    #: even if it was re-parented away from the worker by then.
    kill_targets: set[int] = msgspec.field(default_factory=set)
    #: The worker's guard (gxo's own, stopped with it): not counted as a process killed.
    guards: set[int] = msgspec.field(default_factory=set)
    console_open: bool = True
    console_partial: bytes = b""
    #: The instance whose output the console carries now: the last mark read from it (see
    #: ``gxo.wire.CONSOLE_MARK``), which ``running`` is not (the socket is read apart from
    #: the control socket, and the worker starts its next instance as soon as it sent a
    #: result); None once that instance's result is read (what comes next, without a mark,
    #: is the worker's own, between instances).
    console_instance: int | None = None
    console_tail: deque[str] = msgspec.field(default_factory=lambda: deque(maxlen=_CONSOLE_TAIL))
    #: The last lines ``console_instance`` printed, for the error of a death it causes.
    instance_tail: list[str] = msgspec.field(default_factory=list)
    relay_limit: RateLimit = msgspec.field(default_factory=lambda: RateLimit(DEFAULT_LOG_RATE))
    #: ``isolation: process``: started for one attempt and retired after it.
    oneshot: bool = False
    #: A pooled worker whose slot a one-shot worker is using (it takes no work meanwhile).
    lent: bool = False
    lender: _Worker | None = None
    #: The one-shot attempt's cgroup, watch and peaks.
    limits: AttemptLimits | None = None
    #: A one-shot worker started ahead of its attempt, waiting for it (``ProcessPool._spares``).
    spare: bool = False
    #: How many secret names learnt during the run it was started with.
    secrets_seen: int = 0
    #: The process's pid, read once (``process.pid`` is two Python calls, and every
    #: ``Started`` event names it).
    pid: int = 0

    @property
    def takes_work(self) -> bool:
        return not (self.kill_reason or self.oneshot or self.lent)


OutputHandler = Callable[[int | None, str], None]
#: Called with (pid, reason, instance id or None) when a worker dies during the run.
WorkerLostHandler = Callable[[int, str, int | None], None]


class ProcessPool:
    """N worker processes that run task instances: the local :class:`~gxo.pool.Executor`.

    Args:
        workers: how many processes.
        start_method: ``forkserver`` (default), ``spawn`` or ``fork``.
        wakeup_fd: a file descriptor that, when readable, makes ``wait`` return early
            (the engine's signal wake-up pipe).
        grace: seconds between SIGTERM and SIGKILL when an instance is stopped.
        on_output: called with (instance id or None, lines) for what a worker printed: the
            lines of one read, ``\n``-separated (batched, so a flood costs one call a read).
        worker_config: given to every worker when it starts (secret provider and names,
            log level; never a secret value).
        on_worker_started: called with the pid of each worker started (replacements too).
        on_worker_lost: called with (pid, reason, instance id or None) when a worker dies
            during the run (not when the pool closes).
        log_rate: lines a second relayed from each worker to ``on_output`` (0: no limit);
            the rest are counted and reported when the instance ends (``gxo.pool.relay``).
    """

    def __init__(
        self,
        workers: int,
        *,
        start_method: str = DEFAULT_START_METHOD,
        wakeup_fd: int | None = None,
        grace: float = 5.0,
        on_output: OutputHandler | None = None,
        worker_config: WorkerConfig | None = None,
        on_worker_started: Callable[[int], None] | None = None,
        on_worker_lost: WorkerLostHandler | None = None,
        log_rate: float = DEFAULT_LOG_RATE,
        enforcement: Enforcement | None = None,
    ) -> None:
        if workers < 1:
            raise ValueError("a pool needs at least one worker")
        self.size = workers
        self.grace = grace
        self._start_method = start_method
        #: multiprocessing's context, imported when the pool first starts a process through
        #: it (:attr:`_context`): a pool whose one worker the gxo command started ahead
        #: without multiprocessing never imports it.
        self._mp_context: BaseContext | None = None
        self._selector = selectors.DefaultSelector()
        self._workers: list[_Worker] = []
        self._by_instance: dict[int, _Worker] = {}
        self._writer = FrameWriter()
        self._on_output = on_output
        self._worker_config = worker_config
        self._on_worker_started = on_worker_started
        self._on_worker_lost = on_worker_lost
        self._log_rate = log_rate
        #: How ``isolation: process`` limits are enforced (chosen at the first such attempt
        #: when the caller did not check at run start, as on a Dask node).
        self._enforcement = enforcement
        #: The guard of every one-shot worker's session (started with the first one): the
        #: process, and the channel that tells it which sessions are live.
        self._session_guard: tuple[BaseProcess, socket.socket] | None = None
        #: Fresh one-shot workers started ahead, each waiting for the next ``isolation:
        #: process`` attempt (see :meth:`_refill_spares`), and how many such attempts came.
        self._spares: list[_Worker] = []
        #: Spares told to exit unused (started before a secret name was learnt), not reaped yet.
        self._retired: list[_Worker] = []
        self._isolated_seen = 0
        self._deaths_without_progress = 0
        self._cancel_on_start: dict[int, str] = {}
        self._events: list[ExecutorEvent] = []
        self._dirty: list[_Worker] = []
        self._closed = False
        #: Set by :meth:`stop`: every worker has been told to exit (or killed).
        self._stopped = False
        self.restarts = 0
        #: Set by :meth:`wind_down`: the run starts nothing new, dead workers stay dead.
        self._winding_down = False
        #: Secret names announced during the run (ordered), given to workers started later.
        self._late_secrets: dict[str, None] = {}
        #: Announcement number -> (the worker waiting, the workers yet to resolve the names).
        self._announcements: dict[int, tuple[_Worker, set[_Worker]]] = {}
        self._secret_seq = 0
        if wakeup_fd is not None:
            self._selector.register(wakeup_fd, selectors.EVENT_READ, ("wakeup", None))

    @property
    def _context(self) -> BaseContext:
        """multiprocessing's context of the pool's start method, imported and set up once:
        the forkserver the gxo command forked is handed to it, its preload set, and the
        resource tracker started (before any worker starts it, so that it outlives a
        SIGHUP)."""
        if self._mp_context is None:
            import multiprocessing

            context = multiprocessing.get_context(self._start_method)
            if self._start_method == "forkserver":
                adopt_forked()
                # Preloads gxo.pool.worker, and makes the forkserver outlive a job-wide SIGTERM.
                context.set_forkserver_preload(forkserver_preload())
            start_tracker()
            self._mp_context = context
        return self._mp_context

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Start every worker (they import gxo and wait for work)."""
        ensure_open_files(self.size)
        for _ in range(self.size):
            self._workers.append(self._spawn())

    def grow(self, count: int) -> None:
        """Start ``count`` more workers (a stream group larger than the pool needs them)."""
        ensure_open_files(self.size + count)
        for _ in range(count):
            self._workers.append(self._spawn())
        self.size += count

    def stop(self) -> None:
        """Ask idle workers to stop and kill the rest, without waiting for them to exit:
        :meth:`close` reaps them. The caller finishes its report meanwhile (a worker's exit,
        its descendants' walk and its guard's reap, takes a few milliseconds). Nothing may
        be submitted after it. Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        self._workers += self._spares + self._retired  # idle: stopped like any idle worker
        self._spares, self._retired = [], []
        for worker in self._workers:
            if worker.inflight:
                kill_session(worker.pid, signal.SIGKILL, spare_guards=True)
            else:
                self._send(worker, Stop())

    def close(self, timeout: float = 5.0) -> None:
        """Stop every worker (:meth:`stop`, if not done yet) and reap every process; then,
        when this process's helpers serve a single pool (:func:`~gxo.pool.helpers.prestart`
        with ``single_pool``), tell the forkserver to exit. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self.stop()
        deadline = time.monotonic() + timeout
        for worker in self._workers:
            worker.process.join(max(0.0, deadline - time.monotonic()))
            if worker.process.exitcode is None:
                kill_session(worker.pid, signal.SIGKILL, spare_guards=True)
                worker.process.join()
            if worker.limits is not None:
                worker.limits.close()
            if worker.oneshot:
                self._guard_session(b"-", worker.pid)  # reaped: its pid may be reused
            self._discard(worker)
        self._workers.clear()
        if self._session_guard is not None:
            guard, channel = self._session_guard
            self._session_guard = None
            channel.close()  # every attempt is over: the guard exits on end-of-file
            guard.join(max(0.0, deadline - time.monotonic()))
            if guard.exitcode is None:
                guard.kill()
                guard.join()
            guard.close()
        self._selector.close()
        if self._start_method == "forkserver":
            pool_closed()  # the forkserver's exit overlaps the caller's last steps

    def __enter__(self) -> ProcessPool:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- dispatch ----------------------------------------------------------------------------

    def free_slots(self, *, queue_behind: bool = False, depth: int = 2) -> int:
        """How many instances ``submit`` would accept now.

        Without ``queue_behind`` only idle workers count. With it, a worker at or below half
        of ``depth`` is refilled up to ``depth`` in one go, so sends are batched (one syscall
        and one wake-up of the worker for several instances) instead of one per instance.
        """
        free = 0  # plain loops (no generator, no property): asked twice per dispatch
        if not queue_behind:
            for w in self._workers:
                if not w.inflight and not (w.kill_reason or w.oneshot or w.lent):
                    free += 1
            return free
        low_water = depth // 2
        for w in self._workers:
            queued = len(w.inflight)
            if queued <= low_water and not (w.kill_reason or w.oneshot or w.lent):
                free += depth - queued
        return free

    def submit(
        self,
        run: Run,
        *,
        queue_behind: bool = False,
        depth: int = 2,
        fds: Sequence[int] = (),
    ) -> bool:
        """Queue ``run`` for the least-loaded worker; False when none can take it.

        With ``queue_behind`` the instance may wait behind up to ``depth - 1`` others on a busy
        worker (worth it for short tasks: the worker starts it without a round trip);
        otherwise it only goes to an idle worker. Nothing is written until :meth:`flush`.

        ``fds`` (stream pipe ends, as the run's ``inputs`` and ``outputs`` list them) travel
        with the run over the control socket (``SCM_RIGHTS``); the pool owns them from now on
        and closes its copies once they are sent (or when no worker can take the run).
        """
        if run.isolated is not None:
            return self._submit_isolated(run, fds)
        limit = depth if queue_behind else 1
        best: _Worker | None = None
        for worker in self._workers:  # ``takes_work`` inlined: once per worker per instance
            queued = len(worker.inflight)
            if queued >= limit or worker.kill_reason or worker.oneshot or worker.lent:
                continue
            if best is None or queued < len(best.inflight):
                best = worker
                if not queued:
                    break
        if best is None:
            _close_all(fds)
            return False
        best.outfds.extend(fds)
        best.inflight.append(run)
        self._by_instance[run.instance_id] = best
        best.outbox.append(run)
        self._dirty.append(best)
        if len(best.inflight) == 1:
            self._start(best, run.instance_id, self._events)
        return True

    def _submit_isolated(self, run: Run, fds: Sequence[int]) -> bool:
        """``isolation: process``: a fresh worker for this attempt, in the slot of an idle one.

        The new process is in its cgroup before the run is written to it (at ``flush``), so no
        module code runs outside its limits.
        """
        assert run.isolated is not None
        lender = next((w for w in self._workers if w.takes_work and not w.inflight), None)
        if lender is None:
            _close_all(fds)
            return False
        from gxo.pool.enforce import AttemptLimits, choose_enforcement  # isolated runs only

        if self._enforcement is None:
            self._enforcement, _ = choose_enforcement(strict=False)
        self._isolated_seen += 1
        worker = self._take_spare() or self._spawn(oneshot=True)
        self._guard_session(b"+", worker.pid)
        worker.lender = lender
        lender.lent = True
        self._workers.append(worker)
        worker.outfds.extend(fds)
        worker.inflight.append(run)
        self._by_instance[run.instance_id] = worker
        self._start(worker, run.instance_id, self._events)
        try:
            worker.limits = AttemptLimits(self._enforcement, run.isolated, worker.pid)
            if worker.limits.cgroup is not None:  # the guard removes it if gxo is killed
                for path in worker.limits.cgroup.dirs:
                    self._guard_session(b"c", worker.pid, f" {path}".encode())
        except OSError as exc:
            # The attempt fails (its cgroup could not be made); the run goes on.
            worker.kill_reason = format_reason("executor_error")
            worker.kill_detail = f"the attempt's cgroup could not be created: {exc}"
            worker.kill_targets |= kill_session(worker.pid, signal.SIGKILL)
            _close_all(worker.outfds)
            worker.outfds = []
            return True
        worker.outbox.append(run)
        self._dirty.append(worker)
        return True

    def submit_group(self, runs: Sequence[Run]) -> bool:
        """A stream group: its pipes are made here and travel with the runs."""
        return submit_with_pipes(self, runs)

    def flush(self) -> None:
        """Write every submitted instance: one send per worker."""
        for worker in self._dirty:
            if worker.outbox:
                self._writer.add_all(worker.outbox)
                worker.outbox.clear()
                fds, worker.outfds = worker.outfds, []
                try:
                    self._write(worker, self._writer.take(), fds)
                finally:
                    _close_all(fds)
        self._dirty.clear()
        if self._isolated_seen > 1:
            self._refill_spares()

    def _refill_spares(self) -> None:
        """Start a fresh process ahead for each ``isolation: process`` attempt running now.

        Its start (the forkserver's fork, then the process's own set-up: session, signals,
        output pump, control thread) then overlaps the running attempts instead of delaying
        the next one: when an attempt ends, the next one goes to a process that is already
        waiting for it. A spare has run nothing: it is fresh, and it runs one attempt only.
        It joins its cgroup and applies its limits when it is given its attempt, before the
        module is imported. Spares start once a second isolated attempt comes (a run with a
        single one pays for none); the ones left at the end are stopped with the pool.
        """
        running = sum(1 for w in self._workers if w.oneshot and w.inflight)
        while len(self._spares) < min(running, self.size) and not self._closed:
            spare = self._spawn(oneshot=True)
            spare.spare = True
            self._spares.append(spare)

    def _take_spare(self) -> _Worker | None:
        """A spare started with every secret name known now (older ones are stopped)."""
        while self._spares:
            spare = self._spares.pop(0)  # the oldest: the most likely set up
            if spare.secrets_seen == len(self._late_secrets):
                spare.spare = False
                return spare
            self._retire_spare(spare)
        return None

    def _retire_spare(self, spare: _Worker) -> None:
        """Stop a spare that will not be used; its death is then reaped as a spare's."""
        self._retired.append(spare)
        with contextlib.suppress(OSError):
            spare.control.shutdown(socket.SHUT_RDWR)  # end-of-file: the worker exits

    def _start(self, worker: _Worker, instance_id: int, events: list[ExecutorEvent]) -> None:
        """The worker starts ``instance_id`` now; ``events`` keeps the order things happened."""
        worker.running = instance_id
        events.append(Started(instance_id, worker.pid))
        if self._cancel_on_start:
            reason = self._cancel_on_start.pop(instance_id, None)
            if reason is not None:
                self.cancel(instance_id, reason)

    def cancel(self, instance_id: int, reason: str) -> None:
        """Stop the instance: SIGTERM its worker's session now, SIGKILL after the grace period.

        An instance that is only queued on a worker is handed back instead (``Returned``) once
        the running one ends; the caller decides whether to dispatch it again.
        """
        worker = self._by_instance.get(instance_id)
        if worker is None or worker.kill_reason:
            return
        if worker.running != instance_id:
            self._cancel_on_start[instance_id] = reason  # queued behind another: kill on start
            return
        worker.kill_reason = reason
        worker.kill_deadline = time.monotonic() + self.grace
        worker.guards = guards_of(worker.pid)
        worker.kill_targets = kill_session(worker.pid, signal.SIGTERM, spare_guards=True)

    def wind_down(self) -> None:
        """The run starts nothing new: a worker that dies (one stopped for the interrupt) is
        not replaced, which would only start a process to stop it again."""
        self._winding_down = True

    def hurry(self) -> None:
        """Skip the rest of every grace period: SIGKILL what is being stopped now."""
        for worker in self._workers:
            if worker.kill_deadline is not None:
                worker.kill_deadline = time.monotonic()

    # -- waiting -----------------------------------------------------------------------------

    def next_deadline(self) -> float | None:
        """The earliest SIGKILL escalation pending, as a monotonic time."""
        earliest = None
        for worker in self._workers:
            deadline = worker.kill_deadline
            if deadline is not None and (earliest is None or deadline < earliest):
                earliest = deadline
        return earliest

    def wait(self, timeout: float | None) -> list[ExecutorEvent]:
        """Block until something happens (or ``timeout`` seconds pass); return the events."""
        escalation = self.next_deadline()
        if escalation is not None:
            until = max(0.0, escalation - time.monotonic())
            timeout = until if timeout is None else min(timeout, until)
        watched = [w for w in self._workers if w.limits is not None and not w.kill_reason]
        if watched:
            next_look = min(w.limits.next_look for w in watched if w.limits is not None)
            look = max(0.0, next_look - time.monotonic())
            timeout = look if timeout is None else min(timeout, look)
        events, self._events = self._events, []
        if events:
            timeout = 0  # report what submit() started without waiting for more
        dead: list[_Worker] = []
        for key, _ in self._selector.select(timeout):
            kind, worker = key.data
            if kind == "wakeup":
                drain(key.fd)
            elif kind == "control":
                self._read_control(worker, events)
            elif kind == "console":
                self._read_console(worker)
            elif kind == "sentinel":
                dead.append(worker)
        if watched:
            now = time.monotonic()
            for worker in watched:
                if worker.limits is not None and worker.limits.due(now):
                    self._watch(worker)
        for worker in dead:
            self._on_death(worker, events)
        self._escalate()
        events += self._events
        self._events = []
        return events

    def _watch(self, worker: _Worker) -> None:
        """Look at a one-shot attempt's tree; past a limit, kill it at once (no grace)."""
        limits = worker.limits
        if limits is None or worker.kill_reason or worker.running is None:
            return
        broken = limits.check()
        if broken:
            worker.kill_reason = format_reason("limit_exceeded", broken)
            worker.kill_detail = limits.detail(broken)
            worker.kill_targets |= limits.kill()

    def _read_control(self, worker: _Worker, events: list[ExecutorEvent]) -> None:
        try:
            data = worker.control.recv(_RECV_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._selector.unregister(worker.control)
            return  # EOF: the sentinel reports the death
        try:
            messages = worker.reader.feed(data)
        except TruncatedFrame as exc:
            self._broken_channel(worker, str(exc))
            return
        for message in messages:
            self._on_message(worker, message, events)

    def _broken_channel(self, worker: _Worker, problem: str) -> None:
        """The worker sent something that is not a message (a frame over the limit): a gxo
        bug or a corrupted worker, never a reason to stop the run. Kill it; its instance fails
        (reason ``worker_protocol_error``) and it is replaced."""
        with contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(worker.control)
        worker.kill_reason = worker.kill_reason or "worker_protocol_error"
        worker.kill_detail = f"the worker sent an invalid message ({problem}); it was killed"
        worker.guards |= guards_of(worker.pid)
        worker.kill_targets |= kill_session(worker.pid, signal.SIGKILL, spare_guards=True)

    def _on_message(self, worker: _Worker, message: ToParent, events: list[ExecutorEvent]) -> None:
        if not isinstance(message, Done):
            self._on_secrets_message(worker, message)
            return
        self._deaths_without_progress = 0
        if message.printed:
            self._end_of_output(worker, message.instance_id)
        if worker.inflight and worker.inflight[0].instance_id == message.instance_id:
            worker.inflight.popleft()
        self._by_instance.pop(message.instance_id, None)
        if worker.relay_limit.dropped:
            self._report_dropped(worker)
        if worker.kill_reason and worker.running == message.instance_id:
            # It ended during its grace period (a command that exits on SIGTERM): it was
            # still stopped, for the reason it was stopped for.
            worker.running = None
            detail = worker.kill_detail or (
                f"stopped ({worker.kill_reason}); it ended within the grace period"
            )
            killed = max(_others(worker), message.leftovers_killed)
            command, cwd, code = command_facts(message.summary)
            usage = worker.limits.usage() if worker.limits is not None else None
            events.append(
                Lost(
                    message.instance_id,
                    worker.kill_reason,
                    detail,
                    message.outputs,
                    killed,
                    command,
                    cwd,
                    code,
                    usage,
                )
            )
            if worker.oneshot:
                worker.inflight.clear()  # reported: its death needs no second report
                self._release(worker)
            return
        if worker.running != message.instance_id:
            # A worker being stopped ran the next instance queued on it before the SIGTERM
            # reached it (the stop raced with the end of the instance it was meant for): that
            # instance started, and its result is what it did.
            events.append(Started(message.instance_id, worker.pid))
        worker.running = None
        if worker.oneshot:
            if worker.limits is not None:
                message = worker.limits.classify(message)
            self._release(worker)
        events.append(Finished(message))
        if worker.inflight and not worker.kill_reason:
            self._start(worker, worker.inflight[0].instance_id, events)

    # -- secret names resolved at run time (DESIGN §15, "Records and secrets") ---------------

    def _on_secrets_message(self, worker: _Worker, message: SecretsFound | SecretsResolved) -> None:
        """A worker found secret names no worker knew: every other worker resolves them
        before the announcing one may go on (it waits for :class:`SecretsKnown`). Workers
        started later get them with their configuration. Names only, never values."""
        if isinstance(message, SecretsResolved):
            self._secret_acked(worker, message.seq)
            return
        new = tuple(n for n in message.names if n not in self._late_secrets)
        self._late_secrets.update(dict.fromkeys(new))
        self._secret_seq += 1
        seq = self._secret_seq
        others = {w for w in self._workers if w is not worker}
        self._announcements[seq] = (worker, others)
        request = ResolveSecrets(seq, message.names)
        for other in others:
            self._send(other, request)
        self._secret_acked(None, seq)

    def _secret_acked(self, worker: _Worker | None, seq: int) -> None:
        entry = self._announcements.get(seq)
        if entry is None:
            return
        announcer, waiting = entry
        if worker is not None:
            waiting.discard(worker)
        if not waiting:
            del self._announcements[seq]
            if announcer in self._workers:
                self._send(announcer, SecretsKnown())

    def _forget_worker_secrets(self, dead: _Worker) -> None:
        """A dead worker will not answer; a dead announcer needs no answer."""
        for seq, (announcer, waiting) in list(self._announcements.items()):
            if announcer is dead:
                del self._announcements[seq]
            elif dead in waiting:
                self._secret_acked(dead, seq)

    def _read_console(self, worker: _Worker, *, final: bool = False) -> bool:
        """Relay what the worker printed; True when more may be waiting.

        ``final``: the worker is dead, so nothing to read now means nothing ever.
        """
        try:
            data = worker.console.recv(_RECV_SIZE)
        except (BlockingIOError, InterruptedError):
            if not final:
                return False
            data = b""
        except OSError:
            data = b""
        if not data:
            self._flush_console(worker)
            return False
        data = worker.console_partial + data
        mark = data.find(CONSOLE_MARK)
        while mark >= 0:
            end = data.find(b"\0", mark + len(CONSOLE_MARK))
            if end < 0 and len(data) - mark <= _MARK_SIZE:
                break  # the rest of the mark comes with the next read
            digits = data[mark + len(CONSOLE_MARK) : end]
            if end < 0 or not digits.isdigit() or len(digits) > _MARK_SIZE:
                # Not a mark the worker wrote (a module printed these bytes): plain output.
                mark = data.find(CONSOLE_MARK, mark + 1)
                continue
            # The output before the mark is the previous instance's, a last partial line too.
            *lines, rest = data[:mark].split(b"\n")
            self._emit_lines(worker, [*lines, rest] if rest else lines)
            worker.console_instance = int(digits)
            worker.instance_tail = []
            data = data[end + 1 :]
            mark = data.find(CONSOLE_MARK)
        *lines, partial = data.split(b"\n")
        if len(partial) > LINE_LIMIT:  # no newline in sight: relay it in pieces
            # ... but for the start of a mark at its end (it starts with the last NUL). What
            # was held back and this read together can be twice the limit: each piece is cut
            # at the limit (a line of 300 MB relayed 128 KiB at a time, not the 64 KiB said).
            cut = max(0, partial.rfind(b"\0", len(partial) - _MARK_SIZE))
            whole, partial = (partial[:cut], partial[cut:]) if cut else (partial, b"")
            lines += [whole[i : i + LINE_LIMIT] for i in range(0, len(whole), LINE_LIMIT)]
        worker.console_partial = partial
        self._emit_lines(worker, lines)
        return True

    def _end_of_output(self, worker: _Worker, instance_id: int) -> None:
        """Relay the rest of what ``instance_id``, ending now, printed, as its own.

        The worker wrote all of it to the console before it sent the result (it says
        ``printed`` then; an instance that printed nothing sent no mark, and costs no read
        here), so it is all there to read; its last line is whole even without a newline
        (the worker emits an unterminated line when the instance ends), and must not wait
        for the next instance's first line to be relayed with it, under that instance's
        name. What the console carries after it, until another mark, is no instance's
        (the worker between instances): a death then shows none of these lines."""
        while worker.console_open and self._read_console(worker):
            pass
        if worker.console_partial:
            self._emit_line(worker, worker.console_partial)
            worker.console_partial = b""
        if worker.console_instance == instance_id:
            worker.console_instance = None
            worker.instance_tail = []

    def _flush_console(self, worker: _Worker) -> None:
        if worker.console_open:
            self._selector.unregister(worker.console)
            worker.console_open = False
        if worker.console_partial:
            self._emit_line(worker, worker.console_partial)
            worker.console_partial = b""

    def _emit_line(self, worker: _Worker, raw: bytes) -> None:
        self._emit_lines(worker, [raw])

    def _emit_lines(self, worker: _Worker, raws: list[bytes]) -> None:
        """Keep the lines of one read for crash reports; relay them in one call (batched)."""
        if not raws:
            return
        lines = [raw.decode("utf-8", "replace").rstrip("\r") for raw in raws]
        worker.console_tail.extend(lines)
        if worker.console_instance is not None:
            worker.instance_tail.extend(lines[-_CONSOLE_TAIL:])
            del worker.instance_tail[:-_CONSOLE_TAIL]
        if self._on_output is None:
            return
        allow = worker.relay_limit.allow
        relayed = [line for line in lines if allow() or line.startswith(NOTICE_PREFIX)]
        if relayed:
            self._on_output(worker.console_instance, "\n".join(relayed))

    def _report_dropped(self, worker: _Worker) -> None:
        """Say how many lines of the instance ending now were not relayed (rate limit)."""
        dropped = worker.relay_limit.take_dropped()
        if dropped and self._on_output is not None:
            self._on_output(worker.running, dropped_notice(dropped, self._log_rate))

    def _on_death(self, worker: _Worker, events: list[ExecutorEvent]) -> None:
        if worker.spare:  # never given an attempt: nothing to report, nothing to replace
            for pool in (self._spares, self._retired):
                if worker in pool:
                    pool.remove(worker)
            worker.process.join()
            self._discard(worker)
            return
        self._read_to_end(worker, events)
        worker.process.join()
        exitcode = worker.process.exitcode
        # Whatever the worker started may outlive it (a command in its own process group):
        # its session is killed so nothing it started survives it. A one-shot worker that
        # exited on its own after its result killed its session itself (and the search costs
        # a look at every process of the machine, per attempt).
        if not (worker.oneshot and exitcode == 0 and not worker.inflight):
            kill_session(worker.pid, signal.SIGKILL, spare_guards=True)
        signal_processes(worker.kill_targets, signal.SIGKILL)
        if worker.oneshot:
            self._oneshot_ended(worker, exitcode, events)
            return
        pending = {run.instance_id for run in worker.inflight}
        # The slot names the instance the worker had started; a stopped worker is charged to
        # the instance it was stopped for, even if it died before writing the slot.
        culprit = worker.running if worker.kill_reason else worker.slot.value
        if culprit in pending:
            reason = worker.kill_reason or _death_reason(exitcode)
            run = next(r for r in worker.inflight if r.instance_id == culprit)
            config = self._worker_config
            run_dir = config.run_dir if config else ""
            outputs = outputs_from_files(run_dir, run)
            command, cwd = command_from_files(run_dir, run, worker.pid)
            detail = worker.kill_detail or _detail(exitcode, worker.instance_tail, worker.pid)
            events.append(Lost(culprit, reason, detail, outputs, _others(worker), command, cwd))
        else:
            culprit = None
            if not worker.kill_reason:
                self._deaths_without_progress += 1
        for run in worker.inflight:
            self._by_instance.pop(run.instance_id, None)
            if run.instance_id != culprit:
                events.append(Returned(run.instance_id))
        if self._on_worker_lost is not None and not self._closed:
            reason = worker.kill_reason or _death_reason(exitcode)
            self._on_worker_lost(worker.pid, reason, culprit)
        self._discard(worker)
        self._workers.remove(worker)
        self._forget_worker_secrets(worker)
        if self._closed or self._winding_down:
            return
        if self._deaths_without_progress > 2 * self.size + 3:
            tail = "\n".join(worker.console_tail)
            raise InternalError(f"worker processes keep dying before running anything:\n{tail}")
        self.restarts += 1
        self._workers.append(self._spawn())

    def _read_to_end(self, worker: _Worker, events: list[ExecutorEvent]) -> None:
        """Results and lines the worker sent before dying still count: read them all."""
        while True:
            try:
                data = worker.control.recv(_RECV_SIZE)
            except (BlockingIOError, InterruptedError, OSError):
                break
            if not data:
                break
            try:
                messages = worker.reader.feed(data)
            except TruncatedFrame:
                break
            for message in messages:
                self._on_message(worker, message, events)
        while worker.console_open and self._read_console(worker, final=True):
            pass
        self._report_dropped(worker)

    def _oneshot_ended(
        self, worker: _Worker, exitcode: int | None, events: list[ExecutorEvent]
    ) -> None:
        """A one-shot worker exited: after its result (the normal end), or during its attempt
        (a limit, a crash, a stop), which is then ``Lost`` with the limit it broke, if any.
        Its cgroup goes, its slot is given back, and it is not replaced."""
        limits = worker.limits
        if worker.inflight:
            run = worker.inflight[0]
            reason, detail = worker.kill_reason, worker.kill_detail
            which = limits.death_reason(exitcode) if limits is not None else ""
            if which and (not reason or reason.startswith("limit_exceeded")):
                reason = format_reason("limit_exceeded", which)
                detail = limits.detail(which) if limits is not None else detail
            if not reason:
                reason = _death_reason(exitcode)
            if not detail:
                detail = _detail(exitcode, worker.instance_tail, worker.pid)
            config = self._worker_config
            run_dir = config.run_dir if config else ""
            outputs = outputs_from_files(run_dir, run)
            command, cwd = command_from_files(run_dir, run, worker.pid)
            usage = limits.usage() if limits is not None else None
            events.append(
                Lost(
                    run.instance_id,
                    reason,
                    detail,
                    outputs,
                    _others(worker),
                    command,
                    cwd,
                    usage=usage,
                )
            )
            self._by_instance.pop(run.instance_id, None)
            worker.inflight.clear()
        if limits is not None:
            limits.close()
        self._guard_session(b"-", worker.pid)
        self._release(worker)
        self._discard(worker)
        self._workers.remove(worker)
        self._forget_worker_secrets(worker)

    def _escalate(self) -> None:
        now = time.monotonic()
        for worker in self._workers:
            if worker.kill_deadline is not None and now >= worker.kill_deadline:
                worker.kill_deadline = None
                worker.kill_targets |= kill_session(worker.pid, signal.SIGKILL, spare_guards=True)
                signal_processes(worker.kill_targets, signal.SIGKILL)

    # -- plumbing ----------------------------------------------------------------------------

    def _spawn(self, *, oneshot: bool = False) -> _Worker:
        config = self._worker_config
        if self._late_secrets:
            config = msgspec.structs.replace(
                config or WorkerConfig(),
                secret_names=(*(config.secret_names if config else ()), *self._late_secrets),
            )
        # The gxo command's first worker may have been started before this pool (same config).
        launched = None if oneshot else take_ahead(config)
        if launched is None and self._start_method == "forkserver":
            launched = launch_forked(config, oneshot)  # the gxo command's, multiprocessing unused
        if launched is None:
            launched = launch(self._context, config, oneshot)
        process, slot, control, console, notices = launched
        control.setblocking(False)
        console.setblocking(False)
        console.shutdown(socket.SHUT_WR)
        notices.setblocking(False)
        notices.shutdown(socket.SHUT_RD)
        assert process.pid is not None
        worker = _Worker(
            process,
            slot,
            control,
            console,
            FrameReader(ToParent),
            notices,
            oneshot=oneshot,
            pid=process.pid,
        )
        worker.secrets_seen = len(self._late_secrets)
        worker.relay_limit = RateLimit(self._log_rate)
        self._selector.register(control, selectors.EVENT_READ, ("control", worker))
        self._selector.register(console, selectors.EVENT_READ, ("console", worker))
        self._selector.register(process.sentinel, selectors.EVENT_READ, ("sentinel", worker))
        if self._on_worker_started is not None and not oneshot:
            self._on_worker_started(worker.pid)
        return worker

    def _guard_session(self, change: bytes, pid: int, detail: bytes = b"") -> None:
        """Tell the one-shot workers' guard that a session is live (``+``) or over (``-``),
        or a directory of its cgroup (``c``, ``detail`` the path).

        One guard process per pool does for every fresh ``isolation: process`` attempt what a
        pooled worker's own guard does for it: if gxo dies, it kills what the attempt
        started. A fork of each attempt's process for that would cost more than the attempt.
        """
        if self._session_guard is None:
            if change == b"-":
                return
            mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            process: BaseProcess = self._context.Process(  # type: ignore[attr-defined]
                target=guard_sessions, args=(theirs,), name="gxo-guard"
            )
            try:
                with main_module_hidden():
                    process.start()
            finally:
                theirs.close()
            self._session_guard = (process, mine)
        with contextlib.suppress(OSError):
            self._session_guard[1].sendall(change + str(pid).encode() + detail + b"\n")

    def _release(self, worker: _Worker) -> None:
        """A one-shot worker is done with its slot: its lender takes work again."""
        if worker.lender is not None:
            worker.lender.lent = False
            worker.lender = None

    def _discard(self, worker: _Worker) -> None:
        for fileobj in (worker.control, worker.console, worker.process.sentinel):
            with contextlib.suppress(KeyError, ValueError):
                self._selector.unregister(fileobj)
        worker.control.close()
        worker.console.close()
        worker.notices.close()
        worker.slot.close()
        worker.process.close()

    def _send(self, worker: _Worker, message: Run | Stop | ResolveSecrets | SecretsKnown) -> None:
        self._writer.add(message)
        data = self._writer.take()
        if isinstance(message, ResolveSecrets | SecretsKnown):
            _send_all(worker.notices, data)
        else:
            self._write(worker, data)

    def _write(self, worker: _Worker, data: bytes, fds: Sequence[int] = ()) -> None:
        if fds:
            self._write_with_fds(worker, data, fds)
        else:
            _send_all(worker.control, data)

    def _write_with_fds(self, worker: _Worker, data: bytes, fds: Sequence[int]) -> None:
        """Send ``data`` with ``fds`` attached to its first byte (blocking: rare and short)."""
        control = worker.control
        control.setblocking(True)
        try:
            sent = socket.send_fds(control, [data], list(fds))
            if sent < len(data):
                control.sendall(data[sent:])
        except OSError:
            pass  # the worker is dying; its sentinel will tell
        finally:
            control.setblocking(False)


def _send_all(channel: socket.socket, data: bytes) -> None:
    """Write ``data`` to a worker's channel (non-blocking; a dying worker is not an error)."""
    try:
        sent = channel.send(data)
    except BlockingIOError:
        sent = 0
    except OSError:
        return  # the worker is dying; its sentinel will tell
    if sent < len(data):
        # Rare: the socket buffer is full (a large Run). Finish with a blocking write: the
        # worker is reading, or dying, which closes the socket and ends the write.
        channel.setblocking(True)
        try:
            channel.sendall(data[sent:])
        except OSError:
            pass
        finally:
            channel.setblocking(False)


def _close_all(fds: Sequence[int]) -> None:
    for fd in fds:
        with contextlib.suppress(OSError):
            os.close(fd)


def _death_reason(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = str(-exitcode)
        return format_reason("worker_signaled", name)
    return format_reason("worker_exited", exitcode)


def _others(worker: _Worker) -> int:
    """How many processes besides the worker itself (and its guard) were signalled to stop
    its instance."""
    return len(worker.kill_targets - {worker.pid} - worker.guards)


def _detail(exitcode: int | None, tail: list[str], pid: int) -> str:
    if exitcode is not None and exitcode < 0:
        try:
            what = f"the worker process (pid {pid}) was killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            what = f"the worker process (pid {pid}) was killed by signal {-exitcode}"
        if exitcode == -signal.SIGKILL:
            what += (
                " (a SIGKILL nobody sent on purpose often comes from the kernel's OOM killer: "
                "see `dmesg` or `journalctl -k`, and the memory limit of the job or container)"
            )
    else:
        what = f"the worker process (pid {pid}) exited with status {exitcode}"
    if tail:
        return what + "; its last output:\n" + "\n".join(tail)
    return what
