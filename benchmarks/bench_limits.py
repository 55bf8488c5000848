"""Does the rest of the run notice a task stopped by its limits? (issue 13, "the rest of the run
never notices"). Through the real ``gxo`` command, in the same run, interleaved.

    python benchmarks/bench_limits.py                       # 3 repeats, enforcement: auto
    python benchmarks/bench_limits.py --runs 5 --enforcement rlimit --work 20000000

Each repeat runs ``gxo execute --workers 2`` of one playbook per scenario, in turn:

* ``alone``: the sibling only, a pooled ``python`` task doing fixed CPU work (``--work``
  iterations of a loop) that times itself (wall and CPU seconds, from inside);
* ``memory hog``: the sibling beside a task with ``limits: {memory: 256MiB}`` that allocates
  4 GiB in 64 MiB steps (written, so resident): stopped at its limit;
* ``fork storm``: beside a task with ``limits: {processes: 50}`` forking 400 ``sleep``;
* ``cpu spin``: beside a task with ``limits: {cpu: 1s}`` spinning for ever.

Printed per scenario: the sibling's wall and CPU seconds (median, and the median of each
repeat's ratio to ``alone`` of the same repeat), the peak RSS of the ``gxo`` process itself
(its own ``VmHWM``, read from ``/proc`` while it runs: the scheduler, not the workers), the
hostile task's reason and the peak its ``usage`` reports, and the load average. The hostile
task and the sibling start together (two independent root tasks, two workers). On a shared
2-CPU machine a CPU spin takes a CPU from everyone for its second, the sibling included: its
wall ratio says what that costs; the CPU ratio says the sibling did not do more work.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

TASKS = """
import json, os, time

def crunch(out, work):
    wall, cpu = time.perf_counter(), time.process_time()
    total = 0
    for i in range(work):
        total += i * i
    with open(out, "w") as f:
        json.dump({"wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu}, f)
    return total % 7

def hog(step_mib=64, total_mib=4096):
    held = []
    for _ in range(total_mib // step_mib):
        held.append(b"x" * (step_mib << 20))
    return "survived"

def storm(count=400):
    for _ in range(count):
        if os.fork() == 0:
            os.execvp("sleep", ["sleep", "60"])
    time.sleep(60)
    return "survived"

def spin():
    while True:
        pass
"""

HOSTILE = {
    "alone": "",
    "memory hog": "    limits: {memory: 256MiB}\n    params: {function: 'tasks.py:hog'}\n",
    "fork storm": "    limits: {processes: 50}\n    params: {function: 'tasks.py:storm'}\n",
    "cpu spin": "    limits: {cpu: 1s}\n    params: {function: 'tasks.py:spin'}\n",
}


def playbook(scenario: str, out: Path, work: int) -> str:
    text = (
        "schemaVersion: v1.0.0\nname: limits-bench\ntasks:\n"
        "  - name: sibling\n    type: python\n"
        f"    params: {{function: 'tasks.py:crunch', kwargs: {{out: '{out}', work: {work}}}}}\n"
    )
    if HOSTILE[scenario]:
        text += "  - name: hostile\n    type: python\n" + HOSTILE[scenario]
    return text


def own_peak_rss(pid: int) -> int:
    """The process's own peak resident memory (``VmHWM``), in bytes; 0 once it is gone.

    Not ``wait4``'s ``ru_maxrss``: that is the largest of the process and every descendant
    it reaped, and gxo reaps the forkserver, which reaped the memory hog.
    """
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def run_once(
    tmp: Path, scenario: str, work: int, gxo: list[str], enforcement: str
) -> dict[str, Any]:
    out = tmp / "sibling.json"
    out.unlink(missing_ok=True)
    (tmp / "playbook.yaml").write_text(playbook(scenario, out, work))
    env = dict(os.environ, GXO_STATE_DIR=str(tmp / ".gxo"), GXO_LIMITS_ENFORCEMENT=enforcement)
    proc = subprocess.Popen(
        [*gxo, "execute", "-q", "--workers", "2", "--report", "report.json", "playbook.yaml"],
        cwd=tmp,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    peak = 0
    while proc.poll() is None:  # a benchmark may poll: VmHWM only grows, the last read counts
        peak = max(peak, own_peak_rss(proc.pid))
        time.sleep(0.01)
    report = json.loads((tmp / "report.json").read_text())
    sibling = json.loads(out.read_text())
    row: dict[str, Any] = {
        "wall": sibling["wall"],
        "cpu": sibling["cpu"],
        "gxo_rss": peak,
        "sibling": report["task_results"]["sibling"]["status"],
    }
    if "hostile" in report["task_results"]:
        hostile = report["task_results"]["hostile"]
        attempt = hostile["instances"][0]["attempts"][-1]
        row["reason"] = hostile.get("reason")
        row["usage"] = attempt.get("usage") or {}
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--work", type=int, default=10_000_000, help="sibling loop iterations")
    parser.add_argument("--enforcement", default="auto", choices=["auto", "cgroup", "rlimit"])
    parser.add_argument("--gxo", default=f"{sys.executable} -m gxo", help="the gxo command")
    args = parser.parse_args()
    gxo = args.gxo.split()
    rows: dict[str, list[dict[str, Any]]] = {s: [] for s in HOSTILE}
    loads = [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        (tmp / "tasks.py").write_text(TASKS)
        run_once(tmp, "alone", args.work // 10, gxo, args.enforcement)  # warm caches
        for _ in range(args.runs):
            for scenario in HOSTILE:
                rows[scenario].append(run_once(tmp, scenario, args.work, gxo, args.enforcement))
            loads.append(os.getloadavg()[0])
    print(
        f"sibling: {args.work:,} loop iterations beside a hostile task, gxo --workers 2, "
        f"GXO_LIMITS_ENFORCEMENT={args.enforcement}, {args.runs} repeats; "
        f"load average {min(loads):.1f}-{max(loads):.1f}"
    )
    alone = rows["alone"]
    for scenario, got in rows.items():
        wall = statistics.median(r["wall"] for r in got)
        cpu = statistics.median(r["cpu"] for r in got)
        wall_ratio = statistics.median(
            r["wall"] / a["wall"] for r, a in zip(got, alone, strict=True)
        )
        cpu_ratio = statistics.median(r["cpu"] / a["cpu"] for r, a in zip(got, alone, strict=True))
        rss = statistics.median(r["gxo_rss"] for r in got) / (1 << 20)
        line = (
            f"  {scenario:10s}: sibling wall {wall:.2f} s ({wall_ratio:.2f}x alone), "
            f"CPU {cpu:.2f} s ({cpu_ratio:.2f}x), {got[0]['sibling']}; "
            f"gxo peak RSS {rss:.1f} MiB"
        )
        if scenario != "alone":
            reasons = sorted({str(r.get("reason")) for r in got})
            peaks = [r["usage"] for r in got]
            memory = max(p.get("memory_peak", 0) for p in peaks) / (1 << 20)
            processes = max(p.get("processes_peak", 0) for p in peaks)
            cpu_used = max(p.get("cpu_seconds", 0) for p in peaks)
            line += (
                f"; hostile: {', '.join(reasons)} (peaks: memory {memory:.0f} MiB, "
                f"{processes} processes, {cpu_used:.2f} CPU s; {peaks[0].get('enforcement')})"
            )
        print(line)


if __name__ == "__main__":
    main()
