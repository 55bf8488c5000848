"""The Dask executor's pure pieces, without a cluster."""

from __future__ import annotations

import pytest

from gxo.executors.dask import dask_resources

pytestmark = pytest.mark.dask


def test_resources_map_to_dask_worker_resources_by_name() -> None:
    assert dask_resources({}) == {}
    # One slot is what every instance takes anyway: cpus 1 asks Dask for nothing.
    assert dask_resources({"cpus": 1}) == {}
    assert dask_resources({"cpus": 4, "gpu": 1, "mem_gb": 16}) == {
        "cpus": 4.0,
        "gpu": 1.0,
        "mem_gb": 16.0,
    }
