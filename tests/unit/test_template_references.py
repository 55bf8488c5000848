"""Reference extraction (how gxo infers the DAG), secret detection and compile errors."""

from __future__ import annotations

from typing import Any

import pytest

from gxo.errors import TemplateError
from gxo.template import compile_value

R = tuple[str, ...]


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{ reg.stdout }}", {("reg", "stdout")}),
        ("{{ .reg.stdout }}", {("reg", "stdout")}),
        ("{{ reg }}", {("reg",)}),
        ("echo {{ a.b }} and {{ c }}", {("a", "b"), ("c",)}),
        ("{{ _gxo.tasks['my-task'].status }}", {("_gxo", "tasks", "my-task", "status")}),
        ("{{ ._gxo.tasks.build.status }}", {("_gxo", "tasks", "build", "status")}),
        ('{{ _gxo["tasks"]["a-b"] }}', {("_gxo", "tasks", "a-b")}),
        ("{{ reg['std-out'] }}", {("reg", "std-out")}),
        ("{{ x[i] }}", {("x",), ("i",)}),
        ("{{ x[i].y }}", {("x",), ("i",)}),
        ("{{ x[0].y }}", {("x",)}),
        ("{{ x[1:n] }}", {("x",), ("n",)}),
        ("{{ a[b.c] }}", {("a",), ("b", "c")}),
        ("{{ a['k']['j'] }}", {("a", "k", "j")}),
        ("{{ users | map(attribute='n') | list }}", {("users",)}),
        ("{{ x | default(y.z) }}", {("x",), ("y", "z")}),
        ("{{ reg.stdout.split(',')[0] | trim }}", {("reg", "stdout")}),
        (
            "{{ f(g(h.i), k=l.m, *n, **o) }}",
            {("f",), ("g",), ("h", "i"), ("l", "m"), ("n",), ("o",)},
        ),
        ("{{ a if b.c else d['e'] }}", {("a",), ("b", "c"), ("d", "e")}),
        ("{% if x is defined and x.y %}{% endif %}", {("x",), ("x", "y")}),
        ("{{ x is divisibleby n }}", {("x",), ("n",)}),
        ("{{ [a, {'k': b}, (c,)] }}", {("a",), ("b",), ("c",)}),
        ("{{ a ~ b + c * -d }}", {("a",), ("b",), ("c",), ("d",)}),
        ("{{ 1 < a.x < b }}", {("a", "x"), ("b",)}),
        # Loops: the target and `loop` are local.
        ("{% for u in users %}{{ u.name }}{{ loop.index }}{% endfor %}", {("users",)}),
        ("{% for u in users %}{% endfor %}{{ u }}", {("users",), ("u",)}),
        ("{% for k, v in d.items() %}{{ k }}={{ v.x }}{% endfor %}", {("d",)}),
        (
            "{% for x in xs if x > lim %}{{ x }}{% else %}{{ none_left }}{% endfor %}",
            {("xs",), ("lim",), ("none_left",)},
        ),
        (
            "{% for x in xs %}{% for y in x.ys %}{{ y }}{{ z }}{% endfor %}{% endfor %}",
            {("xs",), ("z",)},
        ),
        ("{{ loop }}", {("loop",)}),
        # set: local after the set, a reference before it.
        ("{% set y = 1 %}{{ y }}", set()),
        ("{{ y }}{% set y = 1 %}", {("y",)}),
        ("{% set y = a.b %}{{ y.c }}", {("a", "b")}),
        ("{% set p, q = pair %}{{ p }}{{ q }}", {("pair",)}),
        ("{% set x %}{{ y }}{% endset %}{{ x }}", {("y",)}),
        ("{% for i in l %}{% set t = i %}{% endfor %}{{ t }}", {("l",), ("t",)}),
        ("{% if c %}{% set y = 1 %}{% endif %}{{ y }}", {("c",), ("y",)}),
        ("{% if c %}{% set y = 1 %}{% else %}{% set y = 2 %}{% endif %}{{ y }}", {("c",)}),
        (
            "{% if c %}{% set y = 1 %}{% elif d %}{% set y = 2 %}{% endif %}{{ y }}",
            {("c",), ("d",), ("y",)},
        ),
        (
            "{% set ns = namespace(n=0) %}{% for i in items %}{% set ns.n = ns.n + i %}{% endfor %}"
            "{{ ns.n }}",
            {("items",)},
        ),
        ("{% set ns.n = 1 %}", {("ns",)}),
        # Macros, call blocks, with, filter blocks.
        (
            "{% macro m(a, b=d) %}{{ a }}{{ b }}{{ c }}{{ caller }}{% endmacro %}{{ m(1) }}",
            {("d",), ("c",)},
        ),
        ("{% macro m() %}{{ varargs }}{{ kwargs }}{{ m() }}{% endmacro %}", set()),
        ("{% call m(x) %}{{ y }}{% endcall %}", {("m",), ("x",), ("y",)}),
        ("{% call(v) m() %}{{ v }}{% endcall %}", {("m",)}),
        ("{% with a = b %}{{ a }}{{ c }}{% endwith %}{{ a }}", {("b",), ("c",), ("a",)}),
        ("{% filter upper %}{{ z }}{% endfilter %}", {("z",)}),
        ("{% set x | upper %}{{ w }}{% endset %}", {("w",)}),
        # Globals and functions are not state.
        ("{{ secret('X') }} {{ env('Y') }} {{ range(n) }} {{ dict(a=b) }}", {("n",), ("b",)}),
        ('{{ secret "X" }}', set()),
        ("{{ env .var_name }}", {("var_name",)}),
        ("{{ namespace(a=1).a }}", set()),
        ("{{ self }}", set()),
        ("plain {# {{ hidden }} #} text {{ shown }}", {("shown",)}),
        ("{% raw %}{{ hidden }}{% endraw %}", set()),
    ],
)
def test_references(template: str, expected: set[R]) -> None:
    compiled = compile_value(template, where="$.t")
    assert compiled.references == frozenset(expected)
    assert compiled.top_level_names == frozenset(ref[0] for ref in expected)


def test_references_of_nested_values_are_merged() -> None:
    compiled = compile_value(
        {"a": "{{ reg.stdout }}", "b": ["x", {"c": "{{ _gxo.tasks['t-1'].status }}"}], "d": 1},
        where="$.p",
    )
    assert compiled.references == {("reg", "stdout"), ("_gxo", "tasks", "t-1", "status")}
    assert compiled.top_level_names == {"reg", "_gxo"}
    assert compiled.uses_secret is False


@pytest.mark.parametrize(
    ("template", "uses"),
    [
        ("{{ secret('X') }}", True),
        ('{{ secret "X" }}', True),
        ("a {% if x %}{{ secret('X') | trim }}{% endif %}", True),
        ("{% macro m() %}{{ secret('X') }}{% endmacro %}", True),
        ("{{ env('X') }}", False),
        ("{{ secrets }}", False),
        ("{{ x.secret }}", False),
        ("{{ 'secret' }}", False),
        ("{% for secret in l %}{{ secret }}{% endfor %}", False),
    ],
)
def test_uses_secret(template: str, uses: bool) -> None:
    assert compile_value(template, where="$.t").uses_secret is uses
    assert compile_value({"k": [template]}, where="$.t").uses_secret is uses


@pytest.mark.parametrize(
    "template",
    ["{% set s = secret %}{{ s('X') }}", "{{ env ~ 'x' }}", "{{ 'a' if namespace else 'b' }}"],
)
def test_function_named_but_not_called_is_an_error(template: str) -> None:
    # The function object itself: aliased (which would hide secret() from uses_secret) or
    # printed as '<function ...>'.
    with pytest.raises(TemplateError, match="named here without being called"):
        compile_value(template, where="$.t")


@pytest.mark.parametrize(
    ("value", "where"),
    [
        ("{{ secret('X') }}", "$.tasks[3].when"),
        ('{{ secret "X" }} and more', "$.tasks[3].when"),
        (["a", "{{ secret('X') }}"], "$.tasks[3].when[1]"),
        ({"k": {"a-b": "{% if secret('X') %}{% endif %}"}}, '$.tasks[3].when.k["a-b"]'),
    ],
)
def test_secret_is_refused_where_not_allowed(value: Any, where: str) -> None:
    with pytest.raises(TemplateError) as info:
        compile_value(value, where="$.tasks[3].when", allow_secret=False)
    error = info.value
    assert error.where == where
    assert error.message.startswith("secret() cannot be used here")
    assert "`when`, `loop` and `name`" in error.message
    assert "params" in error.hint


def test_templates_without_secret_are_fine_where_secret_is_refused() -> None:
    compiled = compile_value("{{ env('X') }} {{ reg.rc == 0 }}", where="$.w", allow_secret=False)
    assert compiled.references == {("reg", "rc")}


@pytest.mark.parametrize(
    ("value", "where"),
    [
        ("{{ 1 +* }}", "$.tasks[2].params"),
        ({"args": ["ok", "{{ x +* }}"]}, "$.tasks[2].params.args[1]"),
        ({"env": {"HOME": "{% if %}"}}, "$.tasks[2].params.env.HOME"),
        ({"a-b": "{{ x"}, '$.tasks[2].params["a-b"]'),
        ({"1x": {"y": ["{% endfor %}"]}}, '$.tasks[2].params["1x"].y[0]'),
        ({3: "{{ }}"}, "$.tasks[2].params[3]"),
        ({"k": ("{{ x | nofilter }}",)}, "$.tasks[2].params.k[0]"),
    ],
)
def test_compile_errors_name_the_exact_nested_path(value: Any, where: str) -> None:
    with pytest.raises(TemplateError) as info:
        compile_value(value, where="$.tasks[2].params")
    assert info.value.where == where
    assert info.value.message


def test_syntax_error_shows_the_line_of_a_multiline_template() -> None:
    with pytest.raises(TemplateError) as info:
        compile_value("first line\nsecond {{ x +* }}\nthird", where="$.t")
    message = info.value.message
    assert "unexpected '*'" in message
    assert "line 2: second {{ x +* }}" in message


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{{ x | nosuchfilter }}", "no filter named 'nosuchfilter'"),
        ("{% if x is nosuchtest %}{% endif %}", "no test named 'nosuchtest'"),
        ("{% include 'other.j2' %}", "{% include %} is not supported"),
        ("{% extends 'base.j2' %}", "{% extends %} is not supported"),
        ("{% import 'm.j2' as m %}", "{% import %} is not supported"),
    ],
)
def test_errors_jinja_would_only_find_later_are_found_at_compile(
    template: str, message: str
) -> None:
    with pytest.raises(TemplateError) as info:
        compile_value(template, where="$.t")
    assert message in info.value.message


def test_unknown_filter_hint_suggests_a_close_name() -> None:
    with pytest.raises(TemplateError) as info:
        compile_value("{{ x | uper }}", where="$.t")
    assert "'upper'" in info.value.hint
