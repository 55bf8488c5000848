"""Helpers for the stream tests (a module with a unique name: every test directory has a
``conftest``, so tests import these from here, not from ``conftest``)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Protocol

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


def substitute(text: str, tmp_path: Path, subs: dict[str, Any]) -> str:
    values = {"FUNCS": str(FUNCS), "TMP": str(tmp_path), **subs}
    for key, value in values.items():
        text = text.replace(f"@{key}@", str(value))
    left = re.findall(r"@[A-Z_]+@", text)
    assert not left, f"unreplaced placeholders {left}"
    return text
