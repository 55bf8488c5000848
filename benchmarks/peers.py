"""gxo beside its peers on the same workloads, in the same run: make, doit, Snakemake, Dask.

    pip install 'gxo[peers]'                      # doit, snakemake, dask[distributed]
    python benchmarks/peers.py                    # 3 repeats (several minutes)
    python benchmarks/peers.py --gxo /path/to/venv/bin/gxo --runs 5 --json peers.json
    python benchmarks/peers.py --only exec --peer make --peer doit --commands 500

Every figure is a **whole process**, as people run these tools: the command with its default
output (to a file), 2 workers or cores each:

- ``gxo PLAYBOOK --workers 2`` (the installed console script given by ``--gxo``);
- ``make -s -j2`` (exec only: make has no Python task);
- ``python -m doit -n 2`` (process parallelism, doit's default), a ``dodo.py`` of N tasks
  whose action is ``["/bin/true"]`` (no shell) or a Python action calling a no-op;
- ``snakemake --cores 2``: N jobs of one wildcard rule, ``shell: "/bin/true"`` or a ``run:``
  block calling a no-op, each with a ``touch()`` output (Snakemake schedules outputs; the
  directory of outputs is removed before every run, untimed). Snakemake runs each ``run:``
  job in a new Python process (seconds each), so its python N is capped
  (``--snakemake-python``, default 20); the per-task figure stays comparable;
- Dask: a script starting ``LocalCluster(n_workers=2, threads_per_worker=1)`` and gathering
  ``client.map`` of the no-op (or of ``subprocess.run(["/bin/true"])``) over N.

Workloads: N ``/bin/true`` commands (``exec``), N Python no-ops (``python``) where the peer
has Python tasks. Per task: ``(T(N) - T(1)) / (N - 1)`` of two runs of the same repeat (start-up
cancels out). Repeats are **interleaved**: each repeat runs every tool once, one after the
other, and gxo's ratio to a peer is taken per repeat (median shown), so load from other
processes hits both sides alike. A peer that is not installed is reported as skipped with the
command that installs it, not as a failure. The interpreter is the one of the gxo script
(peers installed beside gxo in the same environment).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from cli import interpreter_of, makefile, stats, wall  # noqa: E402
from run import background_load, exec_playbook, independent_playbook, write  # noqa: E402

WORKERS = 2
INSTALL = "pip install 'gxo[peers]'"

DODO = """\
COUNT = {count}


def noop():
    return None


def task_t():
    for i in range(COUNT):
        yield {{"name": str(i), "actions": [{action}], "verbosity": 0, "uptodate": [False]}}
"""

SNAKEFILE = """\
def noop():
    return None


rule all:
    input: expand("out/{{i}}", i=range({count}))


rule t:
    output: touch("out/{{i}}")
    {body}
"""

DASK_SCRIPT = """\
import subprocess
import sys

from distributed import Client, LocalCluster


def noop(_):
    return None


def true(_):
    subprocess.run(["/bin/true"], check=True)


if __name__ == "__main__":
    kind, count = sys.argv[1], int(sys.argv[2])
    with LocalCluster(
        n_workers={workers}, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster, Client(cluster) as client:
        client.gather(client.map(noop if kind == "python" else true, range(count)))
"""


@dataclass
class Peer:
    """One tool: how to run a workload of ``count`` tasks as a whole process."""

    name: str
    kinds: tuple[str, ...]
    #: (kind, count, directory) -> the argv to time, after writing what it needs.
    prepare: Callable[[str, int, Path], list[str]]
    #: Why it cannot run here (not installed), or "".
    missing: str = ""
    #: Untimed clean-up before every run (outputs a tool would find up to date).
    reset: Callable[[Path], None] = lambda directory: None
    #: A smaller N for a workload this tool takes seconds per task on (Snakemake's ``run:``).
    caps: dict[str, int] = field(default_factory=dict)


@dataclass
class Result:
    """Per-task seconds of each tool over the repeats of one workload."""

    kind: str
    count: int
    per_task: dict[str, list[float]] = field(default_factory=dict)
    #: The N each tool ran, when a cap made it smaller than ``count``.
    counts: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)

    def ratios(self, peer: str) -> list[float]:
        """gxo's per-task time over the peer's, repeat by repeat."""
        pairs = zip(self.per_task["gxo"], self.per_task[peer], strict=True)
        return [g / p for g, p in pairs if p > 0]


def _has_module(python: str, module: str) -> bool:
    if python == sys.executable:
        return importlib.util.find_spec(module) is not None
    import subprocess

    probe = [
        python,
        "-c",
        f"import importlib.util as u, sys; sys.exit(not u.find_spec({module!r}))",
    ]
    return subprocess.run(probe, capture_output=True, check=False).returncode == 0


def peers(gxo: str, python: str, snakemake_python: int) -> list[Peer]:
    """The tools, gxo first; those not installed carry the reason and the install command."""

    def gxo_argv(kind: str, count: int, directory: Path) -> list[str]:
        text = independent_playbook(count) if kind == "python" else exec_playbook(count)
        path = write(directory, f"{kind}_{count}.yaml", text)
        return [gxo, str(path), "--workers", str(WORKERS)]

    def make_argv(kind: str, count: int, directory: Path) -> list[str]:
        return ["make", "-s", f"-j{WORKERS}", "-f", str(makefile(directory, count))]

    def doit_argv(kind: str, count: int, directory: Path) -> list[str]:
        action = "(noop,)" if kind == "python" else '["/bin/true"]'
        dodo = write(directory, f"dodo_{kind}_{count}.py", DODO.format(count=count, action=action))
        db = directory / f"doit_{kind}_{count}.db"
        return [python, "-m", "doit", "-f", str(dodo), "--db-file", str(db), "-n", str(WORKERS)]

    def snakemake_argv(kind: str, count: int, directory: Path) -> list[str]:
        body = "run:\n        noop()" if kind == "python" else 'shell: "/bin/true"'
        name = f"Snakefile_{kind}_{count}"
        write(directory, name, SNAKEFILE.format(count=count, body=body))
        snakemake = str(Path(python).with_name("snakemake"))
        return [snakemake, "-s", name, "--cores", str(WORKERS), "--directory", str(directory)]

    def dask_argv(kind: str, count: int, directory: Path) -> list[str]:
        script = write(directory, "dask_peer.py", DASK_SCRIPT.format(workers=WORKERS))
        return [python, str(script), kind, str(count)]

    def no_outputs(directory: Path) -> None:
        shutil.rmtree(directory / "out", ignore_errors=True)

    def needs(module: str, package: str) -> str:
        if _has_module(python, module):
            return ""
        return f"{package} is not installed for {python}: {INSTALL} (or pip install {package})"

    snakemake_missing = (
        ""
        if Path(python).with_name("snakemake").is_file()
        else (f"snakemake is not installed beside {python}: {INSTALL} (or pip install snakemake)")
    )
    return [
        Peer("gxo", ("exec", "python"), gxo_argv),
        Peer(
            f"make -j{WORKERS}",
            ("exec",),
            make_argv,
            "" if shutil.which("make") else "make is not installed (apt-get install make)",
        ),
        Peer(f"doit -n {WORKERS}", ("exec", "python"), doit_argv, needs("doit", "doit")),
        Peer(
            f"snakemake --cores {WORKERS}",
            ("exec", "python"),
            snakemake_argv,
            snakemake_missing,
            no_outputs,
            {"python": snakemake_python},
        ),
        Peer(
            f"dask LocalCluster({WORKERS})",
            ("exec", "python"),
            dask_argv,
            needs("distributed", "'dask[distributed]'"),
        ),
    ]


def measure(tools: list[Peer], kind: str, count: int, runs: int, directory: Path) -> Result:
    """Per-task seconds of every tool that has ``kind`` tasks, interleaved repeat by repeat."""
    result = Result(kind, count)
    out = directory / "tool.out"
    chosen = []
    for tool in tools:
        if kind not in tool.kinds:
            result.skipped[tool.name] = f"it has no {kind} tasks"
            continue
        if tool.missing:
            result.skipped[tool.name] = tool.missing
            continue
        n = min(count, tool.caps.get(kind, count))
        chosen.append((tool, n, tool.prepare(kind, 1, directory), tool.prepare(kind, n, directory)))
        result.per_task[tool.name] = []
        result.counts[tool.name] = n

    def timed(tool: Peer, argv: list[str]) -> float:
        tool.reset(directory)
        return wall(argv, directory, out)

    for tool, _, one, _big in chosen:  # warm-up: imports, caches, bytecode
        timed(tool, one)
    for repeat in range(runs):
        for tool, n, one, big in chosen:
            small = timed(tool, one)
            large = timed(tool, big)
            result.per_task[tool.name].append((large - small) / (n - 1))
        print(f"  {kind}: repeat {repeat + 1}/{runs} done, load average {os.getloadavg()[0]:.1f}")
    return result


def print_result(result: Result) -> None:
    what = "/bin/true commands" if result.kind == "exec" else "python no-ops"
    print(f"\n{result.count} {what}, per task (whole process, median (min-max) of repeats):")
    rows = [("tool", "N", "per task, us", "gxo / tool (per repeat)")]
    for name, values in result.per_task.items():
        ratios = [] if name == "gxo" else result.ratios(name)
        ratio = stats(ratios, 1, 2) + "x" if ratios else "-"
        rows.append((name, str(result.counts[name]), stats(values, 1e6), ratio))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for row in rows:
        print("  " + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    for name, why in result.skipped.items():
        print(f"  {name}: skipped ({why})")


def main(argv: list[str] | None = None) -> int:
    default_gxo = Path(sys.executable).with_name("gxo")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gxo", default=str(default_gxo), help=f"(default {default_gxo})")
    parser.add_argument("--runs", type=int, default=3, help="interleaved repeats (default 3)")
    parser.add_argument("--commands", type=int, default=300, help="exec workload's N (300)")
    parser.add_argument("--tasks", type=int, default=1000, help="python workload's N (1,000)")
    parser.add_argument(
        "--snakemake-python",
        type=int,
        default=20,
        help="Snakemake's N for python no-ops (default 20: each run: job is a new Python "
        "process, seconds each)",
    )
    parser.add_argument("--only", choices=("exec", "python"), action="append", help="workloads")
    parser.add_argument("--peer", action="append", help="only these tools (name's first word)")
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    args = parser.parse_args(argv)
    gxo = str(Path(args.gxo).resolve())
    python = interpreter_of(Path(gxo))
    tools = [
        tool
        for tool in peers(gxo, python, args.snakemake_python)
        if tool.name == "gxo" or not args.peer or tool.name.split()[0] in args.peer
    ]
    print(f"{time.strftime('%Y-%m-%d %H:%M:%S %Z')}; gxo {gxo}; python {python}")
    print(f"load average {os.getloadavg()}, background CPU {background_load():.0%} of all CPUs")
    results = []
    with tempfile.TemporaryDirectory(prefix="gxo-peers-") as tmp:
        for kind in args.only or ("exec", "python"):
            count = args.commands if kind == "exec" else args.tasks
            result = measure(tools, kind, count, args.runs, Path(tmp))
            print_result(result)
            results.append(result)
    print(f"\nload average after {os.getloadavg()}")
    if args.json:
        data: list[dict[str, Any]] = [
            {
                "kind": r.kind,
                "count": r.count,
                "counts": r.counts,
                "per_task_s": r.per_task,
                "median_us": {k: statistics.median(v) * 1e6 for k, v in r.per_task.items()},
                "gxo_ratio": {
                    k: statistics.median(r.ratios(k)) if r.ratios(k) else None
                    for k in r.per_task
                    if k != "gxo"
                },
                "skipped": r.skipped,
            }
            for r in results
        ]
        Path(args.json).write_text(json.dumps(data, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
