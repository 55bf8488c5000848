"""How ``isolation: process`` limits are enforced here, and the watch over one attempt.

Two halves:

- :func:`choose_enforcement`, at run start on the machine that runs the tasks: the strongest
  mechanism available (a per-attempt cgroup, else ``setrlimit`` plus a process-tree watch),
  checked for real (a cgroup is created and removed), and ``network: false`` tried in a
  short-lived child. What cannot be enforced fails the run start with
  :class:`LimitsUnenforceable` (exit 2, nothing ran), unless ``limits_mode: best_effort``.
  ``GXO_LIMITS_ENFORCEMENT=rlimit`` (or ``cgroup``) forces one mechanism, so both can be
  exercised on one machine.
- :class:`AttemptLimits`, in the pool's parent, one per attempt: it puts the attempt's fresh
  process into its cgroup before the process is sent its task, watches the tree from the
  pool's wait loop, says which limit was broken (:meth:`AttemptLimits.check`,
  :meth:`AttemptLimits.classify`), measures the peaks for the report, and removes the cgroup.

What the fresh process does itself (``setrlimit`` for ``cpu``, ``file_size`` and
``open_files``; the network namespace) is in :func:`apply_in_attempt`, called by the worker
before any module code runs.

Level 3 (pool): imports gxo.errors, gxo.reasons, gxo.wire and its own level.
"""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from gxo.errors import UsageError
from gxo.pool.rlimits import TreeWatch, apply_rlimits, signal_limit
from gxo.reasons import format_reason
from gxo.wire import AttemptUsage, Done, RunLimits

if TYPE_CHECKING:  # gxo.pool.cgroups is imported when a limit needs it: a plain run never does
    from gxo.pool.cgroups import AttemptCgroup, CgroupSupport

__all__ = [
    "ENFORCEMENT_ENV",
    "AttemptLimits",
    "Enforcement",
    "LimitsUnenforceable",
    "apply_in_attempt",
    "choose_enforcement",
    "describe_limit",
]

#: Forces one mechanism: ``cgroup``, ``rlimit`` (setrlimit + the tree watch) or ``auto``.
ENFORCEMENT_ENV = "GXO_LIMITS_ENFORCEMENT"
#: Threads of gxo's own in an attempt's process (main, control reader, output pump): a
#: cgroup's ``pids.max`` counts threads, ``processes`` counts the task's processes.
_GXO_THREADS = 4
#: The largest ``pids.max`` the kernel takes (``PID_MAX_LIMIT``: no machine holds more tasks;
#: a larger value is ``EINVAL``). A ``processes`` limit past it can never be reached, so it is
#: written as this rather than fail the attempt's cgroup.
_PIDS_MAX = 1 << 22
#: Seconds between two looks at a tree the watch enforces ``memory`` or ``processes`` on
#: (no cgroup): the pool's wait loop wakes this often for it.
WATCH_INTERVAL = 0.02
#: Seconds between two looks at a tree whose limits the kernel enforces (a cgroup), or that
#: has none: the looks only keep its peaks (and notice an OOM kill or a refused fork). An
#: attempt shorter than this is never looked at by the parent: its process measures itself.
PEAK_INTERVAL = 0.1


class LimitsUnenforceable(UsageError):
    """A limit, or ``network: false``, cannot be enforced where the tasks run (exit 2)."""


@dataclass(frozen=True)
class Enforcement:
    """The mechanism chosen at run start for every ``isolation: process`` attempt."""

    #: Where attempt cgroups go; None: setrlimit plus the tree watch.
    cgroup: CgroupSupport | None = None
    #: Why no cgroup is used (empty when one is).
    why: str = ""

    def describe(self) -> str:
        """``cgroup v1 (memory, pids) + rlimits`` or ``rlimits + process-tree watch``."""
        if self.cgroup is not None:
            return f"{self.cgroup.describe()} + rlimits"
        return "rlimits + process-tree watch"

    @property
    def name(self) -> str:
        """What the report's ``usage.enforcement`` says: ``cgroup v1``, ``rlimit+watch``."""
        return f"cgroup {self.cgroup.version}" if self.cgroup is not None else "rlimit+watch"


def choose_enforcement(
    *, need_network: bool = False, strict: bool = True, forced: str | None = None
) -> tuple[Enforcement, list[str]]:
    """The mechanism for this machine, and warnings (limits only partly enforced).

    Raises :class:`LimitsUnenforceable` when ``strict`` and something asked for cannot be
    had: a forced cgroup that cannot be created, or ``network: false`` that the kernel
    refuses (network isolation is never downgraded, even with ``best_effort``: a task that
    must not reach the network does not run with it).
    """
    from gxo.pool.netns import network_isolation_supported

    warnings: list[str] = []
    mode = (forced if forced is not None else os.environ.get(ENFORCEMENT_ENV, "")) or "auto"
    if mode not in ("auto", "cgroup", "rlimit"):
        raise LimitsUnenforceable(
            f"{ENFORCEMENT_ENV}={mode!r} is not one of auto, cgroup, rlimit",
        )
    enforcement = Enforcement(why=f"{ENFORCEMENT_ENV}=rlimit")
    if mode != "rlimit":
        from gxo.pool.cgroups import AttemptCgroup, probe

        support = probe()
        why = support.why
        if support.usable:
            try:
                AttemptCgroup.create(support, f"gxo-check-{os.getpid()}").remove()
            except OSError as exc:
                why = f"creating a cgroup under {support.memory_dir} failed: {exc}"
            else:
                enforcement = Enforcement(cgroup=support)
        if enforcement.cgroup is None:
            if mode == "cgroup":
                problem = f"{ENFORCEMENT_ENV}=cgroup, but no cgroup can be used here: {why}"
                if strict:
                    raise LimitsUnenforceable(
                        problem + "; unset it to use setrlimit and a process-tree watch"
                    )
                warnings.append(problem)
            enforcement = Enforcement(why=why)
    if need_network:
        why_not = network_isolation_supported()
        if why_not:
            raise LimitsUnenforceable(
                f"network: false cannot be enforced on this machine: {why_not}; run gxo as "
                "root, allow unprivileged user namespaces, or remove network: false"
            )
    return enforcement, warnings


def apply_in_attempt(limits: RunLimits) -> None:
    """In the attempt's fresh process, before any module code: the per-process limits and
    the network namespace (raises OSError or :class:`~gxo.pool.netns.NetnsUnavailable`)."""
    apply_rlimits(
        cpu=limits.cpu or None,
        file_size=limits.file_size or None,
        open_files=limits.open_files or None,
    )
    if limits.no_network:
        from gxo.pool.netns import isolate_network

        isolate_network()


def measure_attempt() -> AttemptUsage:
    """In the attempt's process, after its module ran: what it used, measured by itself.

    Its own peak resident memory and the largest of its reaped children's (``getrusage``),
    the CPU seconds of both, and the descriptors open now. Cheap (two system calls and one
    directory listing), and exact for an attempt too short for the parent ever to look at
    its tree (the parent looks every :data:`PEAK_INTERVAL` at most): the parent merges it
    with what its looks saw (:meth:`AttemptLimits.classify`). A figure the task's own code
    could falsify, but only in its own report: nothing is enforced from it.
    """
    own = resource.getrusage(resource.RUSAGE_SELF)
    reaped = resource.getrusage(resource.RUSAGE_CHILDREN)
    try:
        fds = len(os.listdir("/proc/self/fd")) - 1  # the listing's own descriptor
    except OSError:
        fds = 0
    return AttemptUsage(
        memory_peak=max(own.ru_maxrss, reaped.ru_maxrss) * 1024,  # KiB on Linux
        cpu_seconds=own.ru_utime + own.ru_stime + reaped.ru_utime + reaped.ru_stime,
        processes_peak=2 if reaped.ru_maxrss else 1,  # at least one child ran beside it
        open_files_peak=fds,
    )


def describe_limit(which: str, value: float) -> str:
    """``256MiB``, ``1s``, ``64``: a limit as a user wrote it."""
    if which in ("memory", "file_size", "output"):
        return _size(int(value))
    if which == "cpu":
        return f"{value:g}s"
    return str(int(value))


def _size(size: int) -> str:
    for unit, power in (("GiB", 3), ("MiB", 2), ("KiB", 1)):
        scale = 1024**power
        if size >= scale:
            shown = size / scale
            return f"{shown:.0f}{unit}" if shown == int(shown) else f"{shown:.1f}{unit}"
    return f"{size}B"


class AttemptLimits:
    """One ``isolation: process`` attempt, seen from the pool: its cgroup, its watch, its peaks.

    Created when the attempt's fresh process has started and before it is sent its task, so
    the process is in its cgroup before any module code runs. The pool looks at the tree when
    :meth:`due` says so (every :data:`WATCH_INTERVAL` when the watch enforces a limit, every
    :data:`PEAK_INTERVAL` otherwise), not at every wake-up of its loop; a look costs a few
    reads of ``/proc`` per process of the tree.
    """

    def __init__(self, enforcement: Enforcement, limits: RunLimits, pid: int) -> None:
        self.enforcement = enforcement
        self.limits = limits
        self.pid = pid
        self.cgroup: AttemptCgroup | None = None
        tree = bool(limits.memory or limits.processes)
        if enforcement.cgroup is not None and tree:
            from gxo.pool.cgroups import AttemptCgroup

            self.cgroup = AttemptCgroup.create(
                enforcement.cgroup,
                f"gxo-{os.getpid()}-{pid}",
                memory=limits.memory or None,
                processes=(
                    min(limits.processes + _GXO_THREADS, _PIDS_MAX) if limits.processes else None
                ),
            )
            try:
                self.cgroup.add(pid)
            except OSError:
                self.cgroup.remove()
                raise
            self.watch = TreeWatch(pid)  # peaks only: the kernel enforces
        else:
            self.watch = TreeWatch(
                pid, memory=limits.memory or None, processes=limits.processes or None
            )
        #: Seconds between two looks at the tree, and when the next one is due (monotonic).
        self.interval = WATCH_INTERVAL if self.cgroup is None and tree else PEAK_INTERVAL
        self.next_look = time.monotonic() + self.interval
        #: What the attempt's process measured itself (:func:`measure_attempt`), if it said.
        self.reported: AttemptUsage | None = None
        #: Processes the attempt's process killed when its module returned (they ran at once
        #: with it): a lower bound of the tree's peak that no look may have seen.
        self.left_behind = 0
        #: The limit the attempt broke, once known.
        self.exceeded = ""

    def due(self, now: float) -> bool:
        """Whether the next look at the tree is due at ``now`` (monotonic)."""
        return now >= self.next_look

    def check(self) -> str:
        """Look at the tree now; the limit it broke (empty: none). Also keeps the peaks."""
        self.next_look = time.monotonic() + self.interval
        broken = self.watch.check() or ""
        if self.cgroup is not None:
            usage = self.cgroup.usage()
            if usage.oom_kills:
                broken = "memory"
            elif usage.pids_refused:
                broken = "processes"
        if broken and not self.exceeded:
            self.exceeded = broken
        return broken

    def kill(self) -> set[int]:
        """SIGKILL the whole tree (a limit is hard: no grace); the pids signalled."""
        from gxo.pool.session import kill_session

        targets = kill_session(self.pid, signal.SIGKILL)
        if self.cgroup is not None:
            self.cgroup.kill_all(wait=0.0)
        return targets

    def usage(self) -> AttemptUsage:
        """What the attempt used so far, and its limits: the highest of what the looks at
        its tree saw and what its process measured itself, or, for memory, the cgroup's
        peak when there is one.

        Memory in a cgroup is the kernel's count, the one its limit is held to. Resident
        sizes summed over the tree count again the pages the attempt's process still shares
        with the forkserver it was forked from (charged to the forkserver's cgroup, not the
        attempt's: some 20 MiB of interpreter): they would show a peak past a limit the
        kernel never let the tree pass.
        """
        watch = self.watch
        own = self.reported or AttemptUsage()
        memory = max(watch.peak_rss, own.memory_peak)
        if self.cgroup is not None:
            memory = self.cgroup.memory_peak() or memory
        return AttemptUsage(
            enforcement=self.enforcement.name,
            limits=self.limits.as_dict(),
            memory_peak=memory,
            cpu_seconds=round(max(watch.cpu, own.cpu_seconds), 3),
            processes_peak=max(watch.peak_processes, own.processes_peak, 1 + self.left_behind),
            open_files_peak=max(watch.peak_open_files, own.open_files_peak),
        )

    def detail(self, which: str) -> str:
        """``memory limit 256MiB exceeded (peak resident memory of the tree 300MiB; enforced
        by cgroup v1)``: the limit, what was measured, and what enforces that limit (a cgroup
        or the tree watch for memory and processes, the kernel's per-process rlimit for the
        others)."""
        usage = self.usage()
        limit = self.limits.as_dict().get(which)
        shown = describe_limit(which, limit) if limit else "?"
        cpu = f"{usage.cpu_seconds:g} CPU seconds"
        if limit and usage.cpu_seconds < limit:
            # SIGXCPU comes at the limit; the last look at the tree may predate it.
            cpu = f"SIGXCPU at the limit; {usage.cpu_seconds:g} CPU seconds at the last look"
        processes = f"peak {usage.processes_peak} processes in the tree"
        if limit and usage.processes_peak <= limit:
            # The cgroup refuses the fork at the limit; the looks may have missed the tree
            # at its largest (the task's children may have been killed since).
            processes = f"a fork past the limit was refused; {processes}"
        files = f"peak {usage.open_files_peak} open descriptors"
        if limit and usage.open_files_peak < limit:
            # EMFILE comes at the limit; the task's files may be closed by the last look.
            files = (
                f"an open past the limit was refused; {usage.open_files_peak} open "
                "descriptors at the last look"
            )
        measured = {
            "memory": f"peak resident memory of the tree {_size(usage.memory_peak)}",
            "processes": processes,
            "cpu": cpu,
            "open_files": files,
            "file_size": "a write past the limit was refused",
        }.get(which, "")
        by = _RLIMIT_OF.get(which) or (
            usage.enforcement if self.cgroup is not None else "the process-tree watch"
        )
        return f"{which} limit {shown} exceeded ({measured}; enforced by {by})"

    def death_reason(self, exitcode: int | None) -> str:
        """The limit a death of the attempt's process means ('' if none): the watch or the
        cgroup saw it, or the kernel's limit signal (SIGXCPU, SIGXFSZ) killed it."""
        if not self.exceeded:
            self.check()
        if self.exceeded:
            return self.exceeded
        if exitcode is not None and exitcode < 0:
            return signal_limit(-exitcode) or ""
        return ""

    def classify(self, done: Done) -> Done:
        """The attempt's result with its usage, and a failure a limit caused named as such.

        A task that dies of its limit in its own code shows it as an error, not a death: a
        ``MemoryError`` or ``ENOMEM`` near ``memory``, ``EMFILE`` under ``open_files``, ``EFBIG``
        or a command killed by SIGXFSZ under ``file_size``, SIGXCPU under ``cpu``, a refused
        fork under ``processes``, an OOM kill inside the cgroup.

        ``done.usage`` is what the attempt's process measured itself; a success needs no
        further look at its tree (its peaks are that and what the earlier looks saw), a
        failure gets one, to tell a limit from a module error.
        """
        self.reported = done.usage
        self.left_behind = done.leftovers_killed
        if not done.ok:
            self.check()
        which = self.exceeded
        if not done.ok and not which:
            which = _limit_in_error(done, self.limits)
        usage = self.usage()
        if which and not done.ok:
            detail = self.detail(which)
            return _replace(
                done,
                reason=format_reason("limit_exceeded", which),
                error=f"{detail}: {done.error}" if done.error else detail,
                usage=usage,
            )
        return _replace(done, usage=usage)

    def close(self) -> None:
        """Kill what is left of the tree in the cgroup and remove it."""
        if self.cgroup is not None:
            with contextlib.suppress(OSError):
                self.cgroup.remove()
            self.cgroup = None


#: The limits the kernel enforces per process, whatever else is in use.
_RLIMIT_OF = {
    "cpu": "the kernel's RLIMIT_CPU",
    "file_size": "the kernel's RLIMIT_FSIZE",
    "open_files": "the kernel's RLIMIT_NOFILE",
}


def _replace(done: Done, **changes: object) -> Done:
    import msgspec

    return msgspec.structs.replace(done, **changes)


#: Error texts that mean a limit when that limit is set (strerror, exception names, signals).
_SIGNS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("open_files", ("Too many open files", "[Errno 24]", "EMFILE")),
    ("file_size", ("File too large", "[Errno 27]", "EFBIG", "SIGXFSZ", "File size limit")),
    ("cpu", ("SIGXCPU", "CPU time limit")),
    ("memory", ("MemoryError", "Cannot allocate memory", "[Errno 12]", "ENOMEM")),
)


def _limit_in_error(done: Done, limits: RunLimits) -> str:
    text = f"{done.reason} {done.error}"
    for which, signs in _SIGNS:
        if getattr(limits, which) and any(sign in text for sign in signs):
            return which
    return ""
