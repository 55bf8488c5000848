"""Soak test: a long run of misbehaving tasks on few workers ends right and leaves nothing.

Generates a playbook of ``--tasks`` (default 2,000) independent tasks, each drawn at random
(``--seed``) from a mix of behaviours, runs the real ``gxo`` on ``--workers`` (default 2)
worker processes, and checks:

- every task ends with the status and reason its behaviour implies;
- the parent's open file descriptors and resident memory stay flat (sampled every
  ``--interval`` seconds while it runs: the last quarter of the samples against the first,
  after a warm-up);
- nothing is left behind: the script is a child subreaper, so any process gxo (or a task)
  leaves alive when gxo exits is re-parented to it and counted; no ``sleep`` started by a
  task survives.

Not part of the test suite (it runs for a minute or more): ``scripts/soak``. Exit status 0
when every check passes, 1 otherwise; the figures are printed either way.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

PR_SET_CHILD_SUBREAPER = 36


@dataclass(frozen=True)
class Kind:
    """One behaviour: its weight in the mix, the task's YAML, what the report must say."""

    weight: int
    task: str
    status: str
    reason: str


#: ``@S@`` is replaced by a marker unique to this soak run (a ``sleep`` argument).
KINDS = {
    "ok": Kind(45, 'type: exec, params: {command: "true"}', "Completed", ""),
    "fails": Kind(
        8, 'type: exec, params: {command: sh, args: ["-c", "exit 3"]}', "Failed", "nonzero_exit(3)"
    ),
    "raises": Kind(
        5,
        'type: python, params: {function: "json:loads", args: ["{"]}',
        "Failed",
        "module_raised(JSONDecodeError)",
    ),
    "exits": Kind(
        5, 'type: python, params: {function: "os:_exit", args: [7]}', "Failed", "worker_exited(7)"
    ),
    "segfaults": Kind(
        4,
        'type: python, params: {function: "ctypes:string_at", args: [0]}',
        "Failed",
        "worker_signaled(SIGSEGV)",
    ),
    "aborts": Kind(
        2, 'type: python, params: {function: "os:abort"}', "Failed", "worker_signaled(SIGABRT)"
    ),
    "times_out": Kind(
        4,
        'type: exec, timeout: 200ms, params: {command: sleep, args: ["@S@"]}',
        "Failed",
        "timed_out",
    ),
    "times_out_ignoring_term": Kind(
        2,
        "type: exec, timeout: 200ms, params: {shell: true, command: \"trap '' TERM; sleep @S@\"}",
        "Failed",
        "timed_out",
    ),
    "floods_lines": Kind(
        5, 'type: exec, params: {command: seq, args: ["1", "20000"]}', "Completed", ""
    ),
    "floods_one_line": Kind(
        4,
        "type: exec, params: {shell: true, command: \"head -c 2000000 /dev/zero | tr '\\\\0' x\"}",
        "Completed",
        "",
    ),
    "kills_its_worker": Kind(
        4,
        'type: exec, params: {shell: true, command: "kill -KILL $PPID; sleep @S@"}',
        "Failed",
        "worker_signaled(SIGKILL)",
    ),
    "is_killed": Kind(
        4,
        'type: exec, params: {shell: true, command: "kill -TERM $$"}',
        "Failed",
        "command_signaled(SIGTERM)",
    ),
    "leaves_a_background_sleep": Kind(
        4,
        'type: exec, timeout: 300ms, params: {shell: true, command: "sleep @S@ & wait"}',
        "Failed",
        "timed_out",
    ),
}


def playbook(
    tasks: int, seed: int, marker: str, without: frozenset[str] = frozenset()
) -> tuple[str, dict[str, str]]:
    """The playbook text, and task name -> kind."""
    rng = random.Random(seed)
    names = [name for name in KINDS if name not in without]
    weights = [KINDS[n].weight for n in names]
    kinds: dict[str, str] = {}
    lines = ["schemaVersion: v1.0.0", "name: soak", "tasks:"]
    for i in range(tasks):
        kind = rng.choices(names, weights)[0]
        name = f"t{i:05d}_{kind}"
        kinds[name] = kind
        lines.append(f"  - {{name: {name}, {KINDS[kind].task.replace('@S@', marker)}}}")
    return "\n".join(lines) + "\n", kinds


def become_subreaper() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")


def no_core_files() -> None:
    # Segfaulting and aborting workers must not litter the directory with core files.
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def sample(pid: int) -> tuple[int, int] | None:
    try:
        proc = psutil.Process(pid)
        return proc.num_fds(), proc.memory_info().rss
    except psutil.Error:
        return None


def reap_children() -> tuple[list[str], int]:
    """Processes re-parented to this subreaper: those still alive when gxo exited (left
    behind), and how many had already died (orphaned for a moment during the run, when a
    worker was killed before gxo killed its session). Kills and reaps them all."""
    left, dead = [], 0
    for child in psutil.Process().children():
        try:
            if child.status() == psutil.STATUS_ZOMBIE:
                dead += 1
            else:
                left.append(f"{child.pid} {' '.join(child.cmdline())[:100]}")
            child.kill()
        except psutil.Error:
            pass
        with contextlib.suppress(ChildProcessError):
            os.waitpid(child.pid, 0)
    return left, dead


def flat(values: list[int], slack: int) -> tuple[bool, int, int]:
    """Whether the last quarter's peak exceeds the first quarter's (after warm-up) by at most
    ``slack``; returns the verdict and the two figures."""
    warm = values[len(values) // 10 :]
    quarter = max(1, len(warm) // 4)
    early, late = max(warm[:quarter]), max(warm[-quarter:])
    return late - early <= slack, early, late


def main() -> int:  # noqa: PLR0915 - one straight script: run, then check and print
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--interval", type=float, default=0.25)
    parser.add_argument("--rss-slack-mib", type=int, default=32)
    parser.add_argument("--fd-slack", type=int, default=4)
    parser.add_argument("--keep", action="store_true", help="keep the working directory")
    parser.add_argument(
        "--without",
        action="append",
        default=[],
        choices=sorted(KINDS),
        metavar="KIND",
        help="leave a behaviour out of the mix (repeatable), to find which one a failure needs",
    )
    args = parser.parse_args()

    become_subreaper()
    no_core_files()  # inherited by gxo, its workers and their commands
    work = Path(tempfile.mkdtemp(prefix="gxo-soak-"))
    marker = f"1000.{os.getpid()}{int(time.time())}"
    text, kinds = playbook(args.tasks, args.seed, marker, frozenset(args.without))
    (work / "soak.yaml").write_text(text)
    report_path = work / "report.json"
    command = [
        sys.executable, "-m", "gxo", "soak.yaml", "--workers", str(args.workers),
        "--grace", "0.2", "--report", str(report_path), "--no-progress",
    ]  # fmt: skip
    print(f"soak: {args.tasks} tasks on {args.workers} workers, seed {args.seed}, in {work}")
    started = time.monotonic()
    with open(work / "gxo.log", "wb") as log:
        proc = subprocess.Popen(command, cwd=work, stdout=log, stderr=log)
        samples: list[tuple[int, int]] = []
        while proc.poll() is None:
            got = sample(proc.pid)
            if got is not None:
                samples.append(got)
            time.sleep(args.interval)
        code = proc.wait()
    elapsed = time.monotonic() - started

    left, orphans = reap_children()
    sleepers = [
        p.pid for p in psutil.process_iter(["cmdline"]) if marker in (p.info["cmdline"] or [])
    ]

    failures: list[str] = []
    if code != 1:
        failures.append(f"exit code {code}, expected 1 (some tasks fail)")
    report = json.loads(report_path.read_text()) if report_path.exists() else None
    counts: dict[str, int] = {}
    if report is None:
        failures.append("no report was written")
    else:
        for name, kind in kinds.items():
            result = report["task_results"].get(name)
            want = KINDS[kind]
            got = (result["status"], result["reason"]) if result else None
            if got != (want.status, want.reason):
                failures.append(f"{name}: got {got}, expected {(want.status, want.reason)}")
            counts[kind] = counts.get(kind, 0) + 1
    if left:
        failures.append(f"processes left behind: {left}")
    if sleepers:
        failures.append(f"task sleeps still running: {sleepers}")
    fds_flat, fd_early, fd_late = flat([s[0] for s in samples], args.fd_slack)
    rss_flat, rss_early, rss_late = flat([s[1] for s in samples], args.rss_slack_mib << 20)
    if not fds_flat:
        failures.append(f"parent fds grew: {fd_early} -> {fd_late}")
    if not rss_flat:
        failures.append(f"parent RSS grew: {rss_early >> 20} -> {rss_late >> 20} MiB")

    print(f"soak: gxo exited {code} after {elapsed:.1f}s; {len(samples)} samples")
    print("soak: tasks by behaviour: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    if report is not None:
        print(f"soak: worker restarts {report.get('worker_restarts')}")
    print(f"soak: parent fds {fd_early} -> {fd_late} (first vs last quarter peak)")
    print(f"soak: parent RSS {rss_early / 2**20:.1f} -> {rss_late / 2**20:.1f} MiB")
    print(f"soak: left behind: {len(left)} processes, {len(sleepers)} task sleeps")
    print(f"soak: orphaned during the run and already dead when gxo exited: {orphans}")
    for failure in failures[:30]:
        print(f"soak: FAIL {failure}")
    if len(failures) > 30:
        print(f"soak: ... and {len(failures) - 30} more")
    if not args.keep and not failures:
        shutil.rmtree(work)  # the playbook, report and log, and gxo's run directory (.gxo/)
    print("soak: " + ("PASSED" if not failures else f"FAILED ({len(failures)} problems)"))
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())
