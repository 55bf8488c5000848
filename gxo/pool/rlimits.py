"""Limits without cgroups: ``setrlimit`` for what the kernel bounds per process, and a watch
over the whole process tree for what it does not.

The kernel enforces some limits per process, and those are inherited by every child:

- ``RLIMIT_CPU``: CPU seconds; past the soft limit the process gets SIGXCPU (then SIGKILL at
  the hard limit, one second later);
- ``RLIMIT_FSIZE``: the largest file a process may write; past it, SIGXFSZ (``EFBIG`` when
  the signal is ignored);
- ``RLIMIT_NOFILE``: the highest descriptor number + 1, with room for gxo's own descriptors.

Two others are deliberately not used: ``RLIMIT_NPROC`` counts every process of the *user* (and
is not enforced for root), and ``RLIMIT_AS`` bounds address space per process, which breaks
JVMs and Go programs that reserve far more than they use. Memory and process counts of a tree
are watched instead (:class:`TreeWatch`): gxo is the tree's subreaper, so double-forked and
``setsid`` children stay visible as descendants.

Level 3 (pool): imports only gxo.pool.session.
"""

from __future__ import annotations

import os
import resource
import signal
from dataclasses import dataclass

from gxo.pool.session import descendants

__all__ = ["GXO_FDS_HEADROOM", "TreeSample", "TreeWatch", "apply_rlimits", "signal_limit"]

#: Descriptors gxo itself keeps open in an attempt's process (control and console sockets,
#: the output pump, stream pipes); ``open_files`` is the task's allowance on top of them.
GXO_FDS_HEADROOM = 32
#: The name of a worker's guard process (``gxo.pool.session.GUARD_NAME``).
_GUARD = "gxo-guard"


def apply_rlimits(
    *,
    cpu: float | None = None,
    file_size: int | None = None,
    open_files: int | None = None,
) -> None:
    """Set the per-process limits in the calling process (inherited by what it starts).

    Called in the attempt's fresh process before any module code runs. ``cpu`` is rounded up
    to whole seconds (the kernel's unit), so ``cpu: 1.5s`` allows 2.
    """
    if cpu is not None:
        seconds = max(1, int(-(-cpu // 1)))
        resource.setrlimit(resource.RLIMIT_CPU, (seconds, seconds + 1))
    if file_size is not None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (file_size, file_size))
    if open_files is not None:
        # Descriptors are numbered from the lowest free one, and gxo's own already occupy the
        # low numbers: count them in, or the task gets fewer than it asked for.
        used = _highest_fd() + 1
        soft = max(used, open_files + min(used, GXO_FDS_HEADROOM))
        _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if hard != resource.RLIM_INFINITY:
            soft = min(soft, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, soft))


def _highest_fd() -> int:
    try:
        return max(int(name) for name in os.listdir("/proc/self/fd"))
    except (OSError, ValueError):
        return 2


def signal_limit(signum: int) -> str | None:
    """Which limit a death by ``signum`` means, if any: SIGXCPU → cpu, SIGXFSZ → file_size."""
    if signum == signal.SIGXCPU:
        return "cpu"
    if signum == signal.SIGXFSZ:
        return "file_size"
    return None


@dataclass(frozen=True)
class TreeSample:
    """One look at a process tree."""

    #: Resident memory of every process in the tree, summed, in bytes.
    rss: int
    #: Processes in the tree (the root included).
    processes: int
    #: CPU seconds (user + system) of the live processes in the tree.
    cpu: float
    #: Open descriptors, summed over the tree.
    open_files: int


class TreeWatch:
    """Measures a process tree and says which limit it broke, keeping the peaks.

    ``check()`` is called periodically by whoever owns the attempt; it never kills anything
    itself, so the caller decides how to stop the tree and what reason to give.
    """

    def __init__(
        self, root_pid: int, *, memory: int | None = None, processes: int | None = None
    ) -> None:
        self.root_pid = root_pid
        self.memory = memory
        self.processes = processes
        self.peak_rss = 0
        self.peak_processes = 0
        self.peak_open_files = 0
        self.cpu = 0.0

    def sample(self) -> TreeSample:
        import psutil  # only a watched tree pays for it (the parent, under isolation: process)

        try:
            root = psutil.Process(self.root_pid)
        except psutil.Error:
            return TreeSample(0, 0, self.cpu, 0)
        members = [root]
        for pid in descendants(self.root_pid):
            try:
                members.append(psutil.Process(pid))
            except psutil.Error:
                continue
        rss = 0
        cpu = 0.0
        files = 0
        alive = 0
        for proc in members:
            try:
                with proc.oneshot():
                    if proc.name() == _GUARD:
                        continue  # gxo's own (gxo.pool.session.start_guard), not the task's
                    rss += proc.memory_info().rss
                    times = proc.cpu_times()
                    cpu += times.user + times.system
                    files += proc.num_fds()
                alive += 1
            except psutil.Error:
                continue  # it exited between the listing and the look
        return TreeSample(rss, alive, cpu, files)

    def check(self) -> str | None:
        """Sample the tree, update the peaks, and return the limit it is over (or None)."""
        sample = self.sample()
        self.peak_rss = max(self.peak_rss, sample.rss)
        self.peak_processes = max(self.peak_processes, sample.processes)
        self.peak_open_files = max(self.peak_open_files, sample.open_files)
        self.cpu = max(self.cpu, sample.cpu)
        if self.memory is not None and sample.rss > self.memory:
            return "memory"
        if self.processes is not None and sample.processes > self.processes:
            return "processes"
        return None
