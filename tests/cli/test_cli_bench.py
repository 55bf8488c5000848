"""``gxo bench`` (DESIGN §8, issue 18): its output shape, and that it leaves nothing behind.

The figures themselves are not asserted (benchmarks are not timed tests): only that each row
is there with positive numbers, that ``--workers`` reaches both gxo and the floor, and that the
command's temporary run directory, its worker processes and its helpers are all gone when it
exits. The real console script runs, with small sizes so the test stays quick.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

CONSOLE = Path(sys.executable).with_name("gxo")
GXO = [str(CONSOLE)] if CONSOLE.is_file() else [sys.executable, "-m", "gxo"]
#: Small, but not so small that one delayed run under load drowns the tasks' own time.
SMALL = ("--tasks", "60", "--commands", "6", "--repeats", "2")


def _bench(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``gxo bench ARGS`` in its own session from an empty directory, TMPDIR its own."""
    cwd, tmp = tmp_path / "cwd", tmp_path / "tmp"
    cwd.mkdir()
    tmp.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GXO_")}
    env["TMPDIR"] = str(tmp)
    proc = subprocess.Popen(
        [*GXO, "bench", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    left = [p.info for p in psutil.process_iter(["pid", "cmdline"]) if _session(p.pid) == proc.pid]
    assert left == [], f"gxo bench left processes of its session running: {left}"
    assert list(cwd.iterdir()) == [], "gxo bench wrote into the current directory"
    assert list(tmp.iterdir()) == [], "gxo bench left its temporary run directory behind"
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def _positive(cell: str, suffix: str = "") -> bool:
    """``cell`` is a positive number (thousands separated by commas) followed by ``suffix``."""
    return cell.endswith(suffix) and float(cell[: len(cell) - len(suffix)].replace(",", "")) > 0


def _session(pid: int) -> int | None:
    try:
        return os.getsid(pid)
    except OSError:  # gone, or not ours to ask about
        return None


def test_bench_prints_a_row_per_workload_with_positive_figures(tmp_path: Path) -> None:
    done = _bench(tmp_path, *SMALL)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # gxo.run's info lines are not shown
    lines = done.stdout.splitlines()
    assert lines[0].startswith("gxo ")
    assert "bench: 2 workers, 2 repeats" in lines[0]
    assert lines[1].split()[:3] == ["workload", "tasks", "floor"]
    rows = {line.split("  ")[0]: line for line in lines[2:4]}
    assert set(rows) == {"python no-op", "exec true"}
    python = rows["python no-op"].split()
    # workload (2 words), tasks, floor name, floor us, floor rate, gxo us, gxo rate, overhead,
    # ratio, target
    assert python[2:4] == ["60", "Pool(2).imap_unordered"]
    floor_us, floor_rate, gxo_us, gxo_rate = python[4:8]
    assert _positive(floor_us)
    assert _positive(gxo_us)
    assert _positive(floor_rate, "/s")
    assert _positive(gxo_rate, "/s")
    assert _positive(python[9], "x")
    assert python[-2:] == ["<=", "3x"]
    assert "2 threads x subprocess.run" in rows["exec true"]
    assert lines[4].startswith("per task: (T(N) - T(1)) / (N - 1)")


def test_bench_json_has_the_figures_and_honours_workers(tmp_path: Path) -> None:
    done = _bench(tmp_path, *SMALL, "--json", "--workers", "1")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert (data["workers"], data["repeats"]) == (1, 2)
    assert data["seconds"] > 0
    assert len(data["load_average"]) == 3
    assert [row["name"] for row in data["rows"]] == ["python no-op", "exec true"]
    python, exec_row = data["rows"]
    assert (python["floor"], python["tasks"]) == ("Pool(1).imap_unordered", 60)
    assert (exec_row["floor"], exec_row["tasks"]) == ("1 threads x subprocess.run", 6)
    for row in data["rows"]:
        for key in ("gxo_us_per_task", "floor_us_per_task", "gxo_tasks_per_s", "ratio"):
            assert row[key] > 0, (row["name"], key)
        assert row["floor_tasks_per_s"] > 0
        assert isinstance(row["overhead_us_per_task"], float)
        assert len(row["gxo_us_per_repeat"]) == 2
        assert len(row["floor_us_per_repeat"]) == 2
    assert python["target"] == 3.0
    assert exec_row["target"] is None


def test_bench_without_exec_row(tmp_path: Path) -> None:
    done = _bench(tmp_path, "--tasks", "5", "--commands", "0", "--repeats", "1", "--json")
    assert done.returncode == 0, done.stderr
    assert [row["name"] for row in json.loads(done.stdout)["rows"]] == ["python no-op"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--tasks", "1"), "--tasks: must be at least 2"),
        (("--commands", "1"), "--commands: must be 0 (no exec row) or at least 2"),
        (("--workers", "0"), "--workers/-w: must be at least 1"),
    ],
)
def test_bench_refuses_sizes_it_cannot_measure(
    args: tuple[str, ...], message: str, tmp_path: Path
) -> None:
    done = subprocess.run(
        [*GXO, "bench", *args],
        check=False,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert message in done.stderr
