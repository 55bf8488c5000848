"""The state machine with a RunControl, driven by hand: fail-fast, drain, deadline, resources,
selection and resume decisions. No process, pipe or sleep: ``now`` is a number."""

from __future__ import annotations

import random
import textwrap
from typing import Any

import pytest

from gxo.config.load import load_playbook_text
from gxo.dag import analyse
from gxo.dag.select import select_tasks
from gxo.errors import UsageError
from gxo.journal import Fingerprinter, InstanceEntry, JournalIndex, Resumer
from gxo.scheduler.messages import AttemptFinished, AttemptStarted, Capacity, Kill
from gxo.scheduler.partial import RunControl, check_capacity
from gxo.scheduler.records import InstanceRecord, Status
from gxo.scheduler.state import SchedulerState
from gxo.wire import Done

HEADER = "schemaVersion: v1.0.0\nname: t\nvars: {v: 1}\ntasks:\n"


def machine(tasks_yaml: str, **control: Any) -> SchedulerState:
    playbook = load_playbook_text(HEADER + textwrap.indent(textwrap.dedent(tasks_yaml), "  "))
    plan = analyse(playbook)
    made = RunControl(**control)
    if callable(made.selection):
        made.selection = made.selection(playbook, plan)
    if callable(made.resumer):
        made.resumer = made.resumer(playbook, plan)
        made.fingerprinter = made.resumer.fingerprinter
    return SchedulerState(playbook, plan, rng=random.Random(1), control=made)


def take(state: SchedulerState, now: float = 0.0, room: int = 8) -> list[InstanceRecord]:
    """Every batch the state dispatches to an executor with ``room`` workers."""
    taken: list[InstanceRecord] = []
    while len(taken) < room:
        batch = state.dispatch(Capacity(idle=room - len(taken), pipelined=room), now)
        if not batch:
            break
        taken += [state.instances[d.instance_id] for d in batch]
    return taken


def start(state: SchedulerState, inst: InstanceRecord, now: float = 0.0) -> list[Kill]:
    return state.handle(AttemptStarted(inst.id, 100, 1), now)


def finish(state: SchedulerState, inst: InstanceRecord, ok: bool = True, now: float = 0.0) -> Any:
    done = Done(inst.id, ok=ok, reason="" if ok else "module_failed", error="" if ok else "boom")
    return state.handle(AttemptFinished(done, 7), now)


def outcome(state: SchedulerState, name: str) -> tuple[str, str]:
    record = state.tasks[name]
    return record.status.value, record.reason


THREE = """
- {name: a, type: passthrough}
- {name: b, type: passthrough}
- {name: c, type: passthrough, depends_on: [a]}
"""


def test_fail_fast_cancels_what_has_not_started_and_lets_the_rest_finish() -> None:
    state = machine(THREE, fail_fast=True)
    state.start(0.0)
    a, b = take(state)
    start(state, a)
    start(state, b)
    assert finish(state, b, ok=False) == []  # no kill: running instances finish
    assert outcome(state, "b") == ("Failed", "module_failed")
    finish(state, a)
    assert outcome(state, "a") == ("Completed", "")
    assert outcome(state, "c") == ("Cancelled", "fail_fast")
    assert state.is_finished()
    state.validate()


def test_fail_fast_kill_stops_running_instances_with_the_failing_input_stimulus() -> None:
    state = machine(THREE, fail_fast=True, fail_fast_kill=True)
    state.start(0.0)
    a, b = take(state)
    start(state, a)
    start(state, b)
    assert finish(state, b, ok=False) == [Kill(a.id, "fail_fast", 7)]
    state.handle(
        AttemptFinished(Done(a.id, ok=False, reason="module_raised(X)", error="killed")), 1.0
    )
    assert outcome(state, "a") == ("Cancelled", "fail_fast")


def test_ignored_failure_does_not_fail_fast() -> None:
    state = machine(THREE.replace("{name: b, type: passthrough}", "{name: b, type: passthrough,"
                                  " ignore_errors: true}"), fail_fast=True)  # fmt: skip
    state.start(0.0)
    _, b = take(state)
    start(state, b)
    finish(state, b, ok=False)
    assert not state.interrupted
    assert state.tasks["c"].status is Status.PENDING


def test_drain_lets_running_finish_and_cancels_the_rest() -> None:
    state = machine(THREE)
    state.start(0.0)
    (a,) = take(state, room=1)
    start(state, a)
    state.drain("drained", 1.0)
    finish(state, a)
    assert outcome(state, "a") == ("Completed", "")
    assert outcome(state, "b") == ("Cancelled", "drained")
    assert outcome(state, "c") == ("Cancelled", "drained")
    assert state.work_left


def test_deadline_cancels_an_instance_whose_recorded_time_does_not_fit() -> None:
    index = JournalIndex(
        [InstanceEntry(run="r", task="a", fingerprint="x", parts={}, duration=50.0, at=0)]
    )
    tasks = THREE.replace("depends_on: [a]", "depends_on: [b]")
    state = machine(tasks, deadline=100.0, grace=5.0, index=index)
    state.start(0.0)
    taken = take(state, now=60.0)  # a would end at 110 > 100; b has no record: it starts
    assert [i.task for i in taken] == ["b"]
    assert outcome(state, "a") == ("Cancelled", "deadline")
    assert not state.interrupted  # still dispatching what fits
    start(state, taken[0], 60.0)
    finish(state, taken[0], now=96.0)
    assert take(state, now=96.0) == []  # past the deadline minus the grace: c does not start
    assert outcome(state, "c") == ("Cancelled", "deadline")
    assert state.interrupted == "deadline"
    assert state.work_left


def test_cpus_take_slots_and_a_waiting_instance_holds_back_the_queue() -> None:
    tasks = """
    - {name: big, type: passthrough, resources: {cpus: 2}}
    - {name: big2, type: passthrough, resources: {cpus: 2}}
    - {name: small, type: passthrough}
    """
    state = machine(tasks, slots=3, accounting=True)
    state.start(0.0)
    first = take(state)
    assert [i.task for i in first] == ["big"]
    assert take(state) == []  # big2 needs 2 of the 1 slot left; small waits behind it
    assert state.run_control.in_use() == 2
    start(state, first[0])
    finish(state, first[0])
    assert state.run_control.in_use() == 0
    assert [i.task for i in take(state)] == ["big2", "small"]
    assert state.run_control.in_use() == 3


def test_check_capacity_refuses_what_cannot_fit() -> None:
    playbook = load_playbook_text(
        HEADER
        + "  - {name: p, type: generate:from_list, params: {items: [1]}}\n"
        + "  - {name: q, type: passthrough, stream_inputs: [p], resources: {cpus: 2}}\n"
        + "  - {name: g, type: passthrough, resources: {gpu: 2}}\n"
    )
    groups = [("p", "q")]
    with pytest.raises(UsageError) as err:
        check_capacity(playbook, groups, 2, oversubscribe=False, capacity={"gpu": 1})
    text = str(err.value)
    assert "stream group p, q runs 2 tasks at once (3 worker slots)" in text
    assert "needs 2 of 'gpu' but --resource gives 1" in text
    check_capacity(playbook, groups, 3, oversubscribe=False, capacity={"gpu": 2})


def test_selection_ends_left_out_tasks_first() -> None:
    state = machine(THREE, selection=lambda pb, plan: select_tasks(pb, plan.graph, targets=["c"]))
    state.start(0.0)
    assert outcome(state, "b") == ("Skipped", "not_selected")
    assert [i.task for i in take(state)] == ["a"]


def test_resume_completes_a_matching_instance_without_dispatching_it() -> None:
    tasks = """
    - {name: a, type: passthrough, register: ra, params: {value: "{{ v }}"}}
    - {name: b, type: passthrough, params: {value: "{{ ra }}"}}
    """

    def resumer(playbook: Any, plan: Any) -> Resumer:
        fp = Fingerprinter(plan)
        f = fp.instance(playbook.task("a"), {"v": 1})
        entry = InstanceEntry(
            run="r0", task="a", fingerprint=f.value, parts=f.parts, duration=1, at=0,
            value={"value": 1},
        )  # fmt: skip
        return Resumer(JournalIndex([entry]), fp)

    state = machine(tasks, resumer=resumer)
    state.start(0.0)
    taken = take(state)
    assert [i.task for i in taken] == ["b"]  # a was restored; b runs (no record)
    assert outcome(state, "a") == ("Completed", "resumed")
    assert state.store["ra"] == {"value": 1}
    assert taken[0].namespace["ra"] == {"value": 1}
