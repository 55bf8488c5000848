"""Where a worker process starts: the parent names this function, the child imports the rest.

The pool hands ``worker_main`` to multiprocessing as the process target, which the forkserver
(and spawn) receive by reference. Naming it here rather than in :mod:`gxo.pool.worker` keeps
the worker's own imports (module SDK, secrets, redaction, ctypes) out of the parent; the child
forked from the forkserver has them preloaded already.

:func:`launch` starts one (the pool's every worker); :func:`start_ahead` starts the first
one before there is a pool, for :func:`take_ahead` to hand to the pool that asks for a worker
with the same configuration.
"""

from __future__ import annotations

import os
import sys
from typing import Any

TYPE_CHECKING = False  # typing.TYPE_CHECKING: see gxo.pool

if TYPE_CHECKING:
    import socket
    from multiprocessing.context import BaseContext
    from multiprocessing.process import BaseProcess
    from typing import Protocol

    from gxo.pool.slot import AckSlot
    from gxo.wire import WorkerConfig

    class WorkerProcess(Protocol):
        """What the pool uses of a worker's process: a :class:`multiprocessing.Process`,
        or the :class:`ForkedProcess` of a worker started without multiprocessing."""

        @property
        def pid(self) -> int | None: ...
        @property
        def sentinel(self) -> int: ...
        @property
        def exitcode(self) -> int | None: ...
        def join(self, timeout: float | None = None) -> None: ...
        def close(self) -> None: ...

    #: A started worker process and the parent's ends of its channels: the process, its
    #: acknowledgement slot, and its control, console and notices sockets.
    Launched = tuple[WorkerProcess, AckSlot, socket.socket, socket.socket, socket.socket]

__all__ = ["launch", "launch_forked", "start_ahead", "stop_ahead", "take_ahead", "worker_main"]


def worker_main(*args: Any) -> None:
    """Run :func:`gxo.pool.worker.worker_main` with ``args`` (in the worker process)."""
    from gxo.pool.worker import worker_main as main

    main(*args)


def launch(context: BaseContext, config: WorkerConfig | None, oneshot: bool) -> Launched:
    """Start a worker process of ``context`` with ``config``; its parent's ends of its
    channels (blocking, as made: the pool sets them up)."""
    import socket

    from gxo.pool.helpers import main_module_hidden
    from gxo.pool.slot import AckSlot

    slot = AckSlot()  # first: it may refuse (a file-size limit of 0), with nothing to close
    control, child_control = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    console, child_console = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    notices, child_notices = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    process: BaseProcess = context.Process(  # type: ignore[attr-defined]
        target=worker_main,
        args=(child_control, child_console, slot, config, oneshot, child_notices),
        name="gxo-attempt" if oneshot else "gxo-worker",
    )
    try:
        with main_module_hidden():
            process.start()
    except BaseException:
        for end in (control, console, notices, slot):
            end.close()
        raise
    finally:
        child_control.close()
        child_console.close()
        child_notices.close()
    return process, slot, control, console, notices


#: The worker :func:`start_ahead` started, with its configuration, until a pool takes it
#: (:func:`take_ahead`) or it is stopped (:func:`stop_ahead`).
_ahead: list[tuple[WorkerConfig, Launched]] = []


def start_ahead(config: WorkerConfig) -> bool:
    """Start the run's first pooled worker now, before the pool exists, without waiting for
    the forkserver the ``gxo`` command forked; True if started (asked for).

    Its start (the fork, the preparation data, its session, its guard, its threads: 6-8 ms)
    then overlaps what the parent does before its pool starts (importing the engine, the
    pool and the scheduler, opening the journal) instead of following it. The pool takes it
    only when it asks for a worker with exactly ``config`` (:func:`take_ahead`); it is the
    same process the pool would have started, only sooner.

    While multiprocessing does not know the forkserver, the request is sent and not waited
    for: the forkserver forks the worker as soon as its own preload is done, and the pool
    reads the worker's pid when it takes it. Otherwise only when the forkserver is ready
    (multiprocessing would wait for it).
    """
    from gxo.pool.helpers import adopt_forked, forked_forkserver, forkserver_ready

    if _ahead:
        return False
    forked = forked_forkserver()
    if forked is not None:  # multiprocessing not imported: asked as multiprocessing would
        _ahead.append((config, _launch_forked(*forked, config, False, wait=False)))
        return True
    if not forkserver_ready():
        return False
    import multiprocessing

    adopt_forked()
    _ahead.append((config, launch(multiprocessing.get_context("forkserver"), config, False)))
    return True


class ForkedProcess:
    """A worker the forkserver forked at this process's request without multiprocessing
    (:func:`_launch_forked`): what the pool uses of a :class:`multiprocessing.Process`,
    read the way multiprocessing's forkserver ``Popen`` reads it (the forkserver writes the
    pid, then the exit code, on the ``sentinel`` pipe)."""

    def __init__(self, pid: int | None, sentinel: int, keep: int) -> None:
        self._pid = pid
        self.sentinel = sentinel
        #: The write end of the child's data pipe, kept open while the process runs: its end
        #: of file is how the child learns that its parent died (multiprocessing's sentinel).
        self._keep = keep
        self._exitcode: int | None = None
        self._closed = False

    @property
    def pid(self) -> int | None:
        """The worker's pid: read when first asked, which waits for the forkserver to fork
        it (a forkserver that died first raises ``EOFError``, as multiprocessing's does)."""
        if self._pid is None and self._exitcode is None and not self._closed:
            self._pid = _read_signed(self.sentinel)
        return self._pid

    @property
    def exitcode(self) -> int | None:
        return self._poll(0.0)

    def join(self, timeout: float | None = None) -> None:
        self._poll(timeout)

    def _poll(self, timeout: float | None) -> int | None:
        if self._exitcode is None and not self._closed:
            import select

            try:
                self.pid  # noqa: B018 - first on the pipe: the pid, then the exit code
            except (OSError, EOFError):
                self._exitcode = 255
                return self._exitcode
            if not select.select([self.sentinel], [], [], timeout)[0]:
                return None
            try:
                self._exitcode = _read_signed(self.sentinel)
            except (OSError, EOFError):
                self._exitcode = 255  # as multiprocessing says when the forkserver cannot
        return self._exitcode

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            os.close(self.sentinel)
            os.close(self._keep)


def _read_signed(fd: int) -> int:
    """The signed 64-bit number the forkserver writes (``forkserver.read_signed``)."""
    data = b""
    while len(data) < 8:
        chunk = os.read(fd, 8 - len(data))
        if not chunk:
            raise EOFError("unexpected EOF")
        data += chunk
    return int.from_bytes(data, sys.byteorder, signed=True)


#: The pickle of multiprocessing's preparation data when there is none to give (the
#: forkserver's children are forks of it: ``sys.path``, the main module... are its own).
_NO_PREPARATION = b"}."


def launch_forked(config: WorkerConfig | None, oneshot: bool) -> Launched | None:
    """Start a worker with ``config`` from the forkserver the ``gxo`` command forked, without
    multiprocessing (:func:`_launch_forked`), while multiprocessing does not know that
    forkserver (this process has started no process through it); else None."""
    from gxo.pool.helpers import forget_dead_forked, forked_forkserver

    forked = forked_forkserver()
    if forked is None:
        return None
    try:
        return _launch_forked(*forked, config, oneshot)
    except _FORKSERVER_GONE:
        # Nothing listens at its address, or it hung up without an answer: it is dead or
        # dying (a module killed it). Reaped and forgotten, so the caller starts the worker
        # through multiprocessing, and a new forkserver.
        forget_dead_forked()
        return None


#: How a request to a forkserver that died (or is dying) fails: refused or missing address,
#: a reset connection, or the end of the pipe its answer was to come on.
_FORKSERVER_GONE = (
    ConnectionRefusedError,
    ConnectionResetError,
    BrokenPipeError,
    FileNotFoundError,
    EOFError,
)


def _launch_forked(
    address: str,
    alive: int,
    tracker: int,
    config: WorkerConfig | None,
    oneshot: bool,
    *,
    wait: bool = True,
) -> Launched:
    """Start a worker with ``config`` from the forkserver at ``address`` as
    multiprocessing's forkserver ``Popen`` would (the same request, the same descriptors,
    the same process in the child: see :func:`_forked_child`), without multiprocessing in
    this process: its imports (~15 ms: pickle, tempfile, socket's reductions) stay off the
    start-up of a run whose pool needs no other worker. ``wait=False``: the worker's pid is
    read when the caller first asks for it (:attr:`ForkedProcess.pid`), not here."""
    import socket

    import msgspec

    from gxo.pool.slot import AckSlot

    slot = AckSlot()  # first: it may refuse (a file-size limit of 0), with nothing to close
    control, child_control = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    console, child_console = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    notices, child_notices = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    status_r, child_w = os.pipe()
    child_r, data_w = os.pipe()
    child_ends = [child_r, child_w]  # closed once sent (or on the way out)
    keep = -1
    try:
        payload = msgspec.msgpack.encode((os.getpid(), oneshot, config))
        # A pickle, as the child reads it: _forked_child(payload) (GLOBAL, BINBYTES, TUPLE1,
        # REDUCE), after the empty preparation data.
        data = (
            _NO_PREPARATION
            + b"\x80\x03c"
            + __name__.encode()
            + b"\n_forked_child\nB"
            + len(payload).to_bytes(4, "little")
            + payload
            + b"\x85R."
        )
        fds = [child_r, child_w, alive, tracker]
        fds += [child_control.fileno(), child_console.fileno(), slot.fileno()]
        fds += [child_notices.fileno()]
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
                client.connect(address)
                packed = b"".join(fd.to_bytes(4, sys.byteorder, signed=True) for fd in fds)
                client.sendmsg(
                    [bytes([len(fds)])], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, packed)]
                )
        finally:
            # The child's ends are the forkserver's now: this process must not hold them
            # while it reads the pid (as multiprocessing's connect_to_new_process), or a
            # forkserver that dies before it answers leaves the read waiting for ever.
            while child_ends:
                os.close(child_ends.pop())
        keep = os.dup(data_w)
        view = memoryview(data)
        while view:
            view = view[os.write(data_w, view) :]
        pid = _read_signed(status_r) if wait else None
    except BaseException:
        for end in (control, console, notices, slot):
            end.close()
        for fd in (status_r, keep):
            if fd >= 0:
                os.close(fd)
        raise
    finally:
        for fd in (*child_ends, data_w):
            os.close(fd)
        child_control.close()
        child_console.close()
        child_notices.close()
    return ForkedProcess(pid, status_r, keep), slot, control, console, notices


def _forked_child(payload: bytes) -> BaseProcess:
    """In the worker the forkserver forked for :func:`_launch_forked`: the process object
    multiprocessing would have unpickled (its ``_bootstrap`` runs the worker), built from
    the descriptors the request passed."""
    import socket
    from multiprocessing.context import ForkServerProcess

    import msgspec

    from gxo.pool.slot import AckSlot
    from gxo.wire import WorkerConfig

    decoded = msgspec.msgpack.decode(payload, type=tuple[int, bool, WorkerConfig | None])
    parent, oneshot, config = decoded
    from gxo.pool.helpers import forked_child_fds

    if forked_child_fds is not None:  # gxo's own forkserver loop forked this process
        inherited = forked_child_fds[1]
    else:  # multiprocessing's forkserver
        from multiprocessing import forkserver

        inherited = forkserver.get_inherited_fds() or []
    control, console, slot, notices = inherited
    args = (
        socket.socket(socket.AF_UNIX, socket.SOCK_STREAM, fileno=control),
        socket.socket(socket.AF_UNIX, socket.SOCK_STREAM, fileno=console),
        AckSlot(slot),
        config,
        oneshot,
        socket.socket(socket.AF_UNIX, socket.SOCK_STREAM, fileno=notices),
    )
    name = "gxo-attempt" if oneshot else "gxo-worker"
    process = ForkServerProcess(target=worker_main, args=args, name=name)
    process._parent_pid = parent  # type: ignore[attr-defined]  # as if made in gxo
    return process


def take_ahead(config: WorkerConfig | None) -> Launched | None:
    """The worker :func:`start_ahead` started, if it was started with ``config``; one with
    another configuration is stopped (the pool starts its own)."""
    if not _ahead:
        return None
    started, launched = _ahead.pop()
    if started == config:
        return launched
    _stop(launched)
    return None


def stop_ahead() -> None:
    """Stop and reap the worker :func:`start_ahead` started, if no pool took it (the run
    ended before its pool started: a usage error, an interrupt)."""
    while _ahead:
        _stop(_ahead.pop()[1])


def _stop(launched: Launched, timeout: float = 5.0) -> None:
    """Close a worker's channels (it exits at their end, as when its pool closes) and
    reap it; SIGKILL it after ``timeout`` seconds."""
    process, slot, control, console, notices = launched
    for end in (control, console, notices):
        end.close()
    process.join(timeout)
    if process.exitcode is None:
        import signal

        from gxo.pool.session import kill_session

        kill_session(process.pid or 0, signal.SIGKILL)
        process.join()
    slot.close()
    process.close()
