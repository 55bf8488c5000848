"""The private directory of the ``gxo`` command's forkserver socket goes with the forkserver,
even when gxo itself is SIGKILLed (multiprocessing's own ``pymp-*`` directory stayed then)."""

from __future__ import annotations

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
