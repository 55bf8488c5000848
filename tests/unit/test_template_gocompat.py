"""GXO Go-template forms: the accepted ones work, the others fail with the Jinja spelling."""

from __future__ import annotations

from typing import Any

import pytest

from gxo.errors import TemplateError
from gxo.template import compile_value
from gxo.template.gocompat import translate

NS: dict[str, Any] = {
    "a": {"b": {"c": 42}},
    "name": "world",
    "item": "it",
    "_gxo": {"tasks": {"x": {"status": "Completed"}}},
    "var_name": "NAME_FROM_VAR",
}


class Functions:
    def secret(self, name: str) -> str:
        return f"secret:{name}"

    def env(self, name: str) -> str:
        return f"env:{name}"


def render(template: str) -> Any:
    return compile_value(template, where="$.t").render(NS, Functions())


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{ .a.b.c }}", 42),
        ("{{.a.b.c}}", 42),
        ("{{ .a }}", {"b": {"c": 42}}),
        ("x {{ .name }} y", "x world y"),
        ("{{ .name }}{{ .item }}", "worldit"),
        ("{{ ._gxo.tasks.x.status }}", "Completed"),
        ("{{- .name -}}", "world"),
        ("a  {{- .name -}}  b", "aworldb"),
        ('{{ secret "NAME" }}', "secret:NAME"),
        ("{{ secret `NAME` }}", "secret:NAME"),
        ('pw={{ secret "NAME" }};', "pw=secret:NAME;"),
        ('{{ env "HOME" }}', "env:HOME"),
        ("{{ env .var_name }}", "env:NAME_FROM_VAR"),
        ('{{ .name }}-{{ env "X" }}-{{ name }}', "world-env:X-world"),
        ("{% if a.b.c %}{{ .name }}{% endif %}", "world"),
        ("{{ .a.b.c }}\n", 42),
    ],
)
def test_accepted_go_forms(template: str, expected: Any) -> None:
    assert render(template) == expected


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("{{ .a.b }}", "{{ a.b }}"),
        ("x {{ .a }} y", "x {{ a }} y"),
        ('{{ secret "N" }}', "{{ secret('N') }}"),
        ('{{- env "N" -}}', "{{- env('N') -}}"),
        ("{{ x }}", "{{ x }}"),
        ("{% raw %}{{ .a }}{% endraw %}{{ .b }}", "{% raw %}{{ .a }}{% endraw %}{{ b }}"),
        ("{# {{ .a }} #}{{ .b }}", "{# {{ .a }} #}{{ b }}"),
        ("{{ '{{ .a }}' }}", "{{ '{{ .a }}' }}"),
        ("{{ {'k': {'j': 1}} }} {{ .a }}", "{{ {'k': {'j': 1}} }} {{ a }}"),
        ("line1\n{{ .a }}\nline3", "line1\n{{ a }}\nline3"),
    ],
)
def test_translate(source: str, expected: str) -> None:
    assert translate(source) == expected


@pytest.mark.parametrize(
    ("template", "hint"),
    [
        ("{{ if .x }}", "{% if x %}...{% endif %}"),
        ('{{ if eq .a "b" }}', "{% if a == 'b' %}"),
        ("{{ if not .x }}", "{% if not x %}"),
        ("{{ else }}", "{% else %}"),
        ("{{ else if .x }}", "{% elif x %}"),
        ("{{ end }}", "{% endif %}"),
        ("{{ range .l }}", "{% for item in l %}...{% endfor %}"),
        ("{{ range $i, $e := .l }}", "{% for e in l %}"),
        ("{{ with .x }}", "{% if x %}"),
        ('{{ index .m "k" }}', "{{ m['k'] }}"),
        ('{{ index ._gxo.tasks "my-task" "status" }}', "{{ _gxo.tasks['my-task']['status'] }}"),
        ("{{ eq .a .b }}", "{{ a == b }}"),
        ("{{ ne .a 1 }}", "{{ a != 1 }}"),
        ("{{ and .a .b }}", "{{ a and b }}"),
        ("{{ not .x }}", "{{ not x }}"),
        ('{{ printf "%s" .x }}', "{{ '%s' | format(x) }}"),
        ("{{ .x | printf }}", "{{ x }}"),
        ('{{ .x | printf "%s-%s" .y }}', "{{ '%s-%s' | format(y, x) }}"),
        ("{{ len .x }}", "{{ x | length }}"),
        ("{{ (len .x) }}", "{{ (x | length) }}"),
        ("{{ upper .name }}", "{{ name | upper }}"),
        ("{{ .name | upper }}", "{{ name | upper }}"),
        ('{{ x | default "a" }}', "{{ x | default('a') }}"),
        ("{{ $var }}", "{% set var = ... %}"),
        ("{{ $x := .y }}", "{% set x = y %}"),
        ("{{ ._gxo.tasks.my-task.status }}", "{{ _gxo.tasks['my-task'].status }}"),
        ("{{/* note */}}", "{# note #}"),
        ("{{ . }}", "item"),
        ('{{ template "t" . }}', "macro"),
        ("{{ html .x }}", "{{ x | escape }}"),
        ("{{ slice .x 1 2 }}", "{{ x[1:2] }}"),
    ],
)
def test_go_only_syntax_is_an_error_with_the_jinja_spelling(template: str, hint: str) -> None:
    with pytest.raises(TemplateError) as info:
        compile_value({"cmd": ["echo", template]}, where="$.tasks[0].params")
    error = info.value
    assert error.where == "$.tasks[0].params.cmd[1]"
    assert "Go template syntax" in error.message
    assert error.hint
    assert hint in error.hint


@pytest.mark.parametrize(
    "template",
    [
        "{{ x }}",
        "{{ x.y }}",
        "{{ 1.5 }}",
        "{{ a | default('b') }}",
        '{{ "lit" }}',
        "{% if x %}y{% endif %}",
        "{{ not x }}",
        "{{ x is divisibleby 3 }}",
        "{{ x is sameas false }}",
        "{{ x if y else z }}",
        "{{ x and y or not z }}",
        "{{ x in y }}",
        "{{ f(a , b) }}",
        "{{ f(x if y else z) }}",
        "{{ range(3) | list }}",
        '{{ users | selectattr("n", "equalto", "a") | join(", ") }}',
        "{{ '{{ .x }}' }}",
        "{{ '$x' }}",
        "{% raw %}{{ if .x }}{% endraw %}",
        "{# {{ end }} #}",
        "{{ end | default(1) }}",
        "{{ (end) }}",
        "{{ x\n  | upper }}",
        "{{ {'a': {'b': 1}} }}",
        "{{ x ~ ' ' ~ y }}",
        "{{ x - 1 }}",
        "{{ secret('X') }}",
        "{{ loop.index }}",
        "{{ 'a.b' }} {{ \"x .y\" }}",
    ],
)
def test_valid_jinja_is_not_mistaken_for_go(template: str) -> None:
    assert translate(template) == template
    compile_value(template, where="$.t")


def test_reserved_word_as_go_field() -> None:
    with pytest.raises(TemplateError, match="reserved word"):
        compile_value("{{ .true }}", where="$.t")


def test_go_form_inside_a_statement_gets_a_hint() -> None:
    with pytest.raises(TemplateError, match="syntax error") as info:
        compile_value("{% if .x %}y{% endif %}", where="$.t")
    assert "leading dot" in info.value.hint
