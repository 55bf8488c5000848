"""The private directory of the ``gxo`` command's forkserver socket goes with the forkserver,
even when gxo itself is SIGKILLed (multiprocessing's own ``pymp-*`` directory stayed then)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from itest_support import still_alive, wait_for_file

TASKS = """
import os, time


def hold(out):
    with open(out + ".tmp", "w") as file:
        file.write(f"{os.getpid()} {os.getppid()}")
    os.rename(out + ".tmp", out)
    time.sleep(120)  # until gxo is killed and the worker with it
"""

PLAYBOOK = """\
schemaVersion: v1.0.0
name: held
tasks:
  - name: t
    type: python
    params:
      function: "{tasks}:hold"
      kwargs: {{out: "{out}"}}
"""


def test_a_sigkilled_gxo_leaves_no_forkserver_directory(tmp_path: Path) -> None:
    (tmp_path / "tasks.py").write_text(TASKS)
    marker = tmp_path / "marker"
    (tmp_path / "p.yaml").write_text(PLAYBOOK.format(tasks=tmp_path / "tasks.py", out=marker))
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("TEMP", "TMP")}
    with subprocess.Popen(
        [sys.executable, "-m", "gxo", "p.yaml", "--workers", "1"],
        cwd=tmp_path,
        env={**env, "TMPDIR": str(tmp)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    ) as proc:
        worker, server = map(int, wait_for_file(marker).split())
        assert [p.name for p in tmp.iterdir()]  # the socket's directory, while gxo runs
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=10) == -signal.SIGKILL
    assert still_alive([worker, server], timeout=20) == []
    assert list(tmp.iterdir()) == []  # removed by the forkserver on its way out


KILLER = """
import os, signal, time


def kill_parent():
    os.kill(os.getppid(), signal.SIGKILL)  # a pooled worker's parent is the forkserver
    time.sleep(30)  # the worker dies with it (its parent-death signal)


def ok():
    return os.getpid()
"""

KILLER_PLAYBOOK = """\
schemaVersion: v1.0.0
name: killer
tasks:
  - {{name: killer, type: python, ignore_errors: true,
      params: {{function: "{tasks}:kill_parent"}}}}
  - {{name: after, type: python, depends_on: [killer], params: {{function: "{tasks}:ok"}}}}
"""


def test_a_module_that_kills_the_forkserver_fails_its_task_and_the_run_goes_on(
    tmp_path: Path,
) -> None:
    """The gxo command's forkserver, killed by a module, made the next worker's start fail
    (ConnectionRefusedError out of the pool: an internal error, exit 3). The next worker
    starts through multiprocessing's forkserver instead, and the socket's directory goes."""
    (tmp_path / "tasks.py").write_text(KILLER)
    (tmp_path / "p.yaml").write_text(KILLER_PLAYBOOK.format(tasks=tmp_path / "tasks.py"))
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("TEMP", "TMP")}
    proc = subprocess.run(
        [sys.executable, "-m", "gxo", "p.yaml", "--workers", "1", "--report", "r.json"],
        cwd=tmp_path,
        env={**env, "TMPDIR": str(tmp)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr  # the killer's failure is ignored
    assert "internal error" not in proc.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["task_results"]["killer"]["status"] == "Failed"
    assert report["task_results"]["after"]["status"] == "Completed"
    assert [p.name for p in tmp.iterdir() if not p.name.startswith("pymp-")] == []
