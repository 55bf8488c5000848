"""The event bus: typed events from a real run, isolation of failing and slow subscribers."""

from __future__ import annotations

import logging
import textwrap
import threading
import time
from pathlib import Path

import msgspec
import pytest

import gxo
from gxo.events import (
    EventBus,
    InstanceFinished,
    InstanceStarted,
    RetryScheduled,
    RunFinished,
    RunStarted,
    SecretAccessed,
    StreamEdgeClosed,
    TaskQueued,
    TaskStatusChanged,
    WorkerLost,
    WorkerStarted,
)


def _event(n: int = 0) -> WorkerStarted:
    return WorkerStarted(run_id="r", time=0.0, pid=n)


# -- the bus alone (no processes) --------------------------------------------------------------


def test_inactive_bus_starts_no_thread() -> None:
    bus = EventBus()
    assert not bus.active
    bus.close()
    assert not any(t.name == "gxo-events" for t in threading.enumerate())


def test_delivers_in_order_and_close_drains() -> None:
    bus = EventBus()
    got: list[int] = []
    bus.subscribe(lambda e: got.append(e.pid))  # type: ignore[union-attr]
    assert bus.active
    for n in range(100):
        bus.emit(_event(n))
    bus.close()
    assert got == list(range(100))
    assert bus.delivered == 100
    assert bus.dropped == 0


def test_raising_subscriber_is_isolated_logged_once_and_counted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bus = EventBus()
    got: list[object] = []

    def broken(event: object) -> None:
        raise RuntimeError("subscriber bug")

    bus.subscribe(broken, name="broken-one")
    bus.subscribe(got.append)
    with caplog.at_level(logging.ERROR, logger="gxo.events"):
        for n in range(5):
            bus.emit(_event(n))
        bus.close()
    assert len(got) == 5
    assert bus.errors == {"broken-one": 5}
    messages = [r.getMessage() for r in caplog.records if r.name == "gxo.events"]
    assert len(messages) == 1
    assert "broken-one" in messages[0]
    assert "RuntimeError: subscriber bug" in messages[0]


@pytest.mark.parametrize("escape", [SystemExit(3), KeyboardInterrupt(), GeneratorExit()])
def test_a_subscriber_raising_a_base_exception_is_isolated_too(
    escape: BaseException, caplog: pytest.LogCaptureFixture
) -> None:
    """``sys.exit()`` in a callback used to end the delivery thread: no other subscriber got
    another event, and every flush and close of the run waited its whole timeout."""
    bus = EventBus()
    got: list[object] = []

    def exits(event: object) -> None:
        raise escape

    def flush_exits() -> None:
        raise escape

    bus.subscribe(exits, name="exits", flush=flush_exits)
    bus.subscribe(got.append)
    with caplog.at_level(logging.ERROR, logger="gxo.events"):
        for n in range(3):
            bus.emit(_event(n))
        bus.flush(timeout=10)
        bus.emit(_event(3))
        started = time.monotonic()
        bus.close(timeout=10)
    assert time.monotonic() - started < 5  # delivered at once, not after the timeout
    assert [e.pid for e in got] == [0, 1, 2, 3]  # type: ignore[attr-defined]
    assert bus.errors["exits"] >= 4 + 2  # each event, each batch's flush
    assert any(f"exits raised {type(escape).__name__}" in r.getMessage() for r in caplog.records)


def test_a_run_whose_subscriber_calls_sys_exit_still_delivers_everything() -> None:
    import sys

    got: list[object] = []
    bus = EventBus()
    bus.subscribe(lambda event: sys.exit(1), name="exits")
    bus.subscribe(got.append)
    started = time.monotonic()
    result = gxo.run(
        "schemaVersion: v1.0.0\nname: x\ntasks: [{name: a, type: passthrough}]\n",
        workers=1,
        events=bus,
    )
    assert result.ok
    assert isinstance(got[0], RunStarted)
    assert isinstance(got[-1], RunFinished)
    assert bus.errors["exits"] == len(got)
    assert time.monotonic() - started < 4  # no flush or close waited 5 s for a dead thread


def test_emit_never_blocks_a_full_queue_drops_and_counts(
    caplog: pytest.LogCaptureFixture,
) -> None:
    gate = threading.Event()
    bus = EventBus(maxsize=3)
    bus.subscribe(lambda e: gate.wait(10))
    start = time.monotonic()
    for n in range(50):
        bus.emit(_event(n))
    assert time.monotonic() - start < 0.5
    assert bus.dropped >= 50 - 3 - 1  # the queue, and the one being delivered
    gate.set()
    with caplog.at_level(logging.WARNING, logger="gxo.events"):
        bus.close()
    assert bus.delivered + bus.dropped == 50
    assert f"{bus.dropped} events were dropped" in caplog.text


def test_close_waits_a_bounded_time_for_a_stuck_subscriber(
    caplog: pytest.LogCaptureFixture,
) -> None:
    gate = threading.Event()
    bus = EventBus()
    bus.subscribe(lambda e: gate.wait(10))
    bus.emit(_event())
    bus.emit(_event())
    start = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="gxo.events"):
        bus.close(timeout=0.2)
    assert time.monotonic() - start < 2
    assert "did not finish within 0.2s" in caplog.text
    gate.set()


def test_unsubscribe_and_reuse_after_close() -> None:
    bus = EventBus()
    first: list[object] = []
    second: list[object] = []
    stop_first = bus.subscribe(first.append)
    bus.subscribe(second.append)
    bus.emit(_event(1))
    bus.close()
    stop_first()
    bus.emit(_event(2))  # a closed bus starts its thread again
    bus.close()
    assert len(first) == 1
    assert len(second) == 2


def test_events_encode_as_tagged_json() -> None:
    event = RetryScheduled(
        run_id="r", time=1.0, task="t", instance_id=3, label="t[1]", attempt=1, reason="x", delay=2
    )
    data = msgspec.json.encode(event)
    assert msgspec.json.decode(data)["type"] == "RetryScheduled"
    assert msgspec.json.decode(data, type=gxo.Event) == event


class _Kinds:
    """A subscriber that says which event types it takes (``event_kinds``)."""

    def __init__(self, *kinds: type[gxo.Event]) -> None:
        self.event_kinds = frozenset(kinds)
        self.got: list[gxo.Event] = []

    def __call__(self, event: gxo.Event) -> None:
        self.got.append(event)


def test_a_subscriber_with_event_kinds_is_handed_only_those() -> None:
    bus = EventBus()
    pids = _Kinds(WorkerStarted)
    every: list[gxo.Event] = []
    bus.subscribe(pids)
    assert bus.wanted == {WorkerStarted}
    unsubscribe = bus.subscribe(every.append)
    assert bus.wanted is None  # one subscriber takes every type
    finished = RunFinished(run_id="r", time=0.0, status="Completed", exit_code=0, duration=0.0)
    for event in (_event(1), finished, _event(2)):
        bus.emit(event)
    bus.close()
    assert pids.got == [_event(1), _event(2)]
    assert every == [_event(1), finished, _event(2)]
    assert bus.delivered == 3
    unsubscribe()
    assert bus.wanted == {WorkerStarted}


def test_an_event_no_subscriber_takes_is_not_built(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text(
        "schemaVersion: v1.0.0\nname: kinds\ntasks:\n"
        "  - name: a\n    type: passthrough\n    params: {value: 1}\n"
    )
    some = _Kinds(TaskStatusChanged, RunFinished)
    bus = EventBus()
    bus.subscribe(some)
    assert gxo.run(str(tmp_path / "p.yaml"), workers=1, events=bus).ok
    assert [type(e) for e in some.got] == [TaskStatusChanged, TaskStatusChanged, RunFinished]
    first = bus.delivered  # every event built, each handed to whoever takes it
    # With a subscriber that takes every type, the same run builds TaskQueued too.
    every: list[gxo.Event] = []
    bus.subscribe(every.append)
    assert gxo.run(str(tmp_path / "p.yaml"), workers=1, events=bus).ok
    assert [e.task for e in every if isinstance(e, TaskQueued)] == ["a"]
    assert bus.delivered - first == first + 1 == len(every)


def test_bad_maxsize() -> None:
    with pytest.raises(ValueError, match="maxsize"):
        EventBus(maxsize=0)


# -- events from real runs ---------------------------------------------------------------------

FUNCS = """
import os
from pathlib import Path

def crash():
    os._exit(3)

def fail_once(marker):
    path = Path(marker)
    if not path.exists():
        path.write_text("1")
        raise ConnectionError("first call fails")
    return {"ok": True}
"""


def _playbook(tmp_path: Path) -> str:
    (tmp_path / "funcs.py").write_text(FUNCS)
    return textwrap.dedent(
        f"""
        schemaVersion: v1.0.0
        name: events-demo
        tasks:
          - name: fine
            type: passthrough
            params: {{value: 1}}
          - name: flaky
            type: python
            retry: {{attempts: 2, delay: 10ms}}
            params:
              function: "{tmp_path}/funcs.py:fail_once"
              kwargs: {{marker: "{tmp_path}/marker"}}
          - name: crash
            type: python
            ignore_errors: true
            params: {{function: "{tmp_path}/funcs.py:crash"}}
          - name: never
            type: exec
            when: false
            params: {{command: "true"}}
        """
    )


def test_a_run_emits_typed_events(tmp_path: Path) -> None:
    events: list[gxo.Event] = []
    result = gxo.run(_playbook(tmp_path), workers=2, events=[events.append], run_id="ev")
    assert result.ok
    assert all(e.run_id == "ev" for e in events)
    assert isinstance(events[0], RunStarted)
    assert events[0].tasks == 4
    assert isinstance(events[-1], RunFinished)
    assert (events[-1].status, events[-1].exit_code) == ("Completed", 0)

    statuses = [(e.task, e.status) for e in events if isinstance(e, TaskStatusChanged)]
    assert ("fine", "Running") in statuses
    assert ("fine", "Completed") in statuses
    assert ("never", "Skipped") in statuses
    assert statuses.index(("flaky", "Running")) < statuses.index(("flaky", "Completed"))
    crash_end = next(
        e for e in events if isinstance(e, TaskStatusChanged) and e.task == "crash" and e.ignored
    )
    assert (crash_end.status, crash_end.reason) == ("Failed", "worker_exited(3)")

    retries = [e for e in events if isinstance(e, RetryScheduled)]
    assert [(r.task, r.attempt, r.reason) for r in retries] == [
        ("flaky", 1, "module_raised(ConnectionError)")
    ]
    starts = [e for e in events if isinstance(e, InstanceStarted)]
    assert [e.attempt for e in starts if e.task == "flaky"] == [1, 2]
    flaky_end = next(e for e in events if isinstance(e, InstanceFinished) and e.task == "flaky")
    assert (flaky_end.attempt, flaky_end.status) == (2, "Completed")
    assert flaky_end.duration >= 0

    lost = [e for e in events if isinstance(e, WorkerLost)]
    assert [(e.reason, e.instance) for e in lost] == [("worker_exited(3)", "crash")]
    started = [e for e in events if isinstance(e, WorkerStarted)]
    assert len(started) == 3  # two, and the replacement of the one that crashed
    assert lost[0].pid in {e.pid for e in started}


def test_raising_and_slow_subscribers_do_not_affect_the_run(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    gate = threading.Event()
    seen: list[gxo.Event] = []

    def broken(event: gxo.Event) -> None:
        raise KeyError("oops")

    def slow(event: gxo.Event) -> None:
        gate.wait(0.05)  # 50 ms an event: far slower than the scheduler
        seen.append(event)

    bus = EventBus()
    bus.subscribe(broken, name="broken")
    bus.subscribe(slow, name="slow")
    start = time.monotonic()
    with caplog.at_level(logging.ERROR, logger="gxo.events"):
        result = gxo.run(_playbook(tmp_path), workers=2, events=bus)
    assert result.ok
    assert bus.errors["broken"] == bus.delivered
    assert sum("event subscriber broken raised" in r.getMessage() for r in caplog.records) == 1
    # The slow subscriber still got every event: the run drained the bus before returning.
    assert isinstance(seen[-1], RunFinished)
    assert time.monotonic() - start < 30


def test_a_stuck_subscriber_does_not_slow_the_scheduler(tmp_path: Path) -> None:
    gate = threading.Event()
    bus = EventBus()
    bus.subscribe(lambda e: gate.wait(30), name="stuck")
    text = "schemaVersion: v1.0.0\nname: many\ntasks:\n" + "".join(
        f"  - name: t{i}\n    type: passthrough\n" for i in range(50)
    )
    try:
        result = gxo.run(text, workers=2, events=bus)
        assert result.ok
        # The tasks ran while the subscriber sat on its first event.
        assert result.report.duration < 10
    finally:
        gate.set()
        bus.close()


def test_stream_edges_report_when_each_side_closes() -> None:
    events: list[gxo.Event] = []
    text = textwrap.dedent(
        """
        schemaVersion: v1.0.0
        name: streams
        tasks:
          - name: gen
            type: generate:from_list
            params: {items: [1, 2, 3]}
          - name: fwd
            type: passthrough
            stream_inputs: [gen]
        """
    )
    result = gxo.run(text, workers=2, events=[events.append])
    assert result.ok
    edges = sorted(
        (e.producer, e.consumer, e.side, e.records)
        for e in events
        if isinstance(e, StreamEdgeClosed)
    )
    assert edges == [("gen", "fwd", "in", 3), ("gen", "fwd", "out", 3)]


def test_secret_accessed_events_name_the_secret_never_its_value(tmp_path: Path) -> None:
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    value = "s3cr3t-event-canary"
    (secrets / "DB_PASSWORD").write_text(value + "\n")
    (secrets / "UNUSED").write_text("never-read\n")
    text = textwrap.dedent(
        """
        schemaVersion: v1.0.0
        name: secret-events
        tasks:
          - name: use
            type: exec
            params:
              command: [sh, -c, 'test -n "$1"', sh, "{{ secret('DB_PASSWORD') }}"]
          - {name: plain, type: passthrough}
        """
    )
    events: list[gxo.Event] = []
    result = gxo.run(
        text, workers=2, events=[events.append], secrets=gxo.SecretsConfig(directory=str(secrets))
    )
    assert result.ok, result.report.task_results
    accessed = [e for e in events if isinstance(e, SecretAccessed)]
    assert [(e.task, e.label, e.name) for e in accessed] == [("use", "use", "DB_PASSWORD")]
    finished = next(e for e in events if isinstance(e, InstanceFinished) and e.task == "use")
    assert accessed[0].instance_id == finished.instance_id
    encoded = b"".join(msgspec.json.encode(e) for e in events)
    assert value.encode() not in encoded


def test_flush_hands_over_what_was_emitted_without_closing() -> None:
    bus = EventBus()
    got: list[int] = []
    bus.subscribe(lambda e: got.append(e.pid))  # type: ignore[union-attr]
    for n in range(5):
        bus.emit(_event(n))
    bus.flush()
    assert got == list(range(5))  # delivered now, not at the next 20 ms tick or at close
    bus.emit(_event(5))
    bus.close()
    assert got == list(range(6))
    assert bus.delivered == 6


def test_a_subscribers_flush_runs_after_each_batch_and_before_flush_and_close_return() -> None:
    bus = EventBus()
    got: list[int] = []
    batches: list[list[int]] = []
    bus.subscribe(
        lambda e: got.append(e.pid),  # type: ignore[union-attr]
        flush=lambda: batches.append(got[:]),
    )
    for n in range(3):
        bus.emit(_event(n))
    bus.flush()
    assert batches[-1] == [0, 1, 2]  # flushed once the batch was handed over
    bus.emit(_event(3))
    bus.close()
    assert batches[-1] == [0, 1, 2, 3]
    assert all(b == sorted(b) for b in batches)


def test_a_raising_flush_is_counted_like_a_raising_subscriber() -> None:
    bus = EventBus()

    def broken() -> None:
        raise RuntimeError("flush failed")

    got: list[int] = []
    bus.subscribe(lambda e: got.append(e.pid), name="lines", flush=broken)  # type: ignore[union-attr]
    bus.emit(_event(1))
    bus.flush()
    bus.emit(_event(2))
    bus.close()
    assert got == [1, 2]  # delivery went on
    assert bus.errors["lines"] >= 2
