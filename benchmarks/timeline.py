"""The timeline of a 1-task ``gxo`` run, every process of it, from audit events (issue 18).

    python benchmarks/timeline.py --gxo /venv-a/bin/gxo --gxo /venv-b/bin/gxo --runs 9

Runs ``gxo execute --workers 2 one.yaml`` (one python no-op, as ``cli.py --only one``) for each
``--gxo``, interleaved, with a ``sitecustomize`` that installs an audit hook
(:func:`sys.addaudithook`) in the parent and in the forkserver (a new interpreter, or a fork
of the parent: the hook is inherited), hence in the worker too. Each event (an import, a
``socket.connect``, an ``os.fork``, ...) is written with its ``CLOCK_MONOTONIC`` time since
this script started the command and the pid (an ``open``, a ``write`` and a ``close`` each:
~10 µs, ~700 events a run, the same for every command compared). Printed: the
median of each milestone (ms) per command, and the load average before and after.

Milestones: ``interp`` the hook's first event (the interpreter and ``site`` are up);
``fork_srv`` the parent starts the forkserver (its socket bound, or ``os.fork``);
``srv_ready`` the forkserver's last import (its preload done); ``engine`` the parent imports
``gxo.engine``; ``connect`` the parent asks the forkserver for a worker; ``w_fork`` the
forkserver forks it; ``w_ready`` the worker reads its first message; ``w_result`` it
sends the result; ``end`` the command has exited and been reaped.
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

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from run import independent_playbook, write  # noqa: E402

SITECUSTOMIZE = """\
import os, sys, time
_T0 = int(os.environ.get("TL_T0", "0"))
if _T0:
    _FILE = os.environ["TL_FILE"]
    _KEEP = {"import", "socket.bind", "socket.connect", "os.fork", "array.__new__",
             "fcntl.ioctl", "os.rmdir"}

    def _hook(event, args, _open=os.open, _w=os.write, _close=os.close, _ns=time.monotonic_ns,
              _pid=os.getpid, _flags=os.O_WRONLY | os.O_APPEND | os.O_CREAT):
        if event in _KEEP:
            what = args[0] if event == "import" else ""
            # Opened for each line: a forked forkserver closes the descriptors it inherited.
            fd = _open(_FILE, _flags, 0o644)
            try:
                _w(fd, f"{(_ns() - _T0) / 1e6:.3f} {_pid()} {event} {what}\\n".encode())
            finally:
                _close(fd)

    sys.addaudithook(_hook)
    _hook("import", ("<start>",))
"""

MILESTONES = (
    "interp",
    "fork_srv",
    "srv_ready",
    "engine",
    "connect",
    "w_fork",
    "w_ready",
    "w_result",
    "end",
)


def one_run(gxo: str, workdir: Path, site: Path) -> dict[str, float]:
    """Run ``gxo`` once under the hook; its milestones (ms since the start)."""
    log = workdir / "events.log"
    log.unlink(missing_ok=True)
    env = dict(os.environ, PYTHONPATH=str(site), TL_FILE=str(log))
    env["TL_T0"] = str(time.monotonic_ns())
    subprocess.run(
        [gxo, "execute", "--workers", "2", "one.yaml"],
        cwd=workdir,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=True,
    )
    end = (time.monotonic_ns() - int(env["TL_T0"])) / 1e6
    events = []
    for line in log.read_text().splitlines():
        when, pid, event, *what = line.split()
        events.append((float(when), int(pid), event, what[0] if what else ""))
    parent = events[0][1]
    pids = list(dict.fromkeys(pid for _, pid, _, _ in events))
    server = next((p for p in pids if p != parent), None)
    worker = next((p for p in pids if p not in (parent, server)), None)

    def first(pid: int | None, *names: str) -> float:
        return next((t for t, p, e, _ in events if p == pid and e in names), float("nan"))

    def last_import(pid: int | None) -> float:
        times = [t for t, p, e, _ in events if p == pid and e == "import"]
        return times[-1] if times else float("nan")

    return {
        "interp": events[0][0],
        "fork_srv": min(first(parent, "socket.bind"), first(parent, "os.fork")),
        "srv_ready": last_import(server),
        "engine": next(
            (t for t, p, e, w in events if p == parent and e == "import" and w == "gxo.engine"),
            float("nan"),
        ),
        "connect": first(parent, "socket.connect"),
        "w_fork": first(server, "os.fork"),
        "w_ready": first(worker, "array.__new__"),
        "w_result": first(worker, "fcntl.ioctl"),
        "end": end,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gxo", action="append", required=True, help="a gxo console script")
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        site = workdir / "site"
        site.mkdir()
        (site / "sitecustomize.py").write_text(SITECUSTOMIZE)
        write(workdir, "one.yaml", independent_playbook(1))
        before = os.getloadavg()
        runs: dict[str, list[dict[str, float]]] = {gxo: [] for gxo in args.gxo}
        for _ in range(args.runs):
            for gxo in args.gxo:
                runs[gxo].append(one_run(gxo, workdir, site))
        after = os.getloadavg()
    print(f"load average before / after: {before[0]:.1f} / {after[0]:.1f}; median of {args.runs}")
    print(f"{'':10}" + "".join(f"{Path(g).parent.parent.name:>16}" for g in args.gxo))
    for name in MILESTONES:
        cells = []
        for gxo in args.gxo:
            values = [r[name] for r in runs[gxo] if r[name] == r[name]]  # not NaN
            cells.append(f"{statistics.median(values):16.1f}" if values else f"{'-':>16}")
        print(f"{name:10}" + "".join(cells))


if __name__ == "__main__":
    main()
