"""The lifecycle of multiprocessing's helper processes: the forkserver and the resource tracker.

The tracker is not started with the forkserver: :func:`prestart` hands multiprocessing a
:class:`gxo.pool.tracker.TrackerRelay` in its place, which starts it only if some process
registers a resource (gxo itself never does).

Kept apart from :mod:`gxo.pool.process_pool` so that starting them early (the ``gxo`` command
does it before it has even parsed its line, so the forkserver's own start-up runs on another
core meanwhile) and stopping them last import only the standard library, and only when
called: the parent pays for the pool's modules when it opens a pool, not before.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import sys
import types
from collections.abc import Iterator

#: ``typing.TYPE_CHECKING`` without importing typing: see :mod:`gxo.pool`.
TYPE_CHECKING = False

if TYPE_CHECKING:
    from typing import Any

    from gxo.pool.tracker import TrackerRelay

__all__ = [
    "DEFAULT_START_METHOD",
    "EXEC_PRELOAD",
    "FORKSERVER_PRELOAD",
    "ISOLATION_PRELOAD",
    "TEMPLATES_PRELOAD",
    "forget_dead_forked",
    "forkserver_preload",
    "main_module_hidden",
    "pool_closed",
    "prestart",
    "start_tracker",
    "stop_helpers",
]

DEFAULT_START_METHOD = "forkserver"
#: What the forkserver imports once, so each worker forked from it starts warm.
FORKSERVER_PRELOAD = "gxo.pool.forkserver_preload"
#: Preloaded as well when the run's workers may render templates (Jinja2 and gxo's sandbox:
#: 30-70 ms of imports a worker would otherwise pay on its first template).
TEMPLATES_PRELOAD = "gxo.template.templates"

#: Preloaded as well when the run may have ``exec`` tasks.
EXEC_PRELOAD = "gxo.pool.preload_exec"
#: Preloaded as well when the run may have ``isolation: process`` tasks or limits: what each
#: fresh process of such an attempt needs first.
ISOLATION_PRELOAD = "gxo.pool.enforce"

#: The forkserver's preload list when it starts (:func:`prestart` chooses it).
_preload = [FORKSERVER_PRELOAD, EXEC_PRELOAD, ISOLATION_PRELOAD, TEMPLATES_PRELOAD]


def forkserver_preload() -> list[str]:
    """The modules the forkserver imports when it starts (the last :func:`prestart`'s
    choice; with templates by default)."""
    return list(_preload)


#: Whether the forkserver is told to exit as soon as a pool closes (:func:`prestart`'s
#: ``single_pool``: the ``gxo`` command runs one playbook, then stops its helpers).
_single_pool = False
#: Forkservers told to exit by :func:`pool_closed`, not reaped yet (:func:`stop_helpers`).
_released: list[int] = []


def prestart(
    start_method: str = DEFAULT_START_METHOD,
    *,
    templates: bool = True,
    exec_tasks: bool = True,
    isolation: bool = True,
    single_pool: bool = False,
    fork: bool = False,
) -> None:
    """Start the forkserver now, so its start-up (a new interpreter importing the worker's
    modules) runs on another core while the caller imports and loads the playbook.

    ``templates=False`` (the playbook has no template) leaves Jinja2 out of its preload;
    ``exec_tasks=False`` the ``exec`` module, ``isolation=False`` the limits of fresh
    processes (a worker that needs one imports it then). The
    preload is chosen once, when the forkserver starts: a later run whose workers render
    templates still works, each worker importing Jinja2 on its first template. A no-op when
    the forkserver is running already.

    ``single_pool=True`` (the ``gxo`` command, which runs one playbook and then calls
    :func:`stop_helpers`): the forkserver is told to exit as soon as a pool closes, so its
    exit overlaps the report, the journal's last line and the summary instead of following
    them. A later pool would start a new one.

    ``fork=True`` (the ``gxo`` command, at start-up): the forkserver is a fork of this
    process rather than a new interpreter (:func:`_fork_forkserver`), when this process has
    no thread; otherwise as usual.
    """
    global _preload, _single_pool  # noqa: PLW0603 - the one forkserver of the process is global too
    if start_method != "forkserver":
        return
    _single_pool = _single_pool or single_pool
    if _forked is not None:
        return  # the forkserver this process forked runs (multiprocessing not told yet)
    mp_forkserver = sys.modules.get("multiprocessing.forkserver")
    server: Any = getattr(mp_forkserver, "_forkserver", None)  # private: whether it runs
    if server is not None and server._forkserver_pid is not None:
        return
    _preload = [FORKSERVER_PRELOAD]
    for wanted, name in (
        (exec_tasks, EXEC_PRELOAD),
        (isolation, ISOLATION_PRELOAD),
        (templates, TEMPLATES_PRELOAD),
    ):
        if wanted:
            _preload.append(name)
    if fork and _fork_forkserver(_preload):
        return  # multiprocessing (not imported) is told when a pool imports it
    import multiprocessing
    from multiprocessing import forkserver

    server = forkserver._forkserver
    if server._forkserver_pid is not None:
        return
    multiprocessing.get_context("forkserver").set_forkserver_preload(list(_preload))
    _start_relay()
    with main_module_hidden():
        forkserver.ensure_running()


#: The private directory of a forkserver :func:`_fork_forkserver` started (its listening
#: socket is in it), removed by :func:`stop_helpers`.
_directory: str | None = None


def _fork_forkserver(preload: list[str]) -> bool:
    """Start the forkserver by forking this process instead of spawning a new interpreter;
    False (nothing started) when this process has threads, or no private directory can be
    made for its socket.

    What multiprocessing's ``ensure_running`` does (a listening socket only this user can
    reach, the "alive" pipe, then :func:`multiprocessing.forkserver.main` with the preload
    list), except that the child is a fork of this process: it skips a new interpreter's
    start-up (~10 ms) and the imports this process made already, then imports the rest of its
    preload while this process goes on with its own work. multiprocessing is then told about
    it (:func:`_adopt`) as if it had started it.

    Taken early (the ``gxo`` command: before it parses its command line), after what both
    processes import anyway: multiprocessing's forkserver (:func:`prestart` imports it) and
    what the caller imported first (the ``gxo`` command: msgspec). Those are on both
    processes' paths either way; imported before the fork, their CPU is spent once.
    """
    global _directory, _ready_fd, _forked  # noqa: PLW0603 - the one forkserver of the process
    threading = sys.modules.get("threading")
    if threading is not None and threading.active_count() > 1:
        return False  # forking a process with threads is not safe
    import _socket

    try:
        directory = _private_directory()
    except OSError:
        return False
    address = os.path.join(directory, "fs")
    listener = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        listener.bind(address)
        listener.listen()
    except OSError:
        listener.close()
        os.rmdir(directory)
        return False
    listener_fd = listener.detach()
    alive_r, alive_w = os.pipe()
    ready_r, ready_w = os.pipe()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError, AttributeError):
            stream.flush()  # or the child would print the same buffered text again
    # No signal handler may run in the child before it is inside _serve_forked's try (one
    # raising there would unwind into this process's code, in the child), nor here before
    # multiprocessing knows the child (a Ctrl-C then would leave it unknown, never reaped).
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())
    try:
        try:
            pid = os.fork()
            if pid == 0:
                pipes = (alive_r, alive_w, ready_r, ready_w)
                _serve_forked(address, listener_fd, pipes, preload, mask)
        except OSError:  # no fork (a process limit): multiprocessing's way may still work
            pid = 0
        finally:
            os.close(listener_fd)
            os.close(alive_r)
            os.close(ready_w)
        if pid == 0:
            os.close(alive_w)
            os.close(ready_r)
            os.unlink(address)
            os.rmdir(directory)
            return False
        _directory = directory
        _ready_fd = ready_r
        # multiprocessing is told about it (:func:`_adopt`) only when this process imports
        # it to start a process: the gxo command's first worker is started without it
        # (:func:`gxo.pool.entry.start_ahead`), and a one-task run never imports it.
        _forked = (pid, address, alive_w, preload)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
    _start_relay()  # a thread: started with this thread's usual signal mask (see tracker.py)
    return True


#: The forkserver :func:`_fork_forkserver` started, until multiprocessing is told about it
#: (:func:`adopt_forked`) or it is released: its pid, socket address, the write end of its
#: "alive" pipe and its preload list.
_forked: tuple[int, str, int, list[str]] | None = None


def forked_forkserver() -> tuple[str, int, int] | None:
    """The forkserver :func:`_fork_forkserver` started, while multiprocessing does not know
    it yet: its socket address, its "alive" pipe's write end and the resource tracker's
    descriptor (the relay's) each process it forks is handed; else None."""
    if _forked is None or _relay is None:
        return None
    return _forked[1], _forked[2], _relay.fd


def forget_dead_forked() -> None:
    """Reap and forget the forkserver :func:`_fork_forkserver` started, which stopped
    answering: a module killed it (a pooled worker's parent is the forkserver,
    ``os.kill(os.getppid(), ...)``). Its listening socket may be gone a moment before the
    kernel has made it a zombie, so it is killed (a no-op on one that is dying) and waited
    for, rather than polled. The next worker starts through multiprocessing, which starts a
    forkserver of its own. Its workers died with it (their parent-death signal): those
    instances fail, and the run goes on."""
    if _forked is None:
        return
    pid = _forked[0]
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)
    _release_forked()  # reaped: not for stop_helpers (its pid may be another process's now)
    _remove_directory()


def adopt_forked() -> None:
    """Tell multiprocessing about the forkserver :func:`_fork_forkserver` started (and hand
    it the relay as its resource tracker), if it does not know it yet: called before this
    process starts a process through multiprocessing. Imports multiprocessing."""
    global _forked  # noqa: PLW0603 - the one forkserver of the process
    if _forked is not None:
        pid, address, alive_w, preload = _forked
        _adopt(pid, address, alive_w, preload)
        _forked = None
    _install_relay()


#: The read end of the pipe a forked forkserver writes to once its preload is imported,
#: until :func:`forkserver_ready` has read it; then whether it said so.
_ready_fd: int | None = None
_is_ready = False


def forkserver_ready(timeout: float = 0.0) -> bool:
    """Whether the forkserver :func:`prestart` forked has imported its preload (waiting at
    most ``timeout`` seconds for it): a worker asked for now is forked at once, and asking
    does not block this process for the rest of the forkserver's start-up. False for a
    forkserver multiprocessing spawned (nothing tells), or none."""
    global _ready_fd, _is_ready  # noqa: PLW0603 - the one forkserver of the process
    if _ready_fd is not None:
        with selectors.DefaultSelector() as selector:
            selector.register(_ready_fd, selectors.EVENT_READ)
            if not selector.select(timeout):
                return False
        fd, _ready_fd = _ready_fd, None
        try:
            _is_ready = os.read(fd, 1) == b"!"  # end of file: it died before it was ready
        finally:
            os.close(fd)
    return _is_ready


def _forget_ready() -> None:
    """The forked forkserver is released: nothing more to read from it."""
    global _ready_fd, _is_ready
    fd, _ready_fd, _is_ready = _ready_fd, None, False
    if fd is not None:
        os.close(fd)


def _private_directory() -> str:
    """A new directory only this user may enter, where :mod:`tempfile` would make one."""
    environ = os.environ
    for base in (environ.get("TMPDIR"), environ.get("TEMP"), environ.get("TMP"), "/tmp"):
        if base:
            path = os.path.join(base, f"gxo-{os.urandom(6).hex()}")
            with contextlib.suppress(OSError):
                os.mkdir(path, 0o700)
                return path
    raise OSError("no temporary directory")


def _serve_forked(
    address: str,
    listener_fd: int,
    pipes: tuple[int, int, int, int],
    preload: list[str],
    mask: set[int | signal.Signals],
) -> None:
    """The forked forkserver: its preload (then it tells the parent it is ready: see
    :func:`forkserver_ready`), multiprocessing's loop (:func:`_serve`), then exit (never
    returns).

    On its way out it removes its socket and their directory (so does :func:`stop_helpers`):
    they go even when gxo was killed (the alive pipe's end is its cue then too)."""
    alive_r, alive_w, ready_r, ready_w = pipes
    code = 1
    try:
        # What the preload ignores (gxo.pool.forkserver_preload), ignored before the signals
        # are unblocked: one sent to gxo's process group while the preload imports would
        # otherwise kill the forkserver (SIGUSR1: gxo drains, the forkserver must outlive it).
        for signum in _FORKSERVER_IGNORES:
            signal.signal(signum, signal.SIG_IGN)
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        os.close(alive_w)  # the parent's end: its closing is this process's cue to exit
        os.close(ready_r)
        _close_inherited(listener_fd, alive_r, ready_w)
        for name in preload:  # as forkserver.main would
            with contextlib.suppress(ImportError):
                __import__(name)
        with contextlib.suppress(OSError):  # the parent is gone already (a usage error)
            os.write(ready_w, b"!")
        os.close(ready_w)
        _serve(listener_fd, alive_r)
    except SystemExit as exc:  # the loop's exit when the parent closes the alive pipe
        code = exc.code if isinstance(exc.code, int) else 0
    except BaseException:  # noqa: BLE001 - what a spawned forkserver would print, then exit 1
        import traceback

        traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError, ValueError, AttributeError):
                stream.flush()
        with contextlib.suppress(OSError):
            os.unlink(address)
        with contextlib.suppress(OSError):
            os.rmdir(os.path.dirname(address))
        os._exit(code)


#: The signals the forkserver ignores: the stop signals gxo handles (SIGINT, which its loop
#: ignores, aside) and the drain signals, any of which may reach gxo's whole process group.
_FORKSERVER_IGNORES = (signal.SIGTERM, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2)


#: In a process the forked forkserver forked (:func:`_serve_one`): the forkserver's "alive"
#: pipe end it was handed, and the descriptors its request passed (what multiprocessing's
#: ``forkserver.get_inherited_fds`` returns), until the process takes them.
forked_child_fds: tuple[int | None, list[int]] | None = None

#: The largest number of descriptors a request may pass (multiprocessing's forkserver's).
_MAXFDS_TO_SEND = 256


def _serve(listener_fd: int, alive_r: int) -> None:
    """multiprocessing's forkserver loop (``multiprocessing.forkserver.main`` after its
    preload, the same protocol), without importing ``multiprocessing.forkserver``: that
    module imports ``multiprocessing.connection`` (with tempfile, shutil, bz2, lzma, random:
    ~5 ms of this process's start-up), which serving does not use. Raises SystemExit when
    the parent closes the alive pipe."""
    import socket
    from multiprocessing import util

    mp_util: Any = util  # private: what forkserver.main calls
    mp_util._close_stdin()
    sig_r, sig_w = os.pipe()
    os.set_blocking(sig_r, False)
    os.set_blocking(sig_w, False)

    def sigchld_handler(*_unused: object) -> None:
        pass  # unblocks SIGCHLD: the wake-up fd tells the loop

    handlers: dict[int, Any] = {signal.SIGCHLD: sigchld_handler, signal.SIGINT: signal.SIG_IGN}
    old_handlers = {sig: signal.signal(sig, val) for sig, val in handlers.items()}
    signal.set_wakeup_fd(sig_w)
    pid_to_fd: dict[int, int] = {}
    with (
        socket.socket(socket.AF_UNIX, fileno=listener_fd) as listener,
        selectors.DefaultSelector() as selector,
    ):
        selector.register(listener, selectors.EVENT_READ)
        selector.register(alive_r, selectors.EVENT_READ)
        selector.register(sig_r, selectors.EVENT_READ)
        while True:
            try:
                while True:
                    rfds = [key.fileobj for key, _ in selector.select()]
                    if rfds:
                        break
                if alive_r in rfds:  # EOF: the parent has gone (or released us)
                    assert os.read(alive_r, 1) == b"", "Not at EOF?"
                    raise SystemExit
                if sig_r in rfds:
                    os.read(sig_r, 65536)
                    _report_exits(pid_to_fd)
                if listener in rfds:
                    unused = [alive_r, sig_r, sig_w]
                    _fork_request(listener, selector, unused, old_handlers, pid_to_fd)
            except OSError as exc:
                import errno

                if exc.errno != errno.ECONNABORTED:
                    raise


def _report_exits(pid_to_fd: dict[int, int]) -> None:
    """Reap the children that exited and write each one's exit code to its client."""
    while True:
        try:
            pid, sts = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        child_w = pid_to_fd.pop(pid, None)
        if child_w is not None:
            with contextlib.suppress(BrokenPipeError):  # the client went away
                _write_signed(child_w, os.waitstatus_to_exitcode(sts))
            os.close(child_w)
        else:
            import warnings

            warnings.warn(f"forkserver: unexpected pid {pid}", stacklevel=1)


def _fork_request(
    listener: Any,
    selector: selectors.BaseSelector,
    unused: list[int],
    handlers: dict[int, Any],
    pid_to_fd: dict[int, int],
) -> None:
    """Accept one request, fork its process (which never returns here) and send the
    client its pid."""
    from multiprocessing import reduction

    with listener.accept()[0] as connection:
        fds = reduction.recvfds(connection, _MAXFDS_TO_SEND + 1)
        if len(fds) > _MAXFDS_TO_SEND:
            raise RuntimeError(f"Too many ({len(fds)}) fds to send")
        child_r, child_w, *fds = fds
        connection.close()
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                listener.close()
                selector.close()
                code = _serve_one(child_r, fds, [*unused, child_w, *pid_to_fd.values()], handlers)
            except Exception:  # noqa: BLE001 - printed, as multiprocessing does
                sys.excepthook(*sys.exc_info())
                sys.stderr.flush()
            finally:
                os._exit(code)
        with contextlib.suppress(BrokenPipeError):
            _write_signed(child_w, pid)
        pid_to_fd[pid] = child_w
        os.close(child_r)
        for fd in fds:
            os.close(fd)


def _serve_one(child_r: int, fds: list[int], unused: list[int], handlers: dict[int, Any]) -> int:
    """In the process just forked for a request: what ``forkserver._serve_one`` and
    ``spawn._main`` do. A request of multiprocessing's (non-empty preparation data) may
    unpickle objects that look the descriptors up in ``multiprocessing.forkserver``: it is
    imported and told them then; gxo's own requests (:mod:`gxo.pool.entry`) never need it."""
    global forked_child_fds  # noqa: PLW0603 - one request per process
    import pickle  # multiprocessing's reduction.pickle
    from multiprocessing import process, resource_tracker, spawn

    signal.set_wakeup_fd(-1)
    for sig, val in handlers.items():
        signal.signal(sig, val)
    for fd in unused:
        os.close(fd)
    alive, tracker, *inherited = fds
    resource_tracker._resource_tracker._fd = tracker  # type: ignore[attr-defined]
    forked_child_fds = (alive, inherited)
    parent_sentinel = os.dup(child_r)
    with os.fdopen(child_r, "rb", closefd=True) as from_parent:
        process.current_process()._inheriting = True  # type: ignore[attr-defined]
        try:
            preparation = pickle.load(from_parent)
            if preparation:
                from multiprocessing import forkserver

                server: Any = forkserver._forkserver
                server._forkserver_alive_fd, server._inherited_fds = alive, inherited
                forked_child_fds = None
            spawn.prepare(preparation)
            child = pickle.load(from_parent)
        finally:
            del process.current_process()._inheriting  # type: ignore[attr-defined]
    return child._bootstrap(parent_sentinel)  # type: ignore[no-any-return]


def _write_signed(fd: int, number: int) -> None:
    """Write ``number`` as ``forkserver.write_signed`` does (a native signed 64-bit)."""
    view = memoryview(number.to_bytes(8, sys.byteorder, signed=True))
    while view:
        written = os.write(fd, view)
        if written == 0:
            raise RuntimeError("should not get here")
        view = view[written:]


def _close_inherited(*keep: int) -> None:
    """Close every descriptor but stdin, stdout, stderr and ``keep``: what gxo inherited
    from its caller (a pipe, a jobserver's descriptors) stays out of the forkserver and the
    workers, as when multiprocessing spawns the forkserver (it passes only its own two)."""
    kept = {0, 1, 2, *keep}
    with contextlib.suppress(OSError):  # no /proc: nothing to go by
        for name in os.listdir("/proc/self/fd"):
            if int(name) not in kept:
                with contextlib.suppress(OSError):  # the listing's own, closed already
                    os.close(int(name))


def _adopt(pid: int, address: str, alive_w: int, preload: list[str]) -> None:
    """Tell multiprocessing about the forkserver :func:`_fork_forkserver` started, as
    ``ensure_running`` would have recorded it."""
    import multiprocessing
    from multiprocessing import forkserver

    multiprocessing.get_context("forkserver").set_forkserver_preload(list(preload))
    server: Any = forkserver._forkserver  # private: there is no public way
    with server._lock:
        server._forkserver_address = address
        server._forkserver_alive_fd = alive_w
        server._forkserver_pid = pid


#: The relay standing in for the resource tracker (see :func:`_start_relay`), until
#: :func:`stop_helpers`.
_relay: TrackerRelay | None = None


def _start_relay() -> None:
    """Give multiprocessing a :class:`~gxo.pool.tracker.TrackerRelay` as its resource tracker
    (unless a tracker or a relay is there already): the tracker's interpreter starts only if
    a process registers a resource."""
    global _relay  # noqa: PLW0603 - multiprocessing's tracker is one per process too
    if "multiprocessing.resource_tracker" not in sys.modules:
        if _relay is None:  # multiprocessing is handed it when imported (adopt_forked)
            from gxo.pool.tracker import TrackerRelay

            _relay = TrackerRelay()
        if _forked is not None:
            return
    _install_relay()


def _install_relay() -> None:
    """Make the relay multiprocessing's resource tracker (one is made if there is none),
    unless it has a tracker or a relay already."""
    global _relay  # noqa: PLW0603 - multiprocessing's tracker is one per process too
    from multiprocessing import resource_tracker

    from gxo.pool.tracker import TrackerRelay

    tracker: Any = resource_tracker._resource_tracker  # private: there is no public way
    with tracker._lock:
        if tracker._fd is None:
            if _relay is None:
                _relay = TrackerRelay()
            tracker._fd = _relay.fd


def start_tracker() -> None:
    """Start multiprocessing's resource tracker, immune to SIGHUP, SIGUSR1 and SIGUSR2, if
    it is not running.

    A closed terminal sends SIGHUP to gxo's whole process group, the tracker included; gxo
    handles it like SIGTERM, but the tracker would die of it (multiprocessing makes it ignore
    only SIGINT and SIGTERM) and be relaunched with a warning. So would it of a SIGUSR1 or
    SIGUSR2 sent to the group, which drains gxo. An ignored signal stays ignored across the
    tracker's ``exec``, so it is started while those are ignored here (only the main thread
    may change a disposition; elsewhere it starts as multiprocessing would).
    """
    import threading
    from multiprocessing import resource_tracker

    if threading.current_thread() is not threading.main_thread():
        resource_tracker.ensure_running()
        return
    ignored = (signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2)
    previous = {signum: signal.signal(signum, signal.SIG_IGN) for signum in ignored}
    try:
        resource_tracker.ensure_running()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def pool_closed() -> None:
    """Called by a pool of the forkserver start method once it has reaped its workers:
    under :func:`prestart`'s ``single_pool``, tell the forkserver to exit now (its pipe
    closed; nothing waits for it here). :func:`stop_helpers` reaps it."""
    if not _single_pool:
        return
    if _forked is not None:
        pid: int | None = _release_forked()
    else:
        from multiprocessing import forkserver

        server: Any = forkserver._forkserver  # private: there is no public stop
        with server._lock:
            pid = _release_forkserver(server)
    if pid is not None:
        _released.append(pid)


def _release_forked() -> int:
    """Close the alive pipe of the forkserver multiprocessing was never told about (its cue
    to exit) and forget it; its pid."""
    global _forked  # noqa: PLW0603 - the one forkserver of the process
    assert _forked is not None
    pid, _, alive, _ = _forked
    _forked = None
    _forget_ready()
    os.close(alive)
    return pid


def _release_forkserver(server: Any) -> int | None:
    """Close the forkserver's alive pipe (its cue to exit) and forget it; its pid, or None
    when none runs. The caller holds ``server._lock``."""
    pid, alive = server._forkserver_pid, server._forkserver_alive_fd
    _forget_ready()
    if pid is None:
        return None
    server._forkserver_pid = server._forkserver_alive_fd = None
    server._forkserver_address = None  # in multiprocessing's temp dir, removed at exit
    os.close(alive)
    return pid  # type: ignore[no-any-return]


def stop_helpers(timeout: float = 5.0) -> None:
    """Stop multiprocessing's forkserver and resource tracker (or the relay standing in for
    it, and the tracker it started if a resource was registered), and reap them.

    They start once per process and, left alone, exit only when they notice that the process
    which started them has gone: tens of milliseconds after it, as orphans. The ``gxo``
    command calls this last (every pool is closed by then), so it never exits before every
    process it started is reaped. A helper that has not exited ``timeout`` seconds after its
    pipe closed (something it forked still holds the pipe) is killed. A later pool would
    start them again.
    """
    global _relay
    entry = sys.modules.get("gxo.pool.entry")
    if entry is not None:
        entry.stop_ahead()  # a worker started ahead of a pool that never came: reaped first
    if _forked is not None:
        _released.append(_release_forked())
    if "multiprocessing.forkserver" not in sys.modules and (
        "multiprocessing.resource_tracker" not in sys.modules
    ):
        # multiprocessing never started a process here: only what gxo forked, and the relay.
        relay, _relay = _relay, None
        helpers = [*_released, relay.stop(timeout) if relay is not None else None]
        _released.clear()
        for pid in helpers:
            if pid is not None:
                _reap(pid, timeout)
        _remove_directory()
        return
    from multiprocessing import forkserver, resource_tracker

    # Both are told first and reaped after, so their exits overlap (the tracker exits once
    # its last writer, the forkserver, has gone too).
    server: Any = forkserver._forkserver  # private: there is no public stop
    tracker: Any = resource_tracker._resource_tracker
    with server._lock, tracker._lock:
        servers: list[int | None] = [*_released, _release_forkserver(server)]
        _released.clear()
        tracker_pid, fd = tracker._pid, tracker._fd
        relay, _relay = _relay, None
        if relay is not None and fd == relay.fd:
            tracker._fd = None
            tracker_pid = relay.stop(timeout)  # a tracker it started, if any: reaped below
        else:
            if tracker_pid is not None:
                tracker._pid = tracker._fd = None
                os.close(fd)  # the tracker exits when its last writer (the forkserver, us) closes
            if relay is not None:  # made for a forked forkserver, never handed over
                servers.append(relay.stop(timeout))
        for pid in (*servers, tracker_pid):
            if pid is not None:
                _reap(pid, timeout)
    _remove_directory()


def _remove_directory() -> None:
    """Remove the private directory of a forked forkserver's socket, if there is one."""
    global _directory
    directory, _directory = _directory, None
    if directory is not None:
        with contextlib.suppress(OSError):
            os.unlink(os.path.join(directory, "fs"))
        with contextlib.suppress(OSError):
            os.rmdir(directory)


def _reap(pid: int, timeout: float) -> None:
    """Wait for child ``pid`` to exit (SIGKILL it after ``timeout`` seconds) and reap it."""
    try:
        pidfd = os.pidfd_open(pid)
    except OSError:  # already reaped by someone else, or no pidfd (Linux < 5.3)
        pidfd = None
    if pidfd is not None:
        try:
            with selectors.DefaultSelector() as selector:
                selector.register(pidfd, selectors.EVENT_READ)
                if not selector.select(timeout):
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
        finally:
            os.close(pidfd)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)


@contextlib.contextmanager
def main_module_hidden() -> Iterator[None]:
    """Start a process without multiprocessing re-importing the caller's ``__main__``.

    spawn and forkserver children normally re-run the parent's main script (as
    ``__mp_main__``) so that pickled functions defined there resolve. Workers only run
    ``gxo.pool.worker.worker_main``, so that import is pure cost, and harmful when gxo is used
    from a script without an ``if __name__ == "__main__"`` guard, from stdin or a notebook.
    A bare stand-in module is swapped in for the duration of ``start()`` (the parent's
    scheduler is single-threaded, so nothing else observes it).
    """
    real = sys.modules["__main__"]
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        sys.modules["__main__"] = real
