"""Fixtures for stream tests: real playbooks on real worker processes and pipes.

Playbook text may use ``@FUNCS@`` (this directory's ``funcs.py``) and ``@TMP@`` (the test's
``tmp_path``); other ``@NAME@`` placeholders come from keyword arguments.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from stream_support import Result, RunStreams, substitute

import gxo


@pytest.fixture(scope="session", autouse=True)
def _multiprocessing_helpers() -> None:
    """Start multiprocessing's long-lived helpers before any test's leak check starts."""
    from multiprocessing import forkserver, resource_tracker

    forkserver.ensure_running()
    resource_tracker.ensure_running()


@pytest.fixture
def run_streams(tmp_path: Path, write_playbook: Callable[[str], Path]) -> RunStreams:
    """Write, load and execute a playbook; return its report and final state."""

    def run(text: str, *, workers: int = 2, grace: float = 0.5, **subs: object) -> Result:
        path = write_playbook(substitute(text, tmp_path, subs))
        result = gxo.run(path, workers=workers, grace=grace)
        return Result(result.report, dict(result.registered))

    return run
