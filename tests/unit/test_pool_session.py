"""kill_session: every process of a session dies, even one forked while the kill is under way.

The race (found by ``scripts/soak``): a command kills its worker and then forks ``sleep``. A
single scan of ``/proc`` followed by the signals misses a child that is forked after the scan
and before its parent is killed; the child then outlives the run. A session leader that forks
without pause makes that window certain to be hit, so a few rounds catch a one-pass kill every
time (each round of the one-pass version left dozens of sleeps behind).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

import psutil

from gxo.pool.session import _signal_by_group, kill_session


def _marker() -> str:
    return f"{1000 + os.getpid() % 1000}.{time.time_ns() % 10**9:09d}"


def _alive_with(arg: str) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        if proc.info["status"] != psutil.STATUS_ZOMBIE and arg in (proc.info["cmdline"] or []):
            found.append(proc)
    return found


def _forking_session(tmp_path: Path, marker: str) -> subprocess.Popen[bytes]:
    """A new session whose leader forks ``sleep MARKER`` in a tight loop; returns once it has
    forked (the first child writes a file)."""
    started = tmp_path / f"started-{marker}"
    script = f"touch {started}; while :; do sleep {marker} & done"
    leader = subprocess.Popen(["sh", "-c", script], start_new_session=True)
    while not started.exists():  # bounded by pytest-timeout; the loop starts at once
        time.sleep(0.001)
    return leader


def test_kill_session_leaves_no_child_forked_during_the_kill(tmp_path: Path) -> None:
    survivors: list[int] = []
    for _ in range(8):
        marker = _marker()
        leader = _forking_session(tmp_path, marker)
        try:
            killed = kill_session(leader.pid, signal.SIGKILL)
            assert leader.pid in killed
            assert leader.wait(timeout=5) == -signal.SIGKILL
            # A process signalled a moment ago may not have exited yet: give it time.
            _, left = psutil.wait_procs(_alive_with(marker), timeout=2)
            survivors += [p.pid for p in left if p.status() != psutil.STATUS_ZOMBIE]
        finally:
            for proc in _alive_with(marker):  # keep a failure from leaking into other tests
                proc.kill()
            leader.kill()
            leader.wait()
    assert survivors == [], f"{len(survivors)} processes forked during the kill survived it"


def test_kill_session_without_self_spares_the_leader_only(tmp_path: Path) -> None:
    """``include_self=False`` (the guard, a worker cleaning up after itself): the leader
    lives on, its children die."""
    marker = _marker()
    started = tmp_path / "started"
    # `: >` is the shell's own redirection: with `touch`, the file could be seen while the
    # touch process still lived in the session, and was killed too (a flaky third pid).
    script = f"sleep {marker} & a=$!; sleep {marker} & : > {started}; wait $a"
    leader = subprocess.Popen(["sh", "-c", script], start_new_session=True)
    try:
        while not started.exists():
            time.sleep(0.001)
        # The second `sleep` may still be a forked shell that has not exec'd: wait for both.
        deadline = time.monotonic() + 10
        while len(children := {p.pid for p in _alive_with(marker)}) < 2:
            assert time.monotonic() < deadline, f"only {children} started"
            time.sleep(0.001)
        assert len(children) == 2
        killed = kill_session(leader.pid, signal.SIGKILL, include_self=False)
        assert killed == children
        # The leader was spared: its ``wait`` sees its children killed, and it exits.
        assert leader.wait(timeout=5) == 128 + signal.SIGKILL
    finally:
        kill_session(leader.pid, signal.SIGKILL)
        leader.wait()


def test_a_command_group_gets_the_signal_at_once(tmp_path: Path) -> None:
    """A stop signals a command's whole process group at once (``killpg``), not its members
    one by one: a shell whose background ``sleep`` got SIGTERM before the shell did saw its
    ``wait`` return and exited normally, so its ``trap`` (the clean-up its grace period is
    for) never ran. Signalling only the ``sleep``'s pid must reach the shell too."""
    trapped = tmp_path / "trapped"
    marker = _marker()
    shell = subprocess.Popen(
        ["sh", "-c", f"trap 'echo done > {trapped}; exit 0' TERM; sleep {marker} & echo $!; wait"],
        stdout=subprocess.PIPE,
        start_new_session=True,  # its own session and group, as a command in a worker
    )
    try:
        assert shell.stdout is not None
        sleep_pid = int(shell.stdout.readline())
        _signal_by_group({sleep_pid}, signal.SIGTERM, own_groups=set())
        assert shell.wait(timeout=10) == 0
        assert trapped.read_text() == "done\n"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(shell.pid, signal.SIGKILL)
        shell.wait()
        if shell.stdout is not None:
            shell.stdout.close()
    # The sleep got its SIGTERM with the shell, but may still be dying when the shell has
    # been reaped (it was seen alive, then a zombie): give it time, as the test above does.
    _, left = psutil.wait_procs(_alive_with(marker), timeout=5)
    assert [p for p in left if p.status() != psutil.STATUS_ZOMBIE] == []
