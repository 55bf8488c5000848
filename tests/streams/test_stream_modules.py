"""Built-in streaming modules through the engine: stream:join, file:read/write, exec."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from stream_support import RunStreams

HEADER = "schemaVersion: v1.0.0\nname: t\n"

JOIN = """
vars:
  users:
    - {user_id: 1, name: Alice}
    - {user_id: 2, name: Bob}
  orders:
    - {order_id: 101, user_id: 1, item: Laptop}
    - {order_id: 102, user_id: 3, item: Mouse}
    - {order_id: 103, user_id: "1", item: Keyboard}
tasks:
  - name: users
    type: generate:from_list
    params: {items: "{{ users }}"}
  - name: orders
    type: generate:from_list
    params: {items: "{{ orders }}"}
  - name: join
    type: stream:join
    register: summary
    stream_inputs: [users, orders]
    params:
      join_type: @TYPE@
      on:
        - {stream: users, role: build, field: user_id}
        - {stream: orders, role: probe, field: user_id}
      @OUTPUT@
  - name: out
    type: python
    register: rows
    stream_inputs: [join]
    params: {function: "@FUNCS@:collect"}
"""


def _orders(*ids: int) -> list[int]:
    return list(ids)


@pytest.mark.parametrize(
    ("join_type", "expected"),
    [
        ("inner", [(101, "Alice"), (103, "Alice")]),
        ("left", [(101, "Alice"), (102, None), (103, "Alice")]),
        ("right", [(101, "Alice"), (103, "Alice"), (None, "Bob")]),
        ("outer", [(101, "Alice"), (102, None), (103, "Alice"), (None, "Bob")]),
    ],
)
def test_join_types(run_streams: RunStreams, join_type: str, expected: list[Any]) -> None:
    result = run_streams(HEADER + JOIN, workers=4, TYPE=join_type, OUTPUT="")
    assert result.report.exit_code == 0, result.report.error
    rows = result.state["rows"]
    assert [(r.get("order_id"), r.get("name")) for r in rows] == expected
    summary = result.state["summary"]
    assert summary["records_joined"] == len(expected)
    assert summary["probe_stream_records"] == 3
    assert summary["build_stream_records"] == 2


def test_join_nested_output(run_streams: RunStreams) -> None:
    output = "output: {merge_strategy: nested, nesting_keys: {users: user, orders: order}}"
    result = run_streams(HEADER + JOIN, workers=4, TYPE="outer", OUTPUT=output)
    assert result.report.exit_code == 0, result.report.error
    rows = result.state["rows"]
    assert rows[1] == {"order": {"order_id": 102, "user_id": 3, "item": "Mouse"}, "user": None}
    assert rows[-1] == {"user": {"user_id": 2, "name": "Bob"}}  # no probe slot at all


def test_join_bad_params_fail_with_gxo_messages(run_streams: RunStreams) -> None:
    # A literal `join_type: sideways` is a load error (see
    # tests/cli/test_cli_templates_and_secrets.py); a templated one is judged when the task
    # runs, with GXO's message.
    result = run_streams(HEADER + JOIN, workers=4, TYPE="\"{{ 'side' ~ 'ways' }}\"", OUTPUT="")
    join = result.report.task_results["join"]
    assert (join.status, join.reason) == ("Failed", "bad_params")
    assert join.error == "unsupported join_type: 'sideways'"
    assert result.report.task_results["out"].reason.startswith("upstream_failed(")


def test_csv_to_jsonl_through_files(run_streams: RunStreams, tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    source.write_text("id,name\n1,a\n2,b\n3,c\n")
    target = tmp_path / "out.jsonl"
    result = run_streams(
        HEADER
        + """
tasks:
  - name: read
    type: file:read
    register: read
    params: {path: "@TMP@/in.csv", format: csv}
  - name: write
    type: file:write
    register: written
    stream_inputs: [read]
    params: {path: "@TMP@/out.jsonl"}
  - name: back
    type: file:write
    stream_inputs: [read]
    params: {path: "@TMP@/out.csv", format: csv}
"""
    )
    assert result.report.exit_code == 0, result.report.error
    lines = [json.loads(line) for line in target.read_text().splitlines()]
    assert lines == [{"id": "1", "name": "a"}, {"id": "2", "name": "b"}, {"id": "3", "name": "c"}]
    assert result.state["read"]["records_read"] == 3
    assert result.state["written"]["records_written"] == 3
    assert (tmp_path / "out.csv").read_text().splitlines() == ["id,name", "1,a", "2,b", "3,c"]


def test_file_write_names_a_record_that_does_not_fit_by_its_index(
    run_streams: RunStreams,
) -> None:
    """From 0, as the stream errors (bad_record, record_too_large) name records."""
    result = run_streams(
        HEADER
        + """
tasks:
  - name: gen
    type: generate:from_list
    params: {items: [{a: 1}, {a: 2}, {a: 3, b: 4}]}
  - name: write
    type: file:write
    stream_inputs: [gen]
    params: {path: "@TMP@/out.csv", format: csv}
"""
    )
    assert result.outcome("write") == ("Failed", "bad_record")
    error = result.report.task_results["write"].error
    assert error.startswith("record 2 does not fit the CSV columns"), error


def test_file_read_missing_file(run_streams: RunStreams) -> None:
    result = run_streams(
        HEADER
        + """
tasks:
  - name: read
    type: file:read
    params: {path: "@TMP@/nope.jsonl"}
  - name: write
    type: file:write
    stream_inputs: [read]
    params: {path: "@TMP@/out.jsonl"}
"""
    )
    assert result.outcome("read") == ("Failed", "file_not_found")
    assert result.outcome("write") == ("Failed", "upstream_failed(file_not_found)")


def test_exec_stdout_and_stdin_records(run_streams: RunStreams) -> None:
    result = run_streams(
        HEADER
        + """
tasks:
  - name: lines
    type: exec
    register: lines
    params:
      command: "for i in 1 2 3; do echo \\"{\\\\\\"n\\\\\\": $i}\\"; done"
      shell: true
      stdout_records: true
      stdout_format: json
  - name: cat
    type: exec
    register: cat
    stream_inputs: [lines]
    params: {command: [cat], stdin_records: true, stdout_records: true}
  - name: out
    type: python
    register: rows
    stream_inputs: [cat]
    params: {function: "@FUNCS@:collect"}
""",
        workers=3,
    )
    assert result.report.exit_code == 0, result.report.error
    assert result.state["lines"]["records_emitted"] == 3
    assert result.state["cat"]["records_written"] == 3
    assert result.state["rows"] == [{"line": '{"n":1}'}, {"line": '{"n":2}'}, {"line": '{"n":3}'}]


def test_exec_large_stdin_and_stdout_do_not_deadlock(run_streams: RunStreams) -> None:
    result = run_streams(
        HEADER
        + """
tasks:
  - name: p
    type: python
    params: {function: "@FUNCS@:produce", kwargs: {count: 20000, size: 100}}
  - name: cat
    type: exec
    stream_inputs: [p]
    params: {command: [cat], stdin_records: true, stdout_records: true, stdout_format: json}
  - name: c
    type: python
    register: got
    stream_inputs: [cat]
    params: {function: "@FUNCS@:consume"}
""",
        workers=3,
    )
    assert result.report.exit_code == 0, result.report.error
    assert result.state["got"]["seen"] == list(range(20000))


def test_join_key_template_per_record(run_streams: RunStreams) -> None:
    """A key template is written in {% raw %} so the task's params rendering leaves it alone."""
    result = run_streams(
        HEADER
        + """
tasks:
  - name: a
    type: generate:from_list
    params: {items: [{id: 1, x: a}, {id: 2, x: b}]}
  - name: b
    type: generate:from_list
    params: {items: [{ref: "k2"}, {ref: "k1"}]}
  - name: j
    type: stream:join
    register: summary
    stream_inputs: [a, b]
    params:
      join_type: inner
      on:
        - {stream: a, role: build, template: "{% raw %}k{{ id }}{% endraw %}"}
        - {stream: b, role: probe, field: ref}
  - name: out
    type: python
    register: rows
    stream_inputs: [j]
    params: {function: "@FUNCS@:collect"}
""",
        workers=4,
    )
    assert result.report.exit_code == 0, result.report.error
    assert [(r["ref"], r["x"]) for r in result.state["rows"]] == [("k2", "b"), ("k1", "a")]


@pytest.mark.parametrize("limit", [1, 0])
def test_join_limits_and_key_errors(run_streams: RunStreams, limit: int) -> None:
    result = run_streams(
        HEADER
        + f"""
tasks:
  - name: a
    type: generate:from_list
    params: {{items: [{{id: 1}}, {{id: 2.5}}, {{nokey: 3}}]}}
  - name: b
    type: generate:from_list
    params: {{items: [{{id: "1"}}, {{other: 1}}]}}
  - name: j
    type: stream:join
    register: summary
    stream_inputs: [a, b]
    params:
      join_type: outer
      limits: {{max_build_records: {limit}}}
      on:
        - {{stream: a, role: build, field: id}}
        - {{stream: b, role: probe, field: id}}
"""
    )
    if limit:
        assert result.outcome("j") == ("Failed", "module_failed")
        assert "max_build_records of 1 reached" in result.report.task_results["j"].error
        return
    assert result.report.exit_code == 0, result.report.error
    assert result.state["summary"] == {
        "records_joined": 1,
        "probe_stream_records": 2,
        "build_stream_records": 3,
        "skipped_key_errors": 3,  # 2.5 is not a whole number; two records lack the key
    }
