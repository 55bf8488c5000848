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

from gxo.pool.session import EscapedTracker, _signal_by_group, kill_session


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
    # The file is made by the shell itself: a `touch` still exiting was in the session too,
    # and killed with the sleeps; and both sleeps must have exec'd before they are counted.
    script = f"sleep {marker} & a=$!; sleep {marker} & : > {started}; wait $a"
    leader = subprocess.Popen(["sh", "-c", script], start_new_session=True)
    try:
        while not started.exists() or len(_alive_with(marker)) < 2:
            time.sleep(0.001)  # bounded by pytest-timeout
        children = {p.pid for p in _alive_with(marker)}
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
    # The sleep got the same SIGTERM as the shell, but may not have been scheduled to die
    # yet when the shell's trap has run (a loaded machine): it must be gone shortly after.
    deadline = time.monotonic() + 10
    while _alive_with(marker) and time.monotonic() < deadline:
        time.sleep(0.001)
    assert _alive_with(marker) == []


def test_a_tracked_daemon_is_killed_after_its_leader_died(tmp_path: Path) -> None:
    """A child that left its leader's session (``setsid``) is re-parented to init when the
    leader dies: neither the session scan nor the walk down finds it then. The tracker,
    which looked while the leader lived, still kills it; a leader's own session members are
    left to the session kill."""
    marker = _marker()
    script = f"setsid sleep {marker} & sleep {marker} & wait"
    leader = subprocess.Popen(["sh", "-c", script], start_new_session=True)
    tracker = EscapedTracker()
    try:
        outside: list[psutil.Process] = []
        while not outside:  # until the background one has called setsid (bounded by timeout)
            outside = [p for p in _alive_with(marker) if os.getsid(p.pid) != leader.pid]
        (daemon,) = outside
        tracker.look(leader.pid)
        assert set(tracker.escaped[leader.pid]) == {daemon.pid}  # not its session's sleep
        leader.kill()
        leader.wait()
        assert kill_session(leader.pid, signal.SIGKILL, include_self=False) != set()
        assert daemon.is_running()  # the session kill cannot find it any more
        assert tracker.kill(leader.pid) == {daemon.pid}
        _, alive = psutil.wait_procs([daemon], timeout=5)
        assert alive == []
        assert tracker.escaped == {}
    finally:
        for proc in _alive_with(marker):
            proc.kill()
        with contextlib.suppress(ProcessLookupError):
            leader.kill()
        leader.wait()
