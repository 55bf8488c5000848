"""The scheduler's observer hooks and the events they become, without processes or sleeps.

The state machine calls plain callbacks; :class:`gxo.scheduler.notify.RunObserver` turns them into
events. Driven by hand with a manual clock, like ``tests/unit/test_scheduler_state.py``.
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
    TaskStatusChanged,
    WorkerLost,
)
from gxo.scheduler.notify import RunObserver
from gxo.scheduler.records import TaskRecord
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


def machine(tasks_yaml: str) -> SchedulerState:
    text = "schemaVersion: v1.0.0\nname: t\ntasks:\n" + textwrap.indent(
        textwrap.dedent(tasks_yaml), "  "
    )
    playbook = load_playbook_text(text)
    return SchedulerState(playbook, analyse(playbook), rng=random.Random(1))


def test_hooks_become_events_in_order() -> None:
    state = machine(
        """
        - {name: a, type: passthrough, retry: {attempts: 2, delay: 1s}}
        - {name: b, type: passthrough, depends_on: [a], when: false}
        """
    )
    ended: list[str] = []
    state.on_task_end = lambda record: ended.append(record.name)  # the CLI's hook, kept
    bus = ListBus()
    observer = RunObserver(bus, "r1", state)
    state.start(0.0)
    inst = state.take_ready()
    assert inst is not None
    state.started(inst.id, 41, 1.0)
    state.finished_attempt(Done(inst.id, ok=False, reason="module_failed", error="x"), 2.0)
    assert state.tick(2.5) == []
    state.tick(3.0)  # the retry is due
    again = state.take_ready()
    assert again is inst
    state.started(inst.id, 42, 3.0)
    state.finished_attempt(Done(inst.id, ok=True, summary={"v": 1}), 4.5)
    observer.worker_lost(42, "worker_exited(1)", inst.id)

    kinds = [(type(e).__name__, getattr(e, "task", "")) for e in bus.events]
    assert kinds == [
        ("TaskStatusChanged", "a"),
        ("InstanceStarted", "a"),
        ("RetryScheduled", "a"),
        ("InstanceStarted", "a"),
        ("InstanceFinished", "a"),
        ("TaskStatusChanged", "a"),
        ("TaskStatusChanged", "b"),
        ("WorkerLost", ""),
    ]
    assert ended == ["a", "b"]
    running, started1, retry, started2, finished, _done_a, done_b, lost = bus.events
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
    assert isinstance(done_b, TaskStatusChanged)
    assert (done_b.status, done_b.reason) == ("Skipped", "when_false")
    assert isinstance(lost, WorkerLost)
    assert lost.instance == "a"
    assert all(e.run_id == "r1" for e in bus.events)


def test_interrupted_instances_that_never_started_are_finished_too() -> None:
    state = machine(
        """
        - {name: l, type: passthrough, loop: [1, 2, 3], loop_control: {parallel: 1}}
        """
    )
    bus = ListBus()
    RunObserver(bus, "r", state)
    state.start(0.0)
    first = state.take_ready()
    assert first is not None
    state.started(first.id, 7, 0.0)
    state.interrupt("interrupted", 1.0)
    state.lost(first.id, "interrupted", "", 2.0)
    finished = [e for e in bus.events if isinstance(e, InstanceFinished)]
    assert sorted((e.label, e.status, e.attempt) for e in finished) == [
        ("l[0]", "Cancelled", 1),
        ("l[1]", "Cancelled", 0),
        ("l[2]", "Cancelled", 0),
    ]


def test_no_hooks_without_subscribers() -> None:
    state = machine("- {name: a, type: passthrough}\n")
    assert state.on_task_start is None
    assert state.on_instance_start is None
    assert state.on_instance_end is None
    assert state.on_retry is None
    record: TaskRecord = state.tasks["a"]
    assert record.status.value == "Pending"
