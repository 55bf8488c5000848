"""The worker process: receive a task instance, acknowledge it, run it, send the redacted result.

A worker never raises out of its loop. Whatever a module does (raise, ``sys.exit``, return
something unencodable) becomes a failed :class:`~gxo.pool.protocol.Done`; only a real death
(``os._exit``, a signal) ends the process, and the parent pins that on the acknowledged
instance.

Process setup, done once:

- its own session (``setsid``): the scheduler owns cancellation, so a Ctrl-C on the terminal
  never reaches a worker or its commands directly, and every descendant that does not leave
  the session can be found and killed by session id;
- ``PR_SET_PDEATHSIG``: if the process that started it dies, the worker kills its session
  and exits, so a SIGKILLed ``gxo`` leaves no orphan behind;
- file descriptors 1 and 2 point at the console socket the parent reads, so the last lines a
  crashing module printed can be shown with its failure.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import resource
import signal
import socket
import sys
import time
import traceback
from collections import deque
from typing import Any

import msgspec

from gxo.errors import ModuleLookupError, SecretMissing, TemplateError
from gxo.modules import ModuleContext, ModuleError, convert_params
from gxo.modules.registry import load_module
from gxo.pool.protocol import Ack, Done, FrameReader, FrameWriter, Run, Stop, ToWorker
from gxo.pool.session import kill_session
from gxo.secrets.providers import EnvProvider
from gxo.secrets.redact import REDACTED, Redactor
from gxo.secrets.resolver import SecretResolver
from gxo.template import CompiledValue, compile_value

__all__ = ["execute", "worker_main"]

_PR_SET_PDEATHSIG = 1
_RECV_SIZE = 1 << 16


def worker_main(control: socket.socket, console: socket.socket) -> None:
    """Entry point of a worker process (the target of ``multiprocessing.Process``)."""
    _setup_process(console)
    state = _WorkerState()
    reader = FrameReader(ToWorker)
    writer = FrameWriter()
    pending: deque[Run] = deque()
    acknowledged = False  # whether pending[0]'s Ack already went out with the last result
    control.setblocking(True)
    try:
        while True:
            if not pending:
                data = control.recv(_RECV_SIZE)
                if not data or _queue(reader.feed(data), pending):
                    return  # the parent closed the channel or asked us to stop
                continue
            run = pending.popleft()
            if not acknowledged:
                writer.add(Ack(run.instance_id))
                control.sendall(writer.take())
            writer.add(execute(run, state))
            # Coalesce: when the next instance is already here, its Ack rides with this result.
            stop = _queue(reader.feed(_recv_ready(control)), pending)
            acknowledged = bool(pending) and not stop
            if acknowledged:
                writer.add(Ack(pending[0].instance_id))
            control.sendall(writer.take())
            if stop:
                return
    except (BrokenPipeError, ConnectionResetError):
        return  # the parent is gone; PDEATHSIG or this exit ends the session
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        kill_session(os.getpid(), signal.SIGKILL, include_self=False)


def _queue(messages: list[Any], pending: deque[Run]) -> bool:
    """Queue received runs; True when a Stop arrived."""
    for message in messages:
        if isinstance(message, Stop):
            return True
        pending.append(message)
    return False


def _recv_ready(control: socket.socket) -> bytes:
    """Whatever is already readable, without blocking."""
    chunks = []
    while True:
        try:
            chunk = control.recv(_RECV_SIZE, socket.MSG_DONTWAIT)
        except BlockingIOError:
            break
        if not chunk:
            break
        chunks.append(chunk)
        if len(chunk) < _RECV_SIZE:
            break
    return b"".join(chunks)


class _WorkerState:
    """Per-worker caches and the worker-wide secret registry."""

    def __init__(self) -> None:
        self.compiled: dict[tuple[int, str], CompiledValue] = {}
        self.redactor = Redactor()
        self.resolver = SecretResolver(EnvProvider(), self.redactor)

    def params_template(self, run: Run) -> CompiledValue:
        key = (run.task_index, run.task_name)
        compiled = self.compiled.get(key)
        if compiled is None:
            compiled = compile_value(run.params, where=f"$.tasks[{run.task_index}].params")
            self.compiled[key] = compiled
        return compiled


def execute(run: Run, state: _WorkerState) -> Done:
    """Run one attempt and return its redacted outcome. Never raises."""
    started = time.perf_counter()
    try:
        outcome = _attempt(run, state)
    except BaseException as exc:  # noqa: BLE001 - a module may raise anything, even SystemExit
        outcome = _Outcome(
            ok=False,
            reason=f"module_raised({type(exc).__name__})",
            error=_describe(exc),
            traceback=traceback.format_exc(),
        )
    duration = time.perf_counter() - started
    return _redacted(run.instance_id, outcome, duration, state.redactor)


class _Outcome(msgspec.Struct):
    ok: bool
    summary: Any = None
    reason: str = ""
    error: str = ""
    traceback: str = ""


def _attempt(run: Run, state: _WorkerState) -> _Outcome:
    try:
        module_cls = load_module(run.module)
    except ModuleLookupError as exc:
        return _Outcome(ok=False, reason="module_unavailable", error=str(exc))
    try:
        rendered = state.params_template(run).render(run.namespace, state.resolver)
    except SecretMissing as exc:
        return _Outcome(ok=False, reason="secret_missing", error=str(exc))
    except TemplateError as exc:
        return _Outcome(ok=False, reason="template_error", error=str(exc))
    if not isinstance(rendered, dict):
        return _Outcome(ok=False, reason="bad_params", error="params must be a mapping")
    ctx = ModuleContext(
        task_name=run.task_name,
        instance_id=run.instance_id,
        attempt=run.attempt,
        loop_index=run.loop_index,
        dry_run=run.dry_run,
        state=run.namespace,
        taint=state.redactor.add,
        playbook_dir=run.playbook_dir,
    )
    if run.dry_run and not module_cls.supports_dry_run:
        return _Outcome(
            ok=True, summary={"dry_run": True, "supported": False, "module": run.module}
        )
    try:
        params = convert_params(module_cls, rendered)
        summary = module_cls().run(params, ctx)
    except ModuleError as exc:
        return _Outcome(ok=False, reason=exc.reason, error=exc.message, summary=_plain(exc.summary))
    try:
        return _Outcome(ok=True, summary=_plain(summary))
    except (TypeError, ValueError, msgspec.EncodeError) as exc:
        return _Outcome(
            ok=False,
            reason="bad_summary",
            error=f"the module returned data that is not JSON-compatible: {exc}",
        )


def _plain(value: Any) -> Any:
    """JSON-compatible builtins, so the result encodes and the parent never unpickles."""
    return msgspec.to_builtins(value, str_keys=True)


def _describe(exc: BaseException) -> str:
    """``Type: message``, following ``__cause__``/``__context__`` the way a traceback does."""
    parts = []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        text = str(current)
        parts.append(f"{type(current).__name__}: {text}" if text else type(current).__name__)
        current = current.__cause__ or (
            None if current.__suppress_context__ else current.__context__
        )
    return "; caused by ".join(parts)


def _redacted(instance_id: int, outcome: _Outcome, duration: float, redactor: Redactor) -> Done:
    """The Done message with every tainted value masked; fails closed if masking fails."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    try:
        return Done(
            instance_id=instance_id,
            ok=outcome.ok,
            summary=redactor.redact(outcome.summary),
            reason=outcome.reason,
            error=redactor.redact_text(outcome.error),
            traceback=redactor.redact_text(outcome.traceback),
            duration=duration,
            max_rss_kib=rss,
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
        )


def _setup_process(console: socket.socket) -> None:
    """Own session, death signal, ignored SIGINT, stdout/stderr to the console socket."""
    with contextlib.suppress(PermissionError):  # already a session leader under some launchers
        os.setsid()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, _on_parent_death)
    _set_parent_death_signal(signal.SIGHUP)
    if os.getppid() == 1:
        _on_parent_death(signal.SIGHUP, None)  # the parent died before we armed the signal
    fd = console.fileno()
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    console.close()
    sys.stdout = open(1, "w", encoding="utf-8", errors="replace", buffering=1, closefd=False)  # noqa: SIM115
    sys.stderr = open(2, "w", encoding="utf-8", errors="replace", buffering=1, closefd=False)  # noqa: SIM115


def _set_parent_death_signal(signum: int) -> None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signum, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: the control socket's EOF still ends us
        pass


def _on_parent_death(signum: int, frame: object) -> None:
    """The parent is gone: kill everything this worker started, then exit."""
    kill_session(os.getpid(), signal.SIGKILL, include_self=False)
    os._exit(128 + signum)
