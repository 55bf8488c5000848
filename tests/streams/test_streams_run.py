"""Streams through the real engine: worker processes, pipes handed over with SCM_RIGHTS.

Nothing here synchronises with sleeps: producers and consumers meet through the stream
itself, through EOF/EPIPE, or through a FIFO (open blocks until both sides are there).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from stream_support import Result, RunStreams

HEADER = "schemaVersion: v1.0.0\nname: t\n"


def _pb(body: str) -> str:
    return HEADER + body


def _edge(result: Result, task: str, side: str, other: str) -> dict[str, object]:
    for edge in result.edges(task):
        if edge.side == side and (edge.consumer if side == "out" else edge.producer) == other:
            return {
                "records": edge.records,
                "bytes": edge.bytes,
                "drops": edge.drops,
                "blocked": edge.blocked_seconds,
            }
    raise AssertionError(f"no {side} edge {task}/{other}: {result.edges(task)}")


def test_one_hop_every_record_once_in_order(run_streams: RunStreams) -> None:
    result = run_streams(
        _pb("""
tasks:
  - name: p
    type: python
    params: {function: "@FUNCS@:produce", kwargs: {count: 20000}}
  - name: c
    type: python
    register: got
    stream_inputs: [p]
    params: {function: "@FUNCS@:consume"}
""")
    )
    assert result.outcome("p") == ("Completed", "")
    assert result.outcome("c") == ("Completed", "")
    assert result.state["got"]["seen"] == list(range(20000))
    sent = _edge(result, "p", "out", "c")
    received = _edge(result, "c", "in", "p")
    assert sent["records"] == received["records"] == 20000
    assert sent["bytes"] == received["bytes"]
    assert result.report.exit_code == 0


@settings(max_examples=6, deadline=None)
@given(
    sizes=st.lists(
        st.one_of(st.integers(0, 300), st.integers(60_000, 200_000)), min_size=0, max_size=12
    )
)
def test_record_sizes_across_batch_and_pipe_boundaries(
    tmp_path_factory: pytest.TempPathFactory, sizes: list[int]
) -> None:
    """Records from empty to several times a 64 KiB batch arrive once, whole, in order."""
    import gxo

    path = tmp_path_factory.mktemp("sizes") / "p.yaml"
    funcs = Path(__file__).resolve().parent / "funcs.py"
    path.write_text(
        _pb(f"""
tasks:
  - name: p
    type: python
    params: {{function: "{funcs}:produce_sizes", kwargs: {{sizes: {sizes}}}}}
  - name: m
    type: passthrough
    stream_inputs: [p]
  - name: c
    type: python
    register: got
    stream_inputs: [m]
    params: {{function: "{funcs}:consume_sizes"}}
""")
    )
    result = gxo.run(path, workers=3)
    assert result.report.exit_code == 0, result.report.error
    assert result.registered["got"] == {"seen": [[n, size] for n, size in enumerate(sizes)]}


def test_fan_out_sends_every_record_to_each_consumer(run_streams: RunStreams) -> None:
    result = run_streams(
        _pb("""
tasks:
  - name: p
    type: python
    params: {function: "@FUNCS@:produce", kwargs: {count: 5000}}
  - name: a
    type: python
    register: a
    stream_inputs: [p]
    params: {function: "@FUNCS@:consume"}
  - name: b
    type: python
    register: b
    stream_inputs: [p]
    params: {function: "@FUNCS@:consume"}
""")
    )
    assert result.report.exit_code == 0
    assert result.state["a"]["seen"] == result.state["b"]["seen"] == list(range(5000))
    assert {e.consumer for e in result.edges("p")} == {"a", "b"}


def test_fan_in_reads_every_input(run_streams: RunStreams) -> None:
    result = run_streams(
        _pb("""
tasks:
  - name: x
    type: python
    params: {function: "@FUNCS@:tag", kwargs: {name: x, count: 3000}}
  - name: y
    type: python
    params: {function: "@FUNCS@:tag", kwargs: {name: y, count: 2000}}
  - name: c
    type: python
    register: got
    stream_inputs: [x, y]
    params: {function: "@FUNCS@:consume"}
  - name: per
    type: python
    register: per
    stream_inputs: [x, y]
    params: {function: "@FUNCS@:consume_per_input"}
"""),
        workers=4,
    )
    assert result.report.exit_code == 0
    got = result.state["got"]
    assert got["count"] == 5000
    assert got["per"] == {"x": list(range(3000)), "y": list(range(2000))}
    assert result.state["per"] == {"x": list(range(3000)), "y": list(range(2000))}


def test_chain_through_passthrough_and_generate(run_streams: RunStreams) -> None:
    result = run_streams(
        _pb("""
tasks:
  - name: g
    type: generate:from_list
    register: g
    params: {items: [{i: 0}, {i: 1}, {i: 2}]}
  - name: m
    type: passthrough
    register: m
    stream_inputs: [g]
  - name: c
    type: python
    register: got
    stream_inputs: [m]
    params: {function: "@FUNCS@:consume"}
""")
    )
    assert result.report.exit_code == 0
    assert result.state["g"] == {"records_generated": 3}
    assert result.state["m"] == {"records_processed": 3}
    assert result.state["got"]["seen"] == [0, 1, 2]


@pytest.mark.parametrize(
    ("how", "reason"),
    [
        ("raise", "upstream_failed(module_raised(RuntimeError))"),
        ("exit", "stream_truncated"),
        ("kill", "stream_truncated"),
    ],
)
def test_producer_failure_mid_stream_fails_the_consumer(
    run_streams: RunStreams, how: str, reason: str
) -> None:
    result = run_streams(
        _pb(f"""
tasks:
  - name: p
    type: python
    params: {{function: "@FUNCS@:produce_then_fail", kwargs: {{count: 50, how: {how}}}}}
  - name: m
    type: passthrough
    stream_inputs: [p]
  - name: c
    type: python
    stream_inputs: [m]
    params: {{function: "@FUNCS@:consume"}}
""")
    )
    assert result.outcome("p")[0] == "Failed"
    assert result.outcome("m") == ("Failed", reason)
    # The passthrough failed: its consumer sees the failure, never a clean end.
    status, downstream = result.outcome("c")
    assert status == "Failed"
    assert downstream.startswith("upstream_failed(")
    assert result.report.exit_code == 1


def test_a_consumer_that_swallows_the_stream_error_still_fails(run_streams: RunStreams) -> None:
    result = run_streams(
        _pb("""
tasks:
  - name: p
    type: python
    params: {function: "@FUNCS@:produce_then_fail", kwargs: {count: 5, how: kill}}
  - name: c
    type: python
    stream_inputs: [p]
    params: {function: "@FUNCS@:swallow_errors"}
""")
    )
    assert result.outcome("c") == ("Failed", "stream_truncated")


@pytest.mark.parametrize("how", ["raise", "kill"])
def test_consumer_failure_stops_a_blocked_producer(run_streams: RunStreams, how: str) -> None:
    """The producer fills the pipe and blocks; the consumer dies: EPIPE ends the producer."""
    result = run_streams(
        _pb(f"""
tasks:
  - name: p
    type: python
    timeout: 60s
    params: {{function: "@FUNCS@:produce_until_gone", kwargs: {{size: 2000}}}}
  - name: c
    type: python
    stream_inputs: [p]
    params: {{function: "@FUNCS@:consume_some_then_fail", kwargs: {{after: 10, how: {how}}}}}
""")
    )
    assert result.outcome("p") == ("Failed", "consumers_gone")
    assert result.outcome("c")[0] == "Failed"
    sent = _edge(result, "p", "out", "c")
    assert sent["records"] > 0
    assert sent["blocked"] > 0  # it waited on the full pipe until the consumer went away


def test_consumer_that_never_reads(run_streams: RunStreams) -> None:
    result = run_streams(
        _pb("""
tasks:
  - name: p
    type: python
    timeout: 60s
    params: {function: "@FUNCS@:produce_until_gone"}
  - name: c
    type: python
    stream_inputs: [p]
    params: {function: "@FUNCS@:never_read"}
""")
    )
    assert result.outcome("c") == ("Completed", "")
    assert result.outcome("p") == ("Failed", "consumers_gone")


def test_group_larger_than_the_pool_gets_extra_workers(run_streams: RunStreams) -> None:
    messages: list[str] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = lambda record: messages.append(record.getMessage())  # type: ignore[method-assign]
    logger = logging.getLogger("gxo")
    logger.addHandler(handler)
    try:
        result = _run_group(run_streams)
    finally:
        logger.removeHandler(handler)
    assert result.report.exit_code == 0
    assert result.state["got"]["count"] == 100
    assert any("stream group a, b, c, d needs 4 workers" in m for m in messages), messages


def _run_group(run_streams: RunStreams) -> Result:
    return run_streams(
        _pb("""
tasks:
  - name: a
    type: python
    params: {function: "@FUNCS@:produce", kwargs: {count: 100}}
  - name: b
    type: passthrough
    stream_inputs: [a]
  - name: c
    type: passthrough
    stream_inputs: [b]
  - name: d
    type: python
    register: got
    stream_inputs: [c]
    params: {function: "@FUNCS@:consume"}
"""),
        workers=1,
    )


def test_skip_on_no_input(run_streams: RunStreams) -> None:
    result = run_streams(
        _pb("""
task_policy: {skip_on_no_input: true}
tasks:
  - name: p
    type: generate:from_list
    params: {items: []}
  - name: m
    type: passthrough
    stream_inputs: [p]
  - name: c
    type: python
    register: got
    stream_inputs: [m]
    params: {function: "@FUNCS@:consume"}
  - name: full
    type: generate:from_list
    params: {items: [1]}
  - name: d
    type: passthrough
    register: d
    stream_inputs: [full]
""")
    )
    assert result.outcome("m") == ("Skipped", "no_input")
    assert result.outcome("c") == ("Skipped", "no_input")
    assert result.state["got"] == {"skipped": True, "reason": "no_input"}
    assert result.outcome("d") == ("Completed", "")
    assert result.state["d"] == {"records_processed": 1}
    assert result.report.exit_code == 0


def test_group_member_skipped_before_start_skips_the_group(run_streams: RunStreams) -> None:
    result = run_streams(
        _pb("""
tasks:
  - name: p
    type: generate:from_list
    when: false
    params: {items: [1]}
  - name: c
    type: passthrough
    stream_inputs: [p]
  - name: after
    type: passthrough
    depends_on: [c]
""")
    )
    assert result.outcome("p") == ("Skipped", "when_false")
    assert result.outcome("c") == ("Skipped", "upstream_failed")
    assert result.outcome("after") == ("Skipped", "upstream_failed")


def test_consumer_failure_does_not_change_a_completed_producer(run_streams: RunStreams) -> None:
    result = run_streams(
        _pb("""
tasks:
  - name: p
    type: generate:from_list
    params: {items: [1, 2]}
  - name: c
    type: python
    stream_inputs: [p]
    params: {function: "@FUNCS@:consume_sizes"}
""")
    )
    assert result.outcome("p") == ("Completed", "")
    assert result.outcome("c") == ("Failed", "module_raised(KeyError)")


def _fifo(tmp_path: Path) -> Path:
    fifo = tmp_path / "sync.fifo"
    os.mkfifo(fifo)
    return fifo


@pytest.mark.parametrize("strategy", ["drop_new", "drop_oldest"])
def test_drop_strategies_count_and_keep_order(
    run_streams: RunStreams, tmp_path: Path, strategy: str
) -> None:
    count = 5000
    result = run_streams(
        _pb(f"""
tasks:
  - name: p
    type: python
    params: {{function: "@FUNCS@:produce_then_signal", kwargs: {{count: {count}, fifo: "@FIFO@"}}}}
  - name: c
    type: python
    register: got
    stream_inputs: [p]
    channel_policy: {{buffer_size: 10, overflow_strategy: {strategy}}}
    params: {{function: "@FUNCS@:consume_after_signal", kwargs: {{fifo: "@FIFO@"}}}}
"""),
        FIFO=_fifo(tmp_path),
    )
    assert result.report.exit_code == 0
    seen = result.state["got"]["seen"]
    sent = _edge(result, "p", "out", "c")
    assert 0 < len(seen) < count
    assert sent["drops"] == count - len(seen)
    assert seen == sorted(seen)
    assert len(set(seen)) == len(seen)
    if strategy == "drop_new":
        assert seen == list(range(len(seen)))  # the oldest are kept
    else:
        assert seen[-10:] == list(range(count - 10, count))  # the newest are kept


def test_error_strategy_fails_the_producer(run_streams: RunStreams, tmp_path: Path) -> None:
    result = run_streams(
        _pb("""
tasks:
  - name: p
    type: python
    params: {function: "@FUNCS@:produce_then_signal", kwargs: {count: 5000, fifo: "@FIFO@"}}
  - name: c
    type: python
    stream_inputs: [p]
    channel_policy: {buffer_size: 10, overflow_strategy: error}
    params: {function: "@FUNCS@:consume_after_signal", kwargs: {fifo: "@FIFO@"}}
"""),
        FIFO=_fifo(tmp_path),
    )
    assert result.outcome("p") == ("Failed", "stream_overflow")
    assert result.outcome("c") == ("Failed", "upstream_failed(stream_overflow)")


def test_passthrough_fan_in_and_fan_out(run_streams: RunStreams) -> None:
    result = run_streams(
        _pb("""
tasks:
  - name: x
    type: python
    params: {function: "@FUNCS@:tag", kwargs: {name: x, count: 3000}}
  - name: y
    type: python
    params: {function: "@FUNCS@:tag", kwargs: {name: y, count: 2000}}
  - name: m
    type: passthrough
    register: m
    stream_inputs: [x, y]
  - name: a
    type: python
    register: a
    stream_inputs: [m]
    params: {function: "@FUNCS@:consume_tagged"}
  - name: b
    type: python
    register: b
    stream_inputs: [m]
    params: {function: "@FUNCS@:consume_tagged"}
"""),
        workers=5,
    )
    assert result.report.exit_code == 0, result.report.error
    assert result.state["m"] == {"records_processed": 5000}
    expected = {"x": list(range(3000)), "y": list(range(2000))}
    assert result.state["a"] == result.state["b"] == expected
