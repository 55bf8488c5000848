"""Journal overhead on the 5,000-task benchmark (issue 16): the same run with and without the
run journal, alternating, through ``gxo.run``; the parent's CPU time and the wall time.

    python benchmarks/bench_journal.py [RUNS]     (in a scratch directory: it writes .gxo/)

Each pair (off, then on) prints a ``pair:`` line (parent CPU and wall seconds of each), so
several processes' pairs can be pooled; then the medians and the median of the paired ratios.
"""

from __future__ import annotations

import shutil
import statistics
import sys
import time
from pathlib import Path

import gxo

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import independent_playbook


def main(runs: int) -> None:
    path = Path("independent_5000.yaml")
    path.write_text(independent_playbook(5000))
    loaded = gxo.load(path)
    gxo.run(loaded, workers=2)  # warm-up: the forkserver, imports
    rows: dict[str, list[tuple[float, float]]] = {"off": [], "on": []}
    for _ in range(runs):
        for mode in ("off", "on"):
            shutil.rmtree(".gxo", ignore_errors=True)
            partial = gxo.PartialRun(journal_enabled=mode == "on")
            cpu, wall = time.process_time(), time.perf_counter()
            result = gxo.run(loaded, workers=2, partial=partial)
            rows[mode].append((time.process_time() - cpu, time.perf_counter() - wall))
            assert result.ok
        (cpu_off, wall_off), (cpu_on, wall_on) = rows["off"][-1], rows["on"][-1]
        print(f"pair: off {cpu_off:.4f} {wall_off:.4f} on {cpu_on:.4f} {wall_on:.4f}")
    median = {
        mode: (statistics.median(v[0] for v in values), statistics.median(v[1] for v in values))
        for mode, values in rows.items()
    }
    for mode, (cpu, wall) in median.items():
        print(f"journal {mode:<3}: parent CPU {cpu:.3f} s, wall {wall:.3f} s (medians of {runs})")
    (cpu_off, wall_off), (cpu_on, wall_on) = median["off"], median["on"]
    print(
        f"overhead of the medians: parent CPU {100 * (cpu_on / cpu_off - 1):+.1f} %, "
        f"wall {100 * (wall_on / wall_off - 1):+.1f} %"
    )
    # Each "on" run against the "off" run just before it: the pair saw the same load.
    pairs = list(zip(rows["off"], rows["on"], strict=True))
    cpu_ratio = statistics.median(on[0] / off[0] for off, on in pairs)
    wall_ratio = statistics.median(on[1] / off[1] for off, on in pairs)
    print(
        f"median of the paired ratios: parent CPU {100 * (cpu_ratio - 1):+.1f} %, "
        f"wall {100 * (wall_ratio - 1):+.1f} %"
    )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 7)
