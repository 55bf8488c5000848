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


def test_where_an_attempt_ran_is_forgotten_once_its_instance_is_spooled() -> None:
    """Issue 17: the parent keeps no per-attempt record of a 20,000-instance run; each
    attempt's node and worker go into the instance's report entry as it ends."""
    from types import SimpleNamespace

    from gxo.executors.dask import DaskExecutor
    from gxo.report import AttemptReport, InstanceReport

    executor = object.__new__(DaskExecutor)  # the bookkeeping only: no client, no pipes
    executor._placements, executor._places, executor._place_index = {}, [], {}
    for attempt, worker in ((1, "tcp://10.0.0.7:4001"), (2, "tcp://10.0.0.8:4002")):
        flight = SimpleNamespace(run=SimpleNamespace(instance_id=7, attempt=attempt))
        executor._place(flight, "node", worker, 100 + attempt)  # type: ignore[arg-type]
    executor._place(SimpleNamespace(run=SimpleNamespace(instance_id=8, attempt=1)), "node", "w", 1)  # type: ignore[arg-type]
    entry = InstanceReport(
        instance_id=7,
        label="t[0]",
        loop_index=0,
        status="Completed",
        attempts=[
            AttemptReport(number=n, start_time=None, end_time=None, duration=0.0) for n in (1, 2)
        ],
    )
    executor.place_entry(entry)
    assert [(a.host, a.executor_worker, a.worker_pid) for a in entry.attempts] == [
        ("node", "tcp://10.0.0.7:4001", 101),
        ("node", "tcp://10.0.0.8:4002", 102),
    ]
    assert list(executor._placements) == [(8, 1)]  # instance 7's records are gone
