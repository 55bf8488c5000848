"""gxo on Dask against raw Dask, in one run (DESIGN §11, last row).

    python benchmarks/bench_dask.py            # 2,000 no-ops, 3 repeats, median
    python benchmarks/bench_dask.py --tasks 500 --runs 5
    python benchmarks/bench_dask.py --memory 5000,20000   # parent RSS of loops of N instances
    python benchmarks/bench_dask.py --profile 20     # + cProfile of one gxo run (top lines)

One ``LocalCluster`` of 2 worker processes (1 thread each, ``processes=True``) serves both,
interleaved repeat by repeat after one untimed warm-up of each:

* floor: ``client.gather(client.map(noop, range(N), pure=False))``: Dask running the no-op in
  its worker processes, the cheapest way Dask runs N independent tasks;
* gxo: the installed ``gxo`` library path, ``gxo execute --executor dask --dask-scheduler
  ADDR`` of N independent ``python`` tasks calling the same no-op, each in a gxo worker
  process on the node (crash isolation), measured from run start to report (the cluster is
  already running, the per-run worker plugin start is included).

Prints the medians and the ratio gxo/floor (target: at most 1.5x).

``--memory N,M``: the installed ``gxo`` command (a child process, so the cluster's scheduler
is not counted) runs one task looping over N no-op instances (``loop_control.parallel: 256``)
on the same cluster; prints the
child's peak RSS (``wait4``), for each N (DESIGN §11: bounded parent memory).

``--profile K``: one more gxo run under cProfile (the parent's main thread); prints the top K
lines by internal time.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import dask
from distributed import Client, LocalCluster

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import noop_tasks  # noqa: E402

from gxo.cli import main as gxo_main  # noqa: E402
from gxo.executors.dask import CLUSTER_CONFIG  # noqa: E402


def playbook(path: Path, tasks: int) -> Path:
    spec = f"{HERE / 'noop_tasks.py'}:noop"
    lines = ["schemaVersion: v1.0.0", "name: dask-noops", "tasks:"]
    for i in range(tasks):
        lines += [f"  - name: t{i}", "    type: python", f"    params: {{function: '{spec}'}}"]
    path.write_text("\n".join(lines) + "\n")
    return path


def loop_playbook(path: Path, instances: int) -> Path:
    spec = f"{HERE / 'noop_tasks.py'}:noop"
    path.write_text(
        "schemaVersion: v1.0.0\nname: dask-loop\ntasks:\n"
        f"  - name: many\n    type: python\n    loop: '{{{{ range({instances}) | list }}}}'\n"
        "    loop_control: {parallel: 256}\n"
        f"    params: {{function: '{spec}'}}\n"
    )
    return path


def parent_rss(address: str, book: Path) -> tuple[float, int]:
    """Seconds and peak RSS (KiB) of ``gxo execute`` on Dask, run as a child process."""
    start = time.perf_counter()
    child = subprocess.Popen(
        [
            *(sys.executable, "-m", "gxo", "execute", "-q", "--executor", "dask"),
            *("--dask-scheduler", address, "--state-dir", str(book.parent / "state"), str(book)),
        ],
    )
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    assert child.returncode == 0, child.returncode
    return time.perf_counter() - start, usage.ru_maxrss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--memory", default="", help="loop sizes, comma-separated")
    parser.add_argument("--profile", type=int, default=0, help="top lines of a cProfile")
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory() as tmp,
        dask.config.set(CLUSTER_CONFIG),
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        book = playbook(Path(tmp) / "noops.yaml", args.tasks)
        argv = [
            "execute",
            "-q",
            "--executor",
            "dask",
            "--dask-scheduler",
            cluster.scheduler_address,
            str(book),
        ]

        def floor() -> float:
            start = time.perf_counter()
            client.gather(client.map(noop_tasks.noop, range(args.tasks), pure=False))
            return time.perf_counter() - start

        def gxo() -> float:
            start = time.perf_counter()
            code = gxo_main(argv)
            assert code == 0, code
            return time.perf_counter() - start

        if args.memory:
            for n in (int(x) for x in args.memory.split(",")):
                loop = loop_playbook(Path(tmp) / f"loop{n}.yaml", n)
                seconds, rss = parent_rss(cluster.scheduler_address, loop)
                print(
                    f"  loop of {n:6d} instances: {seconds:7.1f} s, "
                    f"parent peak RSS {rss / 1024:6.1f} MB"
                )
            return
        floor()
        gxo()
        floors, gxos = [], []
        for _ in range(args.runs):
            floors.append(floor())
            gxos.append(gxo())
        if args.profile:
            profile = cProfile.Profile()
            profile.runcall(gxo)
            out = io.StringIO()
            pstats.Stats(profile, stream=out).sort_stats("tottime").print_stats(args.profile)
            print(out.getvalue())
    f, g = statistics.median(floors), statistics.median(gxos)
    n = args.tasks
    print(f"{n} no-op tasks on a 2-process LocalCluster, median of {args.runs}:")
    print(f"  floor client.map   {f:7.3f} s  {f / n * 1e6:8.1f} us/task")
    print(f"  gxo --executor dask {g:7.3f} s  {g / n * 1e6:8.1f} us/task")
    print(f"  ratio gxo/floor    {g / f:7.2f}x  (target <= 1.5x)")


if __name__ == "__main__":
    main()
