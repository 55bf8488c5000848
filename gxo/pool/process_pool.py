"""The pool of worker processes, seen from the parent.

::

    scheduler loop ── submit(Run) ──► _Worker.control (AF_UNIX socketpair) ──► worker_main
          ▲                                                                       │
          └── wait(timeout) ◄── selector: control sockets (Ack/Done frames),     │
                                console sockets (stdout/stderr lines),  ◄────────┘
                                process sentinels (death), wake-up fd (signals)

``wait`` is the only place the parent blocks, and it wakes on any of those at once (the
pattern of CPython's ``concurrent.futures.process``): a worker that dies in any way is seen
through its sentinel, never by a read that hangs. A death is pinned on the instance the worker
acknowledged; instances sent to it but not yet acknowledged are handed back to be dispatched
elsewhere. A dead worker is replaced at once.

Killing an instance (timeout, interrupt) is a ladder that never blocks the loop: SIGTERM to the
worker's session at once, SIGKILL when the grace period ends, both driven by ``wait``.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import selectors
import signal
import socket
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.process import BaseProcess
from typing import NamedTuple

from gxo.errors import InternalError
from gxo.pool.protocol import Ack, Done, FrameReader, FrameWriter, Run, Stop, ToParent
from gxo.pool.session import kill_session

__all__ = [
    "DEFAULT_START_METHOD",
    "Finished",
    "Lost",
    "PoolEvent",
    "ProcessPool",
    "Returned",
    "Started",
]

DEFAULT_START_METHOD = "forkserver"
_CONSOLE_TAIL = 20
_RECV_SIZE = 1 << 18


class Started(NamedTuple):
    """The worker acknowledged the instance: it is running now."""

    instance_id: int
    pid: int


class Finished(NamedTuple):
    """The instance's attempt ended and the worker sent its result."""

    done: Done


class Lost(NamedTuple):
    """The worker died (or was killed) while running the instance."""

    instance_id: int
    reason: str
    detail: str


class Returned(NamedTuple):
    """The instance was sent to a worker that died before starting it: dispatch it again."""

    instance_id: int


PoolEvent = Started | Finished | Lost | Returned


@dataclass(eq=False)
class _Worker:
    process: BaseProcess
    control: socket.socket
    console: socket.socket
    reader: FrameReader
    inflight: deque[Run] = field(default_factory=deque)
    running: int | None = None
    kill_reason: str = ""
    kill_deadline: float | None = None
    console_open: bool = True
    console_partial: bytes = b""
    console_tail: deque[str] = field(default_factory=lambda: deque(maxlen=_CONSOLE_TAIL))
    instance_tail: list[str] = field(default_factory=list)

    @property
    def pid(self) -> int:
        pid = self.process.pid
        assert pid is not None
        return pid


OutputHandler = Callable[[int | None, str], None]


class ProcessPool:
    """N worker processes that run task instances and report Started/Finished/Lost events.

    Args:
        workers: how many processes.
        start_method: ``forkserver`` (default), ``spawn`` or ``fork``.
        wakeup_fd: a file descriptor that, when readable, makes ``wait`` return early
            (the engine's signal wake-up pipe).
        grace: seconds between SIGTERM and SIGKILL when an instance is stopped.
        on_output: called with (instance id or None, line) for each line a worker printed.
    """

    def __init__(
        self,
        workers: int,
        *,
        start_method: str = DEFAULT_START_METHOD,
        wakeup_fd: int | None = None,
        grace: float = 5.0,
        on_output: OutputHandler | None = None,
    ) -> None:
        if workers < 1:
            raise ValueError("a pool needs at least one worker")
        self.size = workers
        self.grace = grace
        self._context = multiprocessing.get_context(start_method)
        if start_method == "forkserver":
            self._context.set_forkserver_preload(["gxo.pool.worker"])
        self._selector = selectors.DefaultSelector()
        self._workers: list[_Worker] = []
        self._by_instance: dict[int, _Worker] = {}
        self._writer = FrameWriter()
        self._wakeup_fd = wakeup_fd
        self._on_output = on_output
        self._deaths_without_progress = 0
        self._cancel_on_ack: dict[int, str] = {}
        self._closed = False
        self.restarts = 0
        if wakeup_fd is not None:
            self._selector.register(wakeup_fd, selectors.EVENT_READ, ("wakeup", None))

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Start every worker (they import gxo and wait for work)."""
        for _ in range(self.size):
            self._workers.append(self._spawn())

    def close(self, timeout: float = 5.0) -> None:
        """Ask idle workers to stop, kill the rest, and reap every process. Idempotent."""
        if self._closed:
            return
        self._closed = True
        for worker in self._workers:
            if worker.inflight:
                kill_session(worker.pid, signal.SIGKILL)
            else:
                self._send(worker, Stop())
        deadline = time.monotonic() + timeout
        for worker in self._workers:
            worker.process.join(max(0.0, deadline - time.monotonic()))
            if worker.process.exitcode is None:
                kill_session(worker.pid, signal.SIGKILL)
                worker.process.join()
            self._discard(worker)
        self._workers.clear()
        self._selector.close()

    def __enter__(self) -> ProcessPool:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- dispatch ----------------------------------------------------------------------------

    def idle_workers(self) -> int:
        """Workers with nothing in flight."""
        return sum(1 for w in self._workers if not w.inflight and not w.kill_reason)

    def submit(self, run: Run, *, queue_behind: bool = False, depth: int = 2) -> bool:
        """Send ``run`` to the least-loaded worker; False when none can take it.

        With ``queue_behind`` the instance may wait behind up to ``depth - 1`` others on a busy
        worker (worth it for short tasks: the worker starts it without a round trip);
        otherwise it only goes to an idle worker.
        """
        limit = depth if queue_behind else 1
        best: _Worker | None = None
        for worker in self._workers:
            if worker.kill_reason or len(worker.inflight) >= limit:
                continue
            if best is None or len(worker.inflight) < len(best.inflight):
                best = worker
                if not worker.inflight:
                    break
        if best is None:
            return False
        best.inflight.append(run)
        self._by_instance[run.instance_id] = best
        self._send(best, run)
        return True

    def cancel(self, instance_id: int, reason: str) -> None:
        """Stop the instance: SIGTERM its worker's session now, SIGKILL after the grace period.

        An instance that is only queued on a worker is handed back instead (``Returned``) once
        the running one ends; the caller decides whether to dispatch it again.
        """
        worker = self._by_instance.get(instance_id)
        if worker is None or worker.kill_reason:
            return
        if worker.running != instance_id:
            self._cancel_on_ack[instance_id] = reason  # queued behind another: kill on start
            return
        worker.kill_reason = reason
        worker.kill_deadline = time.monotonic() + self.grace
        kill_session(worker.pid, signal.SIGTERM)

    def hurry(self) -> None:
        """Skip the rest of every grace period: SIGKILL what is being stopped now."""
        for worker in self._workers:
            if worker.kill_deadline is not None:
                worker.kill_deadline = time.monotonic()

    # -- waiting -----------------------------------------------------------------------------

    def next_deadline(self) -> float | None:
        """The earliest SIGKILL escalation pending, as a monotonic time."""
        deadlines = [w.kill_deadline for w in self._workers if w.kill_deadline is not None]
        return min(deadlines) if deadlines else None

    def wait(self, timeout: float | None) -> list[PoolEvent]:
        """Block until something happens (or ``timeout`` seconds pass); return the events."""
        escalation = self.next_deadline()
        if escalation is not None:
            until = max(0.0, escalation - time.monotonic())
            timeout = until if timeout is None else min(timeout, until)
        events: list[PoolEvent] = []
        dead: list[_Worker] = []
        for key, _ in self._selector.select(timeout):
            kind, worker = key.data
            if kind == "wakeup":
                _drain(key.fd)
            elif kind == "control":
                self._read_control(worker, events)
            elif kind == "console":
                self._read_console(worker)
            elif kind == "sentinel":
                dead.append(worker)
        for worker in dead:
            self._on_death(worker, events)
        self._escalate()
        return events

    def _read_control(self, worker: _Worker, events: list[PoolEvent]) -> None:
        try:
            data = worker.control.recv(_RECV_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._selector.unregister(worker.control)
            return  # EOF: the sentinel reports the death
        for message in worker.reader.feed(data):
            self._on_message(worker, message, events)

    def _on_message(self, worker: _Worker, message: ToParent, events: list[PoolEvent]) -> None:
        if isinstance(message, Ack):
            worker.running = message.instance_id
            worker.instance_tail = []
            events.append(Started(message.instance_id, worker.pid))
            reason = self._cancel_on_ack.pop(message.instance_id, None)
            if reason is not None:
                self.cancel(message.instance_id, reason)
            return
        worker.running = None
        self._deaths_without_progress = 0
        if worker.inflight and worker.inflight[0].instance_id == message.instance_id:
            worker.inflight.popleft()
        self._by_instance.pop(message.instance_id, None)
        events.append(Finished(message))

    def _read_console(self, worker: _Worker) -> None:
        try:
            data = worker.console.recv(_RECV_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._flush_console(worker)
            return
        *lines, worker.console_partial = (worker.console_partial + data).split(b"\n")
        for raw in lines:
            self._emit_line(worker, raw)

    def _flush_console(self, worker: _Worker) -> None:
        if worker.console_open:
            self._selector.unregister(worker.console)
            worker.console_open = False
        if worker.console_partial:
            self._emit_line(worker, worker.console_partial)
            worker.console_partial = b""

    def _emit_line(self, worker: _Worker, raw: bytes) -> None:
        line = raw.decode("utf-8", "replace").rstrip("\r")
        worker.console_tail.append(line)
        if worker.running is not None:
            worker.instance_tail.append(line)
            del worker.instance_tail[:-_CONSOLE_TAIL]
        if self._on_output is not None:
            self._on_output(worker.running, line)

    def _on_death(self, worker: _Worker, events: list[PoolEvent]) -> None:
        # Results the worker sent before dying still count: read the socket to its end.
        while True:
            try:
                data = worker.control.recv(_RECV_SIZE)
            except (BlockingIOError, InterruptedError, OSError):
                break
            if not data:
                break
            for message in worker.reader.feed(data):
                self._on_message(worker, message, events)
        while worker.console_open:
            try:
                data = worker.console.recv(_RECV_SIZE)
            except (BlockingIOError, InterruptedError, OSError):
                data = b""
            if not data:
                self._flush_console(worker)
                break
            *lines, worker.console_partial = (worker.console_partial + data).split(b"\n")
            for raw in lines:
                self._emit_line(worker, raw)
        worker.process.join()
        # Whatever the worker started may outlive it (a command in its own process group):
        # its session is killed so nothing it started survives it.
        kill_session(worker.pid, signal.SIGKILL)
        exitcode = worker.process.exitcode
        if worker.running is not None:
            reason = worker.kill_reason or _death_reason(exitcode)
            events.append(Lost(worker.running, reason, _detail(exitcode, worker.instance_tail)))
            self._by_instance.pop(worker.running, None)
        elif not worker.kill_reason:
            self._deaths_without_progress += 1
        for run in worker.inflight:
            if run.instance_id != worker.running:
                self._by_instance.pop(run.instance_id, None)
                events.append(Returned(run.instance_id))
        self._discard(worker)
        self._workers.remove(worker)
        if self._closed:
            return
        if self._deaths_without_progress > 2 * self.size + 3:
            tail = "\n".join(worker.console_tail)
            raise InternalError(f"worker processes keep dying before running anything:\n{tail}")
        self.restarts += 1
        self._workers.append(self._spawn())

    def _escalate(self) -> None:
        now = time.monotonic()
        for worker in self._workers:
            if worker.kill_deadline is not None and now >= worker.kill_deadline:
                worker.kill_deadline = None
                kill_session(worker.pid, signal.SIGKILL)

    # -- plumbing ----------------------------------------------------------------------------

    def _spawn(self) -> _Worker:
        from gxo.pool.worker import worker_main

        control, child_control = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        console, child_console = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        process: BaseProcess = self._context.Process(  # type: ignore[attr-defined]
            target=worker_main, args=(child_control, child_console), name="gxo-worker"
        )
        try:
            process.start()
        finally:
            child_control.close()
            child_console.close()
        control.setblocking(False)
        console.setblocking(False)
        console.shutdown(socket.SHUT_WR)
        worker = _Worker(process, control, console, FrameReader(ToParent))
        self._selector.register(control, selectors.EVENT_READ, ("control", worker))
        self._selector.register(console, selectors.EVENT_READ, ("console", worker))
        self._selector.register(process.sentinel, selectors.EVENT_READ, ("sentinel", worker))
        return worker

    def _discard(self, worker: _Worker) -> None:
        for fileobj in (worker.control, worker.console, worker.process.sentinel):
            with contextlib.suppress(KeyError, ValueError):
                self._selector.unregister(fileobj)
        worker.control.close()
        worker.console.close()
        worker.process.close()

    def _send(self, worker: _Worker, message: Run | Stop) -> None:
        self._writer.add(message)
        data = self._writer.take()
        try:
            # Control sockets are non-blocking for reads; a large Run may need a blocking send.
            worker.control.setblocking(True)
            worker.control.sendall(data)
        except OSError:
            pass  # the worker is dying; its sentinel will tell
        finally:
            worker.control.setblocking(False)


def _drain(fd: int) -> None:
    try:
        while os.read(fd, 4096):
            pass
    except (BlockingIOError, InterruptedError):
        pass


def _death_reason(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = str(-exitcode)
        return f"worker_signaled({name})"
    return f"worker_exited({exitcode})"


def _detail(exitcode: int | None, tail: list[str]) -> str:
    if exitcode is not None and exitcode < 0:
        try:
            what = f"the worker process was killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            what = f"the worker process was killed by signal {-exitcode}"
    else:
        what = f"the worker process exited with status {exitcode}"
    if tail:
        return what + "; its last output:\n" + "\n".join(tail)
    return what
