"""Helpers shared by the integration tests (``tests/integration``) and the CLI tests.

Playbook text may use placeholders, replaced before it is written:

- ``@FUNCS@``: the absolute path of ``tests/integration/funcs`` (so ``function:`` specs do
  not depend on where the playbook lives);
- ``@TMP@``: the test's ``tmp_path``;
- ``@NAME@`` for any other keyword given to ``substitute`` (or the ``run_playbook`` fixture).
"""

from __future__ import annotations

import itertools
import os
import re
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Protocol

import psutil

from gxo.report import ExecutionReport

FUNCS = Path(__file__).resolve().parent / "funcs"

_counter = itertools.count()


def substitute(text: str, tmp_path: Path, **subs: object) -> str:
    values = {"FUNCS": str(FUNCS), "TMP": str(tmp_path), **subs}
    for key, value in values.items():
        text = text.replace(f"@{key}@", str(value))
    left = re.findall(r"@[A-Z_]+@", text)
    assert not left, f"unreplaced placeholders {left} in:\n{text}"
    return text


class RunPlaybook(Protocol):
    def __call__(
        self,
        text: str,
        *,
        workers: int = 2,
        grace: float = 0.5,
        dry_run: bool = False,
        overrides: dict[str, Any] | None = None,
        start_method: str = "forkserver",
        **subs: object,
    ) -> ExecutionReport: ...


def unique_sleep_arg() -> str:
    """A ``sleep`` duration no other test (or concurrent test run) uses: a process marker."""
    return f"{1000 + os.getpid() % 1000}.{time.time_ns() % 10**9:09d}{next(_counter)}"


def alive_with_arg(arg: str) -> list[psutil.Process]:
    """Live (not zombie) processes whose command line contains ``arg``."""
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        try:
            if proc.info["status"] == psutil.STATUS_ZOMBIE:
                continue
            if arg in (proc.info["cmdline"] or []):
                found.append(proc)
        except psutil.Error:
            continue
    return found


def still_alive(pids: Iterable[int], timeout: float = 5.0) -> list[int]:
    """Wait (bounded) for the processes to end; return those still alive (not zombies)."""
    procs = []
    for pid in pids:
        try:
            procs.append(psutil.Process(pid))
        except psutil.NoSuchProcess:
            continue
    deadline = time.monotonic() + timeout
    alive = procs
    while alive and time.monotonic() < deadline:
        _, alive = psutil.wait_procs(alive, timeout=0.1)
        alive = [p for p in alive if _running(p)]
    return [p.pid for p in alive if _running(p)]


def survivors(arg: str, timeout: float = 5.0) -> list[int]:
    """Pids of processes with ``arg`` in their command line still alive after ``timeout``."""
    return still_alive([p.pid for p in alive_with_arg(arg)], timeout)


def _running(proc: psutil.Process) -> bool:
    try:
        return proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def wait_for_file(path: Path, timeout: float = 20.0) -> str:
    """Poll (bounded) until ``path`` exists; return its text. Used only where no event exists."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            raise AssertionError(f"{path} did not appear within {timeout}s")
        time.sleep(0.01)
    return path.read_text()
