"""Fixtures for the library API tests: real playbooks run by ``gxo.run`` on real workers."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(scope="session", autouse=True)
def _multiprocessing_helpers() -> None:
    """Start the forkserver and resource tracker before any test's leak check starts.

    Both live as long as the test process by design (see ``tests/integration/conftest.py``).
    """
    from multiprocessing import forkserver, resource_tracker

    forkserver.ensure_running()
    resource_tracker.ensure_running()


@pytest.fixture
def in_tmp(tmp_path: Path) -> Iterator[Path]:
    """Run the test with ``tmp_path`` as the working directory."""
    before = os.getcwd()
    os.chdir(tmp_path)
    try:
        yield tmp_path
    finally:
        os.chdir(before)
