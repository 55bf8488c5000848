"""gxo.pool.sizing: the default --workers from affinity, SLURM_CPUS_PER_TASK and cgroup quotas."""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

import pytest

from gxo.pool.sizing import (
    cgroup_cpu_quota,
    default_workers,
    parse_deadline,
    slurm_end_time,
)

AFFINITY = len(os.sched_getaffinity(0))


def proc(tmp_path: Path, text: str) -> str:
    path = tmp_path / "proc-self-cgroup"
    path.write_text(text)
    return str(path)


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n")


def test_v2_the_smallest_quota_of_the_cgroup_and_its_ancestors(tmp_path: Path) -> None:
    root = tmp_path / "cg"
    write(root / "cpu.max", "max 100000")
    write(root / "job" / "cpu.max", "150000 100000")
    write(root / "job" / "step" / "cpu.max", "max 100000")
    write(root / "job" / "step" / "task" / "cpu.max", "400000 100000")
    assert cgroup_cpu_quota(root, proc(tmp_path, "0::/job/step/task\n")) == 1.5


def test_v2_max_everywhere_is_no_quota(tmp_path: Path) -> None:
    root = tmp_path / "cg"
    write(root / "a" / "cpu.max", "max 100000")
    assert cgroup_cpu_quota(root, proc(tmp_path, "0::/a\n")) is None


def test_v1_cfs_quota_and_minus_one(tmp_path: Path) -> None:
    root = tmp_path / "cg"
    write(root / "cpu,cpuacct" / "slurm" / "cpu.cfs_quota_us", "300000")
    write(root / "cpu,cpuacct" / "slurm" / "cpu.cfs_period_us", "100000")
    write(root / "cpu,cpuacct" / "slurm" / "job" / "cpu.cfs_quota_us", "-1")
    write(root / "cpu,cpuacct" / "slurm" / "job" / "cpu.cfs_period_us", "100000")
    text = "5:memory:/slurm/job\n3:cpu,cpuacct:/slurm/job\n"
    assert cgroup_cpu_quota(root, proc(tmp_path, text)) == 3.0
    write(root / "cpu,cpuacct" / "slurm" / "cpu.cfs_quota_us", "-1")
    assert cgroup_cpu_quota(root, proc(tmp_path, text)) is None


def test_hybrid_host_reads_v2_under_unified(tmp_path: Path) -> None:
    root = tmp_path / "cg"
    write(root / "unified" / "x" / "cpu.max", "50000 100000")
    (root / "cpu").mkdir()
    assert cgroup_cpu_quota(root, proc(tmp_path, "1:cpu:/\n0::/x\n")) == 0.5


def test_missing_files_are_no_quota(tmp_path: Path) -> None:
    assert cgroup_cpu_quota(tmp_path / "none", proc(tmp_path, "0::/a\n")) is None
    assert cgroup_cpu_quota(tmp_path, str(tmp_path / "no-proc-file")) is None


def fake_root(tmp_path: Path, quota: str) -> str:
    """A fake cgroup root that gives ``quota`` whatever this host's /proc/self/cgroup says."""
    root = tmp_path / "cgroot"
    write(root / "cpu.max", f"{quota} 100000")
    for name in ("cpu", "cpu,cpuacct"):
        write(root / name / "cpu.cfs_quota_us", quota if quota != "max" else "-1")
        write(root / name / "cpu.cfs_period_us", "100000")
    return str(root)


def test_default_is_affinity_without_slurm_or_quota(tmp_path: Path) -> None:
    sizing = default_workers({"GXO_CGROUP_ROOT": fake_root(tmp_path, "max")})
    assert (sizing.workers, sizing.decided_by) == (AFFINITY, "CPU affinity")


def test_slurm_cpus_per_task_when_smaller() -> None:
    sizing = default_workers({"SLURM_CPUS_PER_TASK": "1", "GXO_CGROUP_ROOT": "/nonexistent"})
    assert sizing.workers == 1
    assert sizing.describe() == "1 (SLURM_CPUS_PER_TASK=1)"


def test_slurm_larger_than_affinity_does_not_win() -> None:
    sizing = default_workers({"SLURM_CPUS_PER_TASK": "999", "GXO_CGROUP_ROOT": "/nonexistent"})
    assert (sizing.workers, sizing.decided_by) == (AFFINITY, "CPU affinity")


@pytest.mark.parametrize("bad", ["", "x", "0", "-2"])
def test_unusable_slurm_value_is_ignored(bad: str) -> None:
    sizing = default_workers({"SLURM_CPUS_PER_TASK": bad, "GXO_CGROUP_ROOT": "/nonexistent"})
    assert sizing.decided_by == "CPU affinity"


def test_cgroup_quota_rounds_up(tmp_path: Path) -> None:
    sizing = default_workers({"GXO_CGROUP_ROOT": fake_root(tmp_path, "50000")})
    assert sizing.workers == 1
    assert sizing.decided_by == "cgroup CPU quota 0.5"


# -- time ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "seconds"), [("2h", 7200), ("90m", 5400), ("3600", 3600)])
def test_parse_deadline(text: str, seconds: float) -> None:
    assert parse_deadline(text, 1000.0) == 1000.0 + seconds


@pytest.mark.parametrize("text", ["soon", "-5", "2 hours", "inf"])
def test_parse_deadline_refuses_nonsense(text: str) -> None:
    with pytest.raises(ValueError, match="like"):
        parse_deadline(text, 0.0)


def _squeue(tmp_path: Path, output: str, status: int = 0) -> dict[str, str]:
    stub = tmp_path / "squeue"
    stub.write_text(f'#!/bin/sh\necho "$@" > {tmp_path}/args\nprintf "{output}"\nexit {status}\n')
    stub.chmod(0o755)
    return {"SLURM_JOB_ID": "77", "PATH": str(tmp_path)}


def test_slurm_end_time_from_squeue(tmp_path: Path) -> None:
    env = _squeue(tmp_path, "2026-12-03T14:00:00\\n")
    expected = datetime.fromisoformat("2026-12-03T14:00:00").timestamp()
    assert slurm_end_time(env) == expected
    assert (tmp_path / "args").read_text() == "-h -j 77 -o %e\n"


@pytest.mark.parametrize(("output", "status"), [("N/A", 0), ("Unknown", 0), ("", 1)])
def test_slurm_end_time_unknown(tmp_path: Path, output: str, status: int) -> None:
    assert slurm_end_time(_squeue(tmp_path, output, status)) is None


def test_slurm_end_time_outside_a_job_or_without_squeue(tmp_path: Path) -> None:
    assert slurm_end_time({"PATH": str(tmp_path)}) is None
    assert slurm_end_time({"SLURM_JOB_ID": "1", "PATH": str(tmp_path / "empty")}) is None


def test_slurm_end_time_from_the_job_environment_without_squeue(tmp_path: Path) -> None:
    env = _squeue(tmp_path, "2026-12-03T14:00:00\\n")  # squeue would say another time
    env["SLURM_JOB_END_TIME"] = "1796558400"
    assert slurm_end_time(env) == 1796558400.0
    assert not (tmp_path / "args").exists()  # the controller was not asked
    assert slurm_end_time({"SLURM_JOB_END_TIME": "1796558400"}) == 1796558400.0  # no squeue


@pytest.mark.parametrize("value", ["", "0", "N/A", "-5"])
def test_slurm_end_time_falls_back_to_squeue(tmp_path: Path, value: str) -> None:
    env = {**_squeue(tmp_path, "2026-12-03T14:00:00\\n"), "SLURM_JOB_END_TIME": value}
    assert slurm_end_time(env) == datetime.fromisoformat("2026-12-03T14:00:00").timestamp()
