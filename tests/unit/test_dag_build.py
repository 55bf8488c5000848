"""gxo.dag.analyse: edges inferred from a playbook, and the compiled templates it keeps."""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

import msgspec
import pytest

from gxo.config import Playbook
from gxo.config.load import load_playbook_text
from gxo.config.model import Task
from gxo.dag import Edge, Plan, TaskTemplates, analyse, build_graph, compile_task
from gxo.errors import TemplateError
from gxo.template import compile_value

HEAD = 'schemaVersion: "v1.0.0"\nname: test\nvars: {v: 1, items: [1, 2]}\n'


def load(body: str) -> Playbook:
    return load_playbook_text(HEAD + body)


def edges(body: str) -> set[tuple[str, str, str]]:
    return {tuple(edge) for edge in build_graph(load(body)).edges}  # type: ignore[misc]


def test_edge_of_each_kind() -> None:
    assert edges(
        """tasks:
  - {name: a, type: x, register: ra}
  - {name: b, type: x, params: {p: "{{ ra }}"}}
  - {name: c, type: x, when: "{{ _gxo.tasks.a.status == 'Completed' }}"}
  - {name: d, type: x, stream_inputs: [a]}
  - {name: e, type: x, depends_on: [a]}
"""
    ) == {
        ("a", "b", "register"),
        ("a", "c", "status"),
        ("a", "d", "stream"),
        ("a", "e", "depends_on"),
    }


def test_field_of_a_register_makes_an_edge() -> None:
    """GXO needed `{{ .reg }}` exactly; `{{ .reg.stdout }}` made no edge (its bug 19)."""
    body = """tasks:
  - {name: consumer, type: x, params: {p: "{{ build_out.stdout }}"}}
  - {name: producer, type: x, register: build_out}
  - {name: go_form, type: x, params: {p: "{{ .build_out.stdout }}"}}
"""
    assert edges(body) == {
        ("producer", "consumer", "register"),
        ("producer", "go_form", "register"),
    }


def test_independent_tasks_have_no_edges_whatever_their_order() -> None:
    body = """tasks:
  - {name: a, type: x, params: {p: "{{ v }}"}}
  - {name: b, type: x, register: rb, loop: "{{ items }}", params: {p: "{{ item }}"}}
  - {name: c, type: x, when: "{{ v == 1 }}"}
"""
    graph = build_graph(load(body))
    assert graph.edges == ()
    assert graph.roots() == ("a", "b", "c")


def test_references_are_found_everywhere_a_template_may_be() -> None:
    assert edges(
        """tasks:
  - {name: a, type: x, register: ra}
  - {name: b, type: x, register: rb}
  - {name: c, type: x, register: rc}
  - {name: d, type: x, register: rd}
  - name: user
    type: x
    when: "{{ ra.ok }}"
    loop: "{{ rb.items }}"
    params:
      nested: {list: [1, {deep: "x {{ rc['key'] }}"}]}
      control: "{% if rd.changed %}yes{% endif %}"
"""
    ) == {(n, "user", "register") for n in "abcd"}


def test_status_edge_for_names_that_are_not_identifiers() -> None:
    assert edges(
        """tasks:
  - {name: fetch-data, type: x}
  - {name: use, type: x, when: "{{ _gxo.tasks['fetch-data'].status == 'Completed' }}"}
"""
    ) == {("fetch-data", "use", "status")}


def test_two_kinds_between_one_pair_are_both_kept() -> None:
    # Validation refuses a task that both streams from and waits for another (the stream
    # group could never start), so the stream input is added after loading.
    playbook = load(
        """tasks:
  - {name: a, type: x, register: ra}
  - name: b
    type: x
    depends_on: [a]
    params: {p: "{{ ra }} {{ ra.x }} {{ _gxo.tasks.a.status }}", q: ["{{ ra.y }}"]}
"""
    )
    a, b = playbook.tasks
    playbook = msgspec.structs.replace(
        playbook, tasks=(a, msgspec.structs.replace(b, stream_inputs=("a",)))
    )
    graph = build_graph(playbook)
    assert graph.upstream("b") == (
        Edge("a", "b", "depends_on"),
        Edge("a", "b", "stream"),
        Edge("a", "b", "register"),
        Edge("a", "b", "status"),
    )


def test_loop_variable_and_template_locals_make_no_edge() -> None:
    body = """tasks:
  - {name: a, type: x, register: host}
  - name: b
    type: x
    loop: [1]
    loop_control: {loop_var: each}
    params: {p: "{{ each }}", q: "{% for h in items %}{{ h }}{% endfor %}"}
"""
    assert edges(body) == set()


def test_templates_and_state_names() -> None:
    playbook = load(
        """tasks:
  - {name: a, type: x, register: ra}
  - name: b
    type: x
    when: "{{ v > 0 }}"
    loop: "{{ items }}"
    params: {p: "{{ item }} {{ ra.stdout }} {{ _gxo.tasks.a.status }} {{ secret('S') }}"}
  - {name: c, type: x, when: true, loop: [1, 2], params: {p: plain}}
"""
    )
    plan = analyse(playbook)
    assert isinstance(plan, Plan)
    assert isinstance(plan.templates, MappingProxyType)
    b = plan.templates["b"]
    assert isinstance(b, TaskTemplates)
    assert b.when is not None
    assert b.loop is not None
    assert b.state_names == frozenset({"v", "items", "ra", "_gxo"})  # not the loop variable
    assert b.params.uses_secret
    c = plan.templates["c"]
    assert c.when is None  # a boolean, not a template
    assert c.loop is None  # a literal list: items are plain data
    assert c.params.is_constant
    assert c.state_names == frozenset()
    assert set(plan.templates) == {"a", "b", "c"}


def test_the_loader_returns_the_plan_it_built() -> None:
    """The templates compiled while validating are the plan's: nothing is compiled twice."""
    from gxo.config.load import load_plan_text

    text = "tasks:\n  - {name: a, type: x, params: {p: '{{ v }}'}}\n"
    playbook, plan = load_plan_text(HEAD + text)
    assert plan.graph.nodes == ("a",)
    assert plan.templates["a"].state_names == frozenset({"v"})
    again = analyse(playbook)
    assert again is not plan
    assert again.graph.nodes == plan.graph.nodes


def test_analyse_reuses_given_templates() -> None:
    playbook = load("tasks:\n  - {name: a, type: x, register: ra}\n  - {name: b, type: x}\n")
    marker = TaskTemplates(
        when=None,
        loop=None,
        params=compile_value({"p": "{{ ra }}"}, where="$.tasks[1].params"),
        state_names=frozenset({"ra"}),
    )
    plan = analyse(playbook, {"b": marker})
    assert plan.templates["b"] is marker
    assert plan.graph.edges == (Edge("a", "b", "register"),)


def _task(**fields: Any) -> Task:
    return Task(index=0, name="t", named=True, type="x", **fields)


def test_compile_task() -> None:
    templates = compile_task(_task(when="{{ a }}", loop="{{ b }}", params={"p": "{{ c }}"}))
    assert templates.state_names == frozenset({"a", "b", "c"})
    with pytest.raises(TemplateError) as caught:
        compile_task(_task(when="{{ secret('X') }}"))
    assert caught.value.where == "$.tasks[0].when"
    with pytest.raises(TemplateError):
        compile_task(_task(params={"p": "{{ }}"}))


def test_unknown_names_and_self_references_make_no_edges() -> None:
    """analyse() expects a validated playbook but never invents an edge."""
    playbook = Playbook(
        name="p",
        schema_version="v1.0.0",
        tasks=(
            Task(
                index=0,
                name="a",
                named=True,
                type="x",
                register="ra",
                params={"p": "{{ ra }} {{ _gxo.tasks.a.status }} {{ _gxo.tasks.zz.status }}"},
                depends_on=("nobody",),
            ),
        ),
    )
    assert analyse(playbook).graph.edges == ()
