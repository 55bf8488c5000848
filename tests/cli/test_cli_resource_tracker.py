"""multiprocessing's resource tracker starts only when a task registers a resource (issue 18).

``gxo`` gives its workers a relay in place of the tracker's pipe (:mod:`gxo.pool.tracker`): a
plain run starts no tracker interpreter at all, and a task that leaks a shared memory segment
still has it unlinked, by a tracker started on the registration, when gxo ends, even after a
SIGHUP to the whole process group. The first two run the real command under a child-subreaper
harness, so whatever gxo leaves behind is seen.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import psutil
from itest_support import wait_for_file

HARNESS = textwrap.dedent(
    """
    import ctypes, json, os, subprocess, sys
    import psutil

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(36, 1, 0, 0, 0) != 0:  # PR_SET_CHILD_SUBREAPER
        sys.exit("prctl failed: " + os.strerror(ctypes.get_errno()))
    proc = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, err = proc.communicate()
    left = []
    for child in psutil.Process().children():
        left.append(" ".join(child.cmdline()) or child.name())
        child.kill()
        os.waitpid(child.pid, 0)
    print(json.dumps({"code": proc.returncode, "left": left, "stderr": err.decode()}))
    """
)

TASKS = textwrap.dedent(
    """
    import json, os, time
    from multiprocessing import shared_memory

    import psutil


    def helpers(out):
        # The worker's parent is the forkserver, whose parent is gxo.
        server = psutil.Process(os.getppid())
        children = [[c.pid, " ".join(c.cmdline())] for c in server.parent().children()]
        with open(out, "w") as file:
            json.dump({"forkserver": server.pid, "children": children}, file)


    def leak(out):
        segment = shared_memory.SharedMemory(create=True, size=16)
        with open(out, "w") as file:
            file.write(segment.name)
        segment.close()  # never unlinked


    def leak_and_wait(out):
        leak(out + ".tmp")
        os.rename(out + ".tmp", out)
        time.sleep(120)  # until gxo is signalled and stops it
    """
)

PLAYBOOK = """\
schemaVersion: v1.0.0
name: tracker
tasks:
  - name: t
    type: python
    params:
      function: "{tasks}:{function}"
      kwargs: {{out: "{out}"}}
"""


def _run(tmp_path: Path, function: str) -> tuple[dict[str, object], Path]:
    (tmp_path / "harness.py").write_text(HARNESS)
    (tmp_path / "tasks.py").write_text(TASKS)
    out = tmp_path / "out.txt"
    (tmp_path / "playbook.yaml").write_text(
        PLAYBOOK.format(tasks=tmp_path / "tasks.py", function=function, out=out)
    )
    proc = subprocess.run(
        [sys.executable, "harness.py", sys.executable, "-m", "gxo", "playbook.yaml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    result: dict[str, object] = json.loads(proc.stdout)
    assert result["code"] == 0, result["stderr"]
    assert result["left"] == []
    return result, out


def test_a_plain_run_starts_no_resource_tracker(tmp_path: Path) -> None:
    result, out = _run(tmp_path, "helpers")
    found = json.loads(out.read_text())
    children = found["children"]
    assert [pid for pid, _ in children] == [found["forkserver"]], children  # no tracker
    assert not any("resource_tracker" in cmd for _, cmd in children), children
    assert "resource_tracker" not in str(result["stderr"])


def test_a_leaked_shared_memory_segment_is_still_unlinked(tmp_path: Path) -> None:
    result, out = _run(tmp_path, "leak")
    name = out.read_text()
    assert not os.path.exists(f"/dev/shm/{name}"), "the leaked segment is still there"
    assert "leaked shared_memory" in str(result["stderr"])


def test_a_tracker_started_by_a_registration_outlives_a_sighup_to_the_group(
    tmp_path: Path, start_gxo: Callable[..., subprocess.Popen[bytes]]
) -> None:
    """A closed terminal's SIGHUP reaches gxo's whole process group: the tracker the relay
    started survives it (SIGHUP blocked), and still unlinks the leaked segment at the end."""
    (tmp_path / "tasks.py").write_text(TASKS)
    out = tmp_path / "out.txt"
    (tmp_path / "playbook.yaml").write_text(
        PLAYBOOK.format(tasks=tmp_path / "tasks.py", function="leak_and_wait", out=out)
    )
    proc = start_gxo("playbook.yaml", "--grace", "0.5")
    name = wait_for_file(out)
    deadline = time.monotonic() + 20
    while not (
        trackers := [
            child
            for child in psutil.Process(proc.pid).children()
            if "resource_tracker" in " ".join(child.cmdline())
        ]
    ):  # the relay starts it on reading the registration: no event to wait on
        assert time.monotonic() < deadline, "no resource tracker was started"
        time.sleep(0.01)
    # SIGHUP is blocked in it (the relay's thread's mask, kept across exec), and nothing else
    # but what multiprocessing blocks while the tracker starts (SIGINT, SIGTERM: ignored).
    status = Path(f"/proc/{trackers[0].pid}/status").read_text()
    (blocked,) = [int(line.split()[1], 16) for line in status.splitlines() if line[:7] == "SigBlk:"]
    # SIGUSR1 and SIGUSR2 too: they drain gxo, and may be sent to its whole process group.
    kept = (signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2)
    bit = {signum: 1 << (signum - 1) for signum in (*kept, signal.SIGINT, signal.SIGTERM)}
    assert all(blocked & bit[signum] for signum in kept)
    assert blocked & ~sum(bit.values()) == 0
    os.killpg(proc.pid, signal.SIGHUP)
    assert proc.wait(timeout=20) == 129
    stderr = (tmp_path / "gxo.err").read_text()
    assert "leaked shared_memory" in stderr
    assert "relaunching" not in stderr
    assert not os.path.exists(f"/dev/shm/{name}"), "the leaked segment is still there"
