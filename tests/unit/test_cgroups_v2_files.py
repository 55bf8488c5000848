"""The cgroup v2 path of ``isolation: process`` limits, on a fake cgroupfs (plain files).

The machines this project is developed on are v1/v2 hybrids whose ``memory`` and ``pids``
controllers are bound to v1 (the v2 hierarchy offers neither; mounting another cgroup2 in a
private mount namespace shows the same single v2 hierarchy, with the same controllers), so v2
cannot run end to end here (benchmarks/README.md, "cgroup v2"). These tests check what gxo
reads and writes, file by file: the probe, the leaf gxo moves into, the controllers it
enables, the limits, joining, the counters it reads back and the removal. What plain files
cannot show (the kernel refusing a write, ``EBUSY`` while the last process exits, an OOM kill
for real) is covered for v1 by the tests that run on real cgroups.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gxo.pool import cgroups
from gxo.pool.enforce import AttemptLimits, Enforcement
from gxo.reasons import format_reason
from gxo.wire import Done, RunLimits

MiB = 1 << 20


@pytest.fixture
def v2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A v2 hierarchy at tmp_path, gxo's process in ``/job`` with two processes in it."""
    job = tmp_path / "job"
    job.mkdir()
    (tmp_path / "cgroup.controllers").write_text("cpuset cpu io memory hugetlb pids\n")
    (job / "cgroup.controllers").write_text("cpu io memory pids\n")
    (job / "cgroup.subtree_control").write_text("\n")
    (job / "cgroup.procs").write_text("111\n222\n")
    # What the kernel creates in every new cgroup and gxo reads back.
    (job / "gxo-attempts").mkdir()
    (job / "gxo-attempts" / "cgroup.subtree_control").write_text("\n")
    monkeypatch.setattr(cgroups, "CGROUP_ROOT", tmp_path)
    monkeypatch.setattr(cgroups, "_own_path", lambda controller: "/job" if not controller else None)
    return job


def test_probe_prefers_v2_when_it_has_memory_and_pids(v2: Path) -> None:
    support = cgroups.probe()
    assert support.version == "v2"
    assert support.memory_dir == v2
    assert support.describe() == "cgroup v2 (memory, pids)"
    assert Enforcement(cgroup=support).name == "cgroup v2"


def test_probe_falls_back_to_v1_on_a_hybrid_whose_v2_lacks_the_controllers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # This machine's layout: a v2 hierarchy under unified/ with hugetlb only; memory and pids
    # on v1.
    (tmp_path / "unified").mkdir()
    (tmp_path / "unified" / "cgroup.controllers").write_text("hugetlb\n")
    for controller in ("memory", "pids"):
        (tmp_path / controller / "job").mkdir(parents=True)
    monkeypatch.setattr(cgroups, "CGROUP_ROOT", tmp_path)
    monkeypatch.setattr(cgroups, "_own_path", lambda controller: "/" if not controller else "/job")
    support = cgroups.probe()
    assert support.version == "v1"
    assert support.memory_dir == tmp_path / "memory" / "job"
    assert support.pids_dir == tmp_path / "pids" / "job"


def test_probe_says_why_v2_cannot_be_used(v2: Path) -> None:
    (v2 / "cgroup.controllers").write_text("cpu io\n")
    support = cgroups.probe()
    assert not support.usable
    assert f"cgroup v2 at {v2} lacks the memory and pids controller" in support.why


def test_create_moves_gxo_into_a_leaf_enables_the_controllers_and_writes_the_limits(
    v2: Path,
) -> None:
    support = cgroups.probe()
    group = cgroups.AttemptCgroup.create(support, "gxo-1-2", memory=256 * MiB, processes=54)
    attempt = v2 / "gxo-attempts" / "gxo-1-2"
    assert group.dirs == [attempt]
    # No internal processes: gxo's cgroup's processes went to the leaf first (one write
    # each; a plain file keeps the last), then the controllers were enabled for children.
    assert (v2 / "gxo-parent").is_dir()
    assert (v2 / "gxo-parent" / "cgroup.procs").read_text() == "222"
    assert (v2 / "cgroup.subtree_control").read_text() == "+memory +pids"
    assert (v2 / "gxo-attempts" / "cgroup.subtree_control").read_text() == "+memory +pids"
    assert (attempt / "memory.max").read_text() == str(256 * MiB)
    assert (attempt / "pids.max").read_text() == "54"
    # memory.swap.max is written only where the kernel has it (swap accounting on)
    assert not (attempt / "memory.swap.max").exists()

    group.add(4242)
    assert (attempt / "cgroup.procs").read_text() == "4242"


def test_controllers_already_enabled_are_left_alone(v2: Path) -> None:
    (v2 / "cgroup.subtree_control").write_text("memory pids\n")
    (v2 / "gxo-attempts" / "cgroup.subtree_control").write_text("memory pids\n")
    cgroups.AttemptCgroup.create(cgroups.probe(), "gxo-3-4", memory=MiB)
    assert not (v2 / "gxo-parent").exists()  # nobody moved
    assert (v2 / "cgroup.subtree_control").read_text() == "memory pids\n"


def test_usage_reads_the_v2_counters(v2: Path) -> None:
    group = cgroups.AttemptCgroup.create(cgroups.probe(), "gxo-5-6", memory=64 * MiB)
    attempt = group.dirs[0]
    (attempt / "memory.peak").write_text("67108864\n")
    (attempt / "memory.events").write_text("low 0\nhigh 0\nmax 12\noom 1\noom_kill 1\n")
    (attempt / "pids.events").write_text("max 7\n")
    assert group.usage() == cgroups.Usage(memory_peak=64 * MiB, oom_kills=1, pids_refused=7)
    assert group.memory_peak() == 64 * MiB


def test_the_memory_peak_in_a_cgroup_is_the_kernels_not_a_sum_past_the_limit(v2: Path) -> None:
    """Resident sizes summed over the tree count again the pages the attempt's process shares
    with the forkserver (charged to the forkserver's cgroup): a sum past the limit must not be
    reported as the peak of a tree the kernel held at its limit."""
    from gxo.wire import AttemptUsage

    gone = (1 << 22) + 1  # past the kernel's largest pid: the watch finds no tree to look at
    limits = AttemptLimits(Enforcement(cgroup=cgroups.probe()), RunLimits(memory=200 * MiB), gone)
    assert limits.cgroup is not None
    attempt = limits.cgroup.dirs[0]
    (attempt / "memory.peak").write_text(f"{200 * MiB}\n")
    (attempt / "memory.events").write_text("oom 1\noom_kill 1\n")
    limits.watch.peak_rss = 224 * MiB  # a look at the tree: the exec'd child + its parent
    reported = AttemptUsage(memory_peak=230 * MiB)  # getrusage: its own and its children's
    done = limits.classify(Done(instance_id=1, ok=False, usage=reported))
    assert done.reason == format_reason("limit_exceeded", "memory")
    assert done.usage is not None
    assert done.usage.memory_peak == 200 * MiB
    assert "(peak resident memory of the tree 200MiB; enforced by cgroup v2)" in done.error
    for entry in attempt.iterdir():
        entry.unlink()
    limits.close()


def test_a_refused_fork_counts_the_children_killed_at_return_and_says_it_was_refused(
    v2: Path,
) -> None:
    """A module whose fork the cgroup refused raised at once, and its children were killed
    when it returned, before any look at the tree: the peak is at least those children and
    their parent, never the "peak 2 processes" of its own ``getrusage``, and the message says
    what happened rather than claim a peak under the limit it "exceeded"."""
    from gxo.wire import AttemptUsage

    gone = (1 << 22) + 1  # past the kernel's largest pid: the watch finds no tree to look at
    limits = AttemptLimits(Enforcement(cgroup=cgroups.probe()), RunLimits(processes=20), gone)
    assert limits.cgroup is not None
    attempt = limits.cgroup.dirs[0]
    (attempt / "pids.events").write_text("max 1\n")
    done = limits.classify(
        Done(
            instance_id=1,
            ok=False,
            reason="module_raised(BlockingIOError)",
            error="BlockingIOError: [Errno 11] Resource temporarily unavailable",
            leftovers_killed=15,
            usage=AttemptUsage(processes_peak=2),
        )
    )
    assert done.reason == format_reason("limit_exceeded", "processes")
    assert done.usage is not None
    assert done.usage.processes_peak == 16
    assert (
        "processes limit 20 exceeded (a fork past the limit was refused; peak 16 processes "
        "in the tree; enforced by cgroup v2)" in done.error
    )
    for entry in attempt.iterdir():
        entry.unlink()
    limits.close()


def test_a_processes_limit_past_the_kernels_largest_is_written_as_that(v2: Path) -> None:
    """``pids.max`` past ``PID_MAX_LIMIT`` is EINVAL: the attempt failed with executor_error
    ("the attempt's cgroup could not be created") for a limit no tree can ever reach."""
    gone = (1 << 22) + 1
    huge = AttemptLimits(Enforcement(cgroup=cgroups.probe()), RunLimits(processes=10**11), gone)
    assert huge.cgroup is not None
    attempt = huge.cgroup.dirs[0]
    assert (attempt / "pids.max").read_text() == str(1 << 22)
    for entry in attempt.iterdir():
        entry.unlink()
    huge.close()
    small = AttemptLimits(Enforcement(cgroup=cgroups.probe()), RunLimits(processes=50), gone)
    assert small.cgroup is not None
    attempt = small.cgroup.dirs[0]
    assert (attempt / "pids.max").read_text() == "54"  # gxo's own threads on top
    for entry in attempt.iterdir():
        entry.unlink()
    small.close()


def test_an_oom_kill_in_a_v2_cgroup_is_limit_exceeded_memory(v2: Path) -> None:
    """The attempt's whole view from the pool: the cgroup made and joined, an OOM kill read
    from ``memory.events``, the failure named after the limit, the cgroup's peak reported."""
    support = cgroups.probe()
    limits = AttemptLimits(Enforcement(cgroup=support), RunLimits(memory=256 * MiB), os.getpid())
    assert limits.cgroup is not None
    attempt = limits.cgroup.dirs[0]
    assert (attempt / "cgroup.procs").read_text() == str(os.getpid())
    (attempt / "memory.peak").write_text(f"{256 * MiB}\n")
    (attempt / "memory.events").write_text("oom 1\noom_kill 1\n")
    done = limits.classify(Done(instance_id=1, ok=False, reason="worker_signaled(SIGKILL)"))
    assert done.reason == format_reason("limit_exceeded", "memory")
    assert done.usage is not None
    assert done.usage.enforcement == "cgroup v2"
    assert done.usage.memory_peak == 256 * MiB
    # The kernel empties cgroup.procs as the processes exit, and lets rmdir remove a cgroup
    # that holds only its interface files; a plain directory must be emptied for that.
    for entry in attempt.iterdir():
        entry.unlink()
    limits.close()
    assert not attempt.exists()
    assert limits.cgroup is None
