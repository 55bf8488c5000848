"""stream:join key templates written as GXO writes them are compiled per record."""

from __future__ import annotations

import pytest

from gxo.config import Playbook
from gxo.config.load import load_playbook_text
from gxo.dag import analyse
from gxo.errors import PlaybookError
from gxo.template import compile_value

HEAD = 'schemaVersion: "v1.0.0"\nname: t\nvars: {prefix: "u-"}\n'
TASKS = """tasks:
  - {name: users, type: generate:from_list, params: {items: [{user_id: 1}]}}
  - {name: orders, type: generate:from_list, params: {items: [{user_id: 1}]}}
  - {name: setup, type: passthrough, register: cfg}
  - name: j
    type: stream:join
    stream_inputs: [users, orders]
    params:
      join_type: inner
      on:
        - {stream: users, role: build, template: %s}
        - {stream: orders, role: probe, field: user_id}
"""


def load(key: str) -> Playbook:
    return load_playbook_text(HEAD + TASKS % key, source="t.yaml")


@pytest.mark.parametrize(
    "key",
    [
        "'{{ .user_id }}'",
        "'{{ printf \"%d\" .user_id }}'",
        "'{{ user_id }}'",
        "'{% raw %}{{ user_id }}{% endraw %}'",
        "'{{ .prefix }}{{ .user_id }}'",
    ],
)
def test_a_record_field_in_a_key_template_is_valid(key: str) -> None:
    load(key)


def test_the_params_render_back_to_the_template_text() -> None:
    playbook = load("'{{ .user_id }}'")
    task = playbook.task("j")
    rendered = compile_value(task.params, where="$").render({})
    assert rendered["on"][0]["template"] == "{{ .user_id }}"
    per_record = compile_value(rendered["on"][0]["template"], where="$")
    assert per_record.render({"user_id": 7}) == 7


def test_state_a_key_template_reads_is_sent_and_ordered_before() -> None:
    playbook = load("'{{ .cfg.x }}-{{ .prefix }}-{{ .user_id }}'")
    plan = analyse(playbook)
    assert {"cfg", "prefix"} <= plan.templates["j"].state_names
    assert "user_id" not in plan.templates["j"].state_names
    assert any(e.source == "setup" and e.target == "j" for e in plan.graph.edges)
    rendered = compile_value(playbook.task("j").params, where="$").render(
        {"cfg": {"x": 1}, "prefix": "u-"}
    )
    assert rendered["on"][0]["template"] == "{{ .cfg.x }}-{{ .prefix }}-{{ .user_id }}"


def test_a_broken_key_template_is_reported_at_its_path() -> None:
    with pytest.raises(PlaybookError) as caught:
        load("'{{ if .user_id }}'")
    [problem] = caught.value.problems
    assert problem.location.path == "$.tasks[3].params.on[0].template"
    assert (problem.location.line, problem.location.column) == (14, 50)
    assert "join key template" in problem.message
    assert "has no {{ end }}" in problem.message
