"""``isolation: process`` against its floor, in one run (DESIGN §11, the isolation row).

    python benchmarks/bench_isolation.py                # 500 attempts, 5 repeats, median
    python benchmarks/bench_isolation.py --tasks 200 --runs 3 --limits

Every attempt of an ``isolation: process`` task runs in a fresh process forked from the pool's
forkserver, which imports the task's module and exits after it. The floor is what that fork
costs anyway: ``multiprocessing``'s forkserver context starting and joining a ``Process``
whose target is the same no-op (the forkserver already running, ``gxo.pool.worker``
preloaded, as in gxo), ``W`` at a time for ``--workers W``. Repeats interleave floor and gxo
after one untimed warm-up of each.

* gxo per attempt = (T(N) - T(1)) / (N - 1), ``T(n)`` the wall time of ``gxo.run`` of an
  n-task playbook of independent ``type: python`` tasks calling ``noop_tasks.py:noop`` with
  ``isolation: process`` (``--limits``: ``limits: {memory: 1GiB, processes: 100}`` instead,
  so each attempt also gets its cgroup or its watch), pool start and close removed;
* floor per attempt = the time of N start+join / N.

Prints the medians, min-max, and the ratio gxo/floor (target: at most 1.5x). On a shared
machine wall times swing with other sessions' load, so the CPU time of the same work is
printed too (this process, plus the forkserver and every process it forked and reaped: the
attempts' processes), per attempt, with its ratio: that figure barely moves with load.
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import noop_tasks  # noqa: E402
import psutil  # noqa: E402

import gxo  # noqa: E402
from gxo.pool.helpers import main_module_hidden, prestart  # noqa: E402


def playbook(path: Path, tasks: int, limits: bool) -> Path:
    spec = f"{HERE / 'noop_tasks.py'}:noop"
    how = "limits: {memory: 1GiB, processes: 100}" if limits else "isolation: process"
    lines = ["schemaVersion: v1.0.0", "name: isolated-noops", "tasks:"]
    for i in range(tasks):
        lines += [
            f"  - name: t{i}",
            "    type: python",
            f"    {how}",
            f"    params: {{function: '{spec}'}}",
        ]
    path.write_text("\n".join(lines) + "\n")
    return path


def cpu_seconds() -> float:
    """CPU used so far by this process, the forkserver, and what the forkserver reaped."""
    from multiprocessing import forkserver

    mine = psutil.Process().cpu_times()
    total = mine.user + mine.system
    pid = forkserver._forkserver._forkserver_pid  # type: ignore[attr-defined]
    if pid is not None:
        server = psutil.Process(pid).cpu_times()
        total += server.user + server.system + server.children_user + server.children_system
    return total


def floor(tasks: int, width: int) -> float:
    """``tasks`` forkserver Process start+join, ``width`` at a time; seconds per process."""
    context = multiprocessing.get_context("forkserver")
    start = time.perf_counter()
    left = tasks
    while left:
        batch = [context.Process(target=noop_tasks.noop) for _ in range(min(width, left))]
        with main_module_hidden():  # as gxo starts its workers: no re-import of this script
            for proc in batch:
                proc.start()
        for proc in batch:
            proc.join()
            proc.close()
        left -= len(batch)
    return (time.perf_counter() - start) / tasks


def gxo_run(book: Path, workers: int) -> float:
    loaded = gxo.load(str(book))
    start = time.perf_counter()
    report = gxo.run(loaded, workers=workers)
    elapsed = time.perf_counter() - start
    assert report.exit_code == 0, report
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=500)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--limits", action="store_true", help="memory and processes limits")
    args = parser.parse_args()
    prestart()  # the forkserver gxo uses (gxo.pool.worker preloaded), shared by the floor
    with tempfile.TemporaryDirectory() as tmp:
        big = playbook(Path(tmp) / "big.yaml", args.tasks, args.limits)
        one = playbook(Path(tmp) / "one.yaml", 1, args.limits)
        floor(20, args.workers)
        gxo_run(one, args.workers)
        floors, costs, floor_cpu, gxo_cpu = [], [], [], []
        for _ in range(args.runs):
            before = cpu_seconds()
            floors.append(floor(args.tasks, args.workers))
            floor_cpu.append((cpu_seconds() - before) / args.tasks)
            before = cpu_seconds()
            t1 = gxo_run(one, args.workers)
            middle = cpu_seconds()
            tn = gxo_run(big, args.workers)
            after = cpu_seconds()
            costs.append((tn - t1) / (args.tasks - 1))
            gxo_cpu.append(((after - middle) - (middle - before)) / (args.tasks - 1))
    f, g = statistics.median(floors), statistics.median(costs)
    print(
        f"isolation: process, {args.tasks} no-op attempts, --workers {args.workers}"
        f"{', with memory+processes limits' if args.limits else ''}:"
    )
    print(
        f"  floor (forkserver Process start+join, {args.workers} at a time): "
        f"{f * 1e3:.2f} ms/attempt (min {min(floors) * 1e3:.2f}, max {max(floors) * 1e3:.2f})"
    )
    print(
        f"  gxo: {g * 1e3:.2f} ms/attempt (min {min(costs) * 1e3:.2f}, max {max(costs) * 1e3:.2f})"
    )
    print(f"  ratio gxo/floor: {g / f:.2f}x (target <= 1.5x)")
    fc, gc = statistics.median(floor_cpu), statistics.median(gxo_cpu)
    print(
        f"  CPU per attempt (parent + forkserver + its children): floor {fc * 1e3:.2f} ms, "
        f"gxo {gc * 1e3:.2f} ms, ratio {gc / fc:.2f}x"
    )


if __name__ == "__main__":
    main()
