"""Find and signal every process a worker started, even those whose parent already died.

Each worker leads its own session, and commands keep that session (``exec`` gives them their
own process *group* inside it), so "everything the worker started" is "every process whose
session id is the worker's pid". Unlike a walk over parent links, this still finds a
grandchild after its parent exited and it was re-parented to init. A descendant that called
``setsid`` itself is caught by the parent-link walk while the worker is alive; once the worker
has died (SIGKILLed with gxo, by the OOM killer, by its own module) that link is gone, so the
guards remember such escaped descendants while the worker lives (:class:`EscapedTracker`).
"""

from __future__ import annotations

import contextlib
import functools
import os
import select
import signal
import socket
import time

#: ``typing.TYPE_CHECKING`` without importing typing: see :mod:`gxo.pool`.
TYPE_CHECKING = False

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "GUARD_NAME",
    "TRACK_INTERVAL",
    "EscapedTracker",
    "descendants",
    "guard_sessions",
    "guards_of",
    "kill_descendants",
    "kill_session",
    "session_members",
    "signal_processes",
    "start_guard",
]

#: The guard's process name (``comm``), so tools and tests can tell it from a command.
GUARD_NAME = b"gxo-guard"
_PR_SET_NAME = 15
#: Seconds between a guard's looks for descendants that left their worker's session: a
#: ``setsid`` daemon that lived this long before its worker died is killed with the session.
#: A look reads the worker's few ``children`` lists (tens of microseconds).
TRACK_INTERVAL = 0.05


def session_members(session_id: int) -> set[int]:
    """Pids of the live processes in the session ``session_id`` (the leader included)."""
    members: set[int] = set()
    for entry in os.scandir("/proc"):
        name = entry.name
        if not name.isdigit():
            continue
        pid = int(name)
        try:
            if os.getsid(pid) == session_id:
                members.add(pid)
        except (ProcessLookupError, PermissionError):
            continue
    return members


def descendants(pid: int) -> set[int]:
    """Pids below ``pid``, read from the kernel's per-thread ``children`` lists.

    A walk down from ``pid`` costs what the tree holds (microseconds), where psutil's
    ``children(recursive=True)`` reads every process of the machine (milliseconds on a busy
    node, paid per attempt under ``isolation: process``). Kernels without those lists
    (``CONFIG_PROC_CHILDREN`` off) get psutil's walk.
    """
    found: set[int] = set()
    stack = [pid]
    while stack:
        current = stack.pop()
        try:
            threads = os.listdir(f"/proc/{current}/task")
        except OSError:
            continue
        for tid in threads:
            try:
                with open(f"/proc/{current}/task/{tid}/children") as listing:
                    kids = listing.read().split()
            except FileNotFoundError:
                if current == pid and tid == str(pid):
                    return _psutil_descendants(pid)  # no children lists in this kernel
                continue
            except OSError:
                continue
            for kid in kids:
                child = int(kid)
                if child not in found:
                    found.add(child)
                    stack.append(child)
    return found


def _psutil_descendants(pid: int) -> set[int]:
    import psutil  # imported when first needed: neither a worker nor the parent needs it to start

    try:
        return {child.pid for child in psutil.Process(pid).children(recursive=True)}
    except psutil.Error:
        return set()


_descendants = descendants


def _start_time(pid: int) -> int | None:
    """The process's start time (clock ticks since boot, ``/proc/PID/stat`` field 22), or
    None when it is gone: with the pid, it names one process even after the pid is reused."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    fields = stat[stat.rfind(b")") + 2 :].split()  # the name may hold spaces and ")"
    try:
        return int(fields[19])
    except (IndexError, ValueError):
        return None


class EscapedTracker:
    """Descendants of session leaders that left their leader's session, remembered so they
    can be killed after the leader died.

    A worker is its descendants' subreaper, so a daemon that called ``setsid`` (alone, or
    after a double fork) stays below it while it lives, but when the worker dies the kernel
    re-parents the daemon to init, and neither the walk down from the dead worker nor the
    scan for its session finds it any more. A guard calls :meth:`look` every
    :data:`TRACK_INTERVAL` while its worker lives, and :meth:`kill` once it has died: what
    left the session and still runs (the same process: pid and start time) is killed with
    its own session and descendants. The members of a leader's session are not remembered:
    the session scan finds them.
    """

    def __init__(self) -> None:
        #: leader -> {pid: start time} of its descendants seen outside its session.
        self.escaped: dict[int, dict[int, int]] = {}

    def look(self, leader: int) -> None:
        """Remember ``leader``'s descendants that are in another session; forget the gone."""
        known = self.escaped.setdefault(leader, {})
        for pid in list(known):
            if _start_time(pid) != known[pid]:
                del known[pid]
        me = os.getpid()  # a worker's guard is its child: in its session, unless setsid failed
        for pid in _descendants(leader):
            if pid in known or pid == me:
                continue
            try:
                outside = os.getsid(pid) != leader
            except OSError:
                continue
            started = _start_time(pid) if outside else None
            if started is not None:
                known[pid] = started

    def forget(self, leader: int) -> None:
        self.escaped.pop(leader, None)

    def kill(self, leader: int) -> set[int]:
        """SIGKILL what ``leader``'s descendants that left its session still run: each of
        them, its session and its descendants. Returns the pids signalled."""
        killed: set[int] = set()
        for pid, started in self.escaped.pop(leader, {}).items():
            if _start_time(pid) != started:
                continue  # it exited (its pid may be another process's now)
            try:
                sid = os.getsid(pid)
            except OSError:
                continue
            # A session id is not reused while a member lives, so its members are the
            # daemon's; the daemon itself was checked by its start time just now.
            killed |= _signal_until_nothing_new(
                functools.partial(_session_and_below, sid, pid),
                signal.SIGKILL,
                frozenset(),
                {pid, sid},
            )
        return killed


def _session_and_below(sid: int, pid: int) -> set[int]:
    return session_members(sid) | _descendants(pid) | {pid}


def guards_of(leader: int) -> set[int]:
    """The guard processes among ``leader``'s children (see :func:`start_guard`): gxo's own,
    so a count of the processes stopped with an instance leaves them out."""
    import psutil

    found: set[int] = set()
    try:
        children = psutil.Process(leader).children()
    except psutil.Error:
        return found
    for child in children:
        try:
            if child.name().encode() == GUARD_NAME:
                found.add(child.pid)
        except psutil.Error:
            continue
    return found


def signal_processes(pids: set[int], signum: int) -> None:
    """Send ``signum`` to each pid, ignoring the ones that are already gone."""
    for pid in pids:
        try:
            os.kill(pid, signum)
        except (ProcessLookupError, PermissionError):
            continue


def kill_session(
    leader: int,
    signum: int = signal.SIGKILL,
    *,
    include_self: bool = True,
    spare_guards: bool = False,
) -> set[int]:
    """Signal the session led by ``leader`` and the leader's descendants; return the pids.

    ``spare_guards``: leave the leader's guard (:func:`start_guard`) alone, for gxo's pool
    killing a worker: once the worker has died the guard kills, besides its session, what it
    saw leave the session (:class:`EscapedTracker`), which nothing else can find any more; it
    exits by itself when done.

    One pass is not enough for SIGKILL: a member can fork after the scan of ``/proc`` passed
    and before the signal reaches it (a command that kills its worker and then starts
    ``sleep``), and its child, never listed, would outlive the session. So the scan is
    repeated, signalling whatever is new, until a scan finds nothing new. This ends: the
    kernel lets no process that has a SIGKILL pending finish a ``fork`` (``copy_process``
    gives up), so each round can only find children that already existed when their parent
    was signalled. Other signals get one pass: the process may well survive them and fork
    on purpose, and the SIGKILL that follows a grace period catches what it started.
    """
    excluded = set() if include_self else {leader, os.getpid()}
    always = {leader} if include_self else set()

    def scan() -> set[int]:
        found = (session_members(leader) | _descendants(leader) | always) - excluded
        return {pid for pid in found if not _is_guard(pid)} if spare_guards else found

    first: set[int] = set()
    if include_self:
        # The leader before its session: a worker signalled after its command could still
        # report that command's end (killed by this very signal) as the attempt's result.
        signal_processes(always, signum)
        first = always
    return _signal_until_nothing_new(scan, signum, first, {leader})


def _is_guard(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/comm", "rb") as f:
            return f.read().rstrip(b"\n") == GUARD_NAME
    except OSError:
        return False


def kill_descendants(pid: int, signum: int = signal.SIGKILL) -> set[int]:
    """Signal every descendant of ``pid`` (not ``pid`` itself); return the pids.

    :func:`kill_session` for a live session leader that is its descendants' subreaper (a
    gxo worker at its exit): every other member of its session is then below it, so the
    walk down finds them all and the scan of every process of the machine is not needed. A
    SIGKILL is repeated until a walk finds nothing new, as there.
    """
    return _signal_until_nothing_new(lambda: _descendants(pid), signum, frozenset(), {pid})


def _signal_until_nothing_new(
    scan: Callable[[], set[int]],
    signum: int,
    signalled: set[int] | frozenset[int],
    own_groups: set[int],
) -> set[int]:
    """Signal what ``scan`` finds, again and again while it finds something new (SIGKILL
    only; other signals get one pass): see :func:`kill_session`. ``signalled``: pids the
    caller signalled already; ``own_groups``: see :func:`_signal_by_group`. Returns every
    pid signalled."""
    targets: set[int] = set(signalled)
    while True:
        new = scan() - targets
        if not new:
            return targets
        _signal_by_group(new, signum, own_groups | {os.getpgrp()})
        targets |= new
        if signum != signal.SIGKILL:
            return targets


def _signal_by_group(pids: set[int], signum: int, own_groups: set[int]) -> None:
    """Signal ``pids``: each process group they are in at once (``killpg``), but for the
    ``own_groups`` (the leader's and the caller's), whose members are signalled one by one.

    A command's processes share a group (a shell script and the jobs it started in the
    background): signalled one at a time, a shell whose ``sleep &`` got SIGTERM first saw
    its ``wait`` return and exited normally before its own SIGTERM came, so its ``trap``
    never ran and it lost its grace period. ``killpg`` queues the signal to every member
    before any of them can see another's death.
    """
    groups: set[int] = set()
    single: set[int] = set()
    for pid in pids:
        try:
            group = os.getpgid(pid)
        except (ProcessLookupError, PermissionError):
            continue
        if group in own_groups:
            single.add(pid)
        else:
            groups.add(group)
    for group in groups:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(group, signum)
    signal_processes(single, signum)


def start_guard(leader: int) -> tuple[int, int]:
    """Fork a small process that kills the session ``leader`` leads when the leader dies.

    Workers use SIGKILL as their parent-death signal (DESIGN §15): a SIGKILLed worker cannot
    clean up, and the commands it started would outlive it. The guard holds the read end of a
    pipe whose only write end the worker keeps (close-on-exec, so no command inherits it);
    when the worker dies, however it dies, the read returns end-of-file and the guard kills
    every process left in the session, and the descendants it saw leave the session while
    the worker lived (:class:`EscapedTracker`), then exits. It ignores the signals a stop sends to
    the whole session (TERM, INT, HUP, USR1, USR2), so it outlives the instance it guards.

    Call before the process starts any thread. Returns (the guard's pid, the write end).
    """
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the forked guard (tested through workers)
        try:
            _guard(leader, read_fd)
        finally:
            os._exit(0)
    os.close(read_fd)
    return pid, write_fd


def guard_sessions(channel: socket.socket) -> None:
    """One guard for every fresh ``isolation: process`` attempt of a pool (the target of a
    process the pool starts once), instead of a fork of each attempt's process.

    The parent writes ``+PID`` when an attempt's process starts, ``cPID PATH`` for each
    directory of its cgroup, and ``-PID`` when it has ended; when the channel reaches
    end-of-file (the pool closed, or gxo died however it died) every session still listed
    is killed, so nothing an attempt started outlives gxo, and its cgroups are removed
    (gxo removes them itself after each attempt, unless it was killed first). While an
    attempt runs, the guard also remembers what left its session (:class:`EscapedTracker`),
    and kills what of that still runs when the attempt has ended (its process died before it
    could) or gxo died.
    """
    with contextlib.suppress(PermissionError):
        os.setsid()  # out of gxo's process group: a job-wide signal does not reach it
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2):
        signal.signal(signum, signal.SIG_IGN)
    _set_name()
    live: set[int] = set()
    cgroups: dict[int, list[bytes]] = {}
    tracker = EscapedTracker()
    poller = select.poll()  # not select(): no limit on the descriptor's number
    poller.register(channel, select.POLLIN)
    pending = b""
    while True:
        try:
            if not poller.poll(TRACK_INTERVAL * 1000 if live else None):
                for leader in live:
                    tracker.look(leader)
                continue
            data = channel.recv(4096)
        except InterruptedError:
            continue
        except OSError:
            data = b""
        if not data:
            break
        *lines, pending = (pending + data).split(b"\n")
        for line in lines:
            if line[:1] == b"+":
                live.add(int(line[1:]))
            elif line[:1] == b"-":
                live.discard(int(line[1:]))
                cgroups.pop(int(line[1:]), None)
                # The attempt is over and its process reaped: what left its session and
                # still runs outlived it (its process died before it could kill them).
                tracker.kill(int(line[1:]))
            elif line[:1] == b"c":
                pid, _, path = line[1:].partition(b" ")
                cgroups.setdefault(int(pid), []).append(path)
    for leader in live:
        kill_session(leader, signal.SIGKILL)
        tracker.kill(leader)
    _remove_cgroups([path for paths in cgroups.values() for path in paths])


def _remove_cgroups(paths: list[bytes]) -> None:
    """Remove the cgroups of attempts gxo could not clean up (it was killed): each is busy
    for a moment after its last process died, so retry briefly."""
    deadline = time.monotonic() + 2.0
    while paths and time.monotonic() < deadline:
        busy = []
        for path in paths:
            _kill_members(path)  # a cgroup with a live process cannot be removed
            try:
                os.rmdir(path)
            except FileNotFoundError:
                pass
            except OSError:
                busy.append(path)
        paths = busy
        if paths:
            time.sleep(0.01)


def _kill_members(path: bytes) -> None:
    """SIGKILL every process in the cgroup ``path``: the attempt's whole tree, ``setsid``
    daemons included, which the session kill does not find once the attempt's process died."""
    try:
        with open(os.path.join(path, b"cgroup.procs"), "rb") as f:
            members = {int(pid) for pid in f.read().split()}
    except (OSError, ValueError):
        return
    signal_processes(members, signal.SIGKILL)


def _set_name() -> None:
    try:
        import ctypes

        ctypes.CDLL(None).prctl(_PR_SET_NAME, ctypes.c_char_p(GUARD_NAME), 0, 0, 0)
    except (OSError, AttributeError):
        pass


def _guard(leader: int, read_fd: int) -> None:
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2):
        signal.signal(signum, signal.SIG_IGN)
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    os.closerange(3, read_fd)  # the worker's sockets and pipes: their EOF must not wait on us
    os.closerange(read_fd + 1, 1 << 16)
    _set_name()
    tracker = EscapedTracker()
    poller = select.poll()  # not select(): no limit on the descriptor's number
    poller.register(read_fd, select.POLLIN)
    while True:
        try:
            if not poller.poll(TRACK_INTERVAL * 1000):
                tracker.look(leader)
                continue
            if not os.read(read_fd, 1):
                break
        except InterruptedError:
            continue
        except OSError:
            break
    kill_session(leader, signal.SIGKILL, include_self=False)
    tracker.kill(leader)
