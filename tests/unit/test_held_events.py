"""HeldEvents (gxo.scheduler.notify): what ended is told after the dispatch it released, in
the order the state decided it and with what was true then, and never later than slow work
of the parent's own (a ``when`` rendered in the same step).

The state machine is driven by hand (no process); the inner listener records each call with
the status it reads at that moment, as the run's observer would build its event then.
"""

from __future__ import annotations

import random
import textwrap
from typing import Any

from gxo.config.load import load_playbook_text
from gxo.dag import analyse
from gxo.scheduler.messages import AttemptFinished, AttemptStarted, Capacity
from gxo.scheduler.notify import HOLD_LIMIT, HeldEvents
from gxo.scheduler.records import InstanceRecord, TaskRecord
from gxo.scheduler.state import SchedulerState
from gxo.wire import Done


class Recorder:
    """The inner listener: each call with the status read when it is made."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str]] = []

    def task_queued(self, record: TaskRecord) -> None:
        self.calls.append(("queued", record.name, record.status.value))

    def task_changed(self, record: TaskRecord) -> None:
        self.calls.append(("changed", record.name, record.status.value))

    def instance_started(self, inst: InstanceRecord) -> None:
        self.calls.append(("started", inst.label, inst.status.value))

    def instance_finished(self, inst: InstanceRecord) -> None:
        self.calls.append(("finished", inst.label, inst.status.value))

    def retry_scheduled(self, inst: InstanceRecord, delay: float) -> None:
        self.calls.append(("retry", inst.label, inst.status.value))


def _state(
    tasks: str, *, settle: bool = True, vars_yaml: str = ""
) -> tuple[SchedulerState, HeldEvents, Recorder]:
    text = (
        "schemaVersion: v1.0.0\nname: t\n"
        + vars_yaml
        + "tasks:\n"
        + textwrap.indent(textwrap.dedent(tasks), "  ")
    )
    playbook = load_playbook_text(text)
    inner = Recorder()
    held = HeldEvents(inner)
    state = SchedulerState(
        playbook,
        analyse(playbook),
        rng=random.Random(1),
        listener=held,
        settle=held.flush if settle else None,
    )
    return state, held, inner


def _run_one(state: SchedulerState, now: float) -> int:
    (dispatch,) = state.dispatch(Capacity(idle=1, pipelined=1), now)
    state.handle(AttemptStarted(dispatch.instance_id, 100), now)
    return dispatch.instance_id


CHAIN = """\
- {name: a, type: passthrough}
- {name: b, type: passthrough, depends_on: [a]}
"""


def test_what_ended_is_told_after_the_dispatch_in_order_and_as_it_was() -> None:
    state, held, inner = _state(CHAIN)
    state.start(0.0)
    held.flush()
    a = _run_one(state, 1.0)
    assert inner.calls[-2:] == [("changed", "a", "Running"), ("started", "a", "Running")]
    told = len(inner.calls)
    state.handle(AttemptFinished(Done(a, ok=True)), 2.0)
    # a ended and b was queued: nothing told yet, so b can be dispatched first.
    assert len(inner.calls) == told
    (dispatch,) = state.dispatch(Capacity(idle=1, pipelined=1), 2.0)
    held.flush()  # the loop's housekeeping, after the dispatch
    assert inner.calls[told:] == [
        ("finished", "a", "Completed"),
        ("changed", "a", "Completed"),
        ("queued", "b", "Pending"),
    ]
    # Something not final (b became Running) is passed on at once, after anything held.
    state.handle(AttemptStarted(dispatch.instance_id, 100), 3.0)
    assert inner.calls[-2:] == [("changed", "b", "Running"), ("started", "b", "Running")]
    state.handle(AttemptFinished(Done(dispatch.instance_id, ok=True)), 4.0)
    held.flush()
    assert inner.calls[-2:] == [("finished", "b", "Completed"), ("changed", "b", "Completed")]
    assert state.is_finished()


def test_a_when_rendered_in_the_same_step_comes_after_what_ended_is_told() -> None:
    # The parent renders b's `when` right after a ends (it may take up to --render-timeout):
    # a's end is told before that render, not after it.
    rendered_after: list[list[tuple[str, str, str]]] = []
    state, _, inner = _state(
        CHAIN.replace("depends_on: [a]}", 'depends_on: [a], when: "{{ probe() }}"}'),
        vars_yaml="vars: {probe: 0}\n",
    )
    state.store["probe"] = lambda: rendered_after.append(list(inner.calls)) or True
    state.start(0.0)
    a = _run_one(state, 1.0)
    state.handle(AttemptFinished(Done(a, ok=True)), 2.0)
    assert rendered_after, "b's when was not rendered"
    assert ("changed", "a", "Completed") in rendered_after[0]
    assert ("finished", "a", "Completed") in rendered_after[0]


def test_without_settle_the_same_when_would_wait_for_the_flush() -> None:
    # The check above is not vacuous: without the state's settle call, a's end is still
    # held while the `when` renders.
    rendered_after: list[list[tuple[str, str, str]]] = []
    state, _, inner = _state(
        CHAIN.replace("depends_on: [a]}", 'depends_on: [a], when: "{{ probe() }}"}'),
        settle=False,
        vars_yaml="vars: {probe: 0}\n",
    )
    state.store["probe"] = lambda: rendered_after.append(list(inner.calls)) or True
    state.start(0.0)
    a = _run_one(state, 1.0)
    state.handle(AttemptFinished(Done(a, ok=True)), 2.0)
    assert rendered_after
    assert ("changed", "a", "Completed") not in rendered_after[0]


def test_no_more_than_the_limit_is_held() -> None:
    loop: Any = list(range(HOLD_LIMIT + 10))
    state, held, inner = _state(
        f"- {{name: each, type: passthrough, loop: {loop}, loop_control: {{parallel: 1000}}}}\n"
    )
    state.start(0.0)
    held.flush()
    batch = state.dispatch(Capacity(idle=1000, pipelined=1000), 1.0)
    for dispatch in batch:
        state.handle(AttemptStarted(dispatch.instance_id, 100), 1.0)
    told = len(inner.calls)
    for dispatch in batch:
        state.handle(AttemptFinished(Done(dispatch.instance_id, ok=True)), 2.0)
    finished = [c for c in inner.calls[told:] if c[0] == "finished"]
    assert HOLD_LIMIT <= len(finished) < len(batch)  # passed on at the limit, the rest held
    held.flush()
    assert len([c for c in inner.calls[told:] if c[0] == "finished"]) == len(batch)
