"""``gxo.start``'s handle as a long-lived program uses it: several runs, one bus, controls
used early, twice, or late."""

from __future__ import annotations

import gxo
from gxo.events import RunFinished, RunStarted

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
