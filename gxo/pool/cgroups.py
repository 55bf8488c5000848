"""Per-attempt control groups: the kernel enforces a task's memory and process limits.

A cgroup bounds a whole process tree (double-forked and ``setsid`` children included), which no
per-process ``setrlimit`` can do, and the kernel's OOM killer acts inside it alone, so a task
that allocates without bound is killed before the node is. gxo creates one cgroup per attempt
below the cgroup it runs in, moves the attempt's fresh process into it before any module code
runs, reads the peak usage and the OOM kills after the attempt, and removes it.

Two layouts exist in the wild and this machine kind has both at once (a "hybrid"):

- cgroup v2 (the unified hierarchy): one tree; ``memory.max``, ``memory.swap.max``,
  ``pids.max``, ``memory.peak`` and ``memory.events`` (``oom_kill``). A controller is usable in
  a child only when the parent lists it in ``cgroup.subtree_control``, and a cgroup with
  processes cannot enable controllers for its children ("no internal processes"), so gxo first
  moves itself into a leaf (``gxo-parent``) of its own cgroup.
- cgroup v1: one tree per controller; ``memory.limit_in_bytes``,
  ``memory.memsw.limit_in_bytes`` (when swap accounting is on), ``memory.max_usage_in_bytes``,
  ``memory.oom_control`` (``oom_kill``), and ``pids.max`` in the pids tree.

:func:`probe` says which one can be used here (or why none can); nothing is created until an
attempt asks for limits. Level 3 (pool): imports nothing from gxo.
"""

from __future__ import annotations

import errno
import os
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["AttemptCgroup", "CgroupSupport", "Usage", "probe"]

#: Where the kernel mounts cgroup hierarchies (a test may point gxo elsewhere).
CGROUP_ROOT = Path(os.environ.get("GXO_CGROUP_ROOT", "/sys/fs/cgroup"))


@dataclass(frozen=True)
class Usage:
    """What an attempt's cgroup measured."""

    #: Peak memory of the whole tree, in bytes (0 when the kernel does not say).
    memory_peak: int = 0
    #: Processes the OOM killer killed inside the cgroup.
    oom_kills: int = 0
    #: Times the process limit refused a fork.
    pids_refused: int = 0


@dataclass(frozen=True)
class CgroupSupport:
    """Which cgroup layout gxo can create attempt cgroups in, and where."""

    #: ``v2``, ``v1`` or ``""`` (none usable: ``why`` says what is missing).
    version: str
    #: v2: the directory attempt cgroups are created in. v1: the memory tree's directory.
    memory_dir: Path | None = None
    #: v1 only: the pids tree's directory (v2 uses ``memory_dir`` for both).
    pids_dir: Path | None = None
    why: str = ""

    @property
    def usable(self) -> bool:
        return bool(self.version)

    def describe(self) -> str:
        """For ``gxo plan`` and the start line: ``cgroup v1 (memory, pids)``."""
        return f"cgroup {self.version} (memory, pids)" if self.version else "no cgroup"


def _own_path(controller: str) -> str | None:
    """This process's cgroup path for a v1 controller, or for v2 (``controller == ""``)."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controller == "" and controllers == "" and line.startswith("0::"):
            return path
        if controller and controller in controllers.split(","):
            return path
    return None


def _writable_dir(path: Path) -> bool:
    return path.is_dir() and os.access(path, os.W_OK)


def probe() -> CgroupSupport:
    """Find a cgroup layout where gxo may create attempt cgroups with memory and pids limits.

    v2 is preferred when its memory and pids controllers are available; otherwise v1 when both
    the memory and the pids hierarchies are mounted and writable where this process sits.
    """
    reasons: list[str] = []
    v2 = _probe_v2(reasons)
    if v2 is not None:
        return v2
    v1 = _probe_v1(reasons)
    if v1 is not None:
        return v1
    return CgroupSupport("", why="; ".join(reasons) or "no cgroup hierarchy found")


def _v2_mount() -> Path | None:
    for candidate in (CGROUP_ROOT, CGROUP_ROOT / "unified"):
        if (candidate / "cgroup.controllers").is_file():
            return candidate
    return None


def _probe_v2(reasons: list[str]) -> CgroupSupport | None:
    mount = _v2_mount()
    own = _own_path("")
    if mount is None or own is None:
        reasons.append("cgroup v2 is not mounted")
        return None
    here = mount / own.lstrip("/")
    try:
        available = (here / "cgroup.controllers").read_text().split()
    except OSError as exc:
        reasons.append(f"cgroup v2: cannot read {here}: {exc.strerror}")
        return None
    missing = [c for c in ("memory", "pids") if c not in available]
    if missing:
        reasons.append(f"cgroup v2 at {here} lacks the {' and '.join(missing)} controller")
        return None
    if not _writable_dir(here):
        reasons.append(f"cgroup v2 at {here} is not writable by this user")
        return None
    return CgroupSupport("v2", memory_dir=here)


def _probe_v1(reasons: list[str]) -> CgroupSupport | None:
    dirs: dict[str, Path] = {}
    for controller in ("memory", "pids"):
        own = _own_path(controller)
        mount = CGROUP_ROOT / controller
        if own is None or not mount.is_dir():
            reasons.append(f"cgroup v1 has no {controller} hierarchy")
            return None
        here = mount / own.lstrip("/")
        if not _writable_dir(here):
            reasons.append(f"cgroup v1 {controller} at {here} is not writable by this user")
            return None
        dirs[controller] = here
    return CgroupSupport("v1", memory_dir=dirs["memory"], pids_dir=dirs["pids"])


def _enable_v2_controllers(here: Path) -> Path:
    """Make ``here`` able to give children memory and pids limits; return their parent.

    A v2 cgroup that holds processes cannot enable controllers for its children, so this
    process (and any sibling in the same cgroup) moves into the leaf ``gxo-parent`` first.
    Returns the directory attempt cgroups go in (``here/gxo-attempts``).
    """
    enabled = (here / "cgroup.subtree_control").read_text().split()
    if "memory" not in enabled or "pids" not in enabled:
        leaf = here / "gxo-parent"
        leaf.mkdir(exist_ok=True)
        for pid in (here / "cgroup.procs").read_text().split():
            try:
                (leaf / "cgroup.procs").write_text(pid)
            except OSError as exc:
                if exc.errno != errno.ESRCH:  # it exited meanwhile
                    raise
        (here / "cgroup.subtree_control").write_text("+memory +pids")
    attempts = here / "gxo-attempts"
    attempts.mkdir(exist_ok=True)
    if "memory" not in (attempts / "cgroup.subtree_control").read_text().split():
        (attempts / "cgroup.subtree_control").write_text("+memory +pids")
    return attempts


@dataclass
class AttemptCgroup:
    """One attempt's cgroup (or pair of cgroups, on v1): create, join, measure, remove.

    Use as ``with AttemptCgroup.create(support, name, memory=..., processes=...) as cg:``;
    :meth:`add` a process before it runs module code, :meth:`usage` after the attempt.
    Leaving the block kills whatever is still inside and removes the cgroup.
    """

    support: CgroupSupport
    dirs: list[Path] = field(default_factory=list)

    @classmethod
    def create(
        cls,
        support: CgroupSupport,
        name: str,
        *,
        memory: int | None = None,
        processes: int | None = None,
    ) -> AttemptCgroup:
        """Create the cgroup(s) for one attempt with the given limits (None: no limit)."""
        if not support.usable:
            raise OSError(errno.ENOTSUP, f"cgroups cannot be used here: {support.why}")
        group = cls(support)
        try:
            if support.version == "v2":
                assert support.memory_dir is not None
                parent = _enable_v2_controllers(support.memory_dir)
                path = parent / name
                path.mkdir()
                group.dirs.append(path)
                if memory is not None:
                    _write(path / "memory.max", str(memory))
                    _write_if_present(path / "memory.swap.max", "0")
                if processes is not None:
                    _write(path / "pids.max", str(processes))
            else:
                assert support.memory_dir is not None
                assert support.pids_dir is not None
                mem = support.memory_dir / name
                mem.mkdir()
                group.dirs.append(mem)
                pids = support.pids_dir / name
                pids.mkdir()
                group.dirs.append(pids)
                if memory is not None:
                    _write(mem / "memory.limit_in_bytes", str(memory))
                    # With swap accounting on, memsw bounds memory + swap at the same value,
                    # so a task cannot escape its limit by being swapped out.
                    _write_if_present(mem / "memory.memsw.limit_in_bytes", str(memory))
                if processes is not None:
                    _write(pids / "pids.max", str(processes))
        except BaseException:
            group.remove()
            raise
        return group

    def __enter__(self) -> AttemptCgroup:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()

    def add(self, pid: int) -> None:
        """Move ``pid`` (and, from then on, every child it forks) into the cgroup(s)."""
        for path in self.dirs:
            _write(path / "cgroup.procs", str(pid))

    def pids(self) -> list[int]:
        """The processes inside (every member of the attempt's tree)."""
        found: set[int] = set()
        for path in self.dirs:
            try:
                found.update(int(p) for p in (path / "cgroup.procs").read_text().split())
            except FileNotFoundError:
                continue
        return sorted(found)

    def usage(self) -> Usage:
        """Peak memory, OOM kills and refused forks so far."""
        if not self.dirs:
            return Usage()
        if self.support.version == "v2":
            path = self.dirs[0]
            events = _keyed(path / "memory.events")
            pids_events = _keyed(path / "pids.events")
            return Usage(
                memory_peak=_int(path / "memory.peak"),
                oom_kills=events.get("oom_kill", 0),
                pids_refused=pids_events.get("max", 0),
            )
        mem, pids = self.dirs[0], self.dirs[1]
        return Usage(
            memory_peak=_int(mem / "memory.max_usage_in_bytes"),
            oom_kills=_keyed(mem / "memory.oom_control").get("oom_kill", 0),
            pids_refused=_keyed(pids / "pids.events").get("max", 0),
        )

    def memory_peak(self) -> int:
        """Peak memory of the whole tree so far, in bytes (one read; 0 when unknown)."""
        if not self.dirs:
            return 0
        name = "memory.peak" if self.support.version == "v2" else "memory.max_usage_in_bytes"
        return _int(self.dirs[0] / name)

    def kill_all(self, *, wait: float = 2.0) -> int:
        """SIGKILL every process inside until it is empty; return how many were killed."""
        killed: set[int] = set()
        deadline = time.monotonic() + wait
        while True:
            inside = self.pids()
            if not inside:
                return len(killed)
            for pid in inside:
                try:
                    os.kill(pid, signal.SIGKILL)
                    killed.add(pid)
                except ProcessLookupError:
                    pass
            if time.monotonic() > deadline:
                return len(killed)
            time.sleep(0.005)  # the kernel empties the cgroup as the killed processes exit

    def remove(self) -> None:
        """Kill what is left and remove the cgroup(s); safe to call twice."""
        if not self.dirs:
            return
        self.kill_all()
        for path in self.dirs:
            for _ in _retries():
                try:
                    path.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError as exc:
                    if exc.errno != errno.EBUSY:
                        raise
        self.dirs = []


def _retries(count: int = 200, pause: float = 0.005) -> Iterator[int]:
    """A cgroup is busy for a moment after its last process died: retry rmdir briefly."""
    for i in range(count):
        yield i
        time.sleep(pause)


def _write(path: Path, value: str) -> None:
    with open(path, "w") as f:
        f.write(value)


def _write_if_present(path: Path, value: str) -> None:
    if path.exists():
        try:
            _write(path, value)
        except OSError as exc:
            if exc.errno not in (errno.EINVAL, errno.EPERM, errno.EACCES):
                raise


def _int(path: Path) -> int:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return 0


def _keyed(path: Path) -> dict[str, int]:
    """``key value`` lines (``memory.events``, ``memory.oom_control``)."""
    try:
        text = path.read_text()
    except OSError:
        return {}
    values: dict[str, int] = {}
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        try:
            values[key] = int(value)
        except ValueError:
            continue
    return values
