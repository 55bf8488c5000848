"""What a pooled worker puts back between instances, so one task cannot change the next.

A worker runs many task instances one after another in the same process (``isolation:
pooled``). Whatever a module changes in the process would otherwise reach every later instance
on that worker: an exported variable, a ``chdir``, a ``umask``, an ignored SIGTERM (the next
instance could not be stopped), a closed fd 2 (the next one's output lost), a global in the
user's own module. :class:`ProcessState` records the process as it was when the worker was
ready and, after each instance (once its result is sent: off the critical path of the next
one), restores:

- the environment (``os.environ``, and so the C environment children inherit);
- the working directory (by a descriptor, so a renamed directory is still found);
- the umask;
- every signal disposition Python can set, and the signal mask;
- file descriptors 0, 1 and 2 (re-pointed to what they were), and ``sys.stdin``,
  ``sys.stdout``, ``sys.stderr`` and ``sys.path``;
- ``sys.modules``: modules imported from the user's own files (anything outside the standard
  library, the installed packages and gxo itself) are forgotten, so they are imported afresh,
  with fresh globals. Installed packages stay imported (importing numpy per task would cost
  more than most tasks).

What it cannot restore: state kept by C code (a C extension's globals, ``setlocale``, limits
set with ``setrlimit``, threads a module started and what they change later, memory it
leaked) and changes to installed packages' globals. A task that needs a clean process every
time uses ``isolation: process``. Each check costs microseconds when nothing changed.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import os
import signal
import site
import sys
import sysconfig
from collections.abc import Callable
from types import ModuleType
from typing import Any

__all__ = ["ProcessState", "library_dirs"]

_STD_FDS = (0, 1, 2)
#: The name of the mark a :class:`ProcessState` keeps last in ``sys.modules``.
_MARK = "_gxo_isolation_mark"
#: Signals no process may catch or ignore.
_UNSETTABLE = {signal.SIGKILL, signal.SIGSTOP}
#: The C ``getsignal``: ``signal.getsignal`` wraps each answer in an enum lookup that raises
#: and catches ValueError for every Python handler (about 4 us a signal; this is 0.1 us).
_signal = importlib.import_module("_signal")
_getsignal: Callable[[int], Any] = getattr(_signal, "getsignal", signal.getsignal)
#: The C ``pthread_sigmask``: the set of ints it returns, without ``signal``'s conversion of
#: each to a ``Signals`` member.
_sigmask: Callable[[int, Any], set[int]] = getattr(
    _signal, "pthread_sigmask", signal.pthread_sigmask
)


@functools.cache
def library_dirs() -> tuple[str, ...]:
    """Directories whose modules are not the user's: the standard library, site-packages
    (of the environment and of the base interpreter), the user site, and gxo's own package.

    Computed once per interpreter (the forkserver's preload does it, so workers inherit it:
    the first call imports the platform's sysconfig data, a few ms per worker otherwise)."""
    dirs: set[str] = set()
    bases = [
        {},
        {"base": sys.base_prefix, "platbase": sys.base_exec_prefix},
    ]
    for variables in bases:
        paths = sysconfig.get_paths(vars=variables)
        for key in ("stdlib", "platstdlib", "purelib", "platlib"):
            if key in paths:
                dirs.add(paths[key])
    with contextlib.suppress(AttributeError):
        dirs.update(site.getsitepackages())
    with contextlib.suppress(AttributeError):
        dirs.add(site.getusersitepackages())
    dirs.add(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # gxo itself
    return tuple(sorted(os.path.realpath(d) + os.sep for d in dirs if d))


def _environ_data() -> dict[Any, Any] | None:
    """``os.environ``'s encoded mapping (CPython), or None where it has none."""
    data = getattr(os.environ, "_data", None)
    return data if isinstance(data, dict) else None


def _file_of(module: ModuleType | None) -> str | None:
    if module is None:
        return None
    path = getattr(module, "__file__", None)
    return path if isinstance(path, str) else None


#: The interval timers of a process (ITIMER_REAL is also what ``signal.alarm`` arms).
_TIMERS = (signal.ITIMER_REAL, signal.ITIMER_VIRTUAL, signal.ITIMER_PROF)


class ProcessState:
    """The process state recorded once, and :meth:`restore` to put it back."""

    def __init__(self) -> None:
        self.environ = dict(os.environ)
        #: The encoded environment, compared in one dict comparison (``os.environ ==`` decodes
        #: every entry, about 50 us).
        self._environ_data: dict[Any, Any] | None = _environ_data()
        if self._environ_data is not None:
            self._environ_data = dict(self._environ_data)
        self.cwd = os.getcwd()
        self._cwd_fd: int | None
        try:
            self._cwd_fd = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError:
            self._cwd_fd = None
        self.umask = os.umask(0o022)
        os.umask(self.umask)
        self.handlers: dict[int, Any] = {}
        for signum in signal.valid_signals():
            if signum in _UNSETTABLE:
                continue
            with contextlib.suppress(OSError, ValueError):
                handler = _getsignal(int(signum))
                if handler is not None:  # None: set outside Python, cannot be put back
                    self.handlers[int(signum)] = handler
        #: Signal numbers and their handlers, in the same order (compared in one go).
        self._signums = tuple(self.handlers)
        self._handler_list = list(self.handlers.values())
        self.mask = {int(signum) for signum in _sigmask(signal.SIG_BLOCK, [])}
        #: The interval timers not armed now (a worker's: all three), cancelled if a task
        #: arms one; one armed by whoever records (a test's time limit) is left alone.
        self._idle_timers = tuple(w for w in _TIMERS if signal.getitimer(w) == (0.0, 0.0))
        self._fd_copies: dict[int, int] = {}
        self._fd_ids: dict[int, tuple[int, int]] = {}
        for fd in _STD_FDS:
            with contextlib.suppress(OSError):
                st = os.fstat(fd)
                self._fd_copies[fd] = os.dup(fd)  # close-on-exec: commands never see it
                self._fd_ids[fd] = (st.st_dev, st.st_ino)
        self.streams = (sys.stdin, sys.stdout, sys.stderr)
        self.path = list(sys.path)
        #: The last entry of ``sys.modules`` (see :meth:`_restore_modules`): every module
        #: imported later comes after it, in the dictionary's insertion order.
        self._mark = ModuleType(_MARK)
        sys.modules.pop(_MARK, None)
        sys.modules[_MARK] = self._mark
        self.modules = set(sys.modules)
        self._library = library_dirs()
        #: Names of user-file modules forgotten so far (for tests and the debug log).
        self.forgotten = 0
        #: Module file -> whether it is the user's: a user's module is imported again by
        #: the next instance that needs it, and resolving its path (a ``stat`` per directory)
        #: every time costs more than the rest of the check.
        self._users_files: dict[str, bool] = {}
        self._restorers: tuple[Callable[[], str], ...] = (
            self._restore_environ,
            self._restore_cwd,
            self._restore_umask,
            self._restore_signals,
            self._restore_timers,
            self._restore_fds,
            self._restore_python,
            self._restore_modules,
        )

    def restore(self) -> list[str]:
        """Put everything back; the names of what had changed (empty: nothing had)."""
        changed = []
        for restorer in self._restorers:
            what = restorer()
            if what:
                changed.append(what)
        return changed

    def close(self) -> None:
        if sys.modules.get(_MARK) is self._mark:
            del sys.modules[_MARK]
        for fd in [*self._fd_copies.values(), self._cwd_fd]:
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._fd_copies.clear()
        self._cwd_fd = None

    # -- one function per kind of state ----------------------------------------------------

    def _restore_environ(self) -> str:
        data = _environ_data()
        if data is not None and self._environ_data is not None:
            if data == self._environ_data:
                return ""
        elif os.environ == self.environ:
            return ""
        for name in list(os.environ):
            if name not in self.environ:
                del os.environ[name]
        for name, value in self.environ.items():
            if os.environ.get(name) != value:
                os.environ[name] = value
        return "environment"

    def _restore_cwd(self) -> str:
        try:
            if os.getcwd() == self.cwd:
                return ""
        except OSError:  # the directory the task moved to was removed
            pass
        try:
            if self._cwd_fd is not None:
                os.fchdir(self._cwd_fd)
            else:
                os.chdir(self.cwd)
        except OSError:
            return ""
        return "cwd"

    def _restore_umask(self) -> str:
        previous = os.umask(self.umask)
        return "" if previous == self.umask else "umask"

    def _restore_signals(self) -> str:
        changed = False
        getsignal = _getsignal
        # One pass in C when nothing changed (the usual case): a list compares its items by
        # identity first, so this is the loop below without its Python bytecode.
        if list(map(getsignal, self._signums)) == self._handler_list:
            return "signals" if _sigmask(signal.SIG_SETMASK, self.mask) != self.mask else ""
        for signum, handler in self.handlers.items():
            current = getsignal(signum)
            if current is handler or current == handler:
                continue
            with contextlib.suppress(OSError, ValueError):
                signal.signal(signum, handler)
                changed = True
        if _sigmask(signal.SIG_SETMASK, self.mask) != self.mask:
            changed = True
        return "signals" if changed else ""

    def _restore_timers(self) -> str:
        """Cancel the interval timers a task left armed (``signal.alarm``, ``setitimer``): a
        worker arms none, and one left running would fire in a later instance on this worker
        (SIGALRM, SIGVTALRM, SIGPROF kill by default), failing a task that never set it."""
        changed = False
        for which in self._idle_timers:
            if signal.getitimer(which) != (0.0, 0.0):
                signal.setitimer(which, 0)
                changed = True
        return "timers" if changed else ""

    def _restore_fds(self) -> str:
        changed = False
        for fd, copy in self._fd_copies.items():
            try:
                st = os.fstat(fd)
                if (st.st_dev, st.st_ino) == self._fd_ids[fd]:
                    continue
            except OSError:  # closed by the task
                pass
            with contextlib.suppress(OSError):
                os.dup2(copy, fd)  # inheritable, as 0, 1 and 2 must be
                changed = True
        return "fds" if changed else ""

    def _restore_python(self) -> str:
        changed = False
        if (sys.stdin, sys.stdout, sys.stderr) != self.streams:
            sys.stdin, sys.stdout, sys.stderr = self.streams
            changed = True
        if sys.path != self.path:
            sys.path[:] = self.path
            changed = True
        return "sys" if changed else ""

    def _restore_modules(self) -> str:
        modules = sys.modules
        known = self.modules
        new = self._imported_since()
        if new is None:  # the mark was removed, or a thread imports: compare every name
            new = list(modules.keys() - known)
        elif not new:
            return ""
        forgotten = 0
        for name in new:
            module = modules.get(name)
            if self._is_users(name, module):
                del modules[name]
                forgotten += 1
            else:
                known.add(name)  # an installed package imported on demand: kept
        if modules.get(_MARK) is not self._mark or next(reversed(modules)) != _MARK:
            modules.pop(_MARK, None)  # last again: the next check stops at once
            modules[_MARK] = self._mark
        self.forgotten += forgotten
        return "modules" if forgotten else ""

    def _imported_since(self) -> list[str] | None:
        """The modules imported since the last check: the names after the mark, not known
        (a known one was removed and imported again); None when the mark is gone or is not
        ours. Costs what was imported, not the size of ``sys.modules``."""
        modules = sys.modules
        if modules.get(_MARK) is not self._mark:
            return None
        known = self.modules
        new: list[str] = []
        try:
            for name in reversed(modules):
                if name == _MARK:
                    return new
                if name not in known:
                    new.append(name)
        except RuntimeError:  # a thread the task left running imported meanwhile
            pass
        return None

    def _is_users(self, name: str, module: ModuleType | None) -> bool:
        if name == "gxo" or name.startswith("gxo."):
            return False
        path = _file_of(module)
        if path is None:  # built-in, frozen, namespace package: nothing of the user's
            return False
        users = self._users_files.get(path)
        if users is None:
            users = not os.path.realpath(path).startswith(self._library)
            self._users_files[path] = users
        return users
