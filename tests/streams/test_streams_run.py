"""Streams through the real engine: worker processes, pipes handed over with SCM_RIGHTS.

Nothing here synchronises with sleeps: producers and consumers meet through the stream
itself, through EOF/EPIPE, or through a FIFO (open blocks until both sides are there).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from stream_support import Result, RunStreams, substitute

import gxo

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
                "undelivered": edge.undelivered,
                "drained": edge.drained,
                "strategy": edge.strategy,
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
    # One failure is shown once: the producer was stopped because of it, it did not fail.
    assert result.outcome("p") == ("Cancelled", "consumer_failed")
    assert result.outcome("c")[0] == "Failed"
    assert "'c'" in result.report.task_results["p"].error
    sent = _edge(result, "p", "out", "c")
    assert sent["records"] > 0
    assert sent["undelivered"] > 0
    assert sent["blocked"] > 0  # it waited on the full pipe until the consumer went away
    assert result.report.exit_code == 1


@pytest.mark.parametrize("count", [2, 100, 50_000])
def test_consumer_that_never_reads_is_drained(run_streams: RunStreams, count: int) -> None:
    """The module returns without reading: gxo drains its input, the producer completes."""
    result = run_streams(
        _pb(f"""
tasks:
  - name: p
    type: python
    timeout: 60s
    params: {{function: "@FUNCS@:produce", kwargs: {{count: {count}}}}}
  - name: c
    type: python
    stream_inputs: [p]
    params: {{function: "@FUNCS@:never_read"}}
""")
    )
    assert result.outcome("c") == ("Completed", "")
    assert result.outcome("p") == ("Completed", "")
    received = _edge(result, "c", "in", "p")
    assert received["records"] == received["drained"] == count
    assert _edge(result, "p", "out", "c")["undelivered"] == 0
    assert result.report.exit_code == 0


def test_consumer_that_reads_part_is_drained_and_keeps_what_it_read(
    run_streams: RunStreams,
) -> None:
    result = run_streams(
        _pb("""
tasks:
  - name: p
    type: python
    params: {function: "@FUNCS@:produce", kwargs: {count: 5000}}
  - name: c
    type: python
    stream_inputs: [p]
    register: got
    params: {function: "@FUNCS@:read_first", kwargs: {n: 3}}
""")
    )
    assert result.outcome("p") == ("Completed", "")
    assert result.state["got"] == {"first": [0, 1, 2]}
    received = _edge(result, "c", "in", "p")
    assert received["records"] == 5000  # every record was read: the producer completed
    # ``drained`` counts what gxo read after the module returned (not what the module's
    # iterator had already read ahead and dropped)
    assert received["drained"] <= 4997
    assert result.report.exit_code == 0


@pytest.mark.parametrize("strategy", ["block", "drop_new"])
def test_close_inputs_ends_an_endless_producer_completed(
    run_streams: RunStreams, strategy: str
) -> None:
    """ctx.close_inputs() is `head` closing its pipe: the producer ends, Completed, counted."""
    result = run_streams(
        _pb(f"""
tasks:
  - name: p
    type: python
    timeout: 60s
    register: produced
    params: {{function: "@FUNCS@:produce_until_gone", kwargs: {{size: 100}}}}
  - name: c
    type: python
    stream_inputs: [p]
    register: got
    channel_policy: {{overflow_strategy: {strategy}, buffer_size: 10}}
    params: {{function: "@FUNCS@:read_then_close", kwargs: {{n: 5}}}}
""")
    )
    assert result.outcome("c") == ("Completed", "")
    assert result.outcome("p") == ("Completed", "consumer_closed")
    assert result.state["got"] == {"first": [0, 1, 2, 3, 4], "after_close": 0}
    sent = _edge(result, "p", "out", "c")
    assert sent["undelivered"] > 0
    assert result.state["produced"]["records_undelivered"] == sent["undelivered"]
    assert "closed their input early" in result.report.task_results["p"].error
    assert result.report.exit_code == 0


def test_consumer_that_closes_then_fails_cancels_its_producer(
    run_streams: RunStreams, tmp_path: Path
) -> None:
    """Closing early then failing is a failure: the producer is Cancelled, not Completed.

    The consumer fails only after the producer saw it gone (a FIFO), so the producer's result
    reaches the parent while its consumer is still running, and is held until it ends.
    """
    fifo = _fifo(tmp_path)
    result = run_streams(
        _pb("""
tasks:
  - name: p
    type: python
    timeout: 60s
    params: {function: "@FUNCS@:produce_until_gone_then_signal", kwargs: {fifo: "@FIFO@"}}
  - name: c
    type: python
    stream_inputs: [p]
    params: {function: "@FUNCS@:close_wait_then_fail", kwargs: {fifo: "@FIFO@"}}
"""),
        FIFO=fifo,
    )
    assert result.outcome("c") == ("Failed", "module_raised(RuntimeError)")
    assert result.outcome("p") == ("Cancelled", "consumer_failed")
    assert result.report.exit_code == 1


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
    assert "got" not in result.state  # a Skipped task registers nothing
    assert result.outcome("d") == ("Completed", "")
    assert result.state["d"] == {"records_processed": 1}
    assert result.report.exit_code == 0


def test_dry_run_does_not_skip_consumers_of_a_producer_that_did_not_run(
    tmp_path: Path, write_playbook: Callable[[str], Path]
) -> None:
    """A dry run does not call a ``python`` producer, which so sends nothing: its consumers,
    and theirs down the pipeline, still run their dry run instead of being Skipped
    ``no_input`` (a real run gives them records). A producer that really sends nothing in a
    dry run (an empty ``generate:from_list``) still skips its consumers."""
    text = _pb("""
task_policy: {skip_on_no_input: true}
tasks:
  - name: p
    type: python
    params: {function: "@FUNCS@:produce"}
  - name: m
    type: passthrough
    stream_inputs: [p]
  - name: w
    type: file:write
    stream_inputs: [m]
    params: {path: "@TMP@/out.jsonl"}
  - name: empty
    type: generate:from_list
    params: {items: []}
  - name: e
    type: passthrough
    stream_inputs: [empty]
""")
    path = write_playbook(substitute(text, tmp_path, {}))
    report = gxo.run(path, workers=5, dry_run=True).report
    outcome = {name: (r.status, r.reason) for name, r in report.task_results.items()}
    assert outcome["m"] == ("Completed", "")
    assert outcome["w"] == ("Completed", "")
    assert report.task_results["w"].instances[0].summary["would_write"] == 0
    assert outcome["e"] == ("Skipped", "no_input")
    assert not (tmp_path / "out.jsonl").exists()


def test_a_producer_failure_ignored_still_fails_its_consumers(run_streams: RunStreams) -> None:
    """ignore_errors lets the producer's other dependents run; its consumers' input was cut."""
    result = run_streams(
        _pb("""
tasks:
  - name: p
    type: python
    ignore_errors: true
    params: {function: "@FUNCS@:produce_then_fail", kwargs: {count: 3}}
  - name: c
    type: python
    stream_inputs: [p]
    params: {function: "@FUNCS@:consume"}
  - name: after
    type: python
    depends_on: [p]
    params: {function: "@FUNCS@:collect"}
"""),
        workers=3,
    )
    assert result.outcome("p") == ("Failed", "module_raised(RuntimeError)")
    assert result.outcome("c") == ("Failed", "upstream_failed(module_raised(RuntimeError))")
    assert result.outcome("after") == ("Completed", "")
    assert result.report.exit_code == 1


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
    # Nothing failed: the group is skipped with a reason that says so, and what follows runs.
    assert result.outcome("c") == ("Skipped", "upstream_skipped")
    assert result.outcome("after") == ("Completed", "")


def test_consumer_failure_does_not_change_a_completed_producer(run_streams: RunStreams) -> None:
    """The consumer fails after the end of its input: the producer had delivered everything."""
    result = run_streams(
        _pb("""
tasks:
  - name: p
    type: generate:from_list
    params: {items: [1, 2]}
  - name: c
    type: python
    stream_inputs: [p]
    params: {function: "@FUNCS@:consume_all_then_fail"}
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
    # Both sides report the consumer's strategy (the consumer's reader does not apply it).
    assert sent["strategy"] == strategy
    assert _edge(result, "c", "in", "p")["strategy"] == strategy
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


@pytest.mark.parametrize(
    ("good", "bad", "swallow", "type_name"),
    [
        (0, "object", False, "dict"),
        (3, "object", False, "dict"),
        (1000, "bigint", False, "dict"),  # the bad record is in a later batch
        (5, "complex", True, "dict"),  # the module catches the error: the task still fails
        (2, "deep", False, "dict"),
    ],
)
def test_a_record_that_cannot_be_encoded_fails_its_task_not_its_worker(
    run_streams: RunStreams, good: int, bad: str, swallow: bool, type_name: str
) -> None:
    result = run_streams(
        _pb(f"""
tasks:
  - name: p
    type: python
    params:
      function: "@FUNCS@:produce_bad_record"
      kwargs: {{good: {good}, bad: {bad}, swallow: {str(swallow).lower()}}}
  - name: c
    type: python
    stream_inputs: [p]
    params: {{function: "@FUNCS@:swallow_errors"}}
""")
    )
    status, reason = result.outcome("p")
    assert (status, reason) == ("Failed", "bad_record")
    error = result.report.task_results["p"].error
    assert f"record {good} emitted by 'p'" in error
    assert f"(a {type_name})" in error
    assert "worker" not in reason
    assert result.report.worker_restarts == 0  # the producer's worker did not crash
    # The consumer got every good record before the bad one, then the producer's failure.
    assert result.outcome("c") == ("Failed", "upstream_failed(bad_record)")
    assert _edge(result, "c", "in", "p")["records"] == good
    assert result.report.exit_code == 1


@pytest.mark.parametrize("good", [0, 3, 1000])
def test_a_record_too_large_is_named_by_index_after_the_records_before_it(
    tmp_path: Path, write_playbook: Callable[[str], Path], good: int
) -> None:
    """As for bad_record: the error names the record's 0-based index on the edge, and the
    records before it reach the consumer (they were lost with their batch)."""
    text = _pb("""
tasks:
  - name: p
    type: python
    params: {function: "@FUNCS@:produce_bad_record", kwargs: {good: @GOOD@, bad: large}}
  - name: c
    type: python
    stream_inputs: [p]
    params: {function: "@FUNCS@:swallow_errors"}
""")
    path = write_playbook(substitute(text, tmp_path, {"GOOD": good}))
    result = gxo.run(path, workers=2, record_limit=1 << 20)
    report = result.report
    producer, consumer = report.task_results["p"], report.task_results["c"]
    assert (producer.status, producer.reason) == ("Failed", "record_too_large")
    assert f"record {good} written to the stream to 'c' is 2000" in producer.error
    assert (consumer.status, consumer.reason) == ("Failed", "upstream_failed(record_too_large)")
    assert [e.records for e in consumer.streams] == [good]


@pytest.mark.parametrize(
    ("last", "expected_last", "expected_upstream"),
    [
        ("read_then_close", ("Completed", ""), ("Completed", "consumer_closed")),
        ("consume_some_then_fail", ("Failed", "module_raised(RuntimeError)"), None),
    ],
)
def test_an_early_end_travels_up_a_chain(
    run_streams: RunStreams,
    last: str,
    expected_last: tuple[str, str],
    expected_upstream: tuple[str, str] | None,
) -> None:
    """p -> m (passthrough) -> c: c closing its input ends m and then p Completed; c failing
    cancels both, and the run shows one failure."""
    kwargs = "{n: 3}" if last == "read_then_close" else "{after: 3}"
    result = run_streams(
        _pb(f"""
tasks:
  - name: p
    type: python
    timeout: 60s
    params: {{function: "@FUNCS@:produce_until_gone", kwargs: {{size: 500}}}}
  - name: m
    type: passthrough
    timeout: 60s
    stream_inputs: [p]
  - name: c
    type: python
    stream_inputs: [m]
    params: {{function: "@FUNCS@:{last}", kwargs: {kwargs}}}
"""),
        workers=3,
    )
    assert result.outcome("c") == expected_last
    upstream = expected_upstream or ("Cancelled", "consumer_failed")
    assert result.outcome("m") == upstream
    assert result.outcome("p") == upstream
    assert result.report.failed_tasks == (0 if expected_upstream else 1)
    assert result.report.exit_code == (0 if expected_upstream else 1)


def test_edge_events_carry_drained_and_undelivered_counts(tmp_path: Path) -> None:
    from stream_support import FUNCS

    import gxo
    from gxo.events import StreamEdgeClosed

    events: list[gxo.Event] = []
    text = f"""
schemaVersion: v1.0.0
name: counts
tasks:
  - {{name: p, type: python, params: {{function: "{FUNCS}:produce", kwargs: {{count: 300}}}}}}
  - {{name: c, type: python, stream_inputs: [p], params: {{function: "{FUNCS}:never_read"}}}}
  - name: q
    type: python
    timeout: 60s
    params: {{function: "{FUNCS}:produce_until_gone"}}
  - name: d
    type: python
    stream_inputs: [q]
    params: {{function: "{FUNCS}:read_then_close", kwargs: {{n: 2}}}}
"""
    result = gxo.run(text, workers=4, events=[events.append])
    assert result.ok
    edges = {(e.producer, e.side): e for e in events if isinstance(e, StreamEdgeClosed)}
    assert edges[("p", "in")].drained == 300
    assert edges[("q", "out")].undelivered > 0
