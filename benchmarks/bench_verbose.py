"""``gxo -v`` relays what commands print, batched: 100,000 lines cost at most 2x ``gxo -q``.

DESIGN §11 style: the floor is measured in the same run. One ``exec`` task prints N lines
(``seq``); the whole ``gxo`` command runs with ``-q`` (output captured to the run directory,
nothing relayed) and with ``-v`` (every line relayed as ``task | line`` to stderr, here a
file), alternately, after one untimed warm-up of each. Prints the medians, the ratio and
PASS/FAIL against the 2x target; exits 1 on FAIL.

    python benchmarks/bench_verbose.py                 # 100,000 lines, 5 repeats
    python benchmarks/bench_verbose.py --lines 1000000 --runs 3
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET = 2.0

PLAYBOOK = """\
schemaVersion: v1.0.0
name: chatty
tasks:
  - name: chatty
    type: exec
    params: {{command: seq, args: ["1", "{lines}"]}}
"""


def once(playbook: Path, flag: str, workdir: Path) -> tuple[float, int]:
    """Wall seconds of one whole ``gxo`` command, and the lines it wrote to stderr."""
    err = workdir / f"stderr{flag}.txt"
    with open(err, "wb") as out:
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "gxo", flag, "--no-progress", "--workers", "1", str(playbook)],
            cwd=workdir,
            stdout=subprocess.DEVNULL,
            stderr=out,
            check=True,
        )
        elapsed = time.perf_counter() - start
    with open(err, "rb") as text:
        return elapsed, sum(1 for _ in text)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="gxo-bench-verbose-") as tmp:
        workdir = Path(tmp)
        playbook = workdir / "chatty.yaml"
        playbook.write_text(PLAYBOOK.format(lines=args.lines))
        env_note = f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}"
        once(playbook, "-q", workdir)
        _, relayed = once(playbook, "-v", workdir)
        quiet, verbose = [], []
        for _ in range(args.runs):
            quiet.append(once(playbook, "-q", workdir)[0])
            verbose.append(once(playbook, "-v", workdir)[0])
    q, v = statistics.median(quiet), statistics.median(verbose)
    ratio = v / q
    verdict = "PASS" if ratio <= TARGET and relayed >= args.lines else "FAIL"
    print(f"{args.lines} lines printed by one exec task ({env_note}), {args.runs} runs each")
    print(f"  gxo -q: median {q:.3f}s (min {min(quiet):.3f}, max {max(quiet):.3f})")
    print(
        f"  gxo -v: median {v:.3f}s (min {min(verbose):.3f}, max {max(verbose):.3f}), "
        f"{relayed} lines on stderr"
    )
    print(f"  ratio {ratio:.2f}x (target <= {TARGET:g}x): {verdict}")
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
