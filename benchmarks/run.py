"""gxo against its floors: the rows of DESIGN.md section 11, measured in one run.

    python benchmarks/run.py            # 7 repeats per row, median (under a minute today)
    python benchmarks/run.py --quick    # 3 repeats per row
    python benchmarks/run.py --runs 9 --json results.json

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
  ``bench_load.generate(10_000)`` written to a file, and of 5,000 for the linearity check.
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

NOOP_FUNCTION = f"{HERE / 'noop_tasks.py'}:noop"
WORKERS = 2

# -- playbooks ----------------------------------------------------------------------------------


def independent_playbook(count: int) -> str:
    """``count`` independent ``python`` tasks calling the no-op."""
    lines = ['schemaVersion: "v1.0.0"', f"name: independent_{count}", "tasks:"]
    for i in range(count):
        lines += [
            f"  - name: t{i}",
            "    type: python",
            "    params:",
            f'      function: "{NOOP_FUNCTION}"',
        ]
    return "\n".join(lines) + "\n"


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
    """``count`` independent ``exec`` tasks running ``/bin/true``."""
    lines = ['schemaVersion: "v1.0.0"', f"name: exec_{count}", "tasks:"]
    for i in range(count):
        lines += [f"  - name: t{i}", "    type: exec", "    params:", "      command: /bin/true"]
    return "\n".join(lines) + "\n"


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


def run_engine(loaded: Loaded) -> EngineRun:
    """One ``gxo.run`` with 2 workers; checks that every task completed."""
    start = time.perf_counter()
    report = gxo.run(loaded, workers=WORKERS).report
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

    def close(self) -> None:
        os.close(self._to_child)
        os.close(self._from_child)
        os.waitpid(self.pid, 0)


def _true(_: int) -> None:
    subprocess.run(["/bin/true"], check=True)


def floor_subprocess(executor: ThreadPoolExecutor, count: int) -> float:
    """Seconds per command: 2 threads calling ``subprocess.run(["/bin/true"])``."""
    start = time.perf_counter()
    for _ in executor.map(_true, range(count)):
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

    def place(parent: set[int], child: set[int]) -> None:
        os.sched_setaffinity(0, parent)
        os.sched_setaffinity(worker.pid, child)

    try:
        worker.round_trips(200)  # warm-up
        run_engine(one)
        for _ in range(runs):
            if len(cpus) >= 2:
                place({cpus[0]}, {cpus[1]})
                floor.add(worker.round_trips(count))
                place({cpus[0]}, {cpus[0]})
                same.add(worker.round_trips(count))
                place(set(cpus), set(cpus))
                unpinned.add(worker.round_trips(count))
            else:
                floor.add(worker.round_trips(count))
            measure_gxo_pair(big, one, gxo, details)
    finally:
        os.sched_setaffinity(0, set(cpus))
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
    big = write(tmp, "load_big.yaml", bench_load.generate(count))
    half = write(tmp, "load_half.yaml", bench_load.generate(count // 2))
    load(half)  # warm-up: imports, schema
    gxo, small = Series(), Series()
    for _ in range(runs):
        small.add(_timed(lambda: load(half)))
        gxo.add(_timed(lambda: load(big)))
    linear = (gxo.median / count) / (small.median / (count // 2))
    return Row(
        f"{count:,}-task playbook: load + validate + plan",
        "ms",
        None,
        gxo,
        "<= 1 s, linear",
        gxo.median <= 1.0 and linear < 1.25,
        None,
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 repeats per row instead of 7")
    parser.add_argument("--runs", type=int, help="repeats per row (overrides --quick)")
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
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
        choices=("independent", "chain", "exec", "process", "load"),
        action="append",
        help="run only these rows (repeatable)",
    )
    args = parser.parse_args(argv)
    runs = args.runs or (3 if args.quick else 7)
    if args.wait_quiet is None:
        args.wait_quiet = 0.0 if args.quick else 30.0
    info = machine()
    print(
        f"gxo benchmarks: {info['date']}, {info['nproc']} CPUs ({info['affinity']} usable), "
        f"Python {info['python']}, {info['platform']}, gxo {info['gxo']}, {runs} runs per row"
    )
    rows_by_name = {
        "independent": row_independent,
        "chain": row_chain,
        "exec": row_exec,
        "process": row_process,
        "load": row_load,
    }
    busy_before = background_load()
    waited = 0.0
    while busy_before > args.max_load and waited < args.wait_quiet:
        print(f"  machine busy ({busy_before:.0%} of all CPUs): waiting for it to calm down")
        time.sleep(4.0)
        waited += 5.0
        busy_before = background_load()
    print(f"background CPU load before: {busy_before:.0%} of all CPUs (should be ~0%)", flush=True)
    started = time.perf_counter()
    rows = []
    with tempfile.TemporaryDirectory(prefix="gxo-bench-") as tmp:
        for name, measure in rows_by_name.items():
            if args.only and name not in args.only:
                continue
            load_now = background_load(0.5)
            row_start = time.perf_counter()
            row = measure(Path(tmp), runs)
            row.details["background load before the row"] = load_now
            rows.append(row)
            print(f"  measured {name} in {time.perf_counter() - row_start:.1f} s", flush=True)
    print_table(rows, runs)
    print(f"\ntotal {time.perf_counter() - started:.1f} s")
    busy_after = background_load()
    print(f"background CPU load after: {busy_after:.0%} of all CPUs")
    info["background_load"] = [busy_before, busy_after]
    if args.json:
        Path(args.json).write_text(
            json.dumps({"machine": info, "runs": runs, "rows": to_json(rows)}, indent=2) + "\n"
        )
    return 0 if all(row.passed for row in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
