"""The scheduler's decisions, driven by hand: events in, instructions out, a manual clock.

No process, pipe or sleep: ``now`` is a number the test chooses.
"""

from __future__ import annotations

import random
import textwrap
from collections.abc import Iterator
from typing import Any

import pytest

from gxo.config.load import load_playbook_text
from gxo.dag import analyse
from gxo.errors import InternalError
from gxo.scheduler.messages import (
    AttemptFinished,
    AttemptLost,
    AttemptStarted,
    Capacity,
    InstanceReturned,
    Kill,
)
from gxo.scheduler.policy import MAX_RETURNS, MAX_WORKER_DEATHS, retry_delay
from gxo.scheduler.records import InstanceRecord, Phase, Status
from gxo.scheduler.state import SchedulerState
from gxo.wire import Done

HEADER = "schemaVersion: v1.0.0\nname: t\n"


def machine(tasks_yaml: str, *, vars_yaml: str = "", seed: int = 1) -> SchedulerState:
    text = (
        HEADER
        + textwrap.dedent(vars_yaml)
        + "tasks:\n"
        + textwrap.indent(textwrap.dedent(tasks_yaml), "  ")
    )
    playbook = load_playbook_text(text)
    return SchedulerState(playbook, analyse(playbook), rng=random.Random(seed))


@pytest.fixture
def checked() -> Iterator[list[SchedulerState]]:
    """States registered here have their invariants checked at teardown."""
    states: list[SchedulerState] = []
    yield states
    for state in states:
        state.validate()


def take_one(state: SchedulerState) -> InstanceRecord | None:
    """The next instance the state dispatches to an executor with room for one."""
    batch = state.dispatch(Capacity(idle=1, pipelined=1))
    return state.instances[batch[0].instance_id] if batch else None


def drain(state: SchedulerState) -> list[InstanceRecord]:
    taken = []
    while (inst := take_one(state)) is not None:
        taken.append(inst)
    return taken


def run_ok(state: SchedulerState, inst: InstanceRecord, now: float, summary: Any = None) -> None:
    state.handle(AttemptStarted(inst.id, 100), now)
    state.handle(AttemptFinished(Done(inst.id, ok=True, summary=summary)), now)


def run_fail(
    state: SchedulerState, inst: InstanceRecord, now: float, reason: str = "module_failed"
) -> None:
    state.handle(AttemptStarted(inst.id, 100), now)
    state.handle(AttemptFinished(Done(inst.id, ok=False, reason=reason, error="boom")), now)


def names(instances: list[InstanceRecord]) -> list[str]:
    return [inst.label for inst in instances]


def test_roots_start_at_once_and_dependents_wait_for_their_register(checked):
    state = machine(
        """
        - {name: a, type: passthrough, register: ra}
        - {name: b, type: passthrough, params: {value: "{{ ra.value }}"}}
        - {name: c, type: passthrough}
        """
    )
    checked.append(state)
    state.start(0.0)
    first = drain(state)
    assert names(first) == ["a", "c"]
    run_ok(state, first[0], 1.0, {"value": 42})
    (b,) = drain(state)
    assert b.task == "b"
    assert b.namespace == {"ra": {"value": 42}}, "only the state b references is sent"
    run_ok(state, b, 2.0)
    run_ok(state, first[1], 2.0)
    assert state.is_finished()
    assert not state.failed


def test_a_failure_skips_dependents_transitively_but_not_independent_tasks(checked):
    state = machine(
        """
        - {name: a, type: passthrough, register: ra}
        - {name: b, type: passthrough, register: rb, params: {value: "{{ ra }}"}}
        - {name: c, type: passthrough, depends_on: [b]}
        - {name: d, type: passthrough}
        """
    )
    checked.append(state)
    state.start(0.0)
    a, d = drain(state)
    run_fail(state, a, 1.0)
    assert state.status_of("b") is Status.SKIPPED
    assert state.tasks["b"].reason == "upstream_failed"
    assert state.tasks["b"].error == "upstream task 'a' did not complete"
    assert state.status_of("c") is Status.SKIPPED
    assert state.tasks["c"].reason == "upstream_failed"
    assert not state.is_finished()
    run_ok(state, d, 1.0)
    assert state.is_finished()
    assert state.failed


def test_ignore_errors_lets_dependents_run_with_the_failure_registered(checked):
    state = machine(
        """
        - {name: a, type: exec, register: ra, ignore_errors: true, params: {command: x}}
        - {name: b, type: passthrough, params: {value: "{{ ra }}"}}
        """
    )
    checked.append(state)
    state.start(0.0)
    (a,) = drain(state)
    state.handle(AttemptStarted(a.id, 1), 0.0)
    state.handle(
        AttemptFinished(
            Done(a.id, ok=False, reason="nonzero_exit(2)", error="exit 2", summary={"exit_code": 2})
        ),
        0.5,
    )
    record = state.tasks["a"]
    assert record.status is Status.FAILED
    assert record.ignored
    (b,) = drain(state)
    assert b.namespace["ra"] == {
        "exit_code": 2,
        "failed": True,
        "reason": "nonzero_exit(2)",
        "error": "exit 2",
    }
    run_ok(state, b, 1.0)
    assert state.is_finished()
    assert not state.failed, "an ignored failure does not fail the run"


def test_a_status_reference_waits_for_any_outcome(checked):
    state = machine(
        """
        - {name: a, type: passthrough}
        - name: handler
          type: passthrough
          when: "{{ _gxo.tasks.a.status == 'Failed' }}"
        """
    )
    checked.append(state)
    state.start(0.0)
    (a,) = drain(state)
    run_fail(state, a, 1.0)
    (handler,) = drain(state)
    assert handler.namespace == {"_gxo": {"tasks": {"a": {"status": "Failed"}}}}
    run_ok(state, handler, 2.0)
    assert state.status_of("handler") is Status.COMPLETED


def test_when_false_skips_and_registers_nothing(checked):
    state = machine(
        """
        - {name: a, type: passthrough, when: "{{ flag }}", register: ra}
        - {name: b, type: passthrough, params: {value: "{{ ra }}"}}
        """,
        vars_yaml="vars: {flag: 'no'}\n",
    )
    checked.append(state)
    state.start(0.0)
    assert state.status_of("a") is Status.SKIPPED
    assert state.tasks["a"].reason == "when_false"
    (b,) = drain(state)
    assert b.namespace == {}  # as in GXO: the register is unset, a reader fails
    assert "ra" not in state.store


def test_a_when_that_cannot_render_fails_the_task_with_template_error(checked):
    state = machine(
        """
        - {name: a, type: passthrough, when: "{{ flag.missing }}"}
        """,
        vars_yaml="vars: {flag: {}}\n",
    )
    checked.append(state)
    state.start(0.0)
    assert state.status_of("a") is Status.FAILED
    assert state.tasks["a"].reason == "template_error"
    assert "missing" in state.tasks["a"].error


def test_retry_waits_with_exponential_backoff_on_the_clock(checked):
    state = machine(
        """
        - name: a
          type: passthrough
          retry: {attempts: 3, delay: 1s, backoff_factor: 2}
        """
    )
    checked.append(state)
    state.start(0.0)
    (a,) = drain(state)
    run_fail(state, a, 10.0)
    assert state.next_deadline() == 11.0
    assert state.tick(10.9) == []
    assert drain(state) == []
    state.tick(11.0)
    (again,) = drain(state)
    assert again is a
    run_fail(state, a, 11.5)
    assert state.next_deadline() == 13.5, "second wait is delay * 2"
    state.tick(13.5)
    (third,) = drain(state)
    run_ok(state, third, 14.0, {"ok": 1})
    assert [att.number for att in a.attempts] == [1, 2, 3]
    assert state.status_of("a") is Status.COMPLETED


def test_retry_stops_at_attempts_and_on_error_false_means_no_retry(checked):
    state = machine(
        """
        - {name: a, type: passthrough, retry: {attempts: 2, delay: 0s}}
        - {name: b, type: passthrough, retry: {attempts: 5, delay: 0s, on_error: false}}
        """
    )
    checked.append(state)
    state.start(0.0)
    a, b = drain(state)
    run_fail(state, b, 0.0)
    assert state.status_of("b") is Status.FAILED
    assert len(b.attempts) == 1
    run_fail(state, a, 0.0)
    state.tick(0.0)
    (a2,) = drain(state)
    run_fail(state, a2, 0.0)
    assert state.status_of("a") is Status.FAILED
    assert len(a.attempts) == 2


@pytest.mark.parametrize("seed", range(20))
def test_jitter_stays_within_its_band_and_max_delay_caps_it(seed):
    from gxo.config.model import RetryPolicy

    policy = RetryPolicy(attempts=9, delay=1.0, backoff_factor=3.0, jitter=0.5, max_delay=5.0)
    rng = random.Random(seed)
    assert 0.5 <= retry_delay(policy, 1, rng) <= 1.5
    assert 1.5 <= retry_delay(policy, 2, rng) <= 4.5
    assert retry_delay(policy, 5, rng) == 5.0


def test_timeout_kills_the_running_instance_and_ends_the_task_without_retry(checked):
    # GXO's timeout bounds the whole task (attempt_timeout bounds one attempt: see
    # test_scheduler_timeouts.py).
    state = machine(
        """
        - {name: a, type: passthrough, timeout: 5s, retry: {attempts: 2, delay: 0s}}
        """
    )
    checked.append(state)
    state.start(0.0)
    (a,) = drain(state)
    state.handle(AttemptStarted(a.id, 7), 1.0)
    assert state.next_deadline() == 6.0
    assert state.tick(5.9) == []
    assert state.tick(6.0) == [Kill(a.id, "timed_out")]
    assert state.tick(7.0) == [], "a kill is asked for once"
    state.handle(AttemptLost(a.id, "timed_out", "killed"), 7.5)
    assert a.attempts[0].reason == "timed_out"
    assert a.attempts[0].error == "stopped: the task's timeout (5s) expired during attempt 1"
    assert drain(state) == [], "no retry after the task's timeout"
    assert state.status_of("a") is Status.FAILED
    assert state.tasks["a"].reason == "timed_out"
    assert state.tasks["a"].error == "timed out after 5s (the whole task)"


def test_a_module_that_keeps_killing_workers_is_not_retried_for_ever(checked):
    state = machine(
        """
        - {name: a, type: passthrough, retry: {attempts: 10, delay: 0s}}
        """
    )
    checked.append(state)
    state.start(0.0)
    (a,) = drain(state)
    for n in range(MAX_WORKER_DEATHS):
        state.handle(AttemptStarted(a.id, 10 + n), float(n))
        state.handle(AttemptLost(a.id, "worker_signaled(SIGSEGV)", "killed by SIGSEGV"), float(n))
        state.tick(float(n))
        retried = drain(state)
        assert retried == ([a] if n < MAX_WORKER_DEATHS - 1 else [])
    assert state.status_of("a") is Status.FAILED
    assert state.tasks["a"].reason == "worker_signaled(SIGSEGV)"
    assert len(a.attempts) == MAX_WORKER_DEATHS
    assert drain(state) == []


def test_returned_instances_go_first_and_are_not_attempts(checked):
    state = machine(
        """
        - {name: a, type: passthrough}
        - {name: b, type: passthrough}
        """
    )
    checked.append(state)
    state.start(0.0)
    a = take_one(state)
    assert a is not None
    state.handle(InstanceReturned(a.id), 0.1)
    assert take_one(state) is a
    assert a.attempts == []
    for _ in range(MAX_RETURNS - 1):
        state.handle(InstanceReturned(a.id), 0.2)
        assert take_one(state) is a
    state.handle(InstanceReturned(a.id), 0.3)
    assert state.status_of("a") is Status.FAILED
    assert state.tasks["a"].reason == "worker_lost"


def test_interrupt_cancels_pending_and_kills_running(checked):
    state = machine(
        """
        - {name: a, type: passthrough, register: ra}
        - {name: b, type: passthrough, params: {value: "{{ ra }}"}}
        - {name: c, type: passthrough}
        """
    )
    checked.append(state)
    state.start(0.0)
    a, c = drain(state)
    state.handle(AttemptStarted(a.id, 1), 0.0)
    kills = state.interrupt("interrupted", 1.0)
    assert kills == [Kill(a.id, "interrupted")]
    assert state.status_of("b") is Status.CANCELLED
    assert state.tasks["b"].reason == "interrupted"
    # c was sent but not yet started: when its worker acknowledges it, it is killed at once.
    assert state.handle(AttemptStarted(c.id, 2), 1.1) == [Kill(c.id, "interrupted")]
    state.handle(AttemptLost(a.id, "interrupted", ""), 1.5)
    state.handle(AttemptLost(c.id, "interrupted", ""), 1.5)
    assert state.status_of("a") is Status.CANCELLED
    assert state.is_finished()
    assert state.interrupt("interrupted", 2.0) == []


def test_loop_parallel_limits_instances_in_flight_and_registers_a_list(checked):
    state = machine(
        """
        - name: a
          type: passthrough
          loop: [1, 2, 3, 4, 5]
          loop_control: {parallel: 2, loop_var: n}
          params: {value: "{{ n }}"}
          register: ra
        """
    )
    checked.append(state)
    state.start(0.0)
    first = drain(state)
    assert names(first) == ["a[0]", "a[1]"]
    assert [i.namespace for i in first] == [{"n": 1}, {"n": 2}]
    run_ok(state, first[1], 1.0, 20)
    (third,) = drain(state)
    assert third.label == "a[2]"
    for inst in [first[0], third]:
        run_ok(state, inst, 2.0, inst.namespace["n"] * 10)
    rest = drain(state)
    assert names(rest) == ["a[3]", "a[4]"]
    for inst in rest:
        run_ok(state, inst, 3.0, inst.namespace["n"] * 10)
    assert state.store["ra"] == [10, 20, 30, 40, 50], "results in item order"


def test_loop_over_a_template_a_mapping_and_nothing(checked):
    state = machine(
        """
        - {name: a, type: passthrough, loop: "{{ users }}"}
        - {name: b, type: passthrough, loop: "{{ sizes }}", loop_control: {parallel: 9}}
        - {name: c, type: passthrough, loop: "{{ nothing }}", register: rc}
        """,
        vars_yaml="vars: {users: [x], sizes: {s: 1, m: 2}, nothing: []}\n",
    )
    checked.append(state)
    state.start(0.0)
    ready = drain(state)
    assert [i.namespace.get("item") for i in ready] == [
        "x",
        {"key": "s", "value": 1},
        {"key": "m", "value": 2},
    ]
    assert state.status_of("c") is Status.COMPLETED
    assert state.store["rc"] == []


def test_a_failed_iteration_fails_the_task_after_the_others_end(checked):
    state = machine(
        """
        - {name: a, type: passthrough, loop: [1, 2, 3], loop_control: {parallel: 3}}
        """
    )
    checked.append(state)
    state.start(0.0)
    i0, i1, i2 = drain(state)
    run_fail(state, i1, 1.0)
    assert state.status_of("a") is Status.RUNNING
    run_ok(state, i0, 1.0)
    run_fail(state, i2, 1.0)
    assert state.status_of("a") is Status.FAILED
    assert state.tasks["a"].error == "a[1]: boom (and 1 more iteration(s) failed)"


def test_the_run_timeout_cancels_everything(checked):
    state = machine(
        """
        - {name: a, type: passthrough}
        - {name: b, type: passthrough, depends_on: [a]}
        """
    )
    checked.append(state)
    state.start(0.0)
    (a,) = drain(state)
    state.handle(AttemptStarted(a.id, 1), 0.0)
    assert state.interrupt("run_timed_out", 9.0) == [Kill(a.id, "run_timed_out")]
    state.handle(AttemptLost(a.id, "run_timed_out", ""), 9.1)
    assert state.tasks["a"].status is Status.CANCELLED
    assert state.tasks["b"].reason == "run_timed_out"


def test_an_illegal_status_change_is_an_internal_error():
    state = machine("- {name: a, type: passthrough}\n")
    state.start(0.0)
    (a,) = drain(state)
    run_ok(state, a, 1.0)
    with pytest.raises(InternalError, match="illegal status change Completed -> Running"):
        state._set_status(state.tasks["a"], Status.RUNNING)


def test_dispatch_carries_the_task_raw_params_and_the_state_copy():
    state = machine(
        """
        - {name: a, type: exec, params: {command: "echo {{ x }}", args: ["{{ secret('K') }}"]}}
        """,
        vars_yaml="vars: {x: 1, unused: big}\n",
    )
    state.start(0.0)
    (dispatch,) = state.dispatch(Capacity(idle=4, pipelined=4))
    assert dispatch.task.params == {"command": "echo {{ x }}", "args": ["{{ secret('K') }}"]}
    assert dispatch.namespace == {"x": 1}
    assert dispatch.attempt == 1
    assert dispatch.task.type == "exec"
    assert dispatch.label == "a"
    assert state.dispatch(Capacity(idle=4, pipelined=4)) == []


@pytest.mark.parametrize("reason", ["template_error", "bad_params", "secret_missing"])
def test_failures_a_retry_cannot_fix_are_not_retried(checked, reason):
    state = machine(
        """
        - {name: a, type: passthrough, retry: {attempts: 5, delay: 0s}}
        """
    )
    checked.append(state)
    state.start(0.0)
    (a,) = drain(state)
    run_fail(state, a, 1.0, reason=reason)
    assert state.status_of("a") is Status.FAILED
    assert len(a.attempts) == 1
    assert state.next_deadline() is None


def test_an_illegal_phase_change_is_a_gxo_bug(checked):
    state = machine("- {name: a, type: passthrough}\n")
    checked.append(state)
    state.start(0.0)
    (a,) = drain(state)
    with pytest.raises(InternalError, match="illegal phase change dispatched -> retry_wait"):
        state._move(a, Phase.RETRY_WAIT)
    run_ok(state, a, 1.0)
    with pytest.raises(InternalError, match="illegal phase change done -> running"):
        state.handle(AttemptStarted(a.id, 1), 2.0)


def test_kills_carry_the_stimulus_that_caused_them(checked):
    state = machine("- {name: a, type: passthrough, timeout: 5s}\n")
    checked.append(state)
    state.start(0.0)
    (a,) = drain(state)
    state.handle(AttemptStarted(a.id, 1, stimulus_id=7), 0.0)
    assert state.tick(6.0, stimulus_id=8) == [Kill(a.id, "timed_out", 8)]
    state.handle(AttemptLost(a.id, "timed_out", "", stimulus_id=9), 6.5)
    assert state.status_of("a") is Status.FAILED


def test_short_tasks_are_dispatched_in_batches_within_the_pipelined_capacity(checked):
    state = machine(
        """
        - {name: l, type: passthrough, loop: [1, 2, 3, 4, 5, 6], loop_control: {parallel: 6}}
        """
    )
    checked.append(state)
    state.start(0.0)
    (first,) = state.dispatch(Capacity(idle=1, pipelined=4))  # not known to be short yet
    assert not first.queue_behind
    run_ok(state, state.instances[first.instance_id], 0.001)  # a 0 s attempt: short
    batch = state.dispatch(Capacity(idle=1, pipelined=4))
    assert [d.label for d in batch] == ["l[1]", "l[2]", "l[3]", "l[4]"]
    assert all(d.queue_behind for d in batch)


def test_one_dispatch_takes_many_independent_tasks_alike_in_queueing(checked):
    """One call per batch, not one per task: the loop's cost per dispatch (capacity asked of
    the executor, the call itself) is paid once for a wave of independent tasks."""
    state = machine(
        """
        - {name: a, type: passthrough}
        - {name: b, type: passthrough}
        - {name: slow, type: passthrough, timeout: 5s}
        - {name: c, type: passthrough}
        """
    )
    checked.append(state)
    state.start(0.0)
    batch = state.dispatch(Capacity(idle=2, pipelined=8))  # none known short: idle room only
    assert [d.label for d in batch] == ["a", "b"]
    for d in batch:
        run_ok(state, state.instances[d.instance_id], 0.001)  # passthrough is short now
    # `slow` has a timeout, so it never waits behind another instance; `c` may: not alike.
    (slow,) = state.dispatch(Capacity(idle=2, pipelined=8))
    assert (slow.label, slow.queue_behind) == ("slow", False)
    (c,) = state.dispatch(Capacity(idle=1, pipelined=8))
    assert (c.label, c.queue_behind) == ("c", True)


def test_a_lost_attempt_keeps_what_its_command_printed_and_the_processes_killed(checked):
    from gxo.outputs import CapturedOutput

    state = machine(
        """
        - {name: a, type: passthrough, timeout: 5s}
        """
    )
    checked.append(state)
    state.start(0.0)
    (a,) = drain(state)
    state.handle(AttemptStarted(a.id, 7), 1.0)
    printed = CapturedOutput(name="stdout", bytes=6, kept=6, tail=["hello"], path="/x.stdout")
    state.handle(
        AttemptLost(a.id, "timed_out", "killed", outputs=(printed,), processes_killed=2), 6.5
    )
    attempt = a.attempts[0]
    assert (attempt.outputs, attempt.processes_killed) == ([printed], 2)
    assert attempt.error == (
        "stopped: the task's timeout (5s) expired during attempt 1; "
        "2 process(es) it started were killed"
    )


def test_a_task_released_at_start_by_a_false_when_runs_once(checked):
    # start() used to consider b again after a's false `when` had released it: b got a
    # second instance and ran twice.
    state = machine(
        """
        - {name: a, type: passthrough, when: "{{ false }}"}
        - {name: b, type: passthrough, depends_on: [a]}
        """
    )
    checked.append(state)
    state.start(0.0)
    (b,) = drain(state)
    run_ok(state, b, 1.0)
    assert drain(state) == []
    assert state.is_finished()
    assert len(state.tasks["b"].instances) == 1
