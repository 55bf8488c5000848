"""Timeouts in the scheduler state machine: ``timeout`` bounds the whole task (GXO),
``attempt_timeout`` each attempt; a manual clock, no process."""

from __future__ import annotations

import random
import textwrap
from collections.abc import Iterator

import pytest

from gxo.config.load import load_playbook_text
from gxo.dag import analyse
from gxo.reasons import is_retriable
from gxo.scheduler.messages import AttemptFinished, AttemptLost, AttemptStarted, Capacity, Kill
from gxo.scheduler.records import InstanceRecord, Status
from gxo.scheduler.state import SchedulerState
from gxo.wire import Done


def machine(tasks_yaml: str, extra: str = "") -> SchedulerState:
    text = (
        "schemaVersion: v1.0.0\nname: t\n"
        + extra
        + "tasks:\n"
        + textwrap.indent(textwrap.dedent(tasks_yaml), "  ")
    )
    playbook = load_playbook_text(text)
    return SchedulerState(playbook, analyse(playbook), rng=random.Random(1))


@pytest.fixture
def checked() -> Iterator[list[SchedulerState]]:
    states: list[SchedulerState] = []
    yield states
    for state in states:
        state.validate()


def take(state: SchedulerState, room: int = 1) -> list[InstanceRecord]:
    batch = state.dispatch(Capacity(idle=room, pipelined=room))
    return [state.instances[d.instance_id] for d in batch]


def fail(state: SchedulerState, inst: InstanceRecord, now: float) -> None:
    state.handle(AttemptFinished(Done(inst.id, ok=False, reason="module_failed", error="x")), now)


def test_attempt_timeout_stops_each_attempt_and_is_retried(checked):
    state = machine(
        "- {name: a, type: passthrough, attempt_timeout: 5s, retry: {attempts: 2, delay: 0s}}\n"
    )
    checked.append(state)
    state.start(0.0)
    (a,) = take(state)
    state.handle(AttemptStarted(a.id, 7), 1.0)
    assert state.next_deadline() == 6.0
    assert state.tick(5.9) == []
    assert state.tick(6.0) == [Kill(a.id, "attempt_timed_out")]
    assert state.tick(7.0) == [], "a kill is asked for once"
    state.handle(AttemptLost(a.id, "attempt_timed_out", "killed"), 7.5)
    assert a.attempts[0].reason == "attempt_timed_out"
    assert a.attempts[0].error == "attempt timed out after 5s (attempt 1)"
    state.tick(7.5)
    (again,) = take(state)
    state.handle(AttemptStarted(again.id, 8), 8.0)
    assert state.tick(13.0) == [Kill(a.id, "attempt_timed_out")]
    state.handle(AttemptLost(a.id, "attempt_timed_out", "killed"), 13.1)
    assert state.status_of("a") is Status.FAILED
    assert state.tasks["a"].reason == "attempt_timed_out"
    assert is_retriable("attempt_timed_out")


def test_timeout_bounds_every_retry_and_the_waits_between(checked):
    state = machine(
        "- {name: a, type: passthrough, timeout: 10s, retry: {attempts: 5, delay: 3s}}\n"
    )
    checked.append(state)
    state.start(0.0)
    (a,) = take(state)
    state.handle(AttemptStarted(a.id, 7), 1.0)  # the task's clock starts here: deadline 11
    fail(state, a, 2.0)  # retry at 5
    state.tick(5.0)
    (a2,) = take(state)
    state.handle(AttemptStarted(a2.id, 7), 5.0)
    assert state.next_deadline() == 11.0, "a retry does not restart the task's clock"
    fail(state, a2, 6.0)  # retry at 9
    state.tick(9.0)
    (a3,) = take(state)
    state.handle(AttemptStarted(a3.id, 7), 9.0)
    assert state.tick(11.0) == [Kill(a.id, "timed_out")]
    state.handle(AttemptLost(a.id, "timed_out", "killed"), 11.2)
    record = state.tasks["a"]
    assert (record.status, record.reason) == (Status.FAILED, "timed_out")
    assert "timed out after 10s" in record.error
    assert len(a.attempts) == 3, "no retry after the task's timeout"
    assert not is_retriable("timed_out")


def test_timeout_during_a_retry_wait_fails_at_once(checked):
    state = machine(
        "- {name: a, type: passthrough, timeout: 4s, retry: {attempts: 3, delay: 10s}}\n"
    )
    checked.append(state)
    state.start(0.0)
    (a,) = take(state)
    state.handle(AttemptStarted(a.id, 7), 0.0)
    fail(state, a, 1.0)
    assert state.next_deadline() == 4.0
    assert state.tick(4.0) == []  # nothing runs: nothing to kill
    assert (state.status_of("a"), state.tasks["a"].reason) == (Status.FAILED, "timed_out")
    assert state.is_finished()


def test_timeout_bounds_all_loop_items_together(checked):
    state = machine(
        "- {name: a, type: passthrough, loop: [1, 2, 3, 4], loop_control: {parallel: 2},"
        " timeout: 10s}\n"
    )
    checked.append(state)
    state.start(0.0)
    first, second = take(state, room=2)
    state.handle(AttemptStarted(first.id, 7), 1.0)
    state.handle(AttemptStarted(second.id, 8), 2.0)
    state.handle(AttemptFinished(Done(first.id, ok=True)), 3.0)
    (third,) = take(state)
    state.handle(AttemptStarted(third.id, 7), 4.0)
    kills = state.tick(11.0)  # 10 s after the first item started
    assert sorted(k.instance_id for k in kills) == sorted([second.id, third.id])
    assert {k.reason for k in kills} == {"timed_out"}
    assert take(state) == [], "the fourth item never starts"
    for inst in (second, third):
        state.handle(AttemptLost(inst.id, "timed_out", "killed"), 11.5)
    record = state.tasks["a"]
    assert (record.status, record.reason) == (Status.FAILED, "timed_out")
    assert [i.status for i in record.instances] == [
        Status.COMPLETED,
        Status.FAILED,
        Status.FAILED,
        Status.FAILED,
    ]
    assert record.instances[3].attempts == []


def test_a_task_that_ends_in_time_is_not_touched_by_its_timer(checked):
    state = machine(
        "- {name: a, type: passthrough, timeout: 5s}\n"
        "- {name: b, type: passthrough, timeout: 50s}\n"
    )
    checked.append(state)
    state.start(0.0)
    (a,) = take(state)
    (b,) = take(state)
    state.handle(AttemptStarted(a.id, 7), 1.0)
    state.handle(AttemptFinished(Done(a.id, ok=True)), 2.0)
    state.handle(AttemptStarted(b.id, 8), 1.0)
    assert state.tick(6.0) == []
    assert state.status_of("a") is Status.COMPLETED
    assert state.next_deadline() == 51.0


def test_task_defaults_give_the_timeouts(checked):
    state = machine(
        "- {name: a, type: passthrough}\n",
        extra="task_defaults: {timeout: 9s, attempt_timeout: 2s}\n",
    )
    checked.append(state)
    state.start(0.0)
    (a,) = take(state)
    state.handle(AttemptStarted(a.id, 7), 1.0)
    assert state.next_deadline() == 3.0
    assert state.tick(3.0) == [Kill(a.id, "attempt_timed_out")]
