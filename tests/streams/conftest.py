"""Fixtures for stream tests: real playbooks on real worker processes and pipes.

Playbook text may use ``@FUNCS@`` (this directory's ``funcs.py``) and ``@TMP@`` (the test's
``tmp_path``); other ``@NAME@`` placeholders come from keyword arguments.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import pytest

from gxo import engine
from gxo.report import ExecutionReport, TaskResult

FUNCS = Path(__file__).resolve().parent / "funcs.py"


class Result:
    """A run's report and its final state (registered results)."""

    def __init__(self, report: ExecutionReport, state: dict[str, Any]) -> None:
        self.report = report
        self.state = state

    def outcome(self, name: str) -> tuple[str, str]:
        result: TaskResult = self.report.task_results[name]
        return result.status, result.reason

    def edges(self, name: str) -> list[Any]:
        return list(self.report.task_results[name].streams)


class RunStreams(Protocol):
    def __call__(
        self, text: str, *, workers: int = 2, grace: float = 0.5, **subs: object
    ) -> Result: ...


@pytest.fixture(scope="session", autouse=True)
def _multiprocessing_helpers() -> None:
    """Start multiprocessing's long-lived helpers before any test's leak check starts."""
    from multiprocessing import forkserver, resource_tracker

    forkserver.ensure_running()
    resource_tracker.ensure_running()


def _substitute(text: str, tmp_path: Path, subs: dict[str, Any]) -> str:
    values = {"FUNCS": str(FUNCS), "TMP": str(tmp_path), **subs}
    for key, value in values.items():
        text = text.replace(f"@{key}@", str(value))
    left = re.findall(r"@[A-Z_]+@", text)
    assert not left, f"unreplaced placeholders {left}"
    return text


@pytest.fixture
def run_streams(tmp_path: Path, write_playbook: Callable[[str], Path]) -> RunStreams:
    """Write, load and execute a playbook; return its report and final state."""

    def run(text: str, *, workers: int = 2, grace: float = 0.5, **subs: object) -> Result:
        path = write_playbook(_substitute(text, tmp_path, subs))
        playbook, plan = engine.load(path)
        state: dict[str, Any] = {}
        options = engine.RunOptions(workers=workers, grace=grace, on_state=state.update)
        return Result(engine.execute(playbook, plan, options), state)

    return run
