"""Fixtures for integration tests: real playbooks, run by the real engine on real processes.

Helpers live in ``itest_support`` (shared with ``tests/cli``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from itest_support import RunPlaybook, substitute, unique_sleep_arg

import gxo
from gxo.report import ExecutionReport


@pytest.fixture(scope="session", autouse=True)
def _multiprocessing_helpers() -> None:
    """Start multiprocessing's long-lived helpers before any test's leak check starts.

    The first pool starts the forkserver and, with it, the resource tracker; both live as
    long as the test process by design. ``tests/conftest.py`` allows for the forkserver only,
    so without this the first integration test would be blamed for the resource tracker.
    """
    from multiprocessing import forkserver, resource_tracker

    forkserver.ensure_running()
    resource_tracker.ensure_running()


@pytest.fixture
def run_playbook(tmp_path: Path, write_playbook: Callable[[str], Path]) -> RunPlaybook:
    """Write, load and execute a playbook through the library API; return its report."""

    def run(
        text: str,
        *,
        workers: int = 2,
        grace: float = 0.5,
        dry_run: bool = False,
        overrides: dict[str, Any] | None = None,
        start_method: str = "forkserver",
        **subs: object,
    ) -> ExecutionReport:
        path = write_playbook(substitute(text, tmp_path, **subs))
        return gxo.run(
            path,
            variables=overrides,
            workers=workers,
            grace=grace,
            dry_run=dry_run,
            start_method=start_method,
        ).report

    return run


@pytest.fixture
def sleep_arg() -> str:
    """A unique ``sleep`` argument, to find the processes a test started by command line."""
    return unique_sleep_arg()
