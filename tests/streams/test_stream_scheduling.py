"""Stream groups in the scheduler's state machine (no processes) and at validation."""

from __future__ import annotations

import logging
import random
import textwrap

import pytest

from gxo.config.load import load_playbook_text
from gxo.dag import analyse
from gxo.errors import PlaybookError
from gxo.scheduler.messages import (
    AttemptFinished,
    AttemptLost,
    AttemptStarted,
    Capacity,
    Dispatch,
    InstanceReturned,
    StreamEdge,
)
from gxo.scheduler.records import InstanceRecord, Phase, Status, TaskRecord
from gxo.scheduler.state import SchedulerState
from gxo.wire import Done, EdgeStats

HEADER = "schemaVersion: v1.0.0\nname: t\n"


def machine(tasks_yaml: str, extra: str = "", listener: object = None) -> SchedulerState:
    text = HEADER + extra + "tasks:\n" + textwrap.indent(textwrap.dedent(tasks_yaml), "  ")
    playbook = load_playbook_text(text)
    return SchedulerState(
        playbook,
        analyse(playbook),
        listener=listener,  # type: ignore[arg-type]
        rng=random.Random(1),
    )


#: Room for everything: what an executor with many idle workers offers.
ROOMY = Capacity(idle=16, pipelined=16)


def take_group(state: SchedulerState) -> tuple[list[InstanceRecord], list[Dispatch]]:
    batch = state.dispatch(ROOMY)
    return [state.instances[d.instance_id] for d in batch], batch


def test_a_group_is_queued_together_when_its_upstreams_are_done() -> None:
    state = machine("""
    - {name: setup, type: x}
    - {name: p, type: x, depends_on: [setup]}
    - {name: c, type: x, stream_inputs: [p]}
    """)
    state.start(0.0)
    (setup,) = state.dispatch(ROOMY)
    assert setup.task.name == "setup"
    assert setup.inputs == ()
    assert setup.outputs == ()
    assert state.dispatch(ROOMY) == []  # c does not start before p's upstream is done
    state.handle(AttemptStarted(setup.instance_id, 1), 0.0)
    state.handle(AttemptFinished(Done(setup.instance_id, ok=True)), 1.0)
    assert state.dispatch(Capacity(idle=1, pipelined=8)) == []  # two idle workers, at once
    group, (p_run, c_run) = take_group(state)
    assert [i.task for i in group] == ["p", "c"]
    assert p_run.outputs == (StreamEdge("c", 100, "block"),)
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
    assert state.tasks["p"].status is Status.SKIPPED
    for name in ("m", "c"):  # nothing failed: the group is skipped, and says so
        assert (state.tasks[name].status, state.tasks[name].reason) == (
            Status.SKIPPED,
            "upstream_skipped",
        )
        assert "stream group member 'p' did not start (when_false)" in state.tasks[name].error
    # A task after a skipped group runs, as it does after a task skipped by its own `when`.
    (after,) = state.dispatch(ROOMY)
    assert after.task.name == "after"
    state.validate()


def test_member_failed_before_start_fails_the_rest_upstream_failed() -> None:
    state = machine(
        """
    - {name: p, type: x, when: "{{ d.missing }}"}
    - {name: c, type: x, stream_inputs: [p]}
    - {name: after, type: x, depends_on: [c]}
    """,
        extra="vars: {d: {}}\n",
    )
    state.start(0.0)
    assert state.tasks["p"].status is Status.FAILED
    for name in ("c", "after"):
        assert (state.tasks[name].status, state.tasks[name].reason) == (
            Status.SKIPPED,
            "upstream_failed",
        )
    assert state.is_finished()


def test_consumer_failure_leaves_the_completed_producer_alone() -> None:
    state = machine("""
    - {name: p, type: x}
    - {name: c, type: x, stream_inputs: [p]}
    """)
    state.start(0.0)
    (p, c), _ = take_group(state)
    for inst in (p, c):
        state.handle(AttemptStarted(inst.id, 1), 0.0)
    state.handle(AttemptFinished(Done(p.id, ok=True)), 1.0)
    state.handle(AttemptFinished(Done(c.id, ok=False, reason="module_failed")), 2.0)
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
    (p, c), (p_run, c_run) = take_group(state)
    assert c_run.skip_on_no_input
    assert not p_run.skip_on_no_input
    for inst in (p, c):
        state.handle(AttemptStarted(inst.id, 1), 0.0)
    state.handle(AttemptFinished(Done(p.id, ok=True)), 1.0)
    state.handle(AttemptFinished(Done(c.id, ok=True, skipped=True, reason="no_input")), 1.0)
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
    (p, _), _ = take_group(state)
    state.handle(InstanceReturned(p.id), 1.0)
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


@pytest.mark.parametrize(
    ("tasks", "where"),
    [
        (  # the consumer's `when` reads the producer's register
            "- {name: p, type: exec, register: r}\n"
            "- {name: c, type: exec, stream_inputs: [p], when: '{{ r.ok }}'}\n",
            "t.yaml:5:53: $.tasks[1].when: ",
        ),
        (  # a task outside the group reads the producer's status; the consumer waits for it
            "- {name: p, type: exec}\n"
            "- {name: m, type: exec, params: {x: '{{ _gxo.tasks.p.status }}'}}\n"
            "- {name: c, type: exec, stream_inputs: [p], depends_on: [m]}\n",
            "t.yaml:5:35: $.tasks[1].params: ",
        ),
        (
            "- {name: p, type: exec}\n"
            "- {name: c, type: exec, stream_inputs: [p], depends_on: [p]}\n",
            "t.yaml:5:60: $.tasks[1].depends_on[0]: ",
        ),
    ],
)
def test_a_group_that_waits_for_itself_is_reported_where_the_wait_is_written(
    tasks: str, where: str
) -> None:
    """Not on the member waited for, which has nothing to change."""
    with pytest.raises(PlaybookError) as info:
        load_playbook_text(HEADER + "tasks:\n" + textwrap.indent(tasks, "  "), source="t.yaml")
    assert where in str(info.value)


def test_a_consumer_policy_on_a_task_without_inputs_is_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """channel_policy and policy govern a task's inputs: on a producer they change nothing,
    so the load says so (and where they belong) instead of ignoring them silently."""
    tasks = (
        "- {name: p, type: exec, channel_policy: {overflow_strategy: error}}\n"
        "- {name: q, type: exec, policy: {skip_on_no_input: true}}\n"
        "- {name: c, type: exec, stream_inputs: [p], channel_policy: {buffer_size: 5}}\n"
    )
    with caplog.at_level(logging.WARNING, logger="gxo.config"):
        load_playbook_text(HEADER + "tasks:\n" + textwrap.indent(tasks, "  "), source="t.yaml")
    warnings = [r.getMessage() for r in caplog.records if r.name == "gxo.config"]
    assert warnings == [
        "t.yaml:4:27: $.tasks[0].channel_policy: 'channel_policy' of task 'p' has no effect: "
        "it applies to a task's stream inputs, and this task has no 'stream_inputs'\n"
        "    hint: set it on the tasks that stream from it: 'c'",
        "t.yaml:5:27: $.tasks[1].policy: 'policy' of task 'q' has no effect: it applies to a "
        "task's stream inputs, and this task has no 'stream_inputs'\n"
        "    hint: remove it, or add 'stream_inputs' to the task",
    ]


def test_a_default_retry_does_not_apply_to_streaming_tasks() -> None:
    """task_defaults.retry fills in for the tasks that can be retried; a streaming task's own
    retry above 1 attempt is still an error."""
    head = HEADER + "task_defaults: {retry: {attempts: 3}}\ntasks:\n"
    tasks = (
        "- {name: other, type: exec}\n"
        "- {name: p, type: exec}\n"
        "- {name: c, type: exec, stream_inputs: [p]}\n"
    )
    playbook = load_playbook_text(head + textwrap.indent(tasks, "  "))
    attempts = {task.name: task.retry.attempts for task in playbook.tasks}
    assert attempts == {"other": 3, "p": 1, "c": 1}
    own = (
        "- {name: p, type: exec, retry: {attempts: 2}}\n"
        "- {name: c, type: exec, stream_inputs: [p]}\n"
    )
    with pytest.raises(PlaybookError, match=r"task 'p' streams records and cannot be retried"):
        load_playbook_text(head + textwrap.indent(own, "  "))


class _Started:
    """A listener that records which tasks were queued, and which became Running."""

    def __init__(self) -> None:
        self.queued: list[str] = []
        self.names: list[str] = []

    def task_queued(self, record: TaskRecord) -> None:
        self.queued.append(record.name)

    def task_changed(self, record: TaskRecord) -> None:
        if record.status is Status.RUNNING:
            self.names.append(record.name)

    def instance_started(self, inst: InstanceRecord) -> None:
        pass

    def instance_finished(self, inst: InstanceRecord) -> None:
        pass

    def retry_scheduled(self, inst: InstanceRecord, delay: float) -> None:
        pass


def test_group_start_tells_the_listener_of_every_member() -> None:
    listener = _Started()
    state = machine(
        """
    - {name: p, type: x}
    - {name: c, type: x, stream_inputs: [p]}
    """,
        listener=listener,
    )
    state.start(0.0)
    assert listener.queued == ["p", "c"]
    assert listener.names == []  # Running only once a worker starts each one
    batch = state.dispatch(ROOMY)
    assert len(batch) == 2
    for dispatched in batch:
        state.handle(AttemptStarted(dispatched.instance_id, 1), 0.5)
    assert listener.names == ["p", "c"]


def _gone(inst_id: int, undelivered: int = 7) -> Done:
    edge = EdgeStats(producer="p", consumer="c", side="out", records=3, undelivered=undelivered)
    return Done(inst_id, ok=False, reason="consumers_gone", error="gone", streams=[edge])


@pytest.mark.parametrize("order", ["producer_first", "consumer_first"])
@pytest.mark.parametrize(
    ("consumer", "expected"),
    [
        (Done(1, ok=True, summary={"n": 1}), (Status.COMPLETED, "consumer_closed")),
        (Done(1, ok=False, reason="module_failed"), (Status.CANCELLED, "consumer_failed")),
    ],
)
def test_a_producer_whose_consumer_went_away_waits_for_its_outcome(
    order: str, consumer: Done, expected: tuple[Status, str]
) -> None:
    state = machine("""
    - {name: p, type: x, register: produced}
    - {name: c, type: x, stream_inputs: [p]}
    - {name: after, type: x, depends_on: [p]}
    """)
    state.start(0.0)
    (p, c), _ = take_group(state)
    assert c.id == consumer.instance_id
    for inst in (p, c):
        state.handle(AttemptStarted(inst.id, 1), 0.0)
    if order == "producer_first":
        state.handle(AttemptFinished(_gone(p.id)), 1.0)
        assert state.tasks["p"].status is Status.RUNNING  # held: the consumer may still fail
        assert p.phase is Phase.HELD
        assert state.next_deadline() is None
        state.validate()
        state.handle(AttemptFinished(consumer), 2.0)
    else:
        state.handle(AttemptFinished(consumer), 1.0)
        state.handle(AttemptFinished(_gone(p.id)), 2.0)
    record = state.tasks["p"]
    assert (record.status, record.reason) == expected
    assert "7 record(s) were not delivered" in record.error
    assert len(p.attempts) == 1
    assert p.attempts[0].reason == expected[1]  # not the worker's raw consumers_gone
    if expected[0] is Status.COMPLETED:
        assert state.store["produced"] == {"consumer_closed": True, "records_undelivered": 7}
        assert not state.failed
        assert [d.task.name for d in state.dispatch(ROOMY)] == ["after"]  # its dependent runs
    else:
        assert "'c'" in record.error
        assert state.tasks["after"].status is Status.CANCELLED
    state.validate()


def test_an_interrupt_while_a_producer_is_held_cancels_it_as_interrupted() -> None:
    state = machine("""
    - {name: p, type: x}
    - {name: c, type: x, stream_inputs: [p]}
    """)
    state.start(0.0)
    (p, c), _ = take_group(state)
    for inst in (p, c):
        state.handle(AttemptStarted(inst.id, 1), 0.0)
    state.handle(AttemptFinished(_gone(p.id)), 1.0)
    kills = state.interrupt("interrupted", 1.5)
    assert [k.instance_id for k in kills] == [c.id]  # the held producer has no worker to stop
    state.handle(AttemptLost(c.id, "interrupted", ""), 2.0)
    assert (state.tasks["p"].status, state.tasks["p"].reason) == (
        Status.CANCELLED,
        "interrupted",
    )
    assert state.is_finished()
    state.validate()
