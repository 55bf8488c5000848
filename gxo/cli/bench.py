"""``gxo bench``: how fast gxo runs no-op tasks on this machine, against the raw pool floor.

DESIGN §11 states gxo's speed as a ratio to a floor measured in the same run, because absolute
figures say more about the machine than about gxo. This command measures the first row of that
table (and exec tasks) on the user's own machine, in a few seconds:

* **python**: N independent ``type: python`` tasks calling :func:`noop`, against
  ``multiprocessing.Pool(W).imap_unordered(noop, range(N), chunksize=1)`` on a started pool;
* **exec**: N ``exec`` tasks running ``true``, against W threads calling
  ``subprocess.run(["true"])`` N times.

gxo runs through the library's one door, as any user's program would: :func:`gxo.load` of a
playbook built in memory (untimed), then :func:`gxo.run`. Its per-task cost is
``(T(N) - T(1)) / (N - 1)`` of runs of the same repeat, which removes pool start-up and
shutdown; repeats interleave floor and gxo, so load from other processes hits both. The run
directory (attempt logs) is a temporary directory, removed at the end: nothing is left behind.

Everything heavy (the engine, multiprocessing) is imported inside the functions, so the
parser can name this command without slowing ``gxo --version`` or ``--help``.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable

    from gxo.api import Loaded

__all__ = ["BenchRow", "bench_command", "noop", "playbook_text"]

#: The python no-op, as the ``python`` module names it (imported by name in the workers).
NOOP = f"{__name__}:noop"
#: DESIGN §11's target for the python row: gxo's per-task cost at most this times the pool's.
PYTHON_TARGET = 3.0


def noop(*args: Any, **kwargs: Any) -> None:
    """Do nothing: the task both gxo and the floor run (any arguments are ignored)."""


def _true_path() -> str:
    import shutil

    return shutil.which("true") or "/bin/true"


def playbook_text(kind: str, count: int, function: str = NOOP, command: str = "") -> str:
    """YAML of ``count`` independent no-op tasks: ``python`` calling ``function``, or ``exec``
    running ``command`` (default ``true``). Shared with ``benchmarks/`` (one generator)."""
    lines = ['schemaVersion: "v1.0.0"', f"name: bench_{kind}_{count}", "tasks:"]
    for i in range(count):
        lines += [f"  - name: t{i}", f"    type: {kind}", "    params:"]
        if kind == "python":
            lines.append(f'      function: "{function}"')
        else:
            lines.append(f"      command: {command or _true_path()}")
    return "\n".join(lines) + "\n"


@dataclass
class BenchRow:
    """One workload: per-task seconds of gxo and of its floor, one pair per repeat."""

    name: str
    tasks: int
    floor_name: str
    target: float | None
    gxo: list[float] = field(default_factory=list)
    floor: list[float] = field(default_factory=list)

    @staticmethod
    def _median(values: list[float]) -> float:
        import statistics

        return statistics.median(values)

    @property
    def gxo_s(self) -> float:
        return self._median(self.gxo)

    @property
    def floor_s(self) -> float:
        return self._median(self.floor)

    @property
    def ratio(self) -> float:
        """The median of the per-repeat ratios (each repeat's pair met the same load)."""
        return self._median([g / f for g, f in zip(self.gxo, self.floor, strict=True)])

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "tasks": self.tasks,
            "floor": self.floor_name,
            "gxo_us_per_task": self.gxo_s * 1e6,
            "floor_us_per_task": self.floor_s * 1e6,
            "overhead_us_per_task": (self.gxo_s - self.floor_s) * 1e6,
            "gxo_tasks_per_s": 1 / self.gxo_s,
            "floor_tasks_per_s": 1 / self.floor_s,
            "ratio": self.ratio,
            "target": self.target,
            "gxo_us_per_repeat": [v * 1e6 for v in self.gxo],
            "floor_us_per_repeat": [v * 1e6 for v in self.floor],
        }


class _Gxo:
    """``gxo.run`` of a loaded playbook with ``workers``, attempt logs under ``state_dir``."""

    def __init__(self, workers: int, state_dir: str) -> None:
        self.workers, self.state_dir = workers, state_dir

    def seconds(self, loaded: Loaded) -> float:
        import gxo

        start = time.perf_counter()
        report = gxo.run(loaded, workers=self.workers, state_dir=self.state_dir).report
        elapsed = time.perf_counter() - start
        if report.exit_code != 0:
            from gxo.errors import InternalError

            raise InternalError(f"gxo bench: the no-op run failed: {report.error}")
        return elapsed

    def per_task(self, big: Loaded, one: Loaded) -> float:
        """``(T(N) - T(1)) / (N - 1)``: the pool's start and close cancel out.

        T(1) is the shorter of a 1-task run just before and one just after T(N): load from
        other processes only ever adds time, so the shorter is the closer to the fixed cost,
        and a delay in one of them cannot make the difference negative on a busy machine.
        """
        before = self.seconds(one)
        large = self.seconds(big)
        small = min(before, self.seconds(one))
        return max(large - small, 1e-9) / (len(big.playbook.tasks) - 1)


def _timed_per_item(work: Callable[[], object], count: int) -> float:
    start = time.perf_counter()
    work()
    return max(time.perf_counter() - start, 1e-9) / count


def _measure(
    row: BenchRow, runner: _Gxo, kind: str, floor: Callable[[int], float], repeats: int
) -> BenchRow:
    """Warm both sides up, then ``repeats`` times: the floor, then gxo's T(1), T(N), T(1)."""
    import gxo

    big = gxo.load(playbook_text(kind, row.tasks))
    one = gxo.load(playbook_text(kind, 1))
    floor(min(row.tasks, 50))
    runner.seconds(one)
    for _ in range(repeats):
        row.floor.append(floor(row.tasks))
        row.gxo.append(runner.per_task(big, one))
    return row


def _python_row(runner: _Gxo, count: int, repeats: int) -> BenchRow:
    import multiprocessing

    workers = runner.workers
    row = BenchRow("python no-op", count, f"Pool({workers}).imap_unordered", PYTHON_TARGET)
    pool = multiprocessing.Pool(workers)
    try:

        def floor(n: int) -> float:
            return _timed_per_item(
                lambda: list(pool.imap_unordered(noop, range(n), chunksize=1)), n
            )

        return _measure(row, runner, "python", floor, repeats)
    finally:
        pool.close()
        pool.join()


def _exec_row(runner: _Gxo, count: int, repeats: int) -> BenchRow:
    import subprocess
    from concurrent.futures import ThreadPoolExecutor

    workers = runner.workers
    true = _true_path()
    row = BenchRow("exec true", count, f"{workers} threads x subprocess.run", None)

    def run_true(_: int) -> None:
        subprocess.run([true], check=True)

    with ThreadPoolExecutor(workers) as threads:

        def floor(n: int) -> float:
            return _timed_per_item(lambda: list(threads.map(run_true, range(n))), n)

        return _measure(row, runner, "exec", floor, repeats)


def run_bench(workers: int, tasks: int, commands: int, repeats: int) -> list[BenchRow]:
    """Measure the rows (exec only when ``commands``); the run directory is removed after."""
    import tempfile

    rows = []
    with tempfile.TemporaryDirectory(prefix="gxo-bench-") as state_dir:
        runner = _Gxo(workers, state_dir)
        rows.append(_python_row(runner, tasks, repeats))
        if commands:
            rows.append(_exec_row(runner, commands, repeats))
    return rows


def _rate(per_task: float) -> str:
    return f"{1 / per_task:,.0f}/s"


def format_table(rows: list[BenchRow], header: str) -> str:
    """The table people read: per task and tasks/s of the floor and gxo, overhead, ratio."""
    titles = ["workload", "tasks", "floor", "floor us", "floor rate", "gxo us", "gxo rate"]
    titles += ["overhead us", "ratio", "target"]
    table = [titles]
    for row in rows:
        table.append(
            [
                row.name,
                f"{row.tasks:,}",
                row.floor_name,
                f"{row.floor_s * 1e6:,.0f}",
                _rate(row.floor_s),
                f"{row.gxo_s * 1e6:,.0f}",
                _rate(row.gxo_s),
                f"{(row.gxo_s - row.floor_s) * 1e6:,.0f}",
                f"{row.ratio:.2f}x",
                f"<= {row.target:g}x" if row.target is not None else "-",
            ]
        )
    widths = [max(len(line[i]) for line in table) for i in range(len(titles))]
    lines = [header]
    for line in table:
        lines.append(
            "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        )
    lines.append(
        "per task: (T(N) - T(1)) / (N - 1) of gxo.run calls (pool start and close cancel out; "
        "T(1) the shorter of the runs before and after), median of the repeats; the floor runs "
        "on a started pool, interleaved"
    )
    return "\n".join(lines)


def bench_command(args: argparse.Namespace) -> int:
    """``gxo bench``: measure, print the table (or JSON), exit 0."""
    import json
    import platform

    from gxo._version import __version__

    started = time.perf_counter()
    load_before = os.getloadavg()
    rows = run_bench(args.workers, args.tasks, args.commands, args.repeats)
    seconds = time.perf_counter() - started
    facts: dict[str, Any] = {
        "gxo": __version__,
        "python": platform.python_version(),
        "cpus": len(os.sched_getaffinity(0))
        if hasattr(os, "sched_getaffinity")
        else os.cpu_count(),
        "workers": args.workers,
        "repeats": args.repeats,
        "load_average": [round(v, 2) for v in load_before],
        "seconds": round(seconds, 3),
    }
    if args.json:
        facts["rows"] = [row.as_dict() for row in rows]
        sys.stdout.write(json.dumps(facts, indent=2) + "\n")
        return 0
    header = (
        f"gxo {facts['gxo']} bench: {args.workers} workers, {args.repeats} repeats, Python "
        f"{facts['python']}, {facts['cpus']} CPUs, load average {load_before[0]:.2f} "
        f"(other processes slow both sides alike), {seconds:.1f} s"
    )
    print(format_table(rows, header))
    return 0
