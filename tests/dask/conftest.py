"""Fixtures of the Dask executor's tests: one real cluster of processes per module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from dask_support import Cluster, start_cluster, stop_cluster


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    """One cluster for a module's tests (starting one costs seconds)."""
    # A 4-task stream group fits one worker; the second worker declares gpu=1.
    started = start_cluster(workers=2, slots=4, gpu=True)
    try:
        yield started
    finally:
        stop_cluster(started)
