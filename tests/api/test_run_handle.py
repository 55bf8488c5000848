"""``gxo.start``'s handle as a long-lived program uses it: several runs, one bus, controls
used early, twice, or late."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

import gxo
from gxo.events import InstanceStarted, RunFinished, RunStarted

QUICK = "schemaVersion: v1.0.0\nname: quick\ntasks: [{name: a, type: passthrough}]\n"


def test_a_handle_leaves_the_callers_bus_when_its_run_ends() -> None:
    """The handle subscribed its queue to the bus it was given and never left: every later
    run on that bus filled the queues of all the handles before it, unread, for as long as
    the bus lived."""
    bus = gxo.EventBus()
    mine: list[object] = []
    bus.subscribe(mine.append)
    first = gxo.start(QUICK, workers=1, events=bus)
    first.wait(timeout=30)
    got = list(first.events())
    for _ in range(2):
        gxo.start(QUICK, workers=1, events=bus).wait(timeout=30)
    assert len(bus._subscribers) == 1  # only the caller's own subscriber is left
    assert list(first.events()) == []  # the later runs sent it nothing
    assert isinstance(got[0], RunStarted)
    assert isinstance(got[-1], RunFinished)
    assert sum(isinstance(e, RunFinished) for e in mine) == 3


def test_cancel_before_the_run_started_and_twice() -> None:
    handle = gxo.start(
        "schemaVersion: v1.0.0\nname: s\ntasks:\n"
        "  - {name: nap, type: exec, params: {command: sleep, args: ['60']}}\n"
        "  - {name: then, type: passthrough, depends_on: [nap]}\n",
        workers=1,
        grace=0.2,
    )
    handle.cancel()
    handle.cancel()
    result = handle.wait(timeout=30)
    assert result.exit_code == 130
    assert {name: task.status for name, task in result.tasks.items()} == {
        "nap": "Cancelled",
        "then": "Cancelled",
    }
    handle.cancel()  # after the end: nothing to do, no error


CHAIN = """
schemaVersion: v1.0.0
name: chain
tasks:
  - name: first
    type: exec
    params: {{command: sh, args: ["-c", "while [ ! -e {go} ]; do sleep 0.01; done"]}}
  - name: second
    type: passthrough
    depends_on: [first]
"""


def test_drain_lets_the_running_task_finish_and_starts_nothing_new(tmp_path: Path) -> None:
    """SIGUSR1 drains ``gxo execute``; a run outside the main thread cannot be sent it (and
    its default action would end the whole program): the handle drains it instead."""
    go = tmp_path / "go"
    handle = gxo.start(CHAIN.format(go=go), workers=1)
    for event in handle.events():
        if isinstance(event, InstanceStarted):
            handle.drain()
            handle.drain()  # once is enough; again is harmless
            go.touch()  # the running task may end now: it is not stopped
    result = handle.wait(timeout=30)
    assert result.exit_code == 75  # work remains: run again with --resume
    assert result.tasks["first"].status == "Completed"
    assert (result.tasks["second"].status, result.tasks["second"].reason) == (
        "Cancelled",
        "drained",
    )


def test_drain_before_the_run_started(tmp_path: Path) -> None:
    handle = gxo.start(CHAIN.format(go=tmp_path / "never"), workers=1)
    handle.drain()
    result = handle.wait(timeout=30)
    assert result.exit_code == 75
    assert {t.reason for t in result.tasks.values()} == {"drained"}


def test_start_loads_the_playbook_once(caplog: pytest.LogCaptureFixture) -> None:
    """start() loaded it to raise at once, then its thread's run() loaded it again: every
    load warning twice, and a state store's initial() asked twice."""

    class Store:
        asked = 0

        def initial(self) -> dict[str, object]:
            Store.asked += 1
            return {"x": 1}

        def save(self, state: object) -> None:
            pass

    text = (
        "schemaVersion: v1.0.0\nname: once\n"
        "tasks: [{name: a, type: exec, params: {command: 'true', bogus: 1}}]\n"
    )
    with caplog.at_level(logging.WARNING):
        result = gxo.start(text, workers=1, state=Store()).wait(timeout=30)
    assert result.ok
    assert Store.asked == 1
    assert sum("unknown parameter 'bogus'" in r.getMessage() for r in caplog.records) == 1
