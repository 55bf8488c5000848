"""The worker process itself, through the real ``gxo`` command: what one task leaves behind
never reaches the next on the same worker, signals and core limits, a prompt exit.

Tasks are forced onto one worker with ``--workers 1`` (and ordered with ``depends_on``); each
test checks that both really ran in the same process before it trusts what the second saw.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from itest_support import FUNCS

GXO = [sys.executable, "-m", "gxo"]


def gxo(
    tmp_path: Path, playbook: str, *args: str, core_limit: int | None = None
) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "pb.yaml"
    path.write_text(playbook.replace("@FUNCS@", str(FUNCS)).replace("@TMP@", str(tmp_path)))

    def limit_core() -> None:  # runs in the child, before gxo starts
        if core_limit is not None:
            resource.setrlimit(resource.RLIMIT_CORE, (core_limit, core_limit))

    return subprocess.run(
        [*GXO, "execute", "--report", str(tmp_path / "r.json"), *args, str(path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        preexec_fn=limit_core if core_limit is not None else None,
    )


def _report(tmp_path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((tmp_path / "r.json").read_text())
    return data


def _pids(report: dict[str, Any], *tasks: str) -> set[int]:
    return {
        attempt["worker_pid"]
        for task in tasks
        for inst in report["task_results"][task]["instances"]
        for attempt in inst["attempts"]
    }


ISOLATION = """
schemaVersion: v1.0.0
name: isolation
tasks:
  - name: dirty
    type: python
    params:
      function: "@FUNCS@/isolation.py:dirty"
      kwargs: {helper_dir: "@TMP@/lib"}
  - name: observe
    type: python
    depends_on: [dirty]
    params:
      function: "@FUNCS@/isolation.py:observe"
      kwargs: {out: "@TMP@/seen.json", helper_dir: "@TMP@/lib"}
  - name: command
    type: exec
    depends_on: [observe]
    params:
      command: sh
      args: ["-c", 'echo "env=${GXO_LEAKED:-unset} cwd=$(pwd) umask=$(umask)" > "$0"', "@TMP@/c"]
"""


def test_a_task_cannot_change_the_next_one_on_the_same_worker(tmp_path: Path) -> None:
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "userhelper.py").write_text('VALUE = "fresh"\n')
    done = gxo(tmp_path, ISOLATION, "--workers", "1")
    assert done.returncode == 0, done.stdout + done.stderr
    report = _report(tmp_path)
    assert len(_pids(report, "dirty", "observe", "command")) == 1  # one worker ran all three
    seen = json.loads((tmp_path / "seen.json").read_text())
    assert seen["calls"] == 0  # the user's module was imported afresh
    assert seen["helper"] == "fresh"  # ...and so was the one it imported by name
    assert seen["leaked_env"] is None
    assert seen["home"] == os.environ.get("HOME")
    assert seen["cwd"] == str(tmp_path)
    assert seen["umask"] == _own_umask()
    assert not seen["sigterm_ignored"]
    assert not seen["sigusr1_default"]
    assert signal.SIGTERM not in seen["blocked"]
    assert signal.SIGALRM not in seen["blocked"]
    assert seen["fds"] == [True, True, True]
    output = done.stdout + done.stderr
    assert "fd 2 reaches the parent" in output
    assert "fd 1 reaches the parent" in output
    command = (tmp_path / "c").read_text()
    assert command == f"env=unset cwd={tmp_path} umask=0{_own_umask():03o}\n"


def _own_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


SIGNALS = """
schemaVersion: v1.0.0
name: signals
tasks:
  - name: worker
    type: python
    params: {function: "@FUNCS@/isolation.py:worker_signals", kwargs: {out: "@TMP@/w.json"}}
  - name: command
    type: exec
    params:
      command: sh
      args: ["-c", 'grep -E "^SigIgn:" /proc/$$/status > "$0"; echo "core=$(ulimit -c)" >> "$0"',
             "@TMP@/c"]
"""


def test_workers_ignore_int_usr1_usr2_hup_and_their_commands_get_defaults(
    tmp_path: Path,
) -> None:
    done = gxo(tmp_path, SIGNALS, "--workers", "2")
    assert done.returncode == 0, done.stdout + done.stderr
    worker = json.loads((tmp_path / "w.json").read_text())
    assert worker["pdeathsig"] == signal.SIGKILL
    # Caught by a handler that does nothing, not SIG_IGN: nothing is ignored by the kernel
    # that a command would inherit.
    for signum in (signal.SIGINT, signal.SIGUSR1, signal.SIGUSR2, signal.SIGHUP):
        assert not worker["ignored_by_kernel"] & (1 << (signum - 1))
    command = (tmp_path / "c").read_text()
    assert command == "SigIgn:\t0000000000000000\ncore=0\n"  # the command ignores nothing


@pytest.mark.parametrize("flag", [False, True])
def test_core_files_are_off_unless_asked_for(tmp_path: Path, flag: bool) -> None:
    args = ["--workers", "2", *(["--core-dumps"] if flag else [])]
    done = gxo(tmp_path, SIGNALS, *args, core_limit=4096)
    assert done.returncode == 0, done.stdout + done.stderr
    worker = json.loads((tmp_path / "w.json").read_text())
    expected = [4096, 4096] if flag else [0, 0]
    assert worker["core"] == expected
    blocks = expected[0] // 512  # sh counts 512-byte blocks
    assert f"core={blocks}\n" in (tmp_path / "c").read_text()


def test_a_crashing_worker_writes_no_core_file(tmp_path: Path) -> None:
    """With an unlimited core size in gxo's environment, a segfault still leaves no core."""
    playbook = """
schemaVersion: v1.0.0
name: crash
tasks:
  - name: crash
    type: python
    ignore_errors: true
    params: {function: "@FUNCS@/crash.py:segfault"}
  - name: command-crash
    type: exec
    ignore_errors: true
    params: {command: sh, args: ["-c", "kill -SEGV $$"]}
"""
    done = gxo(tmp_path, playbook, "--workers", "1", core_limit=resource.RLIM_INFINITY)
    assert done.returncode == 0, done.stdout + done.stderr
    results = _report(tmp_path)["task_results"]
    assert results["crash"]["reason"] == "worker_signaled(SIGSEGV)"
    assert results["command-crash"]["reason"] == "command_signaled(SIGSEGV)"
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith("core")]


def test_a_thread_left_running_does_not_delay_the_end_of_the_run(tmp_path: Path) -> None:
    playbook = """
schemaVersion: v1.0.0
name: threads
tasks:
  - name: leave
    type: python
    params: {function: "@FUNCS@/isolation.py:leave_thread", kwargs: {marker: "@TMP@/pid"}}
"""
    done = gxo(tmp_path, playbook, "--workers", "1")
    assert done.returncode == 0, done.stdout + done.stderr
    report = _report(tmp_path)
    task_end = report["task_results"]["leave"]["end_time"]
    from datetime import datetime

    stall = (
        datetime.fromisoformat(report["end_time"]) - datetime.fromisoformat(task_end)
    ).total_seconds()
    assert stall < 2.5  # was 5 s: the pool waited for the worker's interpreter to join it
    worker = int((tmp_path / "pid").read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(worker, 0)  # gone, and its thread with it
