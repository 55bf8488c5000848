"""``gxo`` does not exit before every process it started is reaped.

The check is exact, not timed: the real command runs under a harness that is a child
subreaper (``PR_SET_CHILD_SUBREAPER``). Whatever gxo leaves behind when it exits (the
forkserver, multiprocessing's resource tracker, a worker; alive or a zombie not yet reaped)
is re-parented to the harness at that moment, so the harness's children right after gxo's
exit are exactly what gxo left behind.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

HARNESS = textwrap.dedent(
    """
    import ctypes, json, os, subprocess, sys
    import psutil

    PR_SET_CHILD_SUBREAPER = 36
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        sys.exit("prctl failed: " + os.strerror(ctypes.get_errno()))
    proc = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, err = proc.communicate()
    left = []
    for child in psutil.Process().children():
        try:
            left.append(" ".join(child.cmdline()) or child.name())
        except psutil.Error:
            left.append(str(child.pid))
    for child in psutil.Process().children():  # reap them: the test must not leak them
        child.kill()
        try:
            os.waitpid(child.pid, 0)
        except ChildProcessError:
            pass
    print(json.dumps({"code": proc.returncode, "left": left, "stderr": err.decode()}))
    """
)

PLAYBOOK = """\
schemaVersion: v1.0.0
name: reaped
tasks:
  - {name: a, type: exec, params: {command: "true"}}
  - {name: b, type: exec, params: {command: "true"}}
  - {name: c, type: python, depends_on: [a], params: {function: "os:getpid"}}
"""


def _left_behind(tmp_path: Path, *command: str) -> tuple[int, list[str], str]:
    harness = tmp_path / "harness.py"
    harness.write_text(HARNESS)
    (tmp_path / "playbook.yaml").write_text(PLAYBOOK)
    (tmp_path / "bad.yaml").write_text("tasks: [\n")
    out = subprocess.run(
        [sys.executable, str(harness), *command],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    result = json.loads(out.stdout)
    return result["code"], result["left"], result["stderr"]


GXO_SCRIPT = Path(sys.executable).parent / "gxo"


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (("playbook.yaml", "--workers", "2"), 0),
        (("playbook.yaml", "--start-method", "spawn"), 0),
        (("bad.yaml",), 2),
        (("playbook.yaml", "--report", "missing/run.json"), 2),
        (("validate", "playbook.yaml"), 0),
    ],
    ids=["run", "spawn", "invalid-playbook", "bad-output", "validate"],
)
def test_python_m_gxo_leaves_no_process_behind(
    tmp_path: Path, args: tuple[str, ...], code: int
) -> None:
    exit_code, left, stderr = _left_behind(tmp_path, sys.executable, "-m", "gxo", *args)
    assert exit_code == code, stderr
    assert left == []


@pytest.mark.skipif(not GXO_SCRIPT.exists(), reason="the gxo console script is not installed")
def test_the_gxo_console_script_leaves_no_process_behind(tmp_path: Path) -> None:
    exit_code, left, stderr = _left_behind(tmp_path, str(GXO_SCRIPT), "playbook.yaml")
    assert exit_code == 0, stderr
    assert left == []


SPAWNER = """\
import json, os, subprocess


def spawn(path):
    # A child it never waits for, and a daemon: forked, setsid, its parent gone.
    kept = subprocess.Popen(["sleep", "300"])
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.setsid()
        daemon = subprocess.Popen(["sleep", "301"])
        os.write(write, str(daemon.pid).encode())
        os._exit(0)
    os.close(write)
    daemon_pid = int(os.read(read, 32))
    os.close(read)
    os.waitpid(pid, 0)
    with open(path, "w") as f:
        json.dump([kept.pid, daemon_pid], f)
    return {"started": 2}


def spawn_in_thread(path):
    # A child of a thread the function started and left running, waiting for it.
    import threading

    started = threading.Event()
    pids = []

    def run():
        child = subprocess.Popen(["sleep", "302"])
        pids.append(child.pid)
        started.set()
        child.wait()

    threading.Thread(target=run, daemon=True).start()
    started.wait()
    with open(path, "w") as f:
        json.dump(pids, f)
    return {"started": 1}


def states(path):
    # What became of them: 'gone' once reaped, 'Z' killed and not yet reaped.
    out = {}
    for pid in json.load(open(path)):
        try:
            stat = open(f"/proc/{pid}/stat").read()
        except OSError:
            out[str(pid)] = "gone"
        else:
            out[str(pid)] = stat[stat.rfind(")") + 2]
    return out
"""

LEAVER = """\
schemaVersion: v1.0.0
name: leaver
tasks:
  - {name: spawn, type: python, params: {function: "spawner.py:spawn", args: [pids.json]}}
  - name: look
    type: python
    depends_on: [spawn]
    params: {function: "spawner.py:states", args: [pids.json]}
  - {name: later, type: exec, depends_on: [look], params: {command: "true"}}
"""


@pytest.mark.parametrize(("function", "count"), [("spawn", 2), ("spawn_in_thread", 1)])
def test_a_python_tasks_leftover_processes_are_killed_and_counted_as_its_own(
    tmp_path: Path, function: str, count: int
) -> None:
    """A ``python`` function that leaves processes running (a ``Popen`` it did not wait for,
    a daemon) does not leave them to the next instance of its worker: they are killed when
    it ends and counted in its ``processes_killed``. They used to live on until the next
    ``exec`` task on that worker killed them and counted them as its own. A child of a
    thread the function left running is found too (the worker's check reads only its main
    thread's children while its threads are its own)."""
    (tmp_path / "spawner.py").write_text(SPAWNER)
    (tmp_path / "leaver.yaml").write_text(
        LEAVER.replace("spawner.py:spawn", f"spawner.py:{function}")
    )
    done = subprocess.run(
        [sys.executable, "-m", "gxo", "leaver.yaml", "--workers", "1", "--report", "r.json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads((tmp_path / "r.json").read_text())

    def attempt(task: str) -> dict:
        return report["task_results"][task]["instances"][0]["attempts"][0]

    assert attempt("spawn")["processes_killed"] == count
    states = report["task_results"]["look"]["instances"][0]["summary"]
    assert set(states.values()) <= {"gone", "Z"}, states  # dead before the next task ran
    assert attempt("later")["processes_killed"] == 0
