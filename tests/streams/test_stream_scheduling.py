"""Stream groups in the scheduler's state machine (no processes) and at validation."""

from __future__ import annotations

import random
import textwrap

import pytest

from gxo.config import load_playbook_text
from gxo.dag import analyse
from gxo.errors import PlaybookError
from gxo.pool.protocol import Done, StreamOutput
from gxo.scheduler.records import Status
from gxo.scheduler.state import SchedulerState

HEADER = "schemaVersion: v1.0.0\nname: t\n"


def machine(tasks_yaml: str, extra: str = "") -> SchedulerState:
    text = HEADER + extra + "tasks:\n" + textwrap.indent(textwrap.dedent(tasks_yaml), "  ")
    playbook = load_playbook_text(text)
    return SchedulerState(playbook, analyse(playbook), rng=random.Random(1))


def test_a_group_is_queued_together_when_its_upstreams_are_done() -> None:
    state = machine("""
    - {name: setup, type: x}
    - {name: p, type: x, depends_on: [setup]}
    - {name: c, type: x, stream_inputs: [p]}
    """)
    state.start(0.0)
    assert state.peek_ready_group() == 0
    (setup,) = [state.take_ready()]
    assert setup is not None
    assert setup.task == "setup"
    assert not state.has_ready()  # c does not start before p's upstream is done
    state.started(setup.id, 1, 0.0)
    state.finished_attempt(Done(setup.id, ok=True), 1.0)
    assert state.has_ready()
    assert state.peek_ready_group() == 2
    group = state.take_group()
    assert [i.task for i in group] == ["p", "c"]
    p_run, c_run = (state.make_run(i) for i in group)
    assert p_run.outputs == (StreamOutput("c", 100, "block"),)
    assert p_run.inputs == ()
    assert c_run.inputs == ("p",)
    assert c_run.outputs == ()
    state.validate()


def test_member_skipped_before_start_skips_the_rest() -> None:
    state = machine("""
    - {name: p, type: x, when: false}
    - {name: m, type: x, stream_inputs: [p]}
    - {name: c, type: x, stream_inputs: [m]}
    - {name: after, type: x, depends_on: [c]}
    """)
    state.start(0.0)
    assert not state.has_ready()
    assert state.tasks["p"].status is Status.SKIPPED
    for name in ("m", "c", "after"):
        assert (state.tasks[name].status, state.tasks[name].reason) == (
            Status.SKIPPED,
            "upstream_failed",
        )
    assert state.is_finished()
    state.validate()


def test_consumer_failure_leaves_the_completed_producer_alone() -> None:
    state = machine("""
    - {name: p, type: x}
    - {name: c, type: x, stream_inputs: [p]}
    """)
    state.start(0.0)
    p, c = state.take_group()
    for inst in (p, c):
        state.started(inst.id, 1, 0.0)
    state.finished_attempt(Done(p.id, ok=True), 1.0)
    state.finished_attempt(Done(c.id, ok=False, reason="module_failed"), 2.0)
    assert state.tasks["p"].status is Status.COMPLETED
    assert state.tasks["c"].status is Status.FAILED


def test_skip_on_no_input_is_a_skip() -> None:
    state = machine(
        """
    - {name: p, type: x}
    - {name: c, type: x, register: r, stream_inputs: [p]}
    """,
        extra="task_policy: {skip_on_no_input: true}\n",
    )
    state.start(0.0)
    p, c = state.take_group()
    assert state.make_run(c).skip_on_no_input
    assert not state.make_run(p).skip_on_no_input
    for inst in (p, c):
        state.started(inst.id, 1, 0.0)
    state.finished_attempt(Done(p.id, ok=True), 1.0)
    state.finished_attempt(Done(c.id, ok=True, skipped=True, reason="no_input"), 1.0)
    assert (state.tasks["c"].status, state.tasks["c"].reason) == (Status.SKIPPED, "no_input")
    assert "r" not in state.store  # a Skipped task registers nothing
    assert not state.failed
    state.validate()


def test_a_group_member_returned_by_a_dead_worker_fails() -> None:
    state = machine("""
    - {name: p, type: x}
    - {name: c, type: x, stream_inputs: [p]}
    """)
    state.start(0.0)
    p, _ = state.take_group()
    state.returned(p.id, 1.0)
    assert (state.tasks["p"].status, state.tasks["p"].reason) == (Status.FAILED, "worker_lost")


@pytest.mark.parametrize(
    ("tasks", "message"),
    [
        (
            "- {name: p, type: exec, loop: [1, 2]}\n- {name: c, type: exec, stream_inputs: [p]}\n",
            "task 'p' streams records and cannot loop",
        ),
        (
            "- {name: p, type: exec}\n"
            "- {name: c, type: exec, stream_inputs: [p], retry: {attempts: 2}}\n",
            "task 'c' streams records and cannot be retried (retry.attempts is 2)",
        ),
        (
            "- {name: p, type: exec, register: r}\n"
            "- {name: m, type: exec, params: {x: '{{ r }}'}}\n"
            "- {name: c, type: exec, stream_inputs: [p], depends_on: [m]}\n",
            "stream group p, c starts all its tasks together, but a register edge p -> m",
        ),
    ],
)
def test_validation_refuses_streams_that_cannot_work(tasks: str, message: str) -> None:
    with pytest.raises(PlaybookError) as info:
        load_playbook_text(HEADER + "tasks:\n" + textwrap.indent(tasks, "  "))
    assert message in str(info.value)


def test_group_start_calls_the_task_start_hook_for_every_member() -> None:
    state = machine("""
    - {name: p, type: x}
    - {name: c, type: x, stream_inputs: [p]}
    """)
    started: list[str] = []
    state.on_task_start = lambda record: started.append(record.name)
    state.start(0.0)
    assert started == ["p", "c"]
