"""``isolation: process`` and ``limits`` through the real ``gxo`` command (issue 13).

Every limit is exercised on real processes, on both enforcement paths where this machine has
them: a per-attempt cgroup (v1 or v2, when gxo may create one here; CI runs as root) and
``setrlimit`` plus the process-tree watch, forced with ``GXO_LIMITS_ENFORCEMENT=rlimit``. The
tasks that break a limit write the pids they start, and each test checks that none of them
survives the run. The memory hog stops a few hundred MiB past its limit (never the 4 GiB of
the issue's example): it must be stopped at the limit, not run the machine out of memory.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from itest_support import still_alive, survivors, unique_sleep_arg, wait_for_file

from gxo.pool.cgroups import probe

GXO = [sys.executable, "-m", "gxo"]

TASKS = '''
import os, signal, sys, time

def noop():
    return {"pid": os.getpid()}

def hog(pids, step_mib=64, total_mib=768):
    with open(pids, "w") as f:
        f.write(f"{os.getpid()}\\n")
    held = []
    for _ in range(total_mib // step_mib):
        held.append(b"x" * (step_mib << 20))  # written, so resident
    time.sleep(30)  # the limit must stop it before this returns
    return "survived"

def spin():
    while True:
        pass

def storm(pids, marker, count=400):
    """Fork children (each a `sleep` with a marker) until the limit stops it."""
    with open(pids, "a") as f:
        f.write(f"{os.getpid()}\\n")
        for _ in range(count):
            pid = os.fork()
            if pid == 0:
                os.execvp("sleep", ["sleep", marker])
            f.write(f"{pid}\\n")
            f.flush()
    time.sleep(30)
    return "survived"

def many_files(count=1000):
    files = [open(os.devnull) for _ in range(count)]
    return len(files)

def big_file(path, mib=10):
    with open(path, "wb") as f:
        for _ in range(mib):
            f.write(b"x" * (1 << 20))
    return "written"

def segfault():
    import ctypes
    ctypes.string_at(0)

def gate(fifo):
    """Block until the test opens ``fifo`` for writing: keeps the run going meanwhile."""
    with open(fifo) as f:
        return f.read()

def processes_now():
    import psutil
    return len(psutil.Process().children(recursive=True))
'''

MODES = ["cgroup", "rlimit"]


def _cgroup_why_not() -> str:
    support = probe()
    return "" if support.usable else support.why


def _mode_param(mode: str) -> Any:
    why = _cgroup_why_not() if mode == "cgroup" else ""
    return pytest.param(
        mode, marks=pytest.mark.skipif(bool(why), reason=f"no usable cgroup here: {why}")
    )


ENFORCEMENT = [_mode_param(m) for m in MODES]


def run_gxo(
    tmp_path: Path, playbook: str, *args: str, mode: str = "", timeout: float = 90.0
) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    """``gxo execute --report`` of ``playbook`` in ``tmp_path``; the process and the report."""
    (tmp_path / "tasks.py").write_text(TASKS)
    (tmp_path / "playbook.yaml").write_text(playbook)
    env = dict(os.environ, GXO_STATE_DIR=str(tmp_path / ".gxo"))
    if mode:
        env["GXO_LIMITS_ENFORCEMENT"] = mode
    proc = subprocess.run(
        [*GXO, "execute", "--report", "report.json", *args, "playbook.yaml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )
    report_path = tmp_path / "report.json"
    report = json.loads(report_path.read_text()) if report_path.exists() else {}
    return proc, report


def attempts(report: dict[str, Any], task: str) -> list[dict[str, Any]]:
    result = report["task_results"][task]
    return [a for inst in result["instances"] for a in inst["attempts"]]


def pids_in(path: Path) -> list[int]:
    return [int(line) for line in path.read_text().split()] if path.exists() else []


def head(name: str) -> str:
    return f"schemaVersion: v1.0.0\nname: {name}\ntasks:\n"


@pytest.mark.parametrize("mode", ENFORCEMENT)
def test_memory_hog_fails_limit_exceeded_memory_while_a_sibling_completes(
    tmp_path: Path, mode: str
) -> None:
    proc, report = run_gxo(
        tmp_path,
        head("hog") + "  - name: hog\n"
        "    type: python\n"
        "    limits: {memory: 256MiB}\n"
        f"    params: {{function: 'tasks.py:hog', kwargs: {{pids: {tmp_path / 'pids'}}}}}\n"
        "  - name: sibling\n"
        "    type: python\n"
        "    params: {function: 'tasks.py:noop'}\n",
        mode=mode,
    )
    assert proc.returncode == 1, proc.stderr
    hog = report["task_results"]["hog"]
    assert hog["status"] == "Failed"
    assert hog["reason"] == "limit_exceeded(memory)"
    assert "memory limit 256MiB exceeded" in hog["error"]
    assert report["task_results"]["sibling"]["status"] == "Completed"
    (attempt,) = attempts(report, "hog")
    usage = attempt["usage"]
    assert usage["limits"] == {"memory": 256 << 20}
    assert usage["enforcement"] == ("rlimit+watch" if mode == "rlimit" else usage["enforcement"])
    assert usage["enforcement"].startswith("cgroup" if mode == "cgroup" else "rlimit")
    # The peak is measured, at the limit (cgroup) or just past it (the watch's sampling)
    assert 200 << 20 <= usage["memory_peak"] <= 700 << 20
    if mode == "cgroup":
        # The kernel's count, which its limit holds: never a peak past the limit (a sum of
        # resident sizes would count the pages shared with the forkserver again).
        assert usage["memory_peak"] <= 256 << 20, usage
        shown = re.search(r"peak resident memory of the tree ([\d.]+)MiB", hog["error"])
        assert shown is not None, hog["error"]
        assert float(shown.group(1)) <= 256, hog["error"]
    assert "limit_exceeded(memory)" in proc.stderr
    assert not still_alive(pids_in(tmp_path / "pids"))


def _own_peak_rss(pid: int) -> int:
    """A live process's own peak resident memory (``VmHWM``), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmHWM for {pid}")


def _scheduler_peak_after(tmp_path: Path, hostile: str, mode: str) -> tuple[int, dict[str, Any]]:
    """Run ``hostile`` beside a task that holds the run open; once gxo has printed the
    hostile task's outcome, read gxo's own peak RSS from /proc (gxo still runs), then let
    the run end. The peak and the report."""
    tmp_path.mkdir()
    (tmp_path / "tasks.py").write_text(TASKS)
    fifo = tmp_path / "gate"
    os.mkfifo(fifo)
    (tmp_path / "playbook.yaml").write_text(
        head("flat") + "  - name: hostile\n    type: python\n" + hostile + "  - name: gate\n"
        "    type: python\n"
        f"    params: {{function: 'tasks.py:gate', kwargs: {{fifo: '{fifo}'}}}}\n"
    )
    env = dict(os.environ, GXO_STATE_DIR=str(tmp_path / ".gxo"), GXO_LIMITS_ENFORCEMENT=mode)
    with subprocess.Popen(
        [*GXO, "execute", "--workers", "2", "--report", "report.json", "playbook.yaml"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        assert proc.stderr is not None
        seen = []
        for line in proc.stderr:  # a task's line comes when it ends: "ok  hostile (0.01s)",
            seen.append(line)  # "error: FAILED   hostile: limit_exceeded(memory): ..."
            if re.search(r"(ok|FAILED) +hostile\b", line):
                break
        else:
            proc.kill()  # the gate would hold the run open for ever
            raise AssertionError(f"no line for the hostile task: {seen}")
        peak = _own_peak_rss(proc.pid)
        with open(fifo, "w") as release:  # the gate task reads it, and the run ends
            release.write("go")
        proc.stderr.read()
        assert proc.wait(timeout=60) in (0, 1)
    return peak, json.loads((tmp_path / "report.json").read_text())


@pytest.mark.parametrize("mode", ENFORCEMENT)
def test_the_schedulers_memory_stays_flat_while_a_memory_hog_is_stopped(
    tmp_path: Path, mode: str
) -> None:
    """The hog's allocations never reach gxo's own process (it watches the tree from outside
    and reads its result, never its memory): gxo's peak RSS once the hog has failed is the
    peak of the same run with a no-op in the hog's place, within a margin far below the
    hog's 256 MiB."""
    flat, _ = _scheduler_peak_after(
        tmp_path / "noop",
        "    isolation: process\n    params: {function: 'tasks.py:noop'}\n",
        mode,
    )
    pids = tmp_path / "pids"
    peak, report = _scheduler_peak_after(
        tmp_path / "hog",
        "    limits: {memory: 256MiB}\n"
        f"    params: {{function: 'tasks.py:hog', kwargs: {{pids: '{pids}'}}}}\n",
        mode,
    )
    hostile = report["task_results"]["hostile"]
    assert hostile["reason"] == "limit_exceeded(memory)", hostile
    assert attempts(report, "hostile")[0]["usage"]["memory_peak"] >= 200 << 20
    assert report["task_results"]["gate"]["status"] == "Completed"
    assert peak <= flat + (32 << 20), (peak, flat)
    assert not still_alive(pids_in(pids))


@pytest.mark.parametrize("mode", ENFORCEMENT)
def test_cpu_spin_fails_limit_exceeded_cpu(tmp_path: Path, mode: str) -> None:
    proc, report = run_gxo(
        tmp_path,
        head("spin") + "  - name: spin\n"
        "    type: python\n"
        "    limits: {cpu: 1s}\n"
        "    params: {function: 'tasks.py:spin'}\n",
        mode=mode,
    )
    assert proc.returncode == 1, proc.stderr
    spin = report["task_results"]["spin"]
    assert spin["reason"] == "limit_exceeded(cpu)", spin
    assert "cpu limit 1s exceeded" in spin["error"]
    # The kernel's per-process limit stops it, whichever mechanism holds memory and processes.
    assert "enforced by the kernel's RLIMIT_CPU" in spin["error"], spin["error"]
    (attempt,) = attempts(report, "spin")
    assert attempt["usage"]["limits"] == {"cpu": 1.0}


@pytest.mark.parametrize("mode", ENFORCEMENT)
def test_fork_storm_fails_limit_exceeded_processes_and_leaves_no_process(
    tmp_path: Path, mode: str
) -> None:
    marker = unique_sleep_arg()
    proc, report = run_gxo(
        tmp_path,
        head("storm") + "  - name: storm\n"
        "    type: python\n"
        "    limits: {processes: 50}\n"
        "    params:\n"
        "      function: 'tasks.py:storm'\n"
        f"      kwargs: {{pids: {tmp_path / 'pids'}, marker: '{marker}'}}\n"
        "  - name: sibling\n"
        "    type: exec\n"
        "    params: {command: 'true'}\n",
        mode=mode,
    )
    assert proc.returncode == 1, proc.stderr
    storm = report["task_results"]["storm"]
    assert storm["reason"] == "limit_exceeded(processes)", storm
    assert "processes limit 50 exceeded" in storm["error"]
    by = "cgroup v" if mode == "cgroup" else "the process-tree watch"
    assert f"enforced by {by}" in storm["error"], storm["error"]
    assert report["task_results"]["sibling"]["status"] == "Completed"
    started = pids_in(tmp_path / "pids")
    assert len(started) > 10  # it did storm
    assert len(started) <= 400
    assert not still_alive(started)
    assert not survivors(marker, timeout=1.0)


def test_open_files_limit_fails_limit_exceeded_open_files(tmp_path: Path) -> None:
    proc, report = run_gxo(
        tmp_path,
        head("files") + "  - name: files\n"
        "    type: python\n"
        "    limits: {open_files: 64}\n"
        "    params: {function: 'tasks.py:many_files'}\n"
        "  - name: fewer\n"
        "    type: python\n"
        "    limits: {open_files: 64}\n"
        "    params: {function: 'tasks.py:many_files', kwargs: {count: 50}}\n",
    )
    assert proc.returncode == 1, proc.stderr
    files = report["task_results"]["files"]
    assert files["reason"] == "limit_exceeded(open_files)", files
    assert "open_files limit 64 exceeded" in files["error"]
    assert "Too many open files" in files["error"]
    # The kernel refused an open at the limit; the task had closed its files by the last
    # look, so no "peak" below the limit is claimed.
    claimed = re.search(r"peak (\d+) open descriptors", files["error"])
    assert claimed is None or int(claimed.group(1)) >= 64, files["error"]
    assert "an open past the limit was refused" in files["error"]
    # The allowance is on top of gxo's own descriptors: 50 files fit under 64
    assert report["task_results"]["fewer"]["status"] == "Completed"


@pytest.mark.skipif(bool(_cgroup_why_not()), reason=f"no usable cgroup here: {_cgroup_why_not()}")
def test_a_killed_gxo_leaves_no_cgroup_behind(tmp_path: Path) -> None:
    (tmp_path / "tasks.py").write_text(TASKS)
    (tmp_path / "playbook.yaml").write_text(
        head("killed") + "  - name: held\n"
        "    type: python\n"
        "    limits: {memory: 256MiB, processes: 50}\n"
        "    params: {function: 'tasks.py:hog', kwargs: {pids: pids, total_mib: 64}}\n"
    )
    run = subprocess.Popen(
        [*GXO, "execute", "playbook.yaml"],
        cwd=tmp_path,
        env=dict(os.environ, GXO_STATE_DIR=str(tmp_path / ".gxo"), GXO_LIMITS_ENFORCEMENT="cgroup"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_file(tmp_path / "pids")  # the attempt runs, in its cgroup
        name = f"gxo-{run.pid}-"
        made = [d for d in _cgroup_dirs() if d.name.startswith(name)]
        run.kill()  # gxo dies however it dies: nothing removes the attempt's cgroup itself
        run.wait()
        deadline = time.monotonic() + 20
        left = made
        while left and time.monotonic() < deadline:
            left = [d for d in left if d.exists()]
            time.sleep(0.05)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    assert made, "the attempt ran in no cgroup"
    assert not still_alive(pids_in(tmp_path / "pids"), timeout=10)
    assert not left, f"cgroups left behind: {left}"


def _cgroup_dirs() -> list[Path]:
    """gxo's cgroup directories: in the v1 memory and pids hierarchies, or the v2 tree."""
    base = Path("/sys/fs/cgroup")
    roots = [base / "memory", base / "pids"] if (base / "memory").is_dir() else [base]
    return [p for root in roots for p in root.rglob("gxo-*") if p.is_dir()]


def test_file_size_limit_fails_limit_exceeded_file_size(tmp_path: Path) -> None:
    proc, report = run_gxo(
        tmp_path,
        head("big") + "  - name: big\n"
        "    type: python\n"
        "    limits: {file_size: 1MiB}\n"
        f"    params: {{function: 'tasks.py:big_file', kwargs: {{path: {tmp_path / 'big'}}}}}\n"
        "  - name: big_command\n"
        "    type: exec\n"
        "    limits: {file_size: 1MiB}\n"
        "    params:\n"
        "      command: head -c 10485760 /dev/zero > big2\n"
        "      shell: true\n",
        mode="rlimit",
    )
    assert proc.returncode == 1, proc.stderr
    for task in ("big", "big_command"):
        result = report["task_results"][task]
        assert result["reason"] == "limit_exceeded(file_size)", result
        assert "file_size limit 1MiB exceeded" in result["error"]
    assert (tmp_path / "big").stat().st_size == 1 << 20
    assert (tmp_path / "big2").stat().st_size == 1 << 20


def test_output_limit_stops_a_flood_under_isolation_process(tmp_path: Path) -> None:
    proc, report = run_gxo(
        tmp_path,
        head("flood") + "  - name: flood\n"
        "    type: exec\n"
        "    isolation: process\n"
        "    limits: {output: 1MiB}\n"
        "    params: {command: 'head -c 1073741824 /dev/zero', shell: true}\n",
    )
    assert proc.returncode == 1, proc.stderr
    flood = report["task_results"]["flood"]
    assert flood["reason"] == "limit_exceeded(output)", flood
    (attempt,) = attempts(report, "flood")
    assert attempt["usage"] is not None  # it ran in a fresh process


def test_segfault_under_isolation_process_fails_its_task_only(tmp_path: Path) -> None:
    proc, report = run_gxo(
        tmp_path,
        head("segv") + "  - name: segv\n"
        "    type: python\n"
        "    isolation: process\n"
        "    params: {function: 'tasks.py:segfault'}\n"
        "  - name: after\n"
        "    type: python\n"
        "    isolation: process\n"
        "    depends_on: [segv]\n"
        "    ignore_errors: true\n"
        "    params: {function: 'tasks.py:noop'}\n"
        "  - name: pooled\n"
        "    type: python\n"
        "    params: {function: 'tasks.py:noop'}\n",
    )
    assert proc.returncode == 1, proc.stderr
    assert report["task_results"]["segv"]["reason"] == "worker_signaled(SIGSEGV)"
    assert report["task_results"]["pooled"]["status"] == "Completed"
    # A crash in a fresh process costs the pool nothing: no pooled worker was replaced
    assert report["worker_restarts"] == 0


def test_every_isolated_attempt_reports_its_peaks_and_runs_in_a_fresh_process(
    tmp_path: Path,
) -> None:
    proc, report = run_gxo(
        tmp_path,
        head("peaks") + "  - name: fresh\n"
        "    type: python\n"
        "    isolation: process\n"
        "    loop: [1, 2, 3]\n"
        "    register: fresh\n"
        "    params: {function: 'tasks.py:noop'}\n"
        "  - name: reused\n"
        "    type: python\n"
        "    loop: [1, 2, 3]\n"
        "    register: reused\n"
        "    params: {function: 'tasks.py:noop'}\n",
        "--workers",
        "1",
    )
    assert proc.returncode == 0, proc.stderr
    assert "isolation: process for 1 task, enforced by" in proc.stderr
    fresh = attempts(report, "fresh")
    assert len(fresh) == 3
    for attempt in fresh:
        usage = attempt["usage"]
        assert usage["memory_peak"] > 1 << 20
        assert usage["processes_peak"] >= 1
        assert usage["open_files_peak"] >= 3
        assert usage["cpu_seconds"] >= 0
        assert usage["limits"] == {}
    assert all(a["usage"] is None for a in attempts(report, "reused"))
    # Three fresh processes, one reused worker
    assert len({a["worker_pid"] for a in fresh}) == 3
    assert len({a["worker_pid"] for a in attempts(report, "reused")}) == 1


def test_a_limit_exceeded_is_retried_like_any_failure(tmp_path: Path) -> None:
    proc, report = run_gxo(
        tmp_path,
        head("retry") + "  - name: spin\n"
        "    type: python\n"
        "    limits: {cpu: 1s}\n"
        "    retry: {attempts: 2, delay: 0s}\n"
        "    params: {function: 'tasks.py:spin'}\n",
        mode="rlimit",
    )
    assert proc.returncode == 1, proc.stderr
    tried = attempts(report, "spin")
    assert [a["reason"] for a in tried] == ["limit_exceeded(cpu)"] * 2
    assert all(a["usage"]["cpu_seconds"] > 0.5 for a in tried)


def test_a_stream_group_member_runs_isolated(tmp_path: Path) -> None:
    proc, report = run_gxo(
        tmp_path,
        head("streams") + "  - name: produce\n"
        "    type: generate:from_list\n"
        "    isolation: process\n"
        "    params: {items: [1, 2, 3, 4]}\n"
        "  - name: consume\n"
        "    type: passthrough\n"
        "    limits: {memory: 512MiB}\n"
        "    stream_inputs: [produce]\n"
        "    register: consumed\n",
    )
    assert proc.returncode == 0, proc.stderr
    streams = report["task_results"]["consume"]["streams"]
    assert [s["records"] for s in streams if s["side"] == "in"] == [4]
    assert attempts(report, "produce")[0]["usage"] is not None
    assert attempts(report, "consume")[0]["usage"]["limits"] == {"memory": 512 << 20}


def test_network_false_sees_only_loopback(tmp_path: Path) -> None:
    proc, report = run_gxo(
        tmp_path,
        head("net") + "  - name: net\n"
        "    type: exec\n"
        "    network: false\n"
        "    params: {command: [cat, /proc/net/dev]}\n",
    )
    if proc.returncode == 2:  # the kernel refuses network namespaces here: a clear error
        assert "network: false cannot be enforced on this machine" in proc.stderr
        assert not (tmp_path / "report.json").exists() or report["task_results"] == {}
        return
    assert proc.returncode == 0, proc.stderr
    (attempt,) = attempts(report, "net")
    lines = next(o for o in attempt["outputs"] if o["name"] == "stdout")["tail"]
    interfaces = [line.split(":")[0].strip() for line in lines[2:]]
    assert interfaces == ["lo"]


def test_an_unenforceable_limit_fails_the_run_start_unless_best_effort(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "no-cgroups"
    empty.mkdir()
    monkeypatch.setenv("GXO_CGROUP_ROOT", str(empty))
    playbook = (
        head("strict") + "  - name: hog\n"
        "    type: python\n"
        "    limits: {memory: 256MiB}\n"
        "    params: {function: 'tasks.py:noop'}\n"
    )
    proc, report = run_gxo(tmp_path, playbook, mode="cgroup")
    assert proc.returncode == 2, proc.stderr
    assert "GXO_LIMITS_ENFORCEMENT=cgroup, but no cgroup can be used here" in proc.stderr
    assert "hog" not in proc.stderr.split("GXO_LIMITS")[0]  # nothing ran
    proc, report = run_gxo(
        tmp_path, playbook.replace("tasks:\n", "limits_mode: best_effort\ntasks:\n"), mode="cgroup"
    )
    assert proc.returncode == 0, proc.stderr
    assert "best_effort" in proc.stderr
    assert "enforced by rlimits + process-tree watch" in proc.stderr
    assert attempts(report, "hog")[0]["usage"]["enforcement"] == "rlimit+watch"


def test_plan_shows_isolation_limits_and_enforcement(
    tmp_path: Path, gxo: Callable[..., subprocess.CompletedProcess[str]]
) -> None:
    (tmp_path / "playbook.yaml").write_text(
        head("plan") + "  - name: hog\n"
        "    type: exec\n"
        "    limits: {memory: 256MiB, cpu: 2s, processes: 50}\n"
        "    network: false\n"
        "    params: {command: 'true'}\n"
        "  - name: plain\n"
        "    type: exec\n"
        "    params: {command: 'true'}\n"
    )
    proc = gxo("plan", "playbook.yaml")
    assert proc.returncode == 0, proc.stderr
    assert "isolation: process (memory 256MiB, cpu 2s, processes 50; network: off)" in proc.stdout
    assert "limits enforced here by " in proc.stdout
    plain = proc.stdout.split("- plain")[1]
    assert "isolation" not in plain
