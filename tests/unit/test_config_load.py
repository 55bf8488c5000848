"""load_playbook / _text / _data: the model built, defaults, merging, and how problems point."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from gxo.config import (
    ChannelPolicy,
    LoopControl,
    Playbook,
    RetryPolicy,
    StatePolicy,
    TaskPolicy,
)
from gxo.config.load import load_playbook, load_playbook_data, load_playbook_text
from gxo.errors import PlaybookError, Problem

HEAD = 'schemaVersion: "v1.0.0"\nname: test\n'


def load(body: str, **kwargs: Any) -> Playbook:
    return load_playbook_text(HEAD + body, source="t.yaml", **kwargs)


def problems(body: str, **kwargs: Any) -> list[Problem]:
    with pytest.raises(PlaybookError) as caught:
        load(body, **kwargs)
    return caught.value.problems


def test_minimal_playbook_gets_every_default() -> None:
    playbook = load("tasks:\n  - type: exec\n")
    assert playbook.name == "test"
    assert playbook.schema_version == "v1.0.0"
    assert playbook.vars == {}
    assert playbook.timeout is None
    assert playbook.source == "t.yaml"
    (task,) = playbook.tasks
    assert task.index == 0
    assert task.name == "__task_idx_0"
    assert task.named is False
    assert task.path == "$.tasks[0]"
    assert task.params == {}
    assert task.register is None
    assert task.stream_inputs == ()
    assert task.depends_on == ()
    assert task.when is None
    assert task.loop is None
    assert task.loop_control == LoopControl()
    assert task.retry == RetryPolicy()
    assert task.timeout is None
    assert task.ignore_errors is False
    assert task.policy == TaskPolicy()
    assert task.channel_policy == ChannelPolicy()
    assert task.state_policy == StatePolicy()


def test_every_field_is_read() -> None:
    playbook = load(
        """
timeout: 2h
vars: {who: world, items: [1, 2]}
tasks:
  - name: producer
    type: exec
    register: produced
  - name: main
    type: exec
    params: {command: "echo {{ who }} {{ item }}", nested: {list: ["{{ produced }}"]}}
    depends_on: [producer]
    when: "{{ who == 'world' }}"
    loop: "{{ items }}"
    loop_control: {parallel: 4}
    retry:
      {attempts: 5, delay: 250ms, max_delay: 1m, backoff_factor: 2, jitter: 0.1, on_error: false}
    timeout: 1m30s
    ignore_errors: true
    policy_ref: reserved
  - name: feeder
    type: exec
  - name: consumer
    type: exec
    stream_inputs: [feeder, feeder]
"""
    )
    assert playbook.timeout == 7200.0
    main = playbook.task("main")
    assert main.named is True
    assert main.index == 1
    assert main.params == {
        "command": "echo {{ who }} {{ item }}",
        "nested": {"list": ["{{ produced }}"]},
    }
    consumer = playbook.tasks[3]
    assert consumer.stream_inputs == ("feeder",)  # listed twice: one dependency
    assert main.depends_on == ("producer",)
    assert main.when == "{{ who == 'world' }}"
    assert main.loop == "{{ items }}"
    assert main.loop_control == LoopControl(parallel=4, loop_var="item")
    assert main.retry == RetryPolicy(
        attempts=5, delay=0.25, max_delay=60.0, backoff_factor=2.0, jitter=0.1, on_error=False
    )
    assert main.timeout == 90.0
    assert main.ignore_errors is True


def test_vars_are_not_templated() -> None:
    playbook = load('vars: {a: "{{ undefined_anywhere }}", b: "{% broken"}\ntasks:\n  - type: x\n')
    assert playbook.vars == {"a": "{{ undefined_anywhere }}", "b": "{% broken"}


def test_overrides_replace_and_add_vars() -> None:
    body = "vars: {env_name: dev, keep: 1}\ntasks:\n  - type: x\n    params: {a: '{{ extra }}'}\n"
    playbook = load(body, overrides={"env_name": "prod", "extra": "2"})
    assert playbook.vars == {"env_name": "prod", "keep": 1, "extra": "2"}
    # Without the override, 'extra' is undefined.
    assert [p.message for p in problems(body)] == ["undefined variable 'extra'"]


def test_retry_defaults_and_zero_delay() -> None:
    playbook = load(
        """
tasks:
  - {name: a, type: x, retry: {}}
  - {name: b, type: x, retry: {attempts: 3}}
  - {name: c, type: x, retry: {attempts: 2, delay: 0s}}
  - {name: d, type: x, retry: {max_delay: 500ms}}
"""
    )
    retries = [task.retry for task in playbook.tasks]
    assert retries[0] == RetryPolicy()  # GXO rejected `retry: {}`; attempts defaults to 1
    assert retries[1] == RetryPolicy(attempts=3, delay=1.0)
    assert retries[2].delay == 0.0  # a real zero, unlike GXO
    assert retries[3] == RetryPolicy(max_delay=0.5)  # delay not given: not compared


def test_zero_timeouts_mean_none_and_numbers_are_seconds() -> None:
    playbook = load("timeout: 0s\ntasks:\n  - {type: x, timeout: 0}\n  - {type: x, timeout: 2.5}\n")
    assert playbook.timeout is None
    assert [t.timeout for t in playbook.tasks] == [None, 2.5]


def test_when_may_be_a_boolean_and_yes_stays_a_string() -> None:
    playbook = load("tasks:\n  - {type: x, when: false}\n  - {type: x, when: yes}\n")
    assert [t.when for t in playbook.tasks] == [False, "yes"]


def test_policies_merge_key_by_key() -> None:
    playbook = load(
        """
task_policy: {skip_on_no_input: true}
channel_policy: {buffer_size: 10, overflow_strategy: drop_new}
state_policy: {access_mode: unsafe_direct_reference}
tasks:
  - {name: inherits, type: x}
  - name: overrides
    type: x
    policy: {skip_on_no_input: false}
    channel_policy: {overflow_strategy: error}
    state_policy: {access_mode: deep_copy}
  - {name: empty, type: x, channel_policy: {}}
"""
    )
    inherits, overrides, empty = playbook.tasks
    assert playbook.channel_policy == ChannelPolicy(buffer_size=10, overflow_strategy="drop_new")
    assert inherits.policy == TaskPolicy(skip_on_no_input=True)
    assert inherits.channel_policy == playbook.channel_policy
    assert inherits.state_policy == StatePolicy(access_mode="unsafe_direct_reference")
    assert overrides.policy == TaskPolicy(skip_on_no_input=False)
    assert overrides.channel_policy == ChannelPolicy(buffer_size=10, overflow_strategy="error")
    assert overrides.state_policy == StatePolicy(access_mode="deep_copy")
    assert empty.channel_policy == playbook.channel_policy


def test_schema_version_forms() -> None:
    for given, stored in [("1.0.0", "v1.0.0"), ("v1.7.3", "v1.7.3"), ("1.20.300", "v1.20.300")]:
        text = f'schemaVersion: "{given}"\nname: x\ntasks:\n  - type: x\n'
        assert load_playbook_text(text).schema_version == stored


def test_unknown_module_types_with_known_types() -> None:
    body = (
        "tasks:\n  - {name: a, type: exce}\n  - {name: b, type: exec}\n  - {name: c, type: zzz}\n"
    )
    found = problems(body, known_types={"exec", "python", "passthrough"})
    assert [(p.location.path, p.message) for p in found] == [
        ("$.tasks[0].type", "unknown module type 'exce'"),
        ("$.tasks[2].type", "unknown module type 'zzz'"),
    ]
    assert found[0].hint == "did you mean 'exec'? Run `gxo modules` to list the installed modules."
    assert found[1].hint == "Run `gxo modules` to list the installed modules."
    assert load(
        body.replace("exce", "exec").replace("zzz", "python"), known_types={"exec", "python"}
    )
    assert load(body)  # not checked without known_types


def test_problem_positions_key_versus_value() -> None:
    found = problems("tasks:\n  - type: x\n    retires: 3\n    timeout: forever\n")
    by_path = {p.location.path: p for p in found}
    unknown = by_path["$.tasks[0].retires"]
    assert (unknown.location.line, unknown.location.column) == (5, 5)  # the key
    bad = by_path["$.tasks[0].timeout"]
    assert (bad.location.line, bad.location.column) == (6, 14)  # the value
    assert bad.format() == (
        "t.yaml:6:14: $.tasks[0].timeout: 'timeout' must be a duration like 30s, 1m30s or "
        "500ms, got 'forever'\n    hint: units are ns, us, ms, s, m and h; a plain number "
        "means seconds (timeout: 90)"
    )


def test_all_problems_are_collected_and_sorted() -> None:
    found = problems(
        """tasks:
  - name: a
    type: x
    register: r
  - name: a
    type: x
    timeout: nope
    depends_on: [b]
  - name: c
    type: x
    register: r
    params: {x: "{{ undefined_var }}"}
    retry: {attempts: 0}
"""
    )
    assert [(p.location.line, p.message) for p in found] == [
        (7, "duplicate task name 'a'"),
        (9, "'timeout' must be a duration like 30s, 1m30s or 500ms, got 'nope'"),
        (10, "'depends_on' names task 'b', which is not defined"),
        (13, "register 'r' is already used by task 'a'"),
        (14, "undefined variable 'undefined_var'"),
        (15, "'attempts' must be at least 1, got 0"),
    ]


def test_load_from_a_file(tmp_path: Path) -> None:
    path = tmp_path / "play.yaml"
    path.write_text(HEAD + "tasks:\n  - type: x\n", encoding="utf-8")
    assert load_playbook(path).source == str(path)
    assert load_playbook(str(path)).name == "test"


def test_file_problems(tmp_path: Path) -> None:
    with pytest.raises(PlaybookError) as caught:
        load_playbook(tmp_path / "missing.yaml")
    assert caught.value.problems[0].message.startswith("cannot read the playbook: No such file")

    binary = tmp_path / "latin1.yaml"
    binary.write_bytes(b"name: caf\xe9\n")
    with pytest.raises(PlaybookError) as caught:
        load_playbook(binary)
    problem = caught.value.problems[0]
    assert problem.message == "the playbook is not UTF-8 text"
    assert (problem.location.line, problem.location.column) == (1, 10)

    huge = tmp_path / "huge.yaml"
    with open(huge, "wb") as file:
        file.truncate(11 * 1024 * 1024)  # sparse: nothing is read
    with pytest.raises(PlaybookError) as caught:
        load_playbook(huge)
    assert caught.value.problems[0].message == "the playbook is larger than 10 MiB"


def test_load_playbook_data_copies_and_checks() -> None:
    data: dict[str, Any] = {
        "schemaVersion": "v1.0.0",
        "name": "d",
        "vars": {"items": (1, 2)},
        "tasks": [{"name": "a", "type": "x", "params": {"list": ["{{ items }}"]}}],
    }
    playbook = load_playbook_data(data)
    assert playbook.source == "<data>"
    assert playbook.vars == {"items": [1, 2]}  # tuples become lists
    data["tasks"][0]["params"]["list"].append("changed")
    assert playbook.tasks[0].params == {"list": ["{{ items }}"]}


def test_load_playbook_data_problems_have_paths_but_no_lines() -> None:
    data: dict[str, Any] = {
        "schemaVersion": "v1.0.0",
        "name": "d",
        "vars": {1: "x", "obj": object()},
        "tasks": [{"type": "x", "timeout": "soon"}],
    }
    with pytest.raises(PlaybookError) as caught:
        load_playbook_data(data, source="api")
    found = caught.value.problems
    assert [(p.location.file, p.location.line, p.location.path) for p in found] == [
        ("api", None, '$.vars["1"]'),
        ("api", None, "$.vars.obj"),
    ]
    data["vars"] = {}
    with pytest.raises(PlaybookError) as caught:
        load_playbook_data(data, source="api")
    assert [p.location.path for p in caught.value.problems] == ["$.tasks[0].timeout"]


def test_unnamed_tasks_cannot_be_referred_to() -> None:
    found = problems("tasks:\n  - type: x\n  - type: x\n    depends_on: [__task_idx_0]\n")
    assert [p.message for p in found] == [
        "'depends_on' names task '__task_idx_0', which is not defined"
    ]


def test_error_text_lists_every_problem() -> None:
    with pytest.raises(PlaybookError) as caught:
        load("tasks:\n  - {type: x, bogus: 1, other: 2}\n")
    assert str(caught.value).splitlines()[0] == "playbook is invalid (2 problems):"


def test_gc_state_is_restored() -> None:
    import gc

    assert gc.isenabled()
    load("tasks:\n  - type: x\n")
    assert gc.isenabled()
    gc.disable()
    try:
        load("tasks:\n  - type: x\n")
        assert not gc.isenabled()
    finally:
        gc.enable()
    with pytest.raises(PlaybookError):
        load("tasks: 3\n")
    assert gc.isenabled()


def test_environment_is_not_consulted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GREETING", "hi")
    found = problems("tasks:\n  - type: x\n    params: {a: '{{ GREETING }}'}\n")
    assert [p.message for p in found] == ["undefined variable 'GREETING'"]
    assert os.environ["GREETING"] == "hi"
