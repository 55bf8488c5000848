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
