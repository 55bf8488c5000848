"""Find and signal every process a worker started, even those whose parent already died.

Each worker leads its own session, and commands keep that session (``exec`` gives them their
own process *group* inside it), so "everything the worker started" is "every process whose
session id is the worker's pid". Unlike a walk over parent links, this still finds a
grandchild after its parent exited and it was re-parented to init. A descendant that called
``setsid`` itself is caught by the parent-link walk while the worker is alive.
"""

from __future__ import annotations

import os
import signal

import psutil

__all__ = ["kill_session", "session_members", "signal_processes"]


def session_members(session_id: int) -> set[int]:
    """Pids of the live processes in the session ``session_id`` (the leader included)."""
    members: set[int] = set()
    for entry in os.scandir("/proc"):
        name = entry.name
        if not name.isdigit():
            continue
        pid = int(name)
        try:
            if os.getsid(pid) == session_id:
                members.add(pid)
        except (ProcessLookupError, PermissionError):
            continue
    return members


def _descendants(pid: int) -> set[int]:
    try:
        return {child.pid for child in psutil.Process(pid).children(recursive=True)}
    except psutil.Error:
        return set()


def signal_processes(pids: set[int], signum: int) -> None:
    """Send ``signum`` to each pid, ignoring the ones that are already gone."""
    for pid in pids:
        try:
            os.kill(pid, signum)
        except (ProcessLookupError, PermissionError):
            continue


def kill_session(
    leader: int, signum: int = signal.SIGKILL, *, include_self: bool = True
) -> set[int]:
    """Signal the session led by ``leader`` and the leader's descendants; return the pids."""
    targets = session_members(leader) | _descendants(leader)
    if include_self:
        targets.add(leader)
    else:
        targets.discard(leader)
        targets.discard(os.getpid())
    signal_processes(targets, signum)
    return targets
