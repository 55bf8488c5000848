"""gxo against its floors: the rows of DESIGN.md section 11, measured in one run.

    python benchmarks/run.py            # 7 repeats per row, library and command (minutes)
    python benchmarks/run.py --quick    # 3 repeats per row
    python benchmarks/run.py --runs 9 --json results.json
    python benchmarks/run.py --path library          # gxo.run in this process only
    python benchmarks/run.py --path cli --gxo /venv/bin/gxo   # the installed command only

Every row is measured on two paths (``--path both``, the default): in this process through
the library (below), and through the installed ``gxo`` command by ``cli.py``'s rows (whole
processes, default output; see its docstring), each against its own floor of the same run.
A last table puts the two side by side with the ratio CLI / library of gxo's figures. The
sizes (``--tasks``, ``--commands``, ``--chain``, ``--load``) are the same on both paths.

Each row runs its floor and gxo in the same process, interleaved repeat by repeat, after one
untimed warm-up of each. gxo runs in-process through the library API: ``gxo.load(path)``
(untimed), then ``gxo.run(loaded, workers=2)`` (interpreter start-up is not in those figures;
pool start-up is, and is then subtracted):

* per-task cost of gxo = ``(T(N) - T(1)) / (N - 1)``, where ``T(n)`` is the wall time of
  ``gxo.run`` on an n-task playbook (pool start, run, report, pool close) and the two
  runs of one repeat are paired; the median and min-max over repeats are shown. Playbook load is
  outside ``T``. The table also shows the in-run span: last task end minus first attempt start,
  from the report's times (the scheduler's monotonic clock, converted), divided by N.
* the floors are timed on resources already started (pool, worker process, thread pool):
  ``Pool(2).imap_unordered(noop, range(5000), chunksize=1)`` / 5000; 500 one-at-a-time
  msgspec frame round trips over a pipe to one forked worker / 500;
  ``ThreadPoolExecutor(2)`` mapping ``subprocess.run(["/bin/true"])`` over 500 / 500.
* whole process: wall time of ``python -m gxo execute one.yaml -q --workers 2`` (1 python
  no-op task) against ``python -c "import msgspec, yaml"``, both with ``sys.executable``
  (not a pyenv shim), bytecode cached in a private ``PYTHONPYCACHEPREFIX`` (as an installed
  gxo has its .pyc files); the same without any bytecode (this machine sets
  ``PYTHONDONTWRITEBYTECODE=1``, so an editable checkout compiles gxo on every start) is
  shown as an extra line.
* load: ``gxo.load`` (YAML, schema, checks, templates, DAG, cycle check) of
  ``bench_load.generate(10_000)`` written to a file, against ``yaml.load(CSafeLoader)`` of the
  same file, and of 5,000 for the linearity check.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import msgspec

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import bench_load  # noqa: E402
import noop_tasks  # noqa: E402

import gxo  # noqa: E402
from gxo.api import Loaded  # noqa: E402
from gxo.cli.bench import playbook_text  # noqa: E402

NOOP_FUNCTION = f"{HERE / 'noop_tasks.py'}:noop"
WORKERS = 2

# -- playbooks ----------------------------------------------------------------------------------


def independent_playbook(count: int) -> str:
    """``count`` independent ``python`` tasks calling the no-op (``gxo bench``'s generator)."""
    return playbook_text("python", count, function=NOOP_FUNCTION)


def chain_playbook(count: int) -> str:
    """A chain: task i passes ``{{ r<i-1> }}`` (task i-1's register) to the no-op."""
    lines = ['schemaVersion: "v1.0.0"', f"name: chain_{count}", "tasks:"]
    for i in range(count):
        lines += [
            f"  - name: t{i}",
            "    type: python",
            f"    register: r{i}",
            "    params:",
            f'      function: "{NOOP_FUNCTION}"',
        ]
        if i:
            lines += ["      kwargs:", f'        prev: "{{{{ r{i - 1} }}}}"']
    return "\n".join(lines) + "\n"


def exec_playbook(count: int) -> str:
    """``count`` independent ``exec`` tasks running ``/bin/true`` (``gxo bench``'s generator)."""
    return playbook_text("exec", count, command="/bin/true")


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


# -- statistics ---------------------------------------------------------------------------------


@dataclass
class Series:
    """Repeated measurements of one quantity (seconds, or seconds per item)."""

    values: list[float] = field(default_factory=list)

    def add(self, value: float) -> None:
        self.values.append(value)

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    @property
    def low(self) -> float:
        return min(self.values)

    @property
    def high(self) -> float:
        return max(self.values)

    def us(self) -> str:
        """``median (min-max)`` in microseconds."""
        return f"{self.median * 1e6:.0f} ({self.low * 1e6:.0f}-{self.high * 1e6:.0f})"

    def ms(self) -> str:
        return f"{self.median * 1e3:.0f} ({self.low * 1e3:.0f}-{self.high * 1e3:.0f})"


@dataclass
class Row:
    workload: str
    unit: str  # "us/task", "us/link", "us/command", "ms"
    floor: Series | None
    gxo: Series
    target: str
    passed: bool
    ratio: float | None
    details: dict[str, Any] = field(default_factory=dict)


# -- gxo in-process -----------------------------------------------------------------------------


@dataclass
class EngineRun:
    wall: float  # gxo.run, pool start and close included
    span: float  # last task end - first attempt start (from the report)


_STATE_DIR: list[str] = []


def state_dir() -> str:
    """A temporary run directory for the in-process runs (attempt logs), removed at exit, so
    benchmarks leave no ``.gxo/runs`` behind in the current directory."""
    if not _STATE_DIR:
        import atexit
        import shutil

        _STATE_DIR.append(tempfile.mkdtemp(prefix="gxo-bench-state-"))
        atexit.register(shutil.rmtree, _STATE_DIR[0], ignore_errors=True)
    return _STATE_DIR[0]


def run_engine(loaded: Loaded) -> EngineRun:
    """One ``gxo.run`` with 2 workers; checks that every task completed."""
    start = time.perf_counter()
    report = gxo.run(loaded, workers=WORKERS, state_dir=state_dir()).report
    wall = time.perf_counter() - start
    if report.exit_code != 0 or report.completed_tasks != len(loaded.playbook.tasks):
        raise SystemExit(f"gxo run of {loaded.playbook.name} failed: {report.error}")
    results = report.task_results.values()
    first = min(
        a.start_time for r in results for i in r.instances for a in i.attempts if a.start_time
    )
    last = max(r.end_time for r in results if r.end_time is not None)
    return EngineRun(wall, (last - first).total_seconds())


def measure_gxo_pair(big: Loaded, one: Loaded, per_task: Series, details: dict) -> None:
    """One repeat: T(1) then T(N); adds (T(N) - T(1)) / (N - 1) to ``per_task``."""
    count = len(big.playbook.tasks)
    small = run_engine(one)
    large = run_engine(big)
    per_task.add((large.wall - small.wall) / (count - 1))
    details.setdefault("T(1) s", Series()).add(small.wall)
    details.setdefault(f"T({count}) s", Series()).add(large.wall)
    details.setdefault("span/N us", Series()).add(large.span / count)


# -- floors -------------------------------------------------------------------------------------


def floor_pool(pool: Any, count: int) -> float:
    """Seconds per task: ``imap_unordered`` of the no-op over ``count`` items, chunksize 1."""
    start = time.perf_counter()
    for _ in pool.imap_unordered(noop_tasks.noop, range(count), chunksize=1):
        pass
    return (time.perf_counter() - start) / count


_LENGTH = struct.Struct(">I")


def _read_exact(fd: int, size: int) -> bytes:
    chunks = []
    while size:
        chunk = os.read(fd, size)
        if not chunk:
            return b""
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def _pipe_worker(read_fd: int, write_fd: int) -> None:
    """The floor's worker: decode each frame, answer with a Done-like frame."""
    decoder = msgspec.msgpack.Decoder()
    encoder = msgspec.msgpack.Encoder()
    while True:
        head = _read_exact(read_fd, 4)
        if not head:
            return
        message = decoder.decode(_read_exact(read_fd, _LENGTH.unpack(head)[0]))
        reply = encoder.encode({"id": message["id"], "ok": True, "summary": None})
        os.write(write_fd, _LENGTH.pack(len(reply)) + reply)


class PipeWorker:
    """One forked process answering msgspec frames over two pipes, one at a time."""

    def __init__(self) -> None:
        to_child_r, self._to_child = os.pipe()
        self._from_child, from_child_w = os.pipe()
        self.pid = os.fork()
        if self.pid == 0:  # pragma: no cover - child
            code = 0
            try:
                os.close(self._to_child)
                os.close(self._from_child)
                _pipe_worker(to_child_r, from_child_w)
            except BaseException:  # noqa: BLE001
                code = 1
            finally:
                os._exit(code)
        os.close(to_child_r)
        os.close(from_child_w)
        self._encoder = msgspec.msgpack.Encoder()
        self._decoder = msgspec.msgpack.Decoder()

    def round_trips(self, count: int) -> float:
        """Seconds per round trip over ``count`` one-at-a-time exchanges."""
        encoder, decoder = self._encoder, self._decoder
        start = time.perf_counter()
        for i in range(count):
            frame = encoder.encode(
                {
                    "id": i,
                    "task": f"t{i}",
                    "module": "python",
                    "params": {"function": NOOP_FUNCTION},
                    "namespace": {},
                }
            )
            os.write(self._to_child, _LENGTH.pack(len(frame)) + frame)
            head = _read_exact(self._from_child, 4)
            reply = decoder.decode(_read_exact(self._from_child, _LENGTH.unpack(head)[0]))
            if reply["id"] != i:
                raise RuntimeError("pipe floor: out-of-order reply")
        return (time.perf_counter() - start) / count

    def pinned_round_trips(self, parent: set[int], child: set[int], count: int) -> float:
        """:meth:`round_trips` with this process on ``parent`` CPUs and the worker on ``child``
        (this process's own CPUs are given back after)."""
        everything = os.sched_getaffinity(0)
        os.sched_setaffinity(0, parent)
        os.sched_setaffinity(self.pid, child)
        try:
            return self.round_trips(count)
        finally:
            os.sched_setaffinity(0, everything)

    def cross_cpu_round_trips(self, count: int) -> float:
        """The chain's floor: this process and the worker pinned to two different CPUs
        (unpinned on a machine with one CPU)."""
        cpus = sorted(os.sched_getaffinity(0))
        if len(cpus) < 2:
            return self.round_trips(count)
        return self.pinned_round_trips({cpus[0]}, {cpus[1]}, count)

    def close(self) -> None:
        os.close(self._to_child)
        os.close(self._from_child)
        os.waitpid(self.pid, 0)


def run_true(_: int) -> None:
    """One floor command: ``subprocess.run(["/bin/true"])`` (mapped by 2 threads)."""
    subprocess.run(["/bin/true"], check=True)


def floor_subprocess(executor: ThreadPoolExecutor, count: int) -> float:
    """Seconds per command: 2 threads calling ``subprocess.run(["/bin/true"])``."""
    start = time.perf_counter()
    for _ in executor.map(run_true, range(count)):
        pass
    return (time.perf_counter() - start) / count


# -- rows ---------------------------------------------------------------------------------------


def load(path: Path) -> Loaded:
    return gxo.load(path)


def row_independent(tmp: Path, runs: int, count: int = 5000) -> Row:
    big = load(write(tmp, "independent.yaml", independent_playbook(count)))
    one = load(write(tmp, "independent_1.yaml", independent_playbook(1)))
    floor, gxo, details = Series(), Series(), {}
    with multiprocessing.Pool(WORKERS) as pool:
        floor_pool(pool, 200)  # warm-up
        run_engine(one)
        for _ in range(runs):
            floor.add(floor_pool(pool, count))
            measure_gxo_pair(big, one, gxo, details)
    ratio = gxo.median / floor.median
    return Row(
        f"{count:,} independent python no-ops, 2 workers",
        "us/task",
        floor,
        gxo,
        "<= 3x floor",
        ratio <= 3,
        ratio,
        details,
    )


def row_chain(tmp: Path, runs: int, count: int = 500) -> Row:
    """The floor is the round trip with parent and worker pinned to different CPUs.

    Unpinned, the figure is bimodal on a 2-CPU VM: ~10 us when the scheduler keeps both
    processes on one CPU (no cross-CPU wake-up), ~50 us when they sit on two. gxo's parent and
    worker run on two CPUs, and the reference figure (58 us) is the cross-CPU one, so that is
    the floor; the same-CPU and unpinned figures are shown as details.
    """
    big = load(write(tmp, "chain.yaml", chain_playbook(count)))
    one = load(write(tmp, "chain_1.yaml", chain_playbook(1)))
    floor, gxo, same, unpinned = Series(), Series(), Series(), Series()
    details: dict[str, Any] = {"floor, same CPU us": same, "floor, unpinned us": unpinned}
    cpus = sorted(os.sched_getaffinity(0))
    worker = PipeWorker()
    try:
        worker.round_trips(200)  # warm-up
        run_engine(one)
        for _ in range(runs):
            floor.add(worker.cross_cpu_round_trips(count))
            if len(cpus) >= 2:
                same.add(worker.pinned_round_trips({cpus[0]}, {cpus[0]}, count))
                unpinned.add(worker.pinned_round_trips(set(cpus), set(cpus), count))
            measure_gxo_pair(big, one, gxo, details)
    finally:
        worker.close()
    ratio = gxo.median / floor.median
    return Row(
        f"chain of {count} dependent python no-ops",
        "us/link",
        floor,
        gxo,
        "<= 2x floor",
        ratio <= 2,
        ratio,
        {k: v for k, v in details.items() if not isinstance(v, Series) or v.values},
    )


def row_exec(tmp: Path, runs: int, count: int = 500) -> Row:
    big = load(write(tmp, "exec.yaml", exec_playbook(count)))
    one = load(write(tmp, "exec_1.yaml", exec_playbook(1)))
    floor, gxo, details = Series(), Series(), {}
    with ThreadPoolExecutor(WORKERS) as executor:
        floor_subprocess(executor, 20)  # warm-up
        run_engine(one)
        for _ in range(runs):
            floor.add(floor_subprocess(executor, count))
            measure_gxo_pair(big, one, gxo, details)
    ratio = gxo.median / floor.median
    return Row(
        f"{count} exec /bin/true, 2 workers",
        "us/command",
        floor,
        gxo,
        "<= 1.3x floor",
        ratio <= 1.3,
        ratio,
        details,
    )


def _wall(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def row_process(tmp: Path, runs: int) -> Row:
    playbook = write(tmp, "one.yaml", independent_playbook(1))
    gxo_argv = [sys.executable, "-m", "gxo", "execute", str(playbook), "-q", "--workers", "2"]
    floor_argv = [sys.executable, "-c", "import msgspec, yaml"]
    cached = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    cached["PYTHONPYCACHEPREFIX"] = str(tmp / "pycache")
    uncached = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    uncached.pop("PYTHONPYCACHEPREFIX", None)
    parent_imports = [sys.executable, "-c", "import gxo.cli.commands, gxo.api"]
    worker_imports = [sys.executable, "-c", "import gxo.pool.worker"]
    floor, gxo, no_pyc, bare = Series(), Series(), Series(), Series()
    parent_series, worker_series = Series(), Series()
    for env in (cached, uncached):  # warm-up (fills the private bytecode cache)
        _wall(gxo_argv, env)
        _wall(floor_argv, env)
    _wall(parent_imports, cached)
    _wall(worker_imports, cached)
    for _ in range(runs):
        bare.add(_wall([sys.executable, "-c", "pass"], cached))
        floor.add(_wall(floor_argv, cached))
        gxo.add(_wall(gxo_argv, cached))
        no_pyc.add(_wall(gxo_argv, uncached))
        parent_series.add(_wall(parent_imports, cached))
        worker_series.add(_wall(worker_imports, cached))
    return Row(
        "gxo execute, 1-task playbook, whole process",
        "ms",
        floor,
        gxo,
        "<= 150 ms",
        gxo.median <= 0.150,
        gxo.median / floor.median,
        {
            "python -c pass s": bare,
            "python -c 'import gxo.cli.commands, gxo.api' s": parent_series,
            "python -c 'import gxo.pool.worker' (the forkserver's preload) s": worker_series,
            "gxo without .pyc s": no_pyc,
        },
    )


def row_load(tmp: Path, runs: int, count: int = 10_000) -> Row:
    """``gxo.load`` against ``yaml.load(CSafeLoader)`` of the same file, and 5,000 tasks for
    the linearity check (DESIGN §11: at most 3x the parse alone, linear in task count)."""
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    big = write(tmp, "load_big.yaml", bench_load.generate(count))
    half = write(tmp, "load_half.yaml", bench_load.generate(count // 2))
    load(half)  # warm-up: imports, schema
    floor, gxo, small = Series(), Series(), Series()
    for _ in range(runs):
        floor.add(_timed(lambda: yaml.load(big.read_bytes(), Loader=loader)))
        small.add(_timed(lambda: load(half)))
        gxo.add(_timed(lambda: load(big)))
    linear = (gxo.median / count) / (small.median / (count // 2))
    ratio = gxo.median / floor.median
    return Row(
        f"{count:,}-task playbook: load + validate + plan",
        "ms",
        floor,
        gxo,
        "<= 3x floor, linear",
        ratio <= 3 and linear < 1.25,
        ratio,
        {f"{count // 2:,} tasks s": small, "per-task cost 10k / 5k": linear},
    )


def _timed(work: Callable[[], Any]) -> float:
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


# -- output -------------------------------------------------------------------------------------


def _cell(series: Series | None, unit: str) -> str:
    if series is None:
        return "-"
    return series.ms() if unit == "ms" else series.us()


def print_table(rows: list[Row], runs: int) -> None:
    header = ("workload", "unit", "floor", "gxo", "ratio", "target", "result")
    table = [
        (
            row.workload,
            row.unit,
            _cell(row.floor, row.unit),
            _cell(row.gxo, row.unit),
            f"{row.ratio:.1f}x" if row.ratio is not None else "-",
            row.target,
            "PASS" if row.passed else "FAIL",
        )
        for row in rows
    ]
    widths = [max(len(str(r[i])) for r in [header, *table]) for i in range(len(header))]
    print(f"\nmedian (min-max) of {runs} runs; per-task figures for gxo are (T(N)-T(1))/(N-1)\n")
    for line in [header, tuple("-" * w for w in widths), *table]:
        print("  ".join(str(c).ljust(w) for c, w in zip(line, widths, strict=True)))
    print()
    for row in rows:
        for name, value in row.details.items():
            if isinstance(value, Series):
                shown = value.us() if "us" in name else f"{value.ms()} ms"
            elif "load" in name:
                shown = f"{value:.0%} of all CPUs"
            else:
                shown = f"{value:.2f}"
            print(f"  {row.workload}: {name} = {shown}")


def background_load(seconds: float = 1.0) -> float:
    """Fraction of all CPUs busy over ``seconds`` while this process sleeps (other sessions)."""

    def sample() -> tuple[int, int]:
        with open("/proc/stat", encoding="ascii") as stat:
            fields = [int(x) for x in stat.readline().split()[1:]]
        return sum(fields), fields[3] + fields[4]  # all, idle + iowait

    try:
        total0, idle0 = sample()
        time.sleep(seconds)
        total1, idle1 = sample()
    except OSError:  # not Linux
        return float("nan")
    return 1 - (idle1 - idle0) / max(1, total1 - total0)


def git_state() -> str:
    """``<HEAD sha>`` plus the gxo/ files changed in the work tree, which the figures include."""

    def git(*args: str) -> str:
        try:
            return subprocess.run(
                ["git", *args], cwd=HERE.parent, capture_output=True, text=True, check=True
            ).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            return ""

    head = git("rev-parse", "--short", "HEAD") or "unknown"
    changed = [line[3:] for line in git("status", "--porcelain", "--", "gxo").splitlines()]
    return f"{head} + {len(changed)} uncommitted gxo/ files" if changed else head


def machine() -> dict[str, Any]:
    return {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "nproc": os.cpu_count(),
        "affinity": len(os.sched_getaffinity(0)),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "gxo": git_state(),
    }


def to_json(rows: list[Row]) -> list[dict[str, Any]]:
    def plain(value: Any) -> Any:
        if isinstance(value, dict) and "values" in value:
            values = value["values"]
            return {"median": statistics.median(values), "min": min(values), "max": max(values)}
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return value

    return [plain(asdict(row)) for row in rows]


#: The library rows and the rows of ``cli.py`` that measure the same workload through the
#: installed command; ``version`` and ``loop`` exist only there.
CLI_ROW = {"independent": "python", "chain": "chain", "exec": "exec", "process": "one"}
CLI_ROW["load"] = "load"
CLI_ONLY = ("version", "loop")


def print_both(rows: dict[str, Row], cli_rows: dict[str, Any]) -> None:
    """One line per workload: gxo and its ratio to the floor on each path, and CLI / library."""
    print("\nboth paths (medians; each ratio against its own floor of the same run):\n")
    header = ("row", "library gxo", "ratio", "CLI gxo", "ratio", "CLI / library")
    table = []
    for name, row in rows.items():
        cli_row = cli_rows.get(CLI_ROW[name])
        if cli_row is None or not cli_row.gxo:
            continue
        scale = 1e3 if row.unit == "ms" else 1e6
        unit = "ms" if row.unit == "ms" else "us"
        cli_median = statistics.median(cli_row.gxo)
        table.append(
            (
                name,
                f"{row.gxo.median * scale:,.0f} {unit}",
                f"{row.ratio:.2f}x" if row.ratio is not None else "-",
                f"{cli_median * scale:,.0f} {unit}",
                f"{cli_row.ratio():.2f}x",
                f"{cli_median / row.gxo.median:.2f}x",
            )
        )
    widths = [max(len(r[i]) for r in [header, *table]) for i in range(len(header))]
    for line in [header, *table]:
        print("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)))


def main(argv: list[str] | None = None) -> int:
    import cli

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 repeats per row instead of 7")
    parser.add_argument("--runs", type=int, help="repeats per row (overrides --quick)")
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    parser.add_argument(
        "--path",
        choices=("both", "library", "cli"),
        default="both",
        help="gxo.run in this process, the installed gxo command (cli.py's rows), or both "
        "(default), then a table of the two side by side",
    )
    parser.add_argument(
        "--wait-quiet",
        type=float,
        metavar="SECONDS",
        help="wait up to this long for other processes' CPU load to drop first "
        "(default 30, 0 with --quick)",
    )
    parser.add_argument(
        "--max-load",
        type=float,
        default=0.10,
        metavar="FRACTION",
        help="background load (fraction of all CPUs) that counts as quiet (default 0.10)",
    )
    parser.add_argument(
        "--only",
        choices=(*CLI_ROW, *CLI_ONLY),
        action="append",
        help="run only these rows (repeatable; version and loop: through the command only; "
        "loop is run only when named)",
    )
    cli.add_arguments(parser)
    parser.set_defaults(tasks=5000, commands=500)
    args = parser.parse_args(argv)
    runs = args.runs or (3 if args.quick else 7)
    if args.wait_quiet is None:
        args.wait_quiet = 0.0 if args.quick else 30.0
    info = machine()
    print(
        f"gxo benchmarks: {info['date']}, {info['nproc']} CPUs ({info['affinity']} usable), "
        f"Python {info['python']}, {info['platform']}, gxo {info['gxo']}, {runs} runs per row, "
        f"load average {os.getloadavg()}"
    )
    rows_by_name: dict[str, Callable[[Path, int], Row]] = {
        "independent": lambda tmp, runs: row_independent(tmp, runs, args.tasks),
        "chain": lambda tmp, runs: row_chain(tmp, runs, args.chain),
        "exec": lambda tmp, runs: row_exec(tmp, runs, args.commands),
        "process": row_process,
        "load": lambda tmp, runs: row_load(tmp, runs, args.load),
    }
    selected = args.only or [name for name in (*CLI_ROW, *CLI_ONLY) if name != "loop"]
    busy_before = background_load()
    waited = 0.0
    while busy_before > args.max_load and waited < args.wait_quiet:
        print(f"  machine busy ({busy_before:.0%} of all CPUs): waiting for it to calm down")
        time.sleep(4.0)
        waited += 5.0
        busy_before = background_load()
    print(f"background CPU load before: {busy_before:.0%} of all CPUs (should be ~0%)", flush=True)
    started = time.perf_counter()
    rows: dict[str, Row] = {}
    if args.path != "cli":
        with tempfile.TemporaryDirectory(prefix="gxo-bench-") as tmp:
            for name, measure in rows_by_name.items():
                if name not in selected:
                    continue
                load_now = background_load(0.5)
                row_start = time.perf_counter()
                row = measure(Path(tmp), runs)
                row.details["background load before the row"] = load_now
                rows[name] = row
                print(f"  measured {name} in {time.perf_counter() - row_start:.1f} s", flush=True)
        print_table(list(rows.values()), runs)
    cli_rows: dict[str, Any] = {}
    if args.path != "library":
        print(f"\nthrough the installed command ({args.gxo}, default output, --workers 2):")
        args.runs = runs
        names = [CLI_ROW.get(name, name) for name in selected]
        cli_rows = dict(zip(names, cli.measure(args, names), strict=True))
    if rows and cli_rows:
        print_both(rows, cli_rows)
    print(f"\ntotal {time.perf_counter() - started:.1f} s, load average {os.getloadavg()}")
    busy_after = background_load()
    print(f"background CPU load after: {busy_after:.0%} of all CPUs")
    info["background_load"] = [busy_before, busy_after]
    if args.json:
        figures = {"machine": info, "runs": runs, "rows": to_json(list(rows.values()))}
        figures["cli_rows"] = [row.as_dict() for row in cli_rows.values()]
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")
    return 0 if all(row.passed for row in rows.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
