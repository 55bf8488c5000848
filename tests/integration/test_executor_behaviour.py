"""One behaviour suite for the scheduler's loop and state machine, over both executors.

Each test runs a playbook through :func:`gxo.scheduler.loop.run_loop` on the in-process
executor (instances run inline, on a manual clock: no process, no sleep) and on the real
process pool, and asserts the same outcome. Crash isolation and timeouts need real processes
and are tested on the pool alone (``test_crash_isolation.py``, ``test_timeouts.py``).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from itest_support import substitute

import gxo
from gxo.executors.inline import InlineExecutor, ManualClock
from gxo.pool.process_pool import ProcessPool
from gxo.scheduler.loop import run_loop
from gxo.scheduler.records import Status
from gxo.scheduler.state import SchedulerState

STREAM_FUNCS = Path(__file__).resolve().parent.parent / "streams" / "funcs.py"

Drive = Callable[..., SchedulerState]


class _Interrupted:
    """Interrupts as the engine's signal handler counts them: one, from the start."""

    count = 1


@pytest.fixture(params=["inline", "process"])
def drive(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Drive]:
    """Run a playbook's text to the end on one executor; its final state machine."""
    states: list[SchedulerState] = []

    def run(
        text: str, *, interrupted: bool = False, run_timeout: float | None = None, **subs: object
    ) -> SchedulerState:
        loaded = gxo.load(substitute(text, tmp_path, STREAMS=STREAM_FUNCS, **subs))
        state = SchedulerState(loaded.playbook, loaded.plan, rng=random.Random(1))
        interrupts = _Interrupted() if interrupted else None
        if request.param == "inline":
            clock = ManualClock()
            run_loop(
                state,
                InlineExecutor(2, clock=clock),
                clock=clock,
                interrupts=interrupts,
                run_timeout=run_timeout,
            )
        else:
            with ProcessPool(2, grace=0.5) as pool:
                run_loop(state, pool, interrupts=interrupts, run_timeout=run_timeout)
        states.append(state)
        return state

    yield run
    for state in states:
        state.validate()


def outcome(state: SchedulerState, task: str) -> tuple[str, str]:
    record = state.tasks[task]
    return record.status.value, record.reason


HEAD = "schemaVersion: v1.0.0\nname: behaviour\n"


def test_registered_results_flow_to_dependents(drive: Drive) -> None:
    state = drive(
        HEAD
        + """
tasks:
  - name: a
    type: python
    register: ra
    params: {function: "@FUNCS@/crash.py:ok", kwargs: {value: 41}}
  - name: b
    type: python
    register: rb
    params: {function: "@FUNCS@/crash.py:ok", kwargs: {value: "{{ ra.value + 1 }}"}}
"""
    )
    assert state.store["rb"] == {"value": 42}
    assert not state.failed


def test_a_failure_skips_its_dependents_but_not_the_others(drive: Drive) -> None:
    state = drive(
        HEAD
        + """
tasks:
  - {name: bad, type: python, register: r, params: {function: "@FUNCS@/crash.py:raise_value_error"}}
  - {name: after, type: exec, depends_on: [bad], params: {command: "true"}}
  - {name: later, type: exec, depends_on: [after], params: {command: "true"}}
  - {name: other, type: exec, params: {command: "true"}}
  - name: watcher
    type: python
    register: seen
    params: {function: "@FUNCS@/crash.py:ok", kwargs: {value: "{{ _gxo.tasks.bad.status }}"}}
"""
    )
    assert outcome(state, "bad") == ("Failed", "module_raised(ValueError)")
    assert outcome(state, "after") == ("Skipped", "upstream_failed")
    assert outcome(state, "later") == ("Skipped", "upstream_failed")
    assert outcome(state, "other") == ("Completed", "")
    assert state.store["seen"] == {"value": "Failed"}  # a status edge waits, whatever happens
    assert state.failed


def test_ignored_failures_register_and_let_dependents_run(drive: Drive) -> None:
    state = drive(
        HEAD
        + """
tasks:
  - name: bad
    type: exec
    register: r
    ignore_errors: true
    params: {command: sh, args: ["-c", "echo out; exit 3"]}
  - name: after
    type: python
    register: got
    params: {function: "@FUNCS@/crash.py:ok", kwargs: {value: "{{ r.reason }}"}}
"""
    )
    assert state.tasks["bad"].ignored
    assert state.store["got"] == {"value": "nonzero_exit(3)"}
    assert not state.failed


def test_when_and_loops(drive: Drive) -> None:
    state = drive(
        HEAD
        + """
vars: {items: [3, 1, 2]}
tasks:
  - {name: never, type: exec, when: false, params: {command: "true"}}
  - name: each
    type: python
    register: each
    loop: "{{ items }}"
    loop_control: {parallel: 2}
    params: {function: "@FUNCS@/crash.py:ok", kwargs: {value: "{{ item * 10 }}"}}
"""
    )
    assert outcome(state, "never") == ("Skipped", "when_false")
    # every item's result in item order, each with its own outcome (issue 12)
    ok = {"failed": False, "reason": "", "error": None}
    assert state.store["each"] == [{"value": v, **ok} for v in (30, 10, 20)]


def test_retries_wait_their_delay_and_then_succeed(drive: Drive, tmp_path: Path) -> None:
    state = drive(
        HEAD
        + """
tasks:
  - name: flaky
    type: python
    retry: {attempts: 3, delay: 200ms}
    params:
      function: "@FUNCS@/behave.py:fail_first"
      kwargs: {marker: "@TMP@/calls", failures: 2}
"""
    )
    assert outcome(state, "flaky") == ("Completed", "")
    (inst,) = state.tasks["flaky"].instances
    assert [a.reason for a in inst.attempts] == [
        "module_raised(ConnectionError)",
        "module_raised(ConnectionError)",
        "",
    ]
    first, second, _ = inst.attempts
    assert first.ended_at is not None
    assert second.started_at is not None
    assert second.started_at - first.ended_at >= 0.2 - 0.001
    assert (tmp_path / "calls").read_text() == "3"


def test_a_module_that_says_no_retry_is_not_retried(drive: Drive, tmp_path: Path) -> None:
    state = drive(
        HEAD
        + """
tasks:
  - name: refuse
    type: python
    retry: {attempts: 3, delay: 0s}
    params: {function: "@FUNCS@/behave.py:refuse", kwargs: {marker: "@TMP@/calls", retry: false}}
"""
    )
    assert outcome(state, "refuse") == ("Failed", "credentials_refused")
    assert len(state.tasks["refuse"].instances[0].attempts) == 1


def test_a_stream_group_starts_together_and_records_flow(drive: Drive) -> None:
    state = drive(
        HEAD
        + """
tasks:
  - {name: p, type: python, params: {function: "@STREAMS@:produce", kwargs: {count: 500}}}
  - name: c
    type: python
    register: got
    stream_inputs: [p]
    params: {function: "@STREAMS@:consume"}
"""
    )
    assert outcome(state, "p") == ("Completed", "")
    assert state.store["got"]["seen"] == list(range(500))


def test_an_interrupted_run_cancels_everything(drive: Drive) -> None:
    state = drive(
        HEAD
        + """
tasks:
  - {name: a, type: exec, params: {command: "true"}}
  - {name: b, type: exec, depends_on: [a], params: {command: "true"}}
""",
        interrupted=True,
    )
    assert outcome(state, "a") == ("Cancelled", "interrupted")
    assert outcome(state, "b") == ("Cancelled", "interrupted")
    assert state.interrupted == "interrupted"


def test_the_run_timeout_cancels_a_retry_that_would_come_too_late(drive: Drive) -> None:
    state = drive(
        HEAD
        + """
tasks:
  - name: bad
    type: python
    retry: {attempts: 2, delay: 30s}
    params: {function: "@FUNCS@/crash.py:raise_value_error"}
""",
        run_timeout=0.3,
    )
    assert outcome(state, "bad") == ("Cancelled", "run_timed_out")
    assert state.tasks["bad"].status is Status.CANCELLED


def test_a_tasks_output_limit_reaches_its_command(drive: Drive) -> None:
    state = drive(
        HEAD
        + """
limits: {output: 10KiB}
tasks:
  - {name: chatty, type: exec, params: {command: [head, -c, "50000", /dev/zero]}}
  - name: allowed
    type: exec
    limits: {output: 100KiB}
    params: {command: [head, -c, "50000", /dev/zero]}
"""
    )
    assert outcome(state, "chatty") == ("Failed", "limit_exceeded(output)")
    assert outcome(state, "allowed") == ("Completed", "")
    outputs = state.tasks["allowed"].instances[0].attempt.outputs
    [stdout] = [o for o in outputs if o.name == "stdout"]
    assert stdout.bytes == 50000
