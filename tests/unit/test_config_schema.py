"""The JSON schema file, and schema violations in plain English, all of them."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import fastjsonschema
import pytest

from gxo.config import schema as schema_module
from gxo.config.problems import Problems
from gxo.config.schema import SCHEMA, validate_schema
from gxo.errors import Problem

MINIMAL: dict[str, Any] = {"name": "p", "schemaVersion": "v1.0.0", "tasks": [{"type": "exec"}]}


def _objects(node: Any, where: str = "#") -> Iterator[tuple[str, dict[str, Any]]]:
    if isinstance(node, dict):
        if "properties" in node:
            yield where, node
        for key, value in node.items():
            yield from _objects(value, f"{where}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _objects(value, f"{where}/{index}")


def test_schema_is_draft_07_and_compiles() -> None:
    assert SCHEMA["$schema"] == "http://json-schema.org/draft-07/schema#"
    fastjsonschema.compile(SCHEMA)


def test_every_structured_object_refuses_unknown_keys() -> None:
    objects = list(_objects(SCHEMA))
    # playbook, task, loop_control, retry, the three policies, task_defaults, and limits
    assert len(objects) == 9
    for where, node in objects:
        assert node.get("additionalProperties") is False, where


def test_every_property_is_documented() -> None:
    definitions = SCHEMA["definitions"]
    for where, node in _objects(SCHEMA):
        for key, prop in node["properties"].items():
            described = "description" in prop
            ref = prop.get("$ref", "")
            if not described and ref.startswith("#/definitions/"):
                described = "description" in definitions[ref.rsplit("/", 1)[1]]
            assert described, f"{where}/properties/{key} has no description"


def test_gxo_keys_and_extensions_are_in_the_schema() -> None:
    top = set(SCHEMA["properties"])
    assert top == {
        "name",
        "schemaVersion",
        "vars",
        "tasks",
        "task_policy",
        "channel_policy",
        "state_policy",
        "timeout",
        "task_defaults",
        "output_capture",
        "limits",
        # untrusted modules (issue 13)
        "isolation",
        "network",
        "limits_mode",
    }
    task = set(SCHEMA["definitions"]["task"]["properties"])
    assert task == {
        "name",
        "type",
        "params",
        "register",
        "stream_inputs",
        "ignore_errors",
        "when",
        "loop",
        "loop_control",
        "retry",
        "timeout",
        "attempt_timeout",
        "policy_ref",
        "policy",
        "state_policy",
        "depends_on",
        "channel_policy",
        # partial runs and resume (issue 16)
        "tags",
        "inputs",
        "outputs",
        "resources",
        "limits",
        "output",
        # untrusted modules (issue 13)
        "isolation",
        "network",
        "limits_mode",
    }
    assert "gxo extension" in SCHEMA["definitions"]["duration"]["description"]


def test_the_whole_schema_compiles_quickly_and_once() -> None:
    schema_module._compile.cache_clear()
    start = time.perf_counter()
    validate_schema(dict(MINIMAL), Problems("x"))
    first = time.perf_counter() - start
    start = time.perf_counter()
    validate_schema(dict(MINIMAL), Problems("x"))
    second = time.perf_counter() - start
    assert schema_module._compile.cache_info().currsize == 1  # only the whole-document one
    assert second < first


def check(data: Any) -> tuple[set[tuple[Any, ...]], list[Problem]]:
    problems = Problems("<data>")
    bad = validate_schema(data, problems)
    return bad, problems.sorted()


def test_valid_data_has_no_problems() -> None:
    assert check(dict(MINIMAL)) == (set(), [])


def task(**fields: Any) -> dict[str, Any]:
    return {**MINIMAL, "tasks": [{"type": "exec", **fields}]}


@pytest.mark.parametrize(
    ("fields", "path", "message"),
    [
        (
            {"timeout": "10 seconds"},
            "$.tasks[0].timeout",
            "'timeout' must be a duration like 30s, 1m30s or 500ms, got '10 seconds'",
        ),
        ({"timeout": -1}, "$.tasks[0].timeout", "'timeout' must be a duration like"),
        (
            {"channel_policy": {"overflow_strategy": "nope"}},
            "$.tasks[0].channel_policy.overflow_strategy",
            "'overflow_strategy' must be one of: block, drop_new, drop_oldest, error, got 'nope'",
        ),
        ({"retry": {"attempts": 0}}, "$.tasks[0].retry.attempts", "'attempts' must be at least 1"),
        (
            {"retry": {"attempts": True}},
            "$.tasks[0].retry.attempts",
            "'attempts' must be a whole number, got true",
        ),
        ({"retry": {"jitter": 1.5}}, "$.tasks[0].retry.jitter", "'jitter' must be at most 1"),
        ({"retry": 3}, "$.tasks[0].retry", "'retry' must be a mapping, got 3"),
        ({"when": 1}, "$.tasks[0].when", "'when' must be a string or a boolean, got 1"),
        ({"loop": {}}, "$.tasks[0].loop", "'loop' must be a list or a string, got a mapping"),
        ({"type": ""}, "$.tasks[0].type", "'type' must not be empty"),
        ({"name": "a b"}, "$.tasks[0].name", "'name' must be a task name (letters, digits"),
        ({"register": "1x"}, "$.tasks[0].register", "'register' must be a name made of"),
        (
            {"depends_on": ["ok", "no way"]},
            "$.tasks[0].depends_on[1]",
            "'depends_on[1]' must be a task name",
        ),
        ({"ignore_errors": "true"}, "$.tasks[0].ignore_errors", "'ignore_errors' must be true or"),
        (
            {"loop_control": {"parallel": 0}},
            "$.tasks[0].loop_control.parallel",
            "'parallel' must be at least 1, got 0",
        ),
    ],
)
def test_task_value_messages(fields: dict[str, Any], path: str, message: str) -> None:
    bad, problems = check(task(**fields))
    assert [p.location.path for p in problems] == [path]
    assert problems[0].message.startswith(message)
    assert bad


def test_unquoted_booleans_and_numbers_hint() -> None:
    _, problems = check(task(ignore_errors="false", retry={"attempts": "3"}))
    hints = {p.location.path: p.hint for p in problems}
    assert hints["$.tasks[0].ignore_errors"] == "write false without quotes"
    assert hints["$.tasks[0].retry.attempts"] == "write the number without quotes"


@pytest.mark.parametrize(
    ("key", "hint"),
    [
        ("retires", "did you mean 'retry'?"),
        ("timout", "did you mean 'timeout'?"),
        ("needs", "did you mean 'depends_on'?"),
        ("with_items", "did you mean 'loop'?"),
        ("vars", "'vars' belongs at the top level of the playbook, not in a task"),
        ("zzz", "allowed keys: 'name', 'type', 'params'"),
    ],
)
def test_unknown_task_keys(key: str, hint: str) -> None:
    _, problems = check(task(**{key: 1}))
    assert [(p.location.path, p.message) for p in problems] == [
        (f"$.tasks[0].{key}", f"unknown key '{key}' in task 0")
    ]
    assert problems[0].hint.startswith(hint)


def test_unknown_top_level_keys() -> None:
    _, problems = check({**MINIMAL, "register": "x", "varz": {}})
    hints = {p.location.path: p.hint for p in problems}
    assert hints == {
        "$.register": "'register' is a task key: put it inside a task, under 'tasks:'",
        "$.varz": "did you mean 'vars'?",
    }


def test_missing_keys() -> None:
    _, problems = check({"tasks": [{"name": "a"}]})
    assert [(p.location.path, p.message) for p in problems] == [
        ("$", "missing required key 'name'"),
        ("$", "missing required key 'schemaVersion'"),
        ("$.tasks[0]", "missing required key 'type' in task 0"),
    ]


def test_schema_version_as_a_number() -> None:
    _, problems = check({**MINIMAL, "schemaVersion": 1.0})
    assert problems[0].message == (
        "'schemaVersion' must be a string like \"v1.0.0\", got the number 1.0"
    )
    assert problems[0].hint == 'quote it: schemaVersion: "v1.0.0"'


def test_every_violation_is_collected() -> None:
    data = {
        "name": "",
        "schemaVersion": "1",
        "bogus": 1,
        "channel_policy": {"buffer_size": -1, "overflow_strategy": "x", "extra": 1},
        "tasks": [
            {"type": "exec", "timeout": "1x", "retry": {"delay": "soon", "attempts": 0}},
            "not a task",
            {"name": "b"},
            {"type": "exec", "stream_inputs": ["a", 3, "b c"]},
        ],
    }
    bad, problems = check(data)
    paths = sorted(p.location.path for p in problems)
    assert paths == sorted(
        [
            "$.bogus",
            "$.channel_policy.extra",
            "$.tasks[2]",
            "$.channel_policy.buffer_size",
            "$.channel_policy.overflow_strategy",
            "$.name",
            "$.schemaVersion",
            "$.tasks[0].retry.attempts",
            "$.tasks[0].retry.delay",
            "$.tasks[0].timeout",
            "$.tasks[1]",
            "$.tasks[3].stream_inputs[1]",
            "$.tasks[3].stream_inputs[2]",
        ]
    )
    # Bad values are reported so later stages can leave them out.
    assert ("tasks", 3, "stream_inputs") in bad
    assert ("tasks", 0, "timeout") in bad
    assert ("tasks", 2, "type") in bad


def test_root_must_be_a_mapping() -> None:
    _, problems = check(["a"])
    assert problems[0].message.startswith("a playbook must be a mapping")
