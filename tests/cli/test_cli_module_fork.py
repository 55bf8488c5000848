"""A ``python`` function that calls ``os.fork()`` and lets the child return (or raise) fails
nothing: the child is not the worker. It used to carry on as one, sending a second result
for the instance, and the run ended in ``gxo: internal error: ... illegal phase change
done -> running`` (exit 3, no report)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

FUNCS = """\
import os

def fork_and_return():
    pid = os.fork()
    return {"child": pid}

def fork_and_child_raises():
    pid = os.fork()
    if pid == 0:
        raise RuntimeError("raised in the forked child")
    _, status = os.waitpid(pid, 0)
    return {"child_status": os.waitstatus_to_exitcode(status)}

def square(n):
    return {"square": n * n}
"""

PLAYBOOK = """\
schemaVersion: v1.0.0
name: forking
tasks:
  - name: returns
    type: python
    isolation: {isolation}
    params: {{function: "funcs.py:fork_and_return"}}
  - name: raises
    type: python
    isolation: {isolation}
    params: {{function: "funcs.py:fork_and_child_raises"}}
  - name: after
    type: python
    depends_on: [returns, raises]
    loop: [1, 2, 3, 4]
    params: {{function: "funcs.py:square", args: ["{{{{ item }}}}"]}}
"""


@pytest.mark.parametrize("isolation", ["pooled", "process"])
def test_a_forked_child_of_a_module_does_not_act_as_the_worker(
    tmp_path: Path, isolation: str
) -> None:
    (tmp_path / "funcs.py").write_text(FUNCS)
    (tmp_path / "forking.yaml").write_text(PLAYBOOK.format(isolation=isolation))
    done = subprocess.run(
        [sys.executable, "-m", "gxo", "forking.yaml", "--workers", "1", "--report", "r.json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "internal error" not in done.stderr
    results = json.loads((tmp_path / "r.json").read_text())["task_results"]
    assert {name: r["status"] for name, r in results.items()} == dict.fromkeys(
        ("returns", "raises", "after"), "Completed"
    )
    # The results are the worker's, not the child's; the child that raised exited 1.
    assert results["returns"]["instances"][0]["summary"]["child"] > 0
    assert results["raises"]["instances"][0]["summary"] == {"child_status": 1}
    assert "RuntimeError: raised in the forked child" in done.stderr
    squares = [i["summary"]["square"] for i in results["after"]["instances"]]
    assert squares == [1, 4, 9, 16]
