"""The scheduler's listener and the events it emits, without processes or sleeps.

The state machine notifies the one listener it was given; :class:`gxo.scheduler.notify.RunObserver`
turns the notifications into events. Driven by hand with a manual clock, like
``tests/unit/test_scheduler_state.py``.
"""

from __future__ import annotations

import random
import textwrap

from gxo.config.load import load_playbook_text
from gxo.dag import analyse
from gxo.events import (
    Event,
    EventBus,
    InstanceFinished,
    InstanceStarted,
    RetryScheduled,
    TaskQueued,
    TaskStatusChanged,
    WorkerLost,
)
from gxo.scheduler.messages import (
    AttemptFinished,
    AttemptLost,
    AttemptStarted,
    Capacity,
    Listener,
)
from gxo.scheduler.notify import RunObserver
from gxo.scheduler.records import InstanceRecord, TaskRecord
from gxo.scheduler.state import SchedulerState
from gxo.wire import Done


class ListBus(EventBus):
    """Collects events synchronously (the real bus delivers them on its own thread)."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[Event] = []
        self.subscribe(lambda e: None)

    def emit(self, event: Event) -> None:
        self.events.append(event)


def machine(tasks_yaml: str, listener: Listener | None = None) -> SchedulerState:
    text = "schemaVersion: v1.0.0\nname: t\ntasks:\n" + textwrap.indent(
        textwrap.dedent(tasks_yaml), "  "
    )
    playbook = load_playbook_text(text)
    return SchedulerState(playbook, analyse(playbook), listener=listener, rng=random.Random(1))


def take_one(state: SchedulerState) -> InstanceRecord | None:
    batch = state.dispatch(Capacity(idle=1, pipelined=1))
    return state.instances[batch[0].instance_id] if batch else None


def test_notifications_become_events_in_order() -> None:
    bus = ListBus()
    observer = RunObserver(bus, "r1")
    state = machine(
        """
        - {name: a, type: passthrough, retry: {attempts: 2, delay: 1s}}
        - {name: b, type: passthrough, depends_on: [a], when: false}
        """,
        observer,
    )
    state.start(0.0)
    inst = take_one(state)
    assert inst is not None
    # Queued, handed to the executor, and still Pending: Running only once a worker starts it.
    assert [type(e).__name__ for e in bus.events] == ["TaskQueued"]
    assert state.tasks["a"].status.value == "Pending"
    state.handle(AttemptStarted(inst.id, 41), 1.0)
    state.handle(AttemptFinished(Done(inst.id, ok=False, reason="module_failed", error="x")), 2.0)
    assert state.tick(2.5) == []
    state.tick(3.0)  # the retry is due
    again = take_one(state)
    assert again is inst
    state.handle(AttemptStarted(inst.id, 42), 3.0)
    state.handle(AttemptFinished(Done(inst.id, ok=True, summary={"v": 1})), 4.5)
    observer.worker_lost(42, "worker_exited(1)", inst.label)

    kinds = [(type(e).__name__, getattr(e, "task", "")) for e in bus.events]
    assert kinds == [
        ("TaskQueued", "a"),
        ("TaskStatusChanged", "a"),
        ("InstanceStarted", "a"),
        ("RetryScheduled", "a"),
        ("InstanceStarted", "a"),
        ("InstanceFinished", "a"),
        ("TaskStatusChanged", "a"),
        ("TaskStatusChanged", "b"),
        ("WorkerLost", ""),
    ]
    queued, running, started1, retry, started2, finished, _done_a, done_b, lost = bus.events
    assert isinstance(queued, TaskQueued)
    assert queued.instances == 1
    assert isinstance(running, TaskStatusChanged)
    assert running.status == "Running"
    assert isinstance(started1, InstanceStarted)
    assert (started1.attempt, started1.worker_pid) == (1, 41)
    assert isinstance(retry, RetryScheduled)
    assert (retry.attempt, retry.reason, retry.delay) == (1, "module_failed", 1.0)
    assert isinstance(started2, InstanceStarted)
    assert (started2.attempt, started2.worker_pid) == (2, 42)
    assert isinstance(finished, InstanceFinished)
    assert (finished.attempt, finished.status, finished.duration) == (2, "Completed", 1.5)
    assert finished.summary == {"v": 1}
    assert isinstance(_done_a, TaskStatusChanged)
    # run time (first attempt's start 1.0 to last end 4.5), apart from the time queued
    assert (_done_a.status, _done_a.duration, _done_a.instances) == ("Completed", 3.5, 1)
    assert (_done_a.queued, _done_a.attempts) == (1.0, 2)
    assert retry.error == "x"
    assert isinstance(done_b, TaskStatusChanged)
    assert (done_b.status, done_b.reason) == ("Skipped", "when_false")
    assert isinstance(lost, WorkerLost)
    assert lost.instance == "a"
    assert all(e.run_id == "r1" for e in bus.events)


def test_interrupted_instances_that_never_started_are_finished_too() -> None:
    bus = ListBus()
    state = machine(
        """
        - {name: l, type: passthrough, loop: [1, 2, 3], loop_control: {parallel: 1}}
        """,
        RunObserver(bus, "r"),
    )
    state.start(0.0)
    first = take_one(state)
    assert first is not None
    state.handle(AttemptStarted(first.id, 7), 0.0)
    state.interrupt("interrupted", 1.0)
    state.handle(AttemptLost(first.id, "interrupted", ""), 2.0)
    finished = [e for e in bus.events if isinstance(e, InstanceFinished)]
    assert sorted((e.label, e.status, e.attempt) for e in finished) == [
        ("l[0]", "Cancelled", 1),
        ("l[1]", "Cancelled", 0),
        ("l[2]", "Cancelled", 0),
    ]


def test_a_state_without_a_listener_runs_the_same() -> None:
    state = machine("- {name: a, type: passthrough}\n")
    state.start(0.0)
    inst = take_one(state)
    assert inst is not None
    state.handle(AttemptStarted(inst.id, 1), 0.0)
    state.handle(AttemptFinished(Done(inst.id, ok=True)), 1.0)
    record: TaskRecord = state.tasks["a"]
    assert record.status.value == "Completed"
    assert state.is_finished()
