"""The worker process: receive a task instance, acknowledge it, run it, send the redacted result.

A worker never raises out of its loop. Whatever a module does (raise, ``sys.exit``, return
something unencodable) becomes a failed :class:`~gxo.wire.Done`; only a real death
(``os._exit``, a signal) ends the process, and the parent pins that on the acknowledged
instance.

Process setup, done once:

- its own session (``setsid``): the scheduler owns cancellation, so a Ctrl-C on the terminal
  never reaches a worker or its commands directly, and every descendant that does not leave
  the session can be found and killed by session id;
- a child subreaper (``PR_SET_CHILD_SUBREAPER``): a grandchild that daemonizes (double fork,
  ``setsid``) is re-parented to the worker instead of init, so it is still found as a
  descendant and stopped with the instance;
- SIGTERM does not kill a worker whose instance runs commands: the parent sends it to the
  whole session when an instance is stopped, so a command gets its grace period; the worker
  finishes the instance (the command may end on TERM), reports, and exits. SIGKILL ends the
  grace period. A worker running Python code (no child process) dies on SIGTERM at once;
- ``PR_SET_PDEATHSIG`` is SIGKILL (DESIGN §15: a hangup must not kill a worker before the
  parent cancels it): if the process that started it dies, the worker dies, and its *guard*
  (a small child forked at start, :func:`gxo.pool.session.start_guard`) sees it and kills
  every process left in its session, so a SIGKILLed ``gxo`` leaves no orphan behind;
- SIGINT, SIGUSR1, SIGUSR2 and SIGHUP are caught and ignored (a no-op handler, so commands
  the worker starts get the default dispositions); ``RLIMIT_CORE`` is 0 unless gxo runs with
  ``--core-dumps``: a crash never writes a core file, which can hold secrets;
- after each instance (once its result is sent, while the parent dispatches the next one)
  the process state it started with is restored (environment, cwd, umask, signals, fds 0-2,
  the user's modules; :mod:`gxo.pool.isolation`), so a task cannot change the next one on the
  same worker;
- it exits with ``os._exit`` (after flushing): a thread a module left running never delays
  the end of the run;
- everything printed or logged is redacted before it reaches the console socket the parent
  reads (:mod:`gxo.secrets.output`): ``sys.stdout``/``sys.stderr`` are redacting writers on
  that socket (synchronous, so the last lines a crashing module printed can be shown with its
  failure), the root logger has a redaction filter, and file descriptors 1 and 2 are a pipe
  drained and redacted by a thread, which covers ``os.write``, C code and child processes
  that inherit them;
- the secret names the playbook uses (:class:`~gxo.wire.WorkerConfig`) are resolved
  into the worker's redactor before its first instance: a value resolved by any task is
  masked here too.
"""

from __future__ import annotations

import array
import contextlib
import ctypes
import functools
import logging
import os
import re
import resource
import signal
import socket
import sys
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable
from typing import Any, NoReturn

import msgspec

from gxo.errors import (
    InternalError,
    ModuleLookupError,
    SecretMissing,
    SecretProviderFailed,
    TemplateError,
)
from gxo.modules import Module, ModuleContext, ModuleError, convert_params
from gxo.modules.capture import command_running, kill_left_behind, reap_children
from gxo.modules.registry import load_module
from gxo.outputs import CapturedOutput
from gxo.pool.capture import AttemptOutput, cap_text, capture_settings, too_large
from gxo.pool.isolation import ProcessState
from gxo.pool.relay import limit_log_rate, report_dropped_logs
from gxo.pool.session import kill_descendants, kill_session, start_guard
from gxo.pool.slot import AckSlot
from gxo.secrets.config import build_provider
from gxo.secrets.output import WorkerOutput, redirect_output
from gxo.secrets.providers import SecretProvider
from gxo.secrets.redact import REDACTED, Redactor
from gxo.secrets.resolver import SecretResolver
from gxo.streams import ConsumersGone, InputSpec, OutputSpec, StreamError, Streams
from gxo.template import NOT_PATHS, CompiledValue, compile_value, render_paths
from gxo.wire import (
    Done,
    EdgeStats,
    FrameReader,
    FrameWriter,
    ResolveSecrets,
    Run,
    SecretsFound,
    SecretsKnown,
    SecretsResolved,
    Stop,
    ToWorker,
    WorkerConfig,
    console_mark,
)

__all__ = ["in_process", "run_attempt", "worker_main"]

_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36

#: Set by SIGTERM: finish the current instance, then exit.
_stop_requested = False
#: The guard process (see :func:`gxo.pool.session.start_guard`): a child that is not a command.
_guard_pid = 0
#: Whether this worker leads its own session and is its descendants' subreaper (both calls
#: succeeded): then every other member of its session is one of its descendants.
_own_session = False
_RECV_SIZE = 1 << 16
#: The most descriptors one message can carry (the kernel's SCM_MAX_FD).
_MAX_FDS = 253


def worker_main(
    control: socket.socket,
    console: socket.socket,
    slot: AckSlot,
    config: WorkerConfig | None = None,
    oneshot: bool = False,
    notices: socket.socket | None = None,
) -> None:
    """Entry point of a worker process (the target of ``multiprocessing.Process``).

    ``oneshot`` (``isolation: process``): the process runs one attempt and exits; it is fresh,
    so there is no process state to record and restore, and the attempt's per-process limits
    and network namespace are applied before its module is even imported.

    ``notices`` is the channel of secrets messages, answered by a thread while a module runs
    (see :class:`_Control`).

    ``slot`` is the acknowledgement: the instance id is written there before the instance
    starts and cleared only after its result was sent, so if this process dies the parent
    knows exactly which instance it was running, and that any other one it was sent never
    started.
    """
    config = config if config is not None else WorkerConfig()
    state = _WorkerState(config)
    state.owns_descendants = True
    attempt_output = AttemptOutput()
    pump = _setup_process(
        console,
        state.redactor,
        config.log_level,
        config.core_dumps,
        attempt_output,
        guard=not oneshot,  # the pool guards one-shot sessions (one guard, not a fork each)
    )
    state.relay = pump.relay.buffer.write
    log_limit = limit_log_rate(config.log_rate)
    state.preload(config.secret_names)
    clean = None if oneshot else ProcessState()  # what every instance starts from (pooled)
    writer = FrameWriter()
    inbox = _Control(control, notices, state)
    inbox.start()
    state.spare = _spare()
    try:
        while True:
            item = inbox.next_run()
            if item is None:
                return  # the parent closed the channel or asked us to stop
            run, fds = item
            slot.value = run.instance_id
            pump.mark(console_mark(run.instance_id))  # what it prints next is its own (if any)
            attempt_output.start(run, config)
            refused = _isolate(run)
            if refused is not None:
                done = refused
            elif run.traceparent:
                from functools import partial

                from gxo.otel import traced_attempt

                done = traced_attempt(run, partial(run_attempt, run, state, fds, inbox.announce))
            else:
                done = run_attempt(run, state, fds, inbox.announce)
            done = _kill_left_behind(done, state.spare)
            report_dropped_logs(log_limit)
            done = _output_sent(pump, done)
            done = attempt_output.finish(done)
            if run.isolated is not None:  # isolation: process: its peaks, measured here
                from gxo.pool.enforce import measure_attempt

                done = msgspec.structs.replace(done, usage=measure_attempt())
            inbox.send(_encoded(writer, done, config.result_limit))
            slot.value = -1
            if _stop_requested or oneshot:
                return  # stopped with SIGTERM (the parent replaces this worker), or one-shot
            # Off the critical path: while the parent takes the result and sends the next
            # instance, put back the state this worker started with.
            reap_children()  # orphans re-parented to this worker (it is their subreaper)
            if clean is not None:
                _restore(clean)
    except (BrokenPipeError, ConnectionResetError):
        return  # the parent is gone; PDEATHSIG or this exit ends the session
    finally:
        _exit_now(pump)


class _Control:
    """The worker's two channels from the parent, and the lock that keeps its frames whole.

    ``control`` carries the instances to run (``Run``, with the stream pipe ends that come
    with them) and ``Stop``; the main thread reads it itself, and only while it is idle. A
    ``Run`` so wakes only the thread that runs it: no hand-over between threads on the
    critical path of a chain of dependent tasks (one wake-up per instance, the floor of a
    pipe round trip). Runs queued behind a running one wait in the socket until it ends.

    ``notices`` carries the secrets messages (:class:`ResolveSecrets`, :class:`SecretsKnown`);
    a thread that does nothing else answers them at once, even while the main thread runs a
    module: a consumer reading records from a producer that waits for every worker to know
    its secrets must not have to finish first (that would deadlock). The thread sleeps in
    ``recv`` and wakes only for such a message, never per instance.

    Results and announcements go back on ``control``; one lock keeps frames whole.
    """

    def __init__(
        self, control: socket.socket, notices: socket.socket | None, state: _WorkerState
    ) -> None:
        self._control = control
        self._notices = notices
        self._state = state
        self._reader = FrameReader(ToWorker)
        self._writer = FrameWriter()
        self._send_lock = threading.Lock()
        self._runs: deque[tuple[Run, list[int] | None]] = deque()
        #: ``Stop`` read, or the parent went away: no more runs after those queued.
        self._ended = False
        self._known = threading.Event()
        self._closed = False
        #: Stream pipe ends received with runs, in the order the runs list them.
        self._fds: deque[int] = deque()
        control.setblocking(True)
        self._thread: threading.Thread | None = None
        if notices is not None:
            notices.setblocking(True)
            self._thread = threading.Thread(target=self._listen, name="gxo-control", daemon=True)

    def start(self) -> None:
        if self._thread is not None:
            self._thread.start()

    def next_run(self) -> tuple[Run, list[int] | None] | None:
        """The next instance to run, or None when the parent stopped us or went away.

        Blocks in ``recv`` on the control socket (the main thread, idle): a signal handler
        (SIGTERM) still runs while it waits.
        """
        runs = self._runs
        while not runs:
            if self._ended:
                return None
            self._read_control()
        return runs.popleft()

    def _read_control(self) -> None:
        """Read what the control socket holds (blocking): queue runs, note a stop or EOF."""
        try:
            data = _receive(self._control, self._fds)
            messages = self._reader.feed(data) if data else []
        except Exception:  # noqa: BLE001 - a broken channel ends the worker, as EOF does
            data, messages = b"", []
        if not data:
            self._ended = True
            self._closed = True
            self._known.set()
        for message in messages:
            if self._ended:
                break  # nothing after a stop counts
            if isinstance(message, Run):
                self._runs.append((message, _take_fds(message, self._fds)))
            elif isinstance(message, Stop):
                self._ended = True
            else:
                self._notice(message)

    def send(self, data: bytes) -> None:
        with self._send_lock:
            self._control.sendall(data)

    def announce(self, names: tuple[str, ...]) -> None:
        """Tell the parent about secret names resolved at run time; wait until every worker
        has resolved them (or the parent is gone)."""
        self._known.clear()
        with self._send_lock:
            self._writer.add(SecretsFound(names))
            self._control.sendall(self._writer.take())
        if self._thread is None:  # no notices channel: the answer comes on this one
            while not self._known.is_set():
                if self._ended:
                    raise BrokenPipeError("the parent stopped this worker")
                self._read_control()
        self._known.wait()
        if self._closed:
            raise BrokenPipeError("the parent went away")

    def _listen(self) -> None:
        """The notices thread: answer secrets messages until the parent closes the channel."""
        assert self._notices is not None
        reader = FrameReader(ToWorker)
        try:
            while True:
                data = self._notices.recv(_RECV_SIZE)
                if not data:
                    break
                for message in reader.feed(data):
                    self._notice(message)
        except Exception:  # noqa: BLE001 - the parent is gone, or sent garbage: as EOF
            pass
        finally:
            self._closed = True
            self._known.set()

    def _notice(self, message: Any) -> None:
        """Act on a secrets message (a run or stop never comes on the notices channel)."""
        if isinstance(message, ResolveSecrets):
            self._state.preload(message.names)
            with self._send_lock:
                self._writer.add(SecretsResolved(message.seq))
                self._control.sendall(self._writer.take())
        elif isinstance(message, SecretsKnown):
            self._known.set()


def _spare() -> frozenset[int]:
    """The worker's guard process and its own threads (output pump, notices), started before
    any module runs: none of them is a command's, or starts one."""
    main = threading.main_thread()
    own = {t.native_id for t in threading.enumerate() if t is not main and t.native_id}
    return frozenset(own | {_guard_pid} if _guard_pid else own)


def _kill_left_behind(done: Done, spare: frozenset[int]) -> Done:
    """``done`` counting the processes its instance left running, killed now: they are its
    own (``processes_killed``), not the next instance's on this worker, and do not outlive it."""
    killed = kill_left_behind(spare)
    if not killed:
        return done
    return msgspec.structs.replace(done, leftovers_killed=done.leftovers_killed + killed)


def _isolate(run: Run) -> Done | None:
    """``isolation: process``: this process's limits and network namespace, before any module
    code; a failed attempt when the kernel refuses them (None: applied, or none asked)."""
    if run.isolated is None:
        return None
    from gxo.pool.enforce import apply_in_attempt

    try:
        apply_in_attempt(run.isolated)
    except (OSError, ValueError) as exc:
        return Done(
            instance_id=run.instance_id,
            ok=False,
            reason="executor_error",
            error=f"the attempt's limits could not be applied in its process: {exc}",
            retry=False,
            started_at=time.monotonic(),
        )
    return None


_log = logging.getLogger("gxo.worker")


def _restore(clean: ProcessState) -> None:
    """Put back the process state the worker started with (see :mod:`gxo.pool.isolation`)."""
    try:
        changed = clean.restore()
    except Exception:  # noqa: BLE001 - logged with its traceback; the worker goes on
        _log.exception("restoring the process state failed")
        return
    if changed:
        _log.debug("restored after the instance: %s", changed)


def _output_sent(pump: WorkerOutput, done: Done) -> Done:
    """The instance's output reaches the parent before its result; ``done`` says whether it
    printed anything (the parent then reads the console before it takes the result)."""
    _flush_replaced(pump)
    pump.sync()
    if pump.unmark():
        return msgspec.structs.replace(done, printed=True)
    return done


def _flush_replaced(pump: WorkerOutput) -> None:
    """Flush ``sys.stdout`` and ``sys.stderr`` when a module replaced them (the worker's own
    writers are drained by ``pump.sync``, which emits all a flush would, and more)."""
    writers = pump.writers
    if sys.stdout is not writers[0]:
        sys.stdout.flush()
    if sys.stderr is not writers[1]:
        sys.stderr.flush()


def _exit_now(pump: WorkerOutput) -> None:
    """Flush, kill what is left of the session, reap the guard, and exit at once.

    ``os._exit``: a normal interpreter exit would first join every non-daemon thread a
    module left running, and the parent would wait for the worker until its join timeout
    (the ~5 s stall at the end of a run); the threads die with the process instead.
    multiprocessing's finalizers (the worker's trace exporter flushes in one) still run,
    as they would on a normal exit.
    """
    from multiprocessing import util

    with contextlib.suppress(Exception):
        util._run_finalizers(0)  # type: ignore[attr-defined]  # as on a normal process end
    with contextlib.suppress(Exception):
        sys.stdout.flush()
        sys.stderr.flush()
        pump.sync()
    if _guard_pid or _has_children():
        if _own_session:
            # Every other member of the session is a descendant (see _own_session): the walk
            # down from this process finds them all without reading every process of the
            # machine twice (~2-3 ms at the end of each run, benchmarks/README.md).
            kill_descendants(os.getpid(), signal.SIGKILL)
        else:
            kill_session(os.getpid(), signal.SIGKILL, include_self=False)
    if _guard_pid:
        with contextlib.suppress(ChildProcessError, InterruptedError):
            os.waitpid(_guard_pid, 0)
    os._exit(0)


def _has_children() -> bool:
    """Whether this process has a child, live or not yet reaped (reaping one if it can).

    A worker leads its own session and is its descendants' subreaper, so a session member
    other than itself is a descendant, and a descendant means a child: with none, the scan
    of every process of the machine for the session (:func:`kill_session`) is skipped (a
    one-shot worker that started nothing, the usual ``isolation: process`` attempt).
    """
    try:
        os.waitpid(-1, os.WNOHANG)
    except ChildProcessError:
        return False
    return True


def _add_done(writer: FrameWriter, done: Done) -> None:
    """Frame ``done``; a summary that converted to builtins but still cannot be encoded (an
    integer past 64 bits) fails the task with ``bad_summary`` instead of the worker."""
    try:
        writer.add(done)
    except _SummaryError as exc:
        writer.take()  # the partial frame (nothing else is pending between sends)
        bad = _bad_summary(exc)
        writer.add(
            msgspec.structs.replace(
                done, ok=False, summary=None, reason=bad.reason, error=bad.error
            )
        )


def _encoded(writer: FrameWriter, done: Done, limit: int) -> bytes:
    """The framed result, or a ``result_too_large`` failure in its place (never a huge frame);
    a summary that cannot be encoded is a ``bad_summary`` failure (:func:`_add_done`)."""
    _add_done(writer, done)
    data = writer.take()
    if len(data) - 4 > limit:
        writer.add(too_large(done, len(data) - 4, limit))
        data = writer.take()
    return data


def _receive(control: socket.socket, fd_queue: deque[int]) -> bytes:
    """``recv`` that keeps descriptors sent with the data (a plain recv would drop them).

    What ``socket.recv_fds`` does, minus its per-call set-up (an array, the ancillary
    size): this is the first thing a worker does for every instance."""
    data, ancillary, _, _ = control.recvmsg(_RECV_SIZE, _ANCILLARY_SIZE, _CLOEXEC)
    for level, kind, fds in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            whole = len(fds) - len(fds) % _FD_SIZE
            fd_queue.extend(memoryview(fds)[:whole].cast("i"))
    return data


_FD_SIZE = array.array("i").itemsize
_ANCILLARY_SIZE = socket.CMSG_LEN(_MAX_FDS * _FD_SIZE)
_CLOEXEC = socket.MSG_CMSG_CLOEXEC


def _take_fds(run: Run, fd_queue: deque[int]) -> list[int] | None:
    """The run's stream pipe ends: one per input, then one per output (None if missing)."""
    wanted = len(run.inputs) + len(run.outputs)
    if not wanted:
        return []
    if len(fd_queue) < wanted:
        while fd_queue:
            os.close(fd_queue.popleft())
        return None
    return [fd_queue.popleft() for _ in range(wanted)]


class _WorkerState:
    """Per-worker caches and the worker-wide secret registry."""

    def __init__(self, config: WorkerConfig | None = None) -> None:
        config = config if config is not None else WorkerConfig()
        self.config = config
        #: True in a worker process (which owns every process below it); False when attempts
        #: run in the caller's process (:func:`in_process`): a command's leftovers are then
        #: looked for only in its process group, never among the caller's other children.
        self.owns_descendants = False
        #: What a command's leftovers are never looked for among (see
        #: :func:`gxo.modules.capture.kill_leftovers`): the worker's guard and its own threads.
        self.spare: frozenset[int] = frozenset()
        #: The current attempt's module context (what its commands printed is read from it).
        self.ctx: ModuleContext | None = None
        #: Where a command's live lines go in a worker (see :class:`WorkerOutput`); None when
        #: attempts run in the caller's process: its own stdout and stderr.
        self.relay: Callable[[bytes], object] | None = None
        self.compiled: dict[tuple[int, str], CompiledValue] = {}
        #: Tasks whose first instance was rendered without compiling (see render_params).
        self.rendered_once: set[tuple[int, str]] = set()
        #: Module classes by type name, once loaded (the registry's lookup is the same
        #: for every instance of a run).
        self.module_classes: dict[str, type[Module[Any]]] = {}
        self.redactor = Redactor(keywords=config.redact_keywords)
        self.modules = config.modules
        provider: SecretProvider
        try:
            provider = build_provider(config.secrets_provider, config.secrets_options)
        except Exception as exc:  # noqa: BLE001 - every task that asks for a secret says so
            provider = _BrokenProvider(config.secrets_provider, exc)
        self.resolver = SecretResolver(provider, self.redactor)
        #: Secret names every worker has resolved: the playbook's literal ones, and those
        #: announced since (see :func:`_announce_new_secrets`).
        self.known: set[str] = set()

    def preload(self, names: tuple[str, ...]) -> None:
        """Register the values of ``names`` for redaction; missing or unreadable ones are
        skipped (the task that uses one reports it)."""
        provider = self.resolver.provider
        self.known.update(names)
        for name in names:
            try:
                value = provider.get(name)
            except Exception:  # noqa: BLE001 - reported by the task that uses it
                continue
            # Not a str (a provider's bug): the resolver fails the task that reads it with
            # secret_provider_failed; registering it here would kill every worker at start.
            if value and isinstance(value, str):
                # Quietly: a warning about the value belongs to the task that reads it.
                self.redactor.add(value, name, warn=False)

    def render_params(self, run: Run) -> Any:
        """The instance's params rendered against its namespace.

        Params without a template are used as they arrived, with nothing compiled or kept
        for the task. The first instance of a task whose templates are all bare
        ``{{ a.b }}`` (each link of a chain is a new task, rendered once) is rendered in one
        walk without compiling (:func:`~gxo.template.render_paths`); any other, or the
        second instance of the same task (a loop), compiles the params once per task and
        renders the compiled value. Both give the same result and the same errors.
        """
        key = (run.task_index, run.task_name)
        compiled = self.compiled.get(key)
        if compiled is None:
            params = run.params
            if key not in self.rendered_once:
                self.rendered_once.add(key)
                rendered = render_paths(params, run.namespace)  # params without one: as is
                if rendered is not NOT_PATHS:
                    return rendered
            elif _no_template(params):
                return params
            compiled = compile_value(params, where=f"$.tasks[{run.task_index}].params")
            self.compiled[key] = compiled
        return compiled.render(run.namespace, self.resolver)


#: What every template starts with (``{{``, ``{%``, ``{#``; see :func:`compile_value`).
_TEMPLATE_START = re.compile(rb"\{[{%#]")
_params_encoder = msgspec.msgpack.Encoder()


def _no_template(params: dict[str, Any]) -> bool:
    """Whether ``params`` surely hold no template: no string in their encoding can contain
    the start of one (msgpack keeps a string's UTF-8 bytes whole). Bytes that only look like
    one (inside a number, across two values) make this false, and the params are compiled."""
    try:
        return _TEMPLATE_START.search(_params_encoder.encode(params)) is None
    except (TypeError, ValueError, OverflowError, msgspec.EncodeError):
        return False


class _BrokenProvider:
    """Stands for a secrets provider that could not be built here: every lookup fails with
    the reason (``secret_provider_failed``), and tasks without secrets run as usual."""

    def __init__(self, target: str, exc: Exception) -> None:
        self.error = f"building {target} failed: {type(exc).__name__}: {exc}"

    def get(self, name: str) -> str | None:
        raise SecretProviderFailed(name, self.error)

    def options(self) -> dict[str, Any]:
        return {}


def run_attempt(
    run: Run, state: _WorkerState, fds: list[int] | None = None, announce: Announce | None = None
) -> Done:
    """Run one attempt and return its redacted outcome. Never raises.

    ``fds`` are the run's stream pipe ends (see :func:`_open_streams`); they are closed when
    the attempt ends, whatever happened, so the other side always sees EOF or EPIPE.
    ``announce`` tells the parent about secret names resolved at run time and waits until
    every worker knows them (see :func:`_announce_new_secrets`).
    """
    started_at = time.monotonic()
    started = time.perf_counter()
    redacted_before = state.redactor.count
    streams: Streams | None = None
    state.ctx = None
    pid = os.getpid()
    try:
        streams = _open_streams(run, fds, state.redactor, state.config.record_limit)
        outcome = _attempt(run, state, streams, announce)
    except BaseException as exc:  # noqa: BLE001 - a module may raise anything, even SystemExit
        outcome = _Outcome(
            ok=False,
            reason=f"module_raised({type(exc).__name__})",
            error=_describe(exc),
            traceback=traceback.format_exc(),
        )
    if os.getpid() != pid:
        _end_forked_child(outcome)
    stats: list[EdgeStats] = []
    if streams is not None:
        try:
            outcome = _end_streams(streams, outcome, state.redactor)
        except Exception as exc:  # noqa: BLE001 - a gxo bug must fail the task, not the worker
            outcome = _Outcome(ok=False, reason="stream_error", error=_describe(exc))
        stats = streams.stats()
    duration = time.perf_counter() - started
    done = _redacted(
        run.instance_id,
        outcome,
        duration,
        started_at,
        state.redactor,
        streams=stats,
        secrets_accessed=state.resolver.take_accessed(),
        ctx=state.ctx,
    )
    redacted = state.redactor.count - redacted_before
    return msgspec.structs.replace(done, secrets_redacted=redacted) if redacted else done


def _end_forked_child(outcome: _Outcome) -> NoReturn:
    """The module forked (``os.fork()``) and this child returned from it, or raised: it is
    not the worker, and must not go on as one (it would send a second result for the
    instance, end its streams, run the next instance). It exits as a forked Python child
    would: 0 when the module returned, 1 when it raised (its traceback printed)."""
    if not outcome.ok and outcome.traceback:
        with contextlib.suppress(Exception):
            sys.stderr.write(outcome.traceback)
    with contextlib.suppress(Exception):
        sys.stdout.flush()
        sys.stderr.flush()
        for stream in (sys.stdout, sys.stderr):
            drain = getattr(stream, "drain", None)
            if drain is not None:
                drain()
    os._exit(0 if outcome.ok else 1)


def _open_streams(
    run: Run, fds: list[int] | None, redactor: Redactor, record_limit: int = 0
) -> Streams | None:
    """The instance's stream ends, or None when it has none."""
    if not run.inputs and not run.outputs:
        return None
    if fds is None or len(fds) != len(run.inputs) + len(run.outputs):
        for fd in fds or ():
            os.close(fd)
        raise StreamSetupError("the stream pipe ends did not arrive with the task")
    count = len(run.inputs)
    inputs = [InputSpec(p, fd) for p, fd in zip(run.inputs, fds[:count], strict=True)]
    outputs = [
        OutputSpec(o.consumer, fd, o.overflow_strategy, o.buffer_size)
        for o, fd in zip(run.outputs, fds[count:], strict=True)
    ]
    if record_limit:
        return Streams(run.task_name, inputs, outputs, redactor=redactor, record_limit=record_limit)
    return Streams(run.task_name, inputs, outputs, redactor=redactor)


class StreamSetupError(InternalError):
    """The parent sent fewer pipe ends than the run lists (a gxo bug)."""


def _end_streams(streams: Streams, outcome: _Outcome, redactor: Redactor) -> _Outcome:
    """Drain unread inputs, end or fail every output, then close every pipe end.

    A module that caught a stream error on an input still fails: a consumer never reports
    success on partial input.
    """
    try:
        error = streams.error
        if outcome.ok and error is not None:
            outcome = _Outcome(ok=False, reason=error.reason, error=str(error))
        if outcome.ok:
            outcome = _drain_inputs(streams, outcome)
        if outcome.ok:
            try:
                streams.finish()
            except ConsumersGone as exc:
                return _Outcome(
                    ok=False, reason=exc.reason, error=str(exc), summary=outcome.summary
                )
            except StreamError as exc:  # a record found unencodable at the end, say
                outcome = _Outcome(
                    ok=False, reason=exc.reason, error=str(exc), summary=outcome.summary
                )
            except OSError as exc:
                return _Outcome(ok=False, reason="stream_error", error=str(exc))
        if not outcome.ok:
            with contextlib.suppress(OSError, StreamError):
                streams.fail(outcome.reason, redactor.redact_text(outcome.error))
        return outcome
    finally:
        streams.close()


def _drain_inputs(streams: Streams, outcome: _Outcome) -> _Outcome:
    """Read what the module left unread on its inputs (DESIGN §15, "Streams that end early").

    The producers then complete instead of finding their consumer gone. Only a module that
    returned normally is drained: a failed one closes its inputs, which stops its producers
    promptly (they end ``Cancelled(consumer_failed)``).
    """
    try:
        streams.drain()
    except StreamError as exc:
        return _Outcome(ok=False, reason=exc.reason, error=str(exc))
    except OSError as exc:
        return _Outcome(ok=False, reason="stream_error", error=str(exc))
    return outcome


class _Outcome(msgspec.Struct):
    ok: bool
    summary: Any = None
    reason: str = ""
    skipped: bool = False
    error: str = ""
    traceback: str = ""
    retry: bool = True


#: Sends secret names to the parent and returns once every worker has resolved them.
Announce = Callable[[tuple[str, ...]], None]


def _announce_new_secrets(state: _WorkerState, announce: Announce | None) -> None:
    """Secret names this attempt resolved that no worker knew (computed at run time, such as
    ``secret(name_var)``) are announced before the module runs: its records carry the real
    values to other workers, which must mask them in their own results and output
    (DESIGN §15, "Records and secrets"). Only names cross, never values."""
    if announce is None or not state.resolver.has_accessed:
        return
    new = tuple(name for name in state.resolver.accessed if name not in state.known)
    if new:
        state.known.update(new)
        announce(new)


def _show_params(
    rendered: dict[str, Any], redactor: Redactor, relay: Callable[[bytes], object] | None
) -> None:
    """``-vv``: the params as the module gets them, secrets masked, on the relayed log.

    Through ``relay`` (the console without the attempt log's tee, as a command's live lines)
    when in a worker: it is gxo's line, not the task's output, so it is kept out of the
    attempt's ``.output`` log, its tail in the report and the FAILED lines, which stay what
    they are without ``-vv``. The parent relays it as ``task | params: ...``.
    """
    try:
        text = msgspec.json.encode(redactor.redact(rendered), enc_hook=repr).decode()
    except Exception as exc:  # noqa: BLE001 - never fail an attempt for a log line
        text = f"(not shown: {type(exc).__name__})"
    line = f"params: {redactor.redact_text(text)}\n"
    if relay is None:  # attempts run in the caller's process: its own stdout
        print(line, end="", flush=True)
        return
    with contextlib.suppress(OSError, ValueError):
        relay(line.encode("utf-8", "surrogateescape"))


def _attempt(
    run: Run, state: _WorkerState, streams: Streams | None = None, announce: Announce | None = None
) -> _Outcome:
    module_cls = state.module_classes.get(run.module)
    if module_cls is None:
        try:
            module_cls = state.module_classes[run.module] = load_module(run.module, state.modules)
        except ModuleLookupError as exc:
            return _Outcome(ok=False, reason="module_unavailable", error=str(exc))
    try:
        rendered = state.render_params(run)
    except SecretMissing as exc:
        return _Outcome(ok=False, reason="secret_missing", error=str(exc))
    except SecretProviderFailed as exc:
        return _Outcome(ok=False, reason="secret_provider_failed", error=str(exc), retry=False)
    except TemplateError as exc:
        return _Outcome(ok=False, reason="template_error", error=str(exc))
    _announce_new_secrets(state, announce)
    if not isinstance(rendered, dict):
        return _Outcome(ok=False, reason="bad_params", error="params must be a mapping")
    if state.config.show_params:
        _show_params(rendered, state.redactor, state.relay)
    ctx = ModuleContext(
        task_name=run.task_name,
        instance_id=run.instance_id,
        attempt=run.attempt,
        loop_index=run.loop_index,
        dry_run=run.dry_run,
        state=run.namespace,
        taint=state.redactor.add,
        playbook_dir=run.playbook_dir,
        streams=streams,
        capture=functools.partial(  # made only if the module reads it (exec does)
            capture_settings,
            run,
            state.config,
            state.redactor,
            owns_descendants=state.owns_descendants,
            spare=state.spare,
            relay=state.relay,
        ),
    )
    state.ctx = ctx
    if run.dry_run and not module_cls.supports_dry_run:
        if streams is not None:
            streams.stand_in = True  # its consumers must not take "no record" for real
            try:  # read the inputs to their end, so producers end normally; send nothing
                for _ in streams.batches():
                    pass
            except StreamError as exc:
                return _Outcome(ok=False, reason=exc.reason, error=str(exc))
        return _Outcome(
            ok=True, summary={"dry_run": True, "supported": False, "module": run.module}
        )
    try:
        params = convert_params(module_cls, rendered, unknown="ignore")
        if (
            run.skip_on_no_input
            and streams is not None
            and streams.all_empty()
            and not streams.inputs_stand_in  # a dry run's producer that did not really run
        ):
            return _Outcome(
                ok=True,
                skipped=True,
                reason="no_input",
                error="every stream input ended without a record",
            )
        summary = module_cls().run(params, ctx)
    except StreamError as exc:
        return _Outcome(ok=False, reason=exc.reason, error=str(exc))
    except ModuleError as exc:
        reason, message = _module_error_fields(exc)
        try:
            kept = _plain(exc.summary)
        except _SummaryError as bad:
            return _bad_summary(bad, f"{reason}: {message}")
        return _Outcome(ok=False, reason=reason, error=message, summary=kept, retry=bool(exc.retry))
    try:
        return _Outcome(ok=True, summary=_plain(summary))
    except _SummaryError as exc:
        return _bad_summary(exc)


def _module_error_fields(exc: ModuleError) -> tuple[str, str]:
    """The reason and message of a module's :class:`ModuleError`, as strings.

    A module is not type-checked at run time: ``ModuleError(obj)`` or ``reason=123`` reached
    the result as they were, and a result that is not a valid message made the parent kill
    the worker (before that, stop the run with an internal error). A message that is not a
    string is shown as ``str()`` shows it; a reason that is not a non-empty string is
    ``module_failed``, the default, with what the module gave named in the message.
    """
    message = exc.message if isinstance(exc.message, str) else _message(exc.message)
    reason = exc.reason
    if not isinstance(reason, str) or not reason:
        message = f"{message} (the module's ModuleError reason {_message(reason)!r} is not a name)"
        reason = "module_failed"
    return reason, message


#: What converting or encoding a summary raises when it is not plain data.
_SummaryError = (TypeError, ValueError, OverflowError, RecursionError, msgspec.EncodeError)


def _plain(value: Any) -> Any:
    """JSON-compatible builtins, so the result encodes and the parent never unpickles."""
    return msgspec.to_builtins(value, str_keys=True)


def _bad_summary(exc: BaseException, failure: str = "") -> _Outcome:
    """The module's result cannot be sent to the parent: ``bad_summary``, with the cause."""
    cause = (
        "it is nested too deeply (RecursionError)"
        if isinstance(exc, RecursionError)
        else f"{type(exc).__name__}: {exc}"
    )
    error = f"the module returned data that is not JSON-compatible: {cause}"
    if failure:
        error += f" (the module had failed: {failure})"
    return _Outcome(ok=False, reason="bad_summary", error=error)


def _describe(exc: BaseException) -> str:
    """``Type: message``, following ``__cause__``/``__context__`` the way a traceback does."""
    parts = []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        text = _message(current)
        parts.append(f"{type(current).__name__}: {text}" if text else type(current).__name__)
        current = current.__cause__ or (
            None if current.__suppress_context__ else current.__context__
        )
    return "; caused by ".join(parts)


def _message(exc: object) -> str:
    """``str(exc)``, or what :mod:`traceback` shows when the exception's ``__str__`` raises:
    a module's exception must fail its task, not end the worker that reports it."""
    try:
        return str(exc)
    except Exception:  # noqa: BLE001 - any error of the module's __str__
        return "<exception str() failed>"


def _redacted(
    instance_id: int,
    outcome: _Outcome,
    duration: float,
    started_at: float,
    redactor: Redactor,
    *,
    streams: list[EdgeStats] | None = None,
    secrets_accessed: list[str] | None = None,
    ctx: ModuleContext | None = None,
) -> Done:
    """The Done message with every tainted value masked; fails closed if masking fails."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    try:
        return Done(
            instance_id=instance_id,
            ok=outcome.ok,
            summary=redactor.redact(outcome.summary),
            reason=redactor.redact_text(outcome.reason),  # a module may name its own reason
            error=cap_text(redactor.redact_text(outcome.error)),
            traceback=cap_text(redactor.redact_text(outcome.traceback)),
            outputs=_redacted_outputs(ctx, redactor),
            leftovers_killed=ctx.leftovers_killed if ctx is not None else 0,
            duration=duration,
            max_rss_kib=rss,
            started_at=started_at,
            streams=streams or [],
            skipped=outcome.skipped,
            secrets_accessed=secrets_accessed or [],
            retry=outcome.retry,
        )
    except Exception as exc:  # noqa: BLE001 - nothing unredacted may leave, whatever failed
        return Done(
            instance_id=instance_id,
            ok=False,
            reason="redaction_failed",
            error=f"the result was withheld because redaction failed ({type(exc).__name__}); "
            f"values were replaced by {REDACTED}",
            duration=duration,
            max_rss_kib=rss,
            started_at=started_at,
        )


def _redacted_outputs(ctx: ModuleContext | None, redactor: Redactor) -> list[CapturedOutput]:
    """What the attempt's commands printed (tails, sizes, log paths), tails redacted."""
    if ctx is None or not ctx.outputs:
        return []
    return [
        msgspec.structs.replace(output, tail=redactor.redact(output.tail)) for output in ctx.outputs
    ]


def _setup_process(
    console: socket.socket,
    redactor: Redactor,
    log_level: int,
    core_dumps: bool = False,
    tee: AttemptOutput | None = None,
    *,
    guard: bool = True,
) -> WorkerOutput:
    """Own session, guard, death signal, signals, no core files, redacted output to the
    console socket (and to ``tee``, the current attempt's log)."""
    global _guard_pid, _own_session  # noqa: PLW0603 - one worker per process
    leader = False
    with contextlib.suppress(PermissionError):  # already a session leader under some launchers
        os.setsid()
        leader = True
    _set_signals()
    _drop_forkserver_alive_fd()
    # Before any thread starts. The write end stays open (close-on-exec) for the worker's
    # whole life: the kernel closing it when the worker dies is what wakes the guard.
    if guard:
        _guard_pid, _ = start_guard(os.getpid())
    _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    _own_session = _prctl(_PR_SET_CHILD_SUBREAPER, 1) and leader
    if os.getppid() == 1:
        _on_parent_death()  # the parent died before we armed the signal
    if not core_dumps:
        _no_core_files()
    return _redirect_output(console, redactor, log_level, tee)


#: Signals a worker ignores (DESIGN §15): the parent owns cancellation (SIGINT), SIGUSR1/2
#: mean "drain" to the parent only, and a hangup must not kill a worker before the parent
#: cancels its instance.
IGNORED_SIGNALS = (signal.SIGINT, signal.SIGUSR1, signal.SIGUSR2, signal.SIGHUP)


def _ignore(signum: int, frame: object) -> None:
    """A handler that does nothing: "ignored" for the worker, while a command it runs starts
    with the default disposition (exec resets caught signals to the default; SIG_IGN would
    be inherited, and a command could then not be interrupted)."""


def _set_signals() -> None:
    for signum in IGNORED_SIGNALS:
        signal.signal(signum, _ignore)
    signal.signal(signal.SIGTERM, _on_stop)


def _no_core_files() -> None:
    """RLIMIT_CORE 0 (soft and hard) for the worker and every command it starts: a crash must
    not write a core file, which can hold secrets, into the working directory. ``--core-dumps``
    keeps the limit gxo was started with."""
    with contextlib.suppress(OSError, ValueError):
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _redirect_output(
    console: socket.socket,
    redactor: Redactor,
    log_level: int,
    tee: AttemptOutput | None = None,
) -> WorkerOutput:
    """Route every output channel of this process through redaction to ``console``.

    The console socket itself stays private (close-on-exec, not 1 or 2): nothing but the
    redacting writers can write to it.
    """
    console.setblocking(True)
    return redirect_output(console.detach(), redactor, log_level, tee=tee)


def _drop_forkserver_alive_fd() -> None:
    """Close this process's copy of the pipe that tells the forkserver its client is alive.

    Under forkserver our parent is the forkserver, not gxo, so PDEATHSIG fires only when the
    forkserver exits, and it exits only when every write end of that pipe is closed.
    multiprocessing hands each process it starts a copy (for starting grandchildren, which a
    worker never does); while a worker keeps it, a SIGKILLed gxo leaves the forkserver, its
    workers and their commands running for ever.
    """
    from gxo.pool import helpers

    if helpers.forked_child_fds is not None:  # forked by gxo's own forkserver loop
        alive = helpers.forked_child_fds[0]
        helpers.forked_child_fds = (None, helpers.forked_child_fds[1])
        if isinstance(alive, int):
            with contextlib.suppress(OSError):
                os.close(alive)
        return
    forkserver = sys.modules.get("multiprocessing.forkserver")
    server = getattr(forkserver, "_forkserver", None)
    fd = getattr(server, "_forkserver_alive_fd", None)
    if isinstance(fd, int):
        with contextlib.suppress(OSError):
            os.close(fd)
        server._forkserver_alive_fd = None  # type: ignore[union-attr]


def _prctl(option: int, value: int) -> bool:
    """Whether the call succeeded. Linux only; elsewhere the control socket's EOF still ends
    the worker."""
    with contextlib.suppress(OSError, AttributeError):
        return bool(_libc().prctl(option, value, 0, 0, 0) == 0)
    return False


@functools.cache
def _libc() -> ctypes.CDLL:
    """The C library, loaded once (in the forkserver, so fresh processes inherit it)."""
    return ctypes.CDLL(None, use_errno=True)


def warm_up() -> None:
    """Build, in the forkserver, what every worker builds at start and would otherwise build
    again in each fresh ``isolation: process`` attempt: msgspec's type information for the
    control messages (decoding a union of Structs first inspects every annotation) and the C
    library handle."""
    FrameReader(ToWorker)
    FrameWriter().add(Done(instance_id=0, ok=True))
    _libc()


def _on_stop(signum: int, frame: object) -> None:
    """SIGTERM: the parent is stopping the current instance.

    Commands the instance started got SIGTERM too: while one is alive, the worker stays to
    collect it (it has the grace period), reports, and exits. With none, the instance is
    Python code running in this process, which nothing would interrupt before the SIGKILL at
    the end of the grace period: SIGTERM stops it now, as it stops any process that does not
    handle it.
    """
    global _stop_requested  # noqa: PLW0603 - a signal handler can only talk through a global
    _stop_requested = True
    if command_running():
        return  # the command got the SIGTERM too: its result is collected, then we exit
    import psutil  # only here: a worker does not need it to start or to run a module

    try:
        has_children = any(c.pid != _guard_pid for c in psutil.Process().children())
    except psutil.Error:
        has_children = True
    if not has_children:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)


def _on_parent_death() -> None:
    """The parent is gone: kill everything this worker started, then exit."""
    kill_session(os.getpid(), signal.SIGKILL, include_self=False)
    os._exit(128 + signal.SIGKILL)


def in_process(config: WorkerConfig | None = None) -> Callable[[Run, list[int] | None], Done]:
    """Run attempts in the calling process, exactly as a worker runs them (minus the process
    set-up): for the in-process executor of tests. Not crash-isolated."""
    state = _WorkerState(config)
    state.preload(config.secret_names if config is not None else ())

    def attempt(run: Run, fds: list[int] | None = None) -> Done:
        return run_attempt(run, state, fds)

    return attempt
