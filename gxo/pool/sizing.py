"""How many workers by default: exactly the CPUs this job was given, no more.

On a batch node the CPUs a job may use are said in three places, and any of them may be the
smallest: the CPU affinity mask (``taskset``, SLURM's cpusets), ``SLURM_CPUS_PER_TASK``, and
the CPU quota (bandwidth limit) of the cgroup gxo runs in or of any of its ancestors (Docker
``--cpus``, Kubernetes limits, systemd ``CPUQuota=``). A quota of 1.5 CPUs is rounded up to 2
(the scheduler of the kernel will share them). The default ``--workers`` is the smallest; the
start line says which one decided.

cgroup v2 keeps ``cpu.max`` (``"<quota> <period>"`` or ``"max <period>"``) in each directory
of the unified hierarchy; cgroup v1 keeps ``cpu.cfs_quota_us`` (``-1``: none) and
``cpu.cfs_period_us`` under the ``cpu`` controller's mount. ``GXO_CGROUP_ROOT`` points gxo at
another root than ``/sys/fs/cgroup`` (for tests; a fake tree of the same shape).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Final

import msgspec

if TYPE_CHECKING:
    import subprocess

__all__ = [
    "CGROUP_ROOT_ENV",
    "Sizing",
    "cgroup_cpu_quota",
    "default_workers",
    "parse_deadline",
    "slurm_end_time",
]

#: Environment variable that replaces ``/sys/fs/cgroup`` (a test hook).
CGROUP_ROOT_ENV: Final = "GXO_CGROUP_ROOT"
_PROC_CGROUP: Final = "/proc/self/cgroup"


class Sizing(msgspec.Struct, frozen=True):
    """The default worker count and what decided it (``"CPU affinity"``, ...)."""

    workers: int
    decided_by: str

    def describe(self) -> str:
        """For the start line: ``4 (SLURM_CPUS_PER_TASK=4)``."""
        return f"{self.workers} ({self.decided_by})"


def _affinity() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def _slurm(environ: Mapping[str, str]) -> int | None:
    text = environ.get("SLURM_CPUS_PER_TASK", "").strip()
    try:
        value = int(text)
    except ValueError:
        return None
    return value if value > 0 else None


def _own_cgroups(proc_cgroup: str) -> list[tuple[str, str]]:
    """``(controllers, path)`` of each line of ``/proc/self/cgroup``."""
    try:
        text = Path(proc_cgroup).read_text()
    except OSError:
        return []
    found = []
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) == 3:
            found.append((parts[1], parts[2]))
    return found


def _ancestors(base: Path, path: str) -> Iterator[Path]:
    """``base/a/b/c``, ``base/a/b``, ``base/a``, ``base``."""
    parts = [part for part in path.split("/") if part]
    for end in range(len(parts), -1, -1):
        yield base.joinpath(*parts[:end])


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _v2_quota(directory: Path) -> float | None:
    text = _read(directory / "cpu.max")
    if not text:
        return None
    quota, _, period = text.partition(" ")
    if quota == "max":
        return None
    try:
        return int(quota) / int(period or "100000")
    except (ValueError, ZeroDivisionError):
        return None


def _v1_quota(directory: Path) -> float | None:
    quota, period = _read(directory / "cpu.cfs_quota_us"), _read(directory / "cpu.cfs_period_us")
    try:
        value, length = int(quota or "-1"), int(period or "0")
    except ValueError:
        return None
    if value < 0 or length <= 0:
        return None
    return value / length


def cgroup_cpu_quota(
    root: str | os.PathLike[str] = "/sys/fs/cgroup", proc_cgroup: str = _PROC_CGROUP
) -> float | None:
    """The smallest CPU quota (in CPUs) of gxo's cgroup and its ancestors, or None."""
    base = Path(root)
    quotas: list[float] = []
    for controllers, path in _own_cgroups(proc_cgroup):
        if controllers == "":  # v2: the root, or base/unified on a hybrid v1+v2 host
            hybrid = (base / "unified").is_dir() and not (base / "cgroup.controllers").exists()
            reader, mount = _v2_quota, base / "unified" if hybrid else base
        elif "cpu" in controllers.split(","):
            mount = next(
                (
                    base / name
                    for name in (controllers, "cpu", "cpu,cpuacct")
                    if (base / name).is_dir()
                ),
                base / "cpu",
            )
            reader = _v1_quota
        else:
            continue
        for directory in _ancestors(mount, path):
            quota = reader(directory)
            if quota is not None:
                quotas.append(quota)
    return min(quotas) if quotas else None


def default_workers(environ: Mapping[str, str] | None = None) -> Sizing:
    """The smallest of CPU affinity, ``SLURM_CPUS_PER_TASK`` and the cgroup CPU quota."""
    env = os.environ if environ is None else environ
    affinity = _affinity()
    candidates = [(affinity, "CPU affinity")]
    slurm = _slurm(env)
    if slurm is not None:
        candidates.append((slurm, f"SLURM_CPUS_PER_TASK={slurm}"))
    quota = cgroup_cpu_quota(env.get(CGROUP_ROOT_ENV) or "/sys/fs/cgroup")
    if quota is not None:
        cpus = max(1, math.ceil(quota - 1e-9))
        candidates.append((cpus, f"cgroup CPU quota {quota:g}"))
    workers, decided_by = min(candidates, key=lambda pair: pair[0])  # first wins a tie
    return Sizing(max(1, workers), decided_by)


# -- time: --deadline, GXO_DEADLINE, the SLURM job's end time --------------------------------


def parse_deadline(text: str, now: float) -> float:
    """``--deadline``/``GXO_DEADLINE``: a duration from ``now`` (``2h``, ``90m``, ``3600``).

    Returns the wall-clock time (``time.time()`` scale). Raises ValueError with a message
    that says what is accepted.
    """
    from gxo.config.duration import parse_duration

    text = text.strip()
    try:
        seconds = float(text)
    except ValueError:
        seconds = parse_duration(text)
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"expected a duration like 2h, 90m or 3600 (seconds), got {text!r}")
    return now + seconds


def slurm_end_time(
    environ: Mapping[str, str],
    run: Callable[..., subprocess.CompletedProcess[str]] | None = None,
) -> float | None:
    """The SLURM job's end time: ``SLURM_JOB_END_TIME`` (a Unix time, which SLURM exports
    into the job), else ``squeue -h -j $SLURM_JOB_ID -o %e``; or None.

    The variable first: it costs no query of the SLURM controller (which every job of an
    array would otherwise make at once) and needs no ``squeue`` on the node. None outside a
    SLURM job, without either, or when SLURM does not know (``N/A``, ``Unknown``, an
    unlimited job). squeue's time is local, as it prints it.
    """
    exported = environ.get("SLURM_JOB_END_TIME", "").strip()
    if exported.isdigit() and int(exported) > 0:
        return float(exported)
    job = environ.get("SLURM_JOB_ID", "").strip()
    if not job:
        return None
    import shutil  # only in a SLURM job: off the start-up of every other run
    import subprocess

    squeue = shutil.which("squeue", path=environ.get("PATH"))
    if squeue is None:
        return None
    try:
        result = (run or subprocess.run)(
            [squeue, "-h", "-j", job, "-o", "%e"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    text = result.stdout.strip()
    if result.returncode != 0 or not text:
        return None
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        return None
