"""``isolation: process`` attempts taken by spares: fresh processes the pool starts ahead.

From the second isolated attempt on, the pool keeps one fresh one-shot process waiting per
isolated attempt running, so the next attempt does not wait for a fork and a set-up. These
tests drive a real pool: each attempt still runs in a process of its own that ran nothing
before, a spare started before a secret name was learnt is not used (it would not mask it),
and no spare outlives the pool (the autouse leftover check).
"""

from __future__ import annotations

import time

import psutil

from gxo.pool.executor import ExecutorEvent, Finished, Lost, Started
from gxo.pool.process_pool import ProcessPool
from gxo.wire import Run, RunLimits


def _isolated(instance_id: int) -> Run:
    return Run(
        instance_id=instance_id,
        task_index=instance_id,
        task_name=f"t{instance_id}",
        module="exec",
        params={"command": "true"},
        namespace={},
        isolated=RunLimits(),
    )


def _attempt(pool: ProcessPool, instance_id: int) -> tuple[int, Finished]:
    """Submit one isolated attempt, wait for its result; its process's pid and result."""
    assert pool.submit(_isolated(instance_id))
    pool.flush()
    events: list[ExecutorEvent] = []
    deadline = time.monotonic() + 30
    while not any(isinstance(e, Finished | Lost) for e in events):
        assert time.monotonic() < deadline, events
        events += pool.wait(1.0)
    (started,) = [e for e in events if isinstance(e, Started)]
    (finished,) = [e for e in events if isinstance(e, Finished)]
    assert finished.done.ok, finished
    return started.pid, finished


def _wait_gone(pid: int) -> None:
    deadline = time.monotonic() + 20
    while psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
        assert time.monotonic() < deadline, f"process {pid} still runs"
        time.sleep(0.01)


def test_from_the_second_isolated_attempt_on_the_next_one_gets_a_process_started_ahead() -> None:
    pool = ProcessPool(1)
    try:
        pool.start()
        first, _ = _attempt(pool, 1)
        assert not pool._spares  # a single isolated attempt starts no spare
        second, _ = _attempt(pool, 2)
        (spare,) = pool._spares  # started while the second attempt ran
        spare_pid = spare.pid  # read now: once its attempt ended, its process is closed
        assert spare_pid not in (first, second)
        third, result = _attempt(pool, 3)
        assert third == spare_pid  # the third attempt ran in it
        assert result.done.usage is not None
        assert result.done.usage.cpu_seconds > 0
        assert len({first, second, third}) == 3  # never a process twice
        (next_spare,) = pool._spares
        left = next_spare.pid
    finally:
        pool.close()
    _wait_gone(left)  # the spare left unused was stopped with the pool


def test_a_spare_started_before_a_secret_name_was_learnt_is_stopped_unused() -> None:
    pool = ProcessPool(1)
    try:
        pool.start()
        _attempt(pool, 1)
        _attempt(pool, 2)
        (stale,) = pool._spares
        stale_pid = stale.pid
        # What a SecretsFound announcement records: later workers start knowing the name.
        pool._late_secrets["LATE_TOKEN"] = None
        third, _ = _attempt(pool, 3)
        assert third != stale_pid
        _wait_gone(stale_pid)
    finally:
        pool.close()
