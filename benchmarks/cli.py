"""Issue 18's rows through the installed ``gxo`` command, each against a floor of the same run.

    python benchmarks/cli.py                      # every row, 5 repeats (a few minutes)
    python benchmarks/cli.py --gxo /path/to/venv/bin/gxo --runs 9 --json out.json
    python benchmarks/cli.py --only version --only one --runs 15
    python benchmarks/cli.py --only loop --loop 100000      # the huge loop (slow: minutes)

What users run is the command, so every gxo figure here is a whole process: the console
script given by ``--gxo`` (default: the ``gxo`` beside this interpreter; measure a regular,
bytecode-compiled install, not an editable checkout), with its **default output** (sent to a
file, as in CI: the plain progress lines), ``--workers 2``. The floors run with the same
interpreter as that gxo (read from the script's ``#!`` line).

Each repeat runs the floor and gxo back to back (interleaved), and the **ratio is computed per
repeat** and then the median taken, so load from other processes on a shared machine hits
both sides of a ratio alike. Per-task figures subtract a 1-task run of the same kind from an
N-task run of the same repeat: ``(T(N) - T(1)) / (N - 1)``.

Rows (gxo / floor):

- version: ``gxo --version`` / ``python -c pass``;
- one: ``gxo one.yaml --workers 2`` (1 python no-op) / ``python -c "import msgspec, yaml"``;
- python: per task, N independent python no-ops / ``Pool(2).imap_unordered`` per task;
- exec: per command, N ``exec /bin/true`` / ``make -j2`` on N ``/bin/true`` targets, per
  command (2 threads x ``subprocess.run`` shown too);
- chain: per link, N dependent python no-ops / a one-at-a-time msgspec round trip over pipes,
  parent and child pinned to different CPUs;
- load: ``gxo validate`` of a 10,000-task playbook / a process running
  ``yaml.load(CSafeLoader)`` of the same file (``run.py`` has the in-process ``gxo.load`` row);
- loop: one python task looping over N items: the gxo process's peak RSS and report size.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import bench_load  # noqa: E402
from run import (  # noqa: E402
    PipeWorker,
    background_load,
    chain_playbook,
    exec_playbook,
    floor_pool,
    independent_playbook,
    run_true,
    write,
)

WORKERS = 2


def stats(values: Sequence[float], scale: float = 1.0, digits: int = 0) -> str:
    """``median (min-max)`` of ``values`` times ``scale``."""
    med = statistics.median(values) * scale
    return f"{med:.{digits}f} ({min(values) * scale:.{digits}f}-{max(values) * scale:.{digits}f})"


class Row:
    """One line of the table: gxo and its floor per repeat, and the per-repeat ratios."""

    def __init__(self, name: str, unit: str, scale: float, target: float | None) -> None:
        self.name, self.unit, self.scale, self.target = name, unit, scale, target
        self.gxo: list[float] = []
        self.floor: list[float] = []
        self.notes: dict[str, list[float] | str] = {}

    def add(self, gxo: float, floor: float) -> None:
        self.gxo.append(gxo)
        self.floor.append(floor)

    def note(self, key: str, value: float) -> None:
        series = self.notes.setdefault(key, [])
        assert isinstance(series, list)
        series.append(value)

    @property
    def ratios(self) -> list[float]:
        return [g / f for g, f in zip(self.gxo, self.floor, strict=True) if f > 0]

    def ratio(self) -> float:
        return statistics.median(self.ratios) if self.ratios else float("nan")

    def verdict(self) -> str:
        if self.target is None:
            return "-"
        return "met" if self.ratio() <= self.target else "NOT met"

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "unit": self.unit,
            "gxo": self.gxo,
            "floor": self.floor,
            "ratio": self.ratio(),
            "target": self.target,
            "notes": self.notes,
        }


# -- running things -----------------------------------------------------------------------------


def interpreter_of(script: Path) -> str:
    """The Python a console script runs with (its ``#!`` line), else this one."""
    try:
        first = script.read_text(errors="replace").splitlines()[0]
    except (OSError, IndexError):
        return sys.executable
    return first[2:].strip().split()[0] if first.startswith("#!") else sys.executable


def wall(argv: Sequence[str], cwd: Path, out: Path | None = None) -> float:
    """Seconds for ``argv`` to run to completion (exit 0 required); output to ``out``."""
    with open(out or os.devnull, "wb") as sink:
        start = time.perf_counter()
        proc = subprocess.run(argv, cwd=cwd, stdout=sink, stderr=sink, check=False)
        elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        detail = out.read_text(errors="replace")[-2000:] if out else ""
        raise SystemExit(f"{' '.join(map(str, argv))} exited {proc.returncode}\n{detail}")
    return elapsed


def peak_rss(argv: Sequence[str], cwd: Path, out: Path) -> tuple[float, int]:
    """(seconds, peak RSS in bytes of the process itself) for ``argv``.

    ``wait4`` gives the child's own resource usage; its workers are children of the
    forkserver, not of the gxo process, so their memory is not counted in it.
    """
    with open(out, "wb") as sink:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, cwd=cwd, stdout=sink, stderr=sink)
        _, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} exited {proc.returncode}")
    return elapsed, usage.ru_maxrss * 1024


# -- rows ---------------------------------------------------------------------------------------


def row_version(ctx: Context) -> Row:
    row = Row("gxo --version", "ms", 1e3, 2.0)
    floor = [ctx.python, "-c", "pass"]
    gxo = [ctx.gxo, "--version"]
    wall(floor, ctx.tmp)
    wall(gxo, ctx.tmp)
    for _ in range(ctx.runs * 3):  # cheap: three times the repeats
        f = wall(floor, ctx.tmp)
        row.add(wall(gxo, ctx.tmp), f)
    return row


def row_one(ctx: Context) -> Row:
    row = Row("1-task playbook, whole process", "ms", 1e3, 2.0)
    playbook = write(ctx.tmp, "one.yaml", independent_playbook(1))
    floor = [ctx.python, "-c", "import msgspec, yaml"]
    gxo = [ctx.gxo, str(playbook), "--workers", str(WORKERS)]
    wall(floor, ctx.tmp)
    wall(gxo, ctx.tmp, ctx.out)
    for _ in range(ctx.runs * 2):
        f = wall(floor, ctx.tmp)
        row.add(wall(gxo, ctx.tmp, ctx.out), f)
        row.note("python -c pass ms", wall([ctx.python, "-c", "pass"], ctx.tmp) * 1e3)
        row.note(
            "gxo validate one.yaml ms", wall([ctx.gxo, "validate", str(playbook)], ctx.tmp) * 1e3
        )
    return row


def _per_task(ctx: Context, big: Path, one: Path, extra: Sequence[str] = ()) -> float:
    small = wall([ctx.gxo, str(one), "--workers", str(WORKERS), *extra], ctx.tmp, ctx.out)
    large = wall([ctx.gxo, str(big), "--workers", str(WORKERS), *extra], ctx.tmp, ctx.out)
    count = int(big.stem.rsplit("_", 1)[1])
    return (large - small) / (count - 1)


def row_python(ctx: Context) -> Row:
    count = ctx.tasks
    row = Row(f"{count:,} independent python no-ops, per task", "us", 1e6, 3.0)
    big = write(ctx.tmp, f"python_{count}.yaml", independent_playbook(count))
    one = write(ctx.tmp, "python_1.yaml", independent_playbook(1))
    with multiprocessing.Pool(WORKERS) as pool:
        floor_pool(pool, 200)
        _per_task(ctx, big, one)
        for _ in range(ctx.runs):
            f = floor_pool(pool, count)
            row.add(_per_task(ctx, big, one), f)
            row.note("gxo -q us/task", _per_task(ctx, big, one, ["-q"]) * 1e6)
    return row


def makefile(directory: Path, count: int) -> Path:
    path = directory / f"Makefile.{count}"
    targets = " ".join(f"t{i}" for i in range(count))
    body = [f".PHONY: all {targets}", f"all: {targets}"]
    body += [f"t{i}:\n\t@/bin/true" for i in range(count)]
    path.write_text("\n".join(body) + "\n")
    return path


def row_exec(ctx: Context) -> Row:
    count = ctx.commands
    row = Row(f"{count} exec /bin/true, per command", "us", 1e6, 1.2)
    make = shutil.which("make")
    if make is None:
        row.notes["skipped"] = "make is not installed"
        return row
    big = write(ctx.tmp, f"exec_{count}.yaml", exec_playbook(count))
    one = write(ctx.tmp, "exec_1.yaml", exec_playbook(1))
    mk_big, mk_one = makefile(ctx.tmp, count), makefile(ctx.tmp, 1)

    def make_per_command() -> float:
        small = wall([make, "-s", "-j2", "-f", str(mk_one)], ctx.tmp)
        large = wall([make, "-s", "-j2", "-f", str(mk_big)], ctx.tmp)
        return (large - small) / (count - 1)

    make_per_command()
    _per_task(ctx, big, one)
    with ThreadPoolExecutor(WORKERS) as threads:
        for _ in range(ctx.runs):
            f = make_per_command()
            row.add(_per_task(ctx, big, one), f)
            start = time.perf_counter()
            list(threads.map(run_true, range(count)))
            row.note("2 threads x subprocess.run us", (time.perf_counter() - start) / count * 1e6)
    return row


def row_chain(ctx: Context) -> Row:
    count = ctx.chain
    row = Row(f"chain of {count} dependent python no-ops, per link", "us", 1e6, 2.0)
    big = write(ctx.tmp, f"chain_{count}.yaml", chain_playbook(count))
    one = write(ctx.tmp, "chain_1.yaml", chain_playbook(1))
    worker = PipeWorker()
    try:
        worker.round_trips(200)
        _per_task(ctx, big, one)
        for _ in range(ctx.runs):
            f = worker.cross_cpu_round_trips(count)
            row.add(_per_task(ctx, big, one), f)
    finally:
        worker.close()
    return row


def row_load(ctx: Context) -> Row:
    """``gxo validate`` of a 10,000-task playbook, whole process, against a whole process
    parsing the same file with ``yaml.load(CSafeLoader)`` (the library path's row, in-process,
    is ``run.py``'s)."""
    count = ctx.load
    row = Row(f"{count:,}-task playbook: gxo validate, whole process", "ms", 1e3, 3.0)
    big = write(ctx.tmp, f"load_{count}.yaml", bench_load.generate(count))
    half = write(ctx.tmp, f"load_{count // 2}.yaml", bench_load.generate(count // 2))
    parse = "import sys, yaml; yaml.load(open(sys.argv[1], 'rb'), Loader=yaml.CSafeLoader)"
    floor = [ctx.python, "-c", parse, str(big)]
    gxo = [ctx.gxo, "validate", str(big)]
    wall(floor, ctx.tmp)
    wall(gxo, ctx.tmp)
    for _ in range(ctx.runs):
        f = wall(floor, ctx.tmp)
        row.add(wall(gxo, ctx.tmp), f)
        half_ms = wall([ctx.gxo, "validate", str(half)], ctx.tmp) * 1e3
        row.note(f"gxo validate {count // 2:,} ms", half_ms)
    return row


def loop_playbook(count: int) -> str:
    # Jinja's sandbox refuses a range over 100,000: a larger loop joins ranges of at most that.
    chunks = [min(100_000, count - start) for start in range(0, count, 100_000)]
    items = " + ".join(f"(range({n}) | list)" for n in chunks)
    return (
        'schemaVersion: "v1.0.0"\n'
        f"name: loop_{count}\n"
        "tasks:\n"
        "  - name: each\n"
        "    type: python\n"
        f'    loop: "{{{{ {items} }}}}"\n'
        "    params:\n"
        f'      function: "{HERE / "noop_tasks.py"}:noop"\n'
    )


def row_loop(ctx: Context) -> Row:
    row = Row("loop: parent peak RSS", "MB", 1e-6, None)
    for count in ctx.loops:
        playbook = write(ctx.tmp, f"loop_{count}.yaml", loop_playbook(count))
        report = ctx.tmp / f"loop_{count}.json"
        seconds, rss = peak_rss(
            [ctx.gxo, str(playbook), "--workers", str(WORKERS), "--report", str(report)],
            ctx.tmp,
            ctx.out,
        )
        row.notes[f"{count:,} items"] = (
            f"peak RSS {rss / 1e6:.0f} MB, report {report.stat().st_size / 1e6:.1f} MB, "
            f"{seconds:.1f} s ({seconds / count * 1e6:.0f} us/item)"
        )
        row.add(rss, 1.0)
        print(f"    loop {count:,}: {row.notes[f'{count:,} items']}", flush=True)
    return row


# -- driver -------------------------------------------------------------------------------------


class Context:
    def __init__(self, args: argparse.Namespace, tmp: Path) -> None:
        self.gxo = str(Path(args.gxo).resolve())
        self.python = interpreter_of(Path(self.gxo))
        self.tmp = tmp
        self.out = tmp / "gxo.out"
        self.runs = args.runs
        self.tasks, self.commands, self.chain, self.load = (
            args.tasks,
            args.commands,
            args.chain,
            args.load,
        )
        self.loops = args.loop or [10_000, 100_000]


ROWS: dict[str, Callable[[Context], Row]] = {
    "version": row_version,
    "one": row_one,
    "python": row_python,
    "exec": row_exec,
    "chain": row_chain,
    "load": row_load,
    "loop": row_loop,
}


def print_row(row: Row) -> None:
    if not row.gxo:
        print(f"{row.name}: {row.notes}")
        return
    if row.target is None:
        print(f"{row.name}:")
    else:
        print(
            f"{row.name}: gxo {stats(row.gxo, row.scale)} {row.unit}, floor "
            f"{stats(row.floor, row.scale)} {row.unit}, ratio {stats(row.ratios, 1, 2)} "
            f"(target <= {row.target}x: {row.verdict()})"
        )
    for key, value in row.notes.items():
        shown = stats(value, 1, 0) if isinstance(value, list) else value
        print(f"    {key}: {shown}")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of the command and the rows' sizes (``run.py`` shares them)."""
    default_gxo = Path(sys.executable).with_name("gxo")
    parser.add_argument(
        "--gxo", default=str(default_gxo), help=f"the command (default {default_gxo})"
    )
    parser.add_argument("--tasks", type=int, default=2000, help="python row's N (2,000)")
    parser.add_argument("--commands", type=int, default=300, help="exec row's N (300)")
    parser.add_argument("--chain", type=int, default=500, help="chain row's N (500)")
    parser.add_argument("--load", type=int, default=10_000, help="load row's N (10,000)")
    parser.add_argument("--loop", type=int, action="append", help="loop sizes (10k and 100k)")


def measure(args: argparse.Namespace, names: Sequence[str]) -> list[Row]:
    """Measure the rows ``names`` through ``args.gxo``, printing each as it is done."""
    version = subprocess.run([args.gxo, "--version"], capture_output=True, text=True, check=True)
    described = " / ".join(version.stdout.splitlines()[:2])
    print(f"{time.strftime('%Y-%m-%d %H:%M:%S %Z')}; {args.gxo}: {described}")
    print(f"load average {os.getloadavg()}, background CPU {background_load():.0%} of all CPUs")
    rows = []
    with tempfile.TemporaryDirectory(prefix="gxo-cli-bench-") as tmp:
        context = Context(args, Path(tmp))
        for name in names:
            load_before = os.getloadavg()[0]
            row = ROWS[name](context)
            row.notes["load average before / after"] = (
                f"{load_before:.1f} / {os.getloadavg()[0]:.1f}"
            )
            print_row(row)
            rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="repeats per row (default 5)")
    parser.add_argument("--only", choices=list(ROWS), action="append", help="rows to run")
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    add_arguments(parser)
    args = parser.parse_args(argv)
    rows = measure(args, args.only or [name for name in ROWS if name != "loop"])
    if args.json:
        Path(args.json).write_text(json.dumps([r.as_dict() for r in rows], indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
