"""A stop that races with the end of the instance it was meant for (found by ``scripts/soak``).

The parent decides to stop instance A (its timeout) while A's result is already on its way
and the worker has started B, queued behind A. The SIGTERM reaches B instead; the worker
reports B's outcome and exits. The pool must report that B started before it reports B's
result: the scheduler has no attempt for an instance that never started, and the run ended
with an internal error (exit 3, no report).

The race is made deterministic: the test reads nothing from the pool until B has written a
marker (so A is over and B runs), then stops A.
"""

from __future__ import annotations

import time
from pathlib import Path

from itest_support import wait_for_file

from gxo.pool.executor import ExecutorEvent as PoolEvent
from gxo.pool.executor import Finished, Lost
from gxo.pool.process_pool import ProcessPool
from gxo.wire import Run


def _run(instance_id: int, command: str) -> Run:
    return Run(
        instance_id=instance_id,
        task_index=instance_id,
        task_name=f"t{instance_id}",
        module="exec",
        params={"command": command, "shell": True},
        namespace={},
    )


def test_an_instance_run_by_a_worker_being_stopped_is_reported_started(tmp_path: Path) -> None:
    marker = tmp_path / "b-runs"
    pool = ProcessPool(1, grace=5.0)
    try:
        pool.start()
        assert pool.submit(_run(1, "true"))
        assert pool.submit(_run(2, f"echo x > {marker}; exec sleep 30"), queue_behind=True)
        pool.flush()
        wait_for_file(marker)  # A has ended and B is running; the pool has read neither

        events: list[PoolEvent] = []
        pool.cancel(1, "timed_out")  # what the scheduler does when A's timeout expires
        deadline = time.monotonic() + 20
        while not any(isinstance(e, Finished | Lost) and _id(e) == 2 for e in events):
            assert time.monotonic() < deadline, f"no outcome for B: {events}"
            events += pool.wait(1.0)
    finally:
        pool.close()

    order = [(type(e).__name__, _id(e)) for e in events]
    assert ("Lost", 1) in order  # A: stopped, it ended within the grace period
    assert ("Started", 2) in order, order
    assert order.index(("Started", 2)) < order.index(("Finished", 2))


def _id(event: PoolEvent) -> int:
    return event.done.instance_id if isinstance(event, Finished) else event.instance_id
