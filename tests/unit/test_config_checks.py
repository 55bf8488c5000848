"""Logical and template checks: what a playbook may refer to, and what it may not."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from gxo.config import Playbook
from gxo.config.load import load_playbook_text
from gxo.errors import PlaybookError, Problem

HEAD = 'schemaVersion: "v1.0.0"\nname: test\n'


def load(body: str, **kwargs: Any) -> Playbook:
    return load_playbook_text(HEAD + body, source="t.yaml", **kwargs)


def problems(body: str) -> list[tuple[str, str]]:
    with pytest.raises(PlaybookError) as caught:
        load(body)
    return [(p.location.path, p.message) for p in caught.value.problems]


def hints(body: str) -> list[Problem]:
    with pytest.raises(PlaybookError) as caught:
        load(body)
    return caught.value.problems


@pytest.mark.parametrize(
    "body",
    [
        # vars, registers (also of later tasks), statuses, GLOBAL_NAMES, template locals
        "vars: {v: 1}\ntasks:\n  - {name: a, type: x, params: {p: '{{ v }} {{ rb.out }}'}}\n"
        "  - {name: b, type: x, register: rb}\n",
        "tasks:\n  - {name: a-b, type: x}\n"
        "  - {name: c, type: x, when: \"{{ _gxo.tasks['a-b'].status == 'Failed' }}\"}\n",
        "tasks:\n  - name: a\n    type: x\n"
        "    params: {p: \"{{ env('HOME') }} {{ range(3) | list }}\"}\n",
        "vars: {hosts: [a]}\ntasks:\n  - type: x\n"
        "    params: {p: '{% for h in hosts %}{{ h }}{% endfor %}{% set n = 1 %}{{ n }}'}\n",
        # the loop variable, default and custom, in params only
        "tasks:\n  - {type: x, loop: [1, 2], params: {p: '{{ item }}'}}\n",
        "tasks:\n  - type: x\n    loop: [1]\n    loop_control: {loop_var: host}\n"
        "    params: {p: '{{ host }}'}\n",
        # Go forms
        "vars: {greeting: hi}\ntasks:\n  - type: x\n"
        '    params: {p: \'{{ .greeting }} {{ secret "TOKEN" }} {{ env "HOME" }}\'}\n',
        # secret() is fine in params; a whole _gxo.tasks read makes no edge and no problem
        "tasks:\n  - type: x\n    params: {p: \"{{ secret('T') }} {{ _gxo.tasks | length }}\"}\n",
        # a register may share a var's name; when may be a plain boolean
        "vars: {out: 1}\ntasks:\n  - {name: a, type: x, register: out, when: false}\n",
    ],
)
def test_valid_references(body: str) -> None:
    load(body)


def test_undefined_names_in_each_field() -> None:
    assert problems(
        "tasks:\n  - name: a\n    type: x\n    when: '{{ w }}'\n    loop: '{{ l }}'\n"
        "    params: {deep: {list: [1, '{{ p }}']}}\n"
    ) == [
        ("$.tasks[0].when", "undefined variable 'w'"),
        ("$.tasks[0].loop", "undefined variable 'l'"),
        ("$.tasks[0].params.deep.list[1]", "undefined variable 'p'"),
    ]


def test_a_name_read_only_through_default_or_defined_may_be_undefined() -> None:
    """``x | default(1)``, ``x | d(1)``, ``x is defined`` handle an undefined ``x`` (the
    common way to make a variable optional): the load accepts them. The same name read
    anywhere else in the same value (``x is defined and x`` too), or as
    ``x.y | default(1)`` (which reads ``x``), is still an undefined variable."""
    load(
        "tasks:\n  - name: a\n    type: x\n"
        "    when: '{{ flag is defined }}'\n"
        "    params: {p: \"{{ x | default(1) }} {{ y | d('z') }}\","
        " q: \"{{ 'yes' if w is not defined else 'no' }}\"}\n"
    )
    assert problems(
        "tasks:\n  - type: x\n    params: {p: '{{ x | default(1) }}', q: '{{ x }}'}\n"
    ) == [("$.tasks[0].params.q", "undefined variable 'x'")]
    assert problems("tasks:\n  - type: x\n    params: {p: '{{ x.y | default(1) }}'}\n") == [
        ("$.tasks[0].params.p", "undefined variable 'x'")
    ]


@pytest.mark.parametrize(
    "template",
    [
        "{{ x is defined and x }}",
        "{{ x if x is defined else 0 }}",
        "{{ 0 if x is not defined else x }}",
        "{{ x is undefined or x > 1 }}",
        "{% if x is defined %}{{ x }}{% else %}none{% endif %}",
        "{% if x is not defined %}none{% elif x > 1 %}{{ x }}{% endif %}",
        "{{ (x is defined and y is defined) and x + y }}",
    ],
)
def test_a_name_read_where_a_test_found_it_defined_may_be_undefined(template: str) -> None:
    """The Ansible idioms: a read the template reaches only after testing the name."""
    load(f"tasks:\n  - type: x\n    params: {{p: '{template}'}}\n")


@pytest.mark.parametrize(
    "template",
    [
        "{{ x is defined or x }}",
        "{{ x if y is defined else 0 }}",
        "{{ 0 if x is defined else x }}",
        "{% if x is defined %}{% endif %}{{ x }}",
    ],
)
def test_a_read_the_test_does_not_protect_is_still_undefined(template: str) -> None:
    assert problems(f"tasks:\n  - type: x\n    params: {{p: '{template}'}}\n") == [
        ("$.tasks[0].params.p", "undefined variable 'x'")
    ]


def test_a_guarded_register_is_still_an_edge() -> None:
    """``r | default('none')`` where ``r`` is another task's register still waits for it."""
    from gxo.dag import analyse

    playbook = load(
        "tasks:\n  - {name: a, type: x, params: {p: \"{{ r | default('none') }}\"}}\n"
        "  - {name: b, type: x, register: r}\n"
    )
    assert {edge.source for edge in analyse(playbook).graph.upstream("a")} == {"b"}


def test_undefined_go_form() -> None:
    assert problems("tasks:\n  - {type: x, params: {p: '{{ .nope.field }}'}}\n") == [
        ("$.tasks[0].params.p", "undefined variable 'nope'")
    ]


def test_custom_loop_var_hides_item() -> None:
    found = hints(
        "tasks:\n  - type: x\n    loop: [1]\n    loop_control: {loop_var: host}\n"
        "    params: {p: '{{ item }}'}\n"
    )
    assert [p.message for p in found] == ["undefined variable 'item'"]
    assert found[0].hint == "this task's loop variable is 'host' (loop_var)"


def test_reserved_names() -> None:
    assert problems("vars: {_gxo: 1}\ntasks:\n  - {name: a, type: x, register: _gxo}\n") == [
        ("$.vars._gxo", "'_gxo' is reserved for task statuses and cannot be a var"),
        (
            "$.tasks[0].register",
            "'_gxo' cannot be a register name: it is reserved for task statuses",
        ),
    ]


def test_problems_in_several_tasks_and_stages_are_all_reported() -> None:
    found = problems(
        "tasks:\n"
        "  - {name: a, bogus: 1, params: {p: '{{ q }}'}}\n"  # no type, unknown key, undefined
        "  - {name: b, type: x, depends_on: [zz], when: '{{ secret(\"S\") }}'}\n"
    )
    assert [path for path, _ in found] == [
        "$.tasks[0]",
        "$.tasks[0].bogus",
        "$.tasks[0].params.p",
        "$.tasks[1].depends_on[0]",
        "$.tasks[1].when",
    ]


def test_each_broken_template_of_a_task_is_reported() -> None:
    found = problems(
        "tasks:\n  - type: x\n    params:\n      a: '{{ }}'\n      b: ok\n      c: ['{% if %}']\n"
    )
    assert [path for path, _ in found] == ["$.tasks[0].params.a", "$.tasks[0].params.c[0]"]


def test_params_keys_that_are_not_identifiers_are_located() -> None:
    found = hints("tasks:\n  - type: x\n    params:\n      my-key: {'a b': '{{ nope }}'}\n")
    assert [(p.location.path, p.location.line, p.location.column) for p in found] == [
        ('$.tasks[0].params["my-key"]["a b"]', 6, 23)
    ]


@pytest.mark.parametrize("module", ["gxo.dag", "gxo.config", "gxo.config.load", "gxo.dag.build"])
def test_import_order_has_no_cycle(module: str) -> None:
    """gxo.dag reads the model only for types: either package may be imported first."""
    subprocess.run([sys.executable, "-c", f"import {module}"], check=True)


def test_vars_named_like_template_functions() -> None:
    # GXO playbooks name vars env or namespace: a Go field reads the var ({{ .env }}); in Jinja
    # the name is the function, and naming it without a call prints no "<function ...>".
    found = hints(
        "vars: {env: prod, namespace: ns}\ntasks:\n  - {name: r, type: x, register: dict}\n"
        "  - {type: x, params: {p: '{{ .env }}-{{ .namespace }}-{{ .dict.x }}'}}\n"
        "  - {type: x, params: {p: '{{ env ~ 1 }}'}}\n"
    )
    assert [(p.location.path, p.location.line, p.message) for p in found] == [
        ("$.tasks[2].params.p", 7, "'env' is a function, named here without being called"),
    ]
    assert "a var or register named 'env' is read in a Go template: {{ .env }}" in str(
        found[0].hint
    )


def test_thousands_of_broken_references_stay_fast() -> None:
    """Fuzzy suggestions have a budget: no O(tasks x problems) difflib work."""
    count = 3000
    lines = ["tasks:"]
    for i in range(count):
        params = f"{{p: '{{{{ u{i} }}}}'}}"
        lines.append(f"  - {{name: t{i}, type: x, depends_on: [missing{i}], params: {params}}}")
    with pytest.raises(PlaybookError) as caught:
        load("\n".join(lines) + "\n")
    found = caught.value.problems
    assert len(found) == 2 * count
    assert found[0].hint == ""  # nothing close, and too many tasks to list
    assert (
        found[-1].hint == "define it under 'vars', pass --var u2999=..., or register it from a task"
    )


def test_long_cycle_is_reported_once() -> None:
    count = 2000
    lines = ["tasks:"]
    for i in range(count):
        params = f"{{p: '{{{{ r{(i + 1) % count} }}}}'}}"
        lines.append(f"  - {{name: t{i}, type: x, register: r{i}, params: {params}}}")
    with pytest.raises(PlaybookError) as caught:
        load("\n".join(lines) + "\n")
    (problem,) = caught.value.problems
    assert problem.message.startswith("dependency cycle: t0 -> t1999 -> t1998")
    assert problem.location.path == "$.tasks[0]"


def test_inputs_and_outputs_are_not_templates() -> None:
    """A template in ``inputs``/``outputs`` was taken as a path word for word: the output was
    always "missing" (the task ran again on every --resume), an input never changed."""
    found = hints(
        "vars: {d: out}\ntasks:\n  - name: t\n    type: x\n    loop: [a]\n"
        "    inputs: [fixed.txt, '{{ item }}.txt']\n    outputs: ['{{ d }}/r.out']\n"
    )
    assert [(p.location.path, p.message) for p in found] == [
        ("$.tasks[0].inputs[1]", "'inputs' lists file paths, not templates: '{{ item }}.txt'"),
        ("$.tasks[0].outputs[0]", "'outputs' lists file paths, not templates: '{{ d }}/r.out'"),
    ]
    assert (found[0].location.line, found[0].location.column) == (8, 25)
    assert "relative to gxo's working directory" in (found[0].hint or "")
    load("tasks:\n  - {name: t, type: x, inputs: [a.txt], outputs: ['b {x}.txt']}\n")
