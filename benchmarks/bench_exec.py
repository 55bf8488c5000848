"""The ``exec`` module alone, in this process: its own CPU per command against bare spawners.

    python benchmarks/bench_exec.py                 # self CPU per command, interleaved rounds
    python benchmarks/bench_exec.py --strace        # system calls per command, this process only

What a worker spends in the module per ``exec /bin/true`` besides the command itself: the
module runs here as a worker runs it (a redactor, a command file, ``owns_descendants``), and
the figure is this process's CPU (``RUSAGE_SELF``: the command's own CPU is its own), beside
``subprocess.Popen`` with two pipes read to their end and ``subprocess.run`` (the floor of
any Python spawner). Variants alternate, round after round, so a change in the machine's load
touches them alike; read the ratios and the minimum. ``--strace`` counts the system calls of
this process's main thread per command (the command's own, after ``vfork``, not counted).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from gxo.modules.base import ModuleContext
from gxo.modules.builtin.exec import ExecModule, ExecParams
from gxo.modules.capture import CaptureSettings
from gxo.secrets.redact import Redactor

TRUE = "/bin/true"


def module_variant(directory: str) -> Callable[[], None]:
    settings = CaptureSettings(
        log_prefix=f"{directory}/t/attempt1",
        command_file=f"{directory}/worker.command",
        redactor=Redactor(),
        owns_descendants=True,
    )
    module = ExecModule()

    def run() -> None:
        ctx = ModuleContext(task_name="t", instance_id=1, capture=settings)
        module.run(ExecParams(command=TRUE), ctx)

    return run


def popen_pipes() -> None:
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    proc = subprocess.Popen(
        [TRUE], stdin=subprocess.DEVNULL, stdout=out_w, stderr=err_w, process_group=0
    )
    os.close(out_w)
    os.close(err_w)
    while os.read(out_r, 65536) or os.read(err_r, 65536):
        pass
    proc.wait()
    os.close(out_r)
    os.close(err_r)


def subprocess_run() -> None:
    subprocess.run([TRUE], check=True)


def self_cpu(run: Callable[[], None], n: int) -> float:
    before = resource.getrusage(resource.RUSAGE_SELF)
    for _ in range(n):
        run()
    after = resource.getrusage(resource.RUSAGE_SELF)
    used = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return used / n * 1e6


def count_syscalls(variant: str, n: int) -> None:
    """Re-run this script under ``strace -f`` for one variant; count the main thread's calls."""
    if shutil.which("strace") is None:
        raise SystemExit("strace is not installed")
    with tempfile.TemporaryDirectory() as tmp:
        trace = Path(tmp) / "trace"
        command = [sys.executable, __file__, "--traced", variant, "-n", str(n)]
        subprocess.run(["strace", "-f", "-qq", "-o", str(trace), *command], check=True)
        lines = trace.read_text().splitlines()
    main = lines[0].split()[0]
    start = max(i for i, line in enumerate(lines) if "getppid" in line)  # the marker
    calls: Counter[str] = Counter()
    for line in lines[start + 1 :]:
        pid, _, rest = line.partition(" ")
        rest = rest.lstrip()
        if pid != main or "(" not in rest or rest.startswith(("<...", "+++", "---")):
            continue
        calls[rest.split("(", 1)[0]] += 1
    top = ", ".join(f"{name} {count / n:.2f}" for name, count in calls.most_common(14))
    print(f"{variant}: {sum(calls.values()) / n:.1f} system calls per command ({top})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=300, help="commands per round (300)")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--strace", action="store_true", help="count system calls instead")
    parser.add_argument("--traced", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        variants = {
            "exec module": module_variant(tmp),
            "Popen + 2 pipes": popen_pipes,
            "subprocess.run": subprocess_run,
        }
        if args.traced:  # the process strace watches: warm up, mark, run
            run = variants[args.traced]
            for _ in range(20):
                run()
            os.getppid()
            for _ in range(args.n):
                run()
            return 0
        if args.strace:
            for name in variants:
                count_syscalls(name, args.n)
            return 0
        for run in variants.values():
            for _ in range(30):
                run()
        results: dict[str, list[float]] = {name: [] for name in variants}
        for _ in range(args.rounds):
            for name, run in variants.items():
                results[name].append(self_cpu(run, args.n))
    print(f"load average {os.getloadavg()[0]:.2f}; this process's CPU per command, µs:")
    for name, values in results.items():
        print(f"  {name:16s} median {statistics.median(values):6.0f}  min {min(values):6.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
