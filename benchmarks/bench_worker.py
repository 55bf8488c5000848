"""The worker side of the per-instance path: one pooled worker driven through ``ProcessPool``.

    python benchmarks/bench_worker.py                        # chain of 500 python no-ops
    python benchmarks/bench_worker.py --kind exec --n 300    # exec /bin/true
    python benchmarks/bench_worker.py --strace               # syscalls per instance, by thread
    python benchmarks/bench_worker.py --prof /tmp/w.prof     # cProfile of the worker

No scheduler: the parent submits one instance, waits for its result, submits the next (a
chain: each ``Run`` carries a new task whose params template the previous result), so what
is measured is the pool's round trip and the worker's own work. Printed per instance: wall,
the parent's CPU, the worker's CPU and voluntary context switches (``/proc``, all its
threads), and with ``--strace`` the system calls of the worker's threads and of the
commands they start (``strace -f -p``), with ``--prof`` the worker's Python calls. Counts do
not depend on the machine's load; times do.

The worker is started with ``fork`` so that ``--prof`` can wrap its entry point.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import gxo.pool.worker as worker_module
from gxo.pool.executor import Finished, Lost
from gxo.pool.process_pool import ProcessPool
from gxo.wire import Run, WorkerConfig

NOOP = f"{Path(__file__).resolve().parent / 'noop_tasks.py'}:noop"
WARM_UP = 50


def make_run(kind: str, i: int) -> Run:
    if kind == "exec":
        params: dict[str, Any] = {"command": "/bin/true"}
        return Run(i, i, f"t{i}", "exec", params, {})
    params = {"function": NOOP}
    namespace: dict[str, Any] = {}
    if i:
        params["kwargs"] = {"prev": "{{ r" + str(i - 1) + " }}"}
        namespace = {f"r{i - 1}": None}
    return Run(i, i, f"t{i}", "python", params, namespace)


def worker_stat(pid: int) -> tuple[float, int]:
    """(CPU seconds, voluntary context switches) of every thread of ``pid``."""
    cpu, switches = 0.0, 0
    tick = os.sysconf("SC_CLK_TCK")
    for tid in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{tid}/stat") as file:
            fields = file.read().rsplit(")", 1)[1].split()
        cpu += (int(fields[11]) + int(fields[12])) / tick
        with open(f"/proc/{pid}/task/{tid}/status") as file:
            for line in file:
                if line.startswith("voluntary_ctxt_switches"):
                    switches += int(line.split()[1])
    return cpu, switches


def profile_worker(path: str) -> None:
    """Wrap the worker's entry point in cProfile, dumped to ``path`` when it exits."""
    main, exit_now = worker_module.worker_main, worker_module._exit_now
    profiler = cProfile.Profile()

    def profiled_main(*args: Any) -> None:
        profiler.enable()
        main(*args)

    def dump_then_exit(pump: Any) -> None:
        profiler.disable()
        profiler.dump_stats(path)
        exit_now(pump)

    worker_module.worker_main = profiled_main  # type: ignore[assignment]
    worker_module._exit_now = dump_then_exit


def count_syscalls(trace: Path, tids: set[str], n: int) -> None:
    mine: Counter[str] = Counter()
    commands: Counter[str] = Counter()
    for line in trace.read_text().splitlines():
        parts = line.split(None, 1)
        if len(parts) < 2 or "(" not in parts[1] or parts[1].startswith(("<...", "+++", "---")):
            continue
        name = parts[1].split("(", 1)[0]
        (mine if parts[0] in tids else commands)[name] += 1
    for label, counts in (("worker threads", mine), ("commands", commands)):
        top = ", ".join(f"{k} {v / n:.2f}" for k, v in counts.most_common(40))
        print(f"{label}: {sum(counts.values()) / n:.1f} syscalls per instance ({top})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kind", choices=("chain", "exec"), default="chain")
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--run-dir", default="", help="attempt logs here (as the CLI does)")
    parser.add_argument("--prof", default="", help="cProfile the worker into this file")
    parser.add_argument("--strace", action="store_true", help="count the worker's syscalls")
    args = parser.parse_args()
    if args.prof:
        profile_worker(args.prof)
    pool = ProcessPool(1, start_method="fork", worker_config=WorkerConfig(run_dir=args.run_dir))
    pool.start()

    def one(i: int) -> None:
        pool.submit(make_run(args.kind, i))
        pool.flush()
        while True:
            for event in pool.wait(None):
                if isinstance(event, Finished | Lost):
                    assert isinstance(event, Finished), event
                    assert event.done.ok, event.done
                    return

    try:
        for i in range(WARM_UP):
            one(1_000_000 + i)
        pid = next(iter(pool._workers)).pid
        tracer = trace = None
        tids = set(os.listdir(f"/proc/{pid}/task"))
        if args.strace:
            if shutil.which("strace") is None:
                raise SystemExit("strace is not installed")
            trace = Path(f"/tmp/bench_worker.{os.getpid()}.strace")
            tracer = subprocess.Popen(["strace", "-qq", "-f", "-p", str(pid), "-o", str(trace)])
            time.sleep(1.0)  # strace attaches
        cpu0, cs0 = worker_stat(pid)
        wall0, parent0 = time.perf_counter(), time.process_time()
        for i in range(args.n):
            one(i)
        wall1, parent1 = time.perf_counter(), time.process_time()
        cpu1, cs1 = worker_stat(pid)
        n = args.n
        print(
            f"{args.kind}, per instance: wall {(wall1 - wall0) / n * 1e6:.0f} us; parent CPU "
            f"{(parent1 - parent0) / n * 1e6:.0f} us; worker CPU {(cpu1 - cpu0) / n * 1e6:.0f} us; "
            f"worker voluntary context switches {(cs1 - cs0) / n:.2f}"
        )
        if tracer is not None and trace is not None:
            tracer.send_signal(signal.SIGINT)
            tracer.wait()
            count_syscalls(trace, tids, n)
            trace.unlink()
    finally:
        pool.close()
    if args.prof:
        stats = pstats.Stats(args.prof)
        print(f"worker Python calls: {stats.total_calls} (start-up and {WARM_UP} warm-up included)")
        stats.sort_stats("tottime").print_stats(20)
    return 0


if __name__ == "__main__":
    sys.exit(main())
