"""The in-process executor keeps the Executor protocol's promises, on a manual clock."""

from __future__ import annotations

import os

import pytest

from gxo.errors import InternalError
from gxo.executors.inline import InlineExecutor, ManualClock
from gxo.pool.executor import Finished, Lost, Started
from gxo.wire import Run

PASS = Run(0, 0, "t", "passthrough", {"value": 1}, {})


def test_started_first_then_finished_then_time_passes_only_when_idle() -> None:
    clock = ManualClock(10.0)
    executor = InlineExecutor(1, clock=clock)
    assert executor.free_slots() == 1
    assert executor.submit(PASS)
    assert executor.free_slots() == 0
    assert executor.wait(5.0) == [Started(0, os.getpid())]
    (finished,) = executor.wait(5.0)
    assert isinstance(finished, Finished)
    assert finished.done.ok
    assert clock() == 10.0  # running something takes no time on the manual clock
    assert executor.wait(5.0) == []
    assert clock() == 15.0


def test_a_cancelled_instance_is_lost_without_running() -> None:
    executor = InlineExecutor(2)
    executor.submit(PASS)
    executor.cancel(0, "timed_out")
    executor.wait(None)
    assert executor.wait(None) == [Lost(0, "timed_out", "stopped (timed_out)")]


def test_waiting_for_nothing_for_ever_is_a_gxo_bug() -> None:
    with pytest.raises(InternalError, match="nothing to run"):
        InlineExecutor(1).wait(None)
