"""Heavy ``when``/``loop`` templates through the real ``gxo`` (issue 11): the scheduler renders
them under a budget, fails the task with ``template_error``, and still obeys Ctrl-C/SIGTERM."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

Gxo = Callable[..., subprocess.CompletedProcess[str]]

HEAVY = """schemaVersion: v1.0.0
name: heavy
tasks:
  - name: big
    type: exec
    params: {command: echo, args: [big]}
    when: "{{ ('a' * 10**9) | length > 0 }}"
  - name: slow
    type: exec
    params: {command: echo, args: [slow]}
    when: "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}true"
  - name: loopy
    type: exec
    params: {command: echo, args: ["{{ item }}"]}
    loop: "{{ range(100000) | list * 100 }}"
  - name: fine
    type: exec
    params: {command: echo, args: [fine]}
    when: "{{ 1 + 1 == 2 }}"
"""


def test_heavy_templates_fail_their_task_and_the_run_goes_on(gxo: Gxo, tmp_path: Path) -> None:
    (tmp_path / "heavy.yaml").write_text(HEAVY)
    started = time.monotonic()
    done = gxo(
        "execute", "--no-progress", "--render-timeout", "1", "--report", "r.json", "heavy.yaml"
    )
    assert time.monotonic() - started < 30
    assert done.returncode == 1, done.stderr
    results = json.loads((tmp_path / "r.json").read_text())["task_results"]
    assert {name: (r["status"], r["reason"]) for name, r in results.items()} == {
        "big": ("Failed", "template_error"),
        "slow": ("Failed", "template_error"),
        "loopy": ("Failed", "template_error"),
        "fine": ("Completed", ""),
    }
    assert (
        "str * 1000000000 would make a value of 1,000,000,000 characters"
        in (results["big"]["error"])
    )
    assert results["slow"]["error"].startswith(
        "$.tasks[1].when: the template took longer than the render budget allows (1s) (hint: "
    )
    assert "list * 100 would make a value of 10,000,000" in results["loopy"]["error"]
    assert "--render-timeout (now 1s) or --render-max-size (now 1,048,576)" in done.stderr


def test_the_render_budget_can_be_raised(gxo: Gxo, tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text(
        "schemaVersion: v1.0.0\nname: p\ntasks:\n"
        "  - {type: exec, params: {command: 'true'}, when: \"{{ ('a' * 2000000) | length }}\"}\n"
    )
    assert gxo("execute", "--no-progress", "p.yaml").returncode == 1
    done = gxo("execute", "--no-progress", "--render-max-size", "4M", "p.yaml")
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_stops_a_long_render_at_once(
    start_gxo: Callable[..., subprocess.Popen[bytes]], tmp_path: Path, sig: int, code: int
) -> None:
    """With a 120 s render budget, a signal still ends the run in seconds."""
    (tmp_path / "slow.yaml").write_text(
        "schemaVersion: v1.0.0\nname: slow\ntasks:\n"
        "  - {name: first, type: exec, params: {command: 'true'}}\n"
        "  - name: slow\n    type: exec\n    params: {command: echo}\n    depends_on: [first]\n"
        '    when: "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}'
        '{% endfor %}true"\n'
    )
    proc = start_gxo(
        "execute", "--no-progress", "--render-timeout", "120", "--report", "r.json", "slow.yaml"
    )
    err = tmp_path / "gxo.err"
    deadline = time.monotonic() + 60
    # The scheduler renders `slow`'s `when` right after it reports `first` (same step).
    while "ok       first" not in err.read_text():
        assert time.monotonic() < deadline, err.read_text()
        assert proc.poll() is None, err.read_text()
        time.sleep(0.02)
    sent = time.monotonic()
    proc.send_signal(sig)
    assert proc.wait(timeout=30) == code, err.read_text()
    assert time.monotonic() - sent < 20
    slow = json.loads((tmp_path / "r.json").read_text())["task_results"]["slow"]
    assert (slow["status"], slow["reason"]) == ("Cancelled", "interrupted")
    assert slow["error"] == "$.tasks[1].when: the render was stopped: the run is being interrupted"


def test_gxo_plan_renders_params_under_the_budget(gxo: Gxo, tmp_path: Path) -> None:
    """`gxo plan` renders params in its own process: a heavy one is shown as written."""
    (tmp_path / "p.yaml").write_text(
        "schemaVersion: v1.0.0\nname: p\ntasks:\n"
        "  - {type: exec, params: {command: echo, args: [\"{{ 'a' * 10**9 }}\", '{{ 1 + 1 }}']}}\n"
    )
    done = gxo("plan", "p.yaml", timeout=30)
    assert done.returncode == 0, done.stderr
    assert 'params: {"command": "echo", "args": ["{{ \'a\' * 10**9 }}", 2]}' in done.stdout
