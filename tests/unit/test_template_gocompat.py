"""GXO Go templates: the text/template subset is translated to Jinja with Go's meaning.

Expected values are taken from Go's documentation (text/template "Examples" and "Functions",
fmt "Printing" and "Format errors"), not from this evaluator.
"""

from __future__ import annotations

from typing import Any

import pytest

from gxo.errors import TemplateError
from gxo.template import compile_value, truthy
from gxo.template.gocompat import is_go_action, translate

NS: dict[str, Any] = {
    "a": {"b": {"c": 42}},
    "name": "world",
    "item": "it",
    "_gxo": {"tasks": {"x": {"status": "Skipped"}, "my-task": {"status": "Completed"}}},
    "var_name": "NAME_FROM_VAR",
    "run_task_a": False,
    "flag": True,
    "empty": "",
    "zero": 0,
    "nothing": None,
    "nums": [3, 1, 2],
    "m": {"k": "v", "b": 2, "a": 1},
    "big": 1e6,
    "half": 0.5,
    "words": ["a b", "c"],
    "users": [{"name": "ann", "age": 30}, {"name": "bob", "age": 17}],
}


class Functions:
    def secret(self, name: str) -> str:
        return f"secret:{name}"

    def env(self, name: str) -> str:
        return f"env:{name}"


def render(template: str, namespace: dict[str, Any] | None = None) -> Any:
    return compile_value(template, where="$.t").render(
        NS if namespace is None else namespace, Functions()
    )


# -- text/template documentation, "Examples": all produce the quoted word "output" ----------


@pytest.mark.parametrize(
    "template",
    [
        '{{"\\"output\\""}}',
        '{{`"output"`}}',
        '{{printf "%q" "output"}}',
        '{{"output" | printf "%q"}}',
        '{{printf "%q" (print "out" "put")}}',
        '{{"put" | printf "%s%s" "out" | printf "%q"}}',
        '{{"output" | printf "%s" | printf "%q"}}',
        '{{with "output"}}{{printf "%q" .}}{{end}}',
        '{{with $x := "output" | printf "%q"}}{{$x}}{{end}}',
        '{{with $x := "output"}}{{printf "%q" $x}}{{end}}',
        '{{with $x := "output"}}{{$x | printf "%q"}}{{end}}',
    ],
)
def test_go_documentation_examples_produce_quoted_output(template: str) -> None:
    assert render(template) == '"output"'


def test_go_documentation_trim_markers() -> None:
    # text/template, "Text and spaces": "{{23 -}} < {{- 45}}" generates "23<45".
    assert render("{{23 -}} < {{- 45}}") == "23<45"
    assert render("{{ .name }}  \n {{- .name -}}\n  x") == "worldworldx"


# -- field paths, secrets, env (the forms GXO playbooks use most) --------------------------


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{ .a.b.c }}", 42),
        ("{{.a.b.c}}", 42),
        ("{{ .a }}", {"b": {"c": 42}}),
        ("x {{ .name }} y", "x world y"),
        ("{{ .name }}{{ .item }}", "worldit"),
        ("{{ ._gxo.tasks.x.status }}", "Skipped"),
        ("{{- .name -}}", "world"),
        ("a  {{- .name -}}  b", "aworldb"),
        ('{{ secret "NAME" }}', "secret:NAME"),
        ("{{ secret `NAME` }}", "secret:NAME"),
        ('pw={{ secret "NAME" }};', "pw=secret:NAME;"),
        ('{{ env "HOME" }}', "env:HOME"),
        ("{{ env .var_name }}", "env:NAME_FROM_VAR"),
        ("{{ .a.b.c }}\n", 42),
        ("{{ $.name }}", "world"),
        ("{{ (.a).b.c }}", 42),
    ],
)
def test_field_paths_and_functions(template: str, expected: Any) -> None:
    assert render(template) == expected


# -- printing inside text: Go's fmt, not Python's str() --------------------------------------


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("v={{ .flag }}", "v=true"),
        ("v={{ .run_task_a }}", "v=false"),
        ("v={{ .nothing }}", "v=<no value>"),
        ("v={{ .big }}", "v=1e+06"),
        ("v={{ .half }}", "v=0.5"),
        ("v={{ .nums }}", "v=[3 1 2]"),
        ("v={{ .m }}", "v=map[a:1 b:2 k:v]"),
        ("v={{ .users }}", "v=[map[age:30 name:ann] map[age:17 name:bob]]"),
        (
            "{{ .name }}={{ 1.0 }}|{{ -3 }}|{{ 0x1F }}|{{ 1_000 }}|{{ 'a' }}",
            "world=1|-3|31|1000|97",
        ),
        ("{{ .name }}={{ true }} {{ false }} {{ nil | print }}", "world=true false <nil>"),
    ],
)
def test_values_print_as_go_prints_them(template: str, expected: str) -> None:
    assert render(template) == expected


def test_a_lone_action_keeps_the_native_value() -> None:
    assert render("{{ .nums }}") == [3, 1, 2]
    assert render("{{ eq .run_task_a true }}") is False
    assert render("{{ len .nums }}") == 3


# -- functions: text/template documentation, "Functions" -----------------------------------


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        # "and x y" behaves as "if x then y else x"; "or x y" as "if x then x else y".
        ("{{ and .flag .name }}", "world"),
        ("{{ and .empty .name }}", ""),
        ("{{ and .flag .zero .name }}", 0),
        ("{{ or .empty .name }}", "world"),
        ("{{ or .zero .empty }}", ""),
        ("{{ or .name .missing_is_never_read }}", "world"),
        ("{{ and .zero .missing_is_never_read }}", 0),
        ("{{ not .empty }}", True),
        ("{{ not .nums }}", False),
        # eq (only) accepts two or more arguments: arg1==arg2 || arg1==arg3 ...
        ("{{ eq .run_task_a true }}", False),
        ("{{ eq ._gxo.tasks.x.status `Skipped` }}", True),
        ('{{ eq .name "a" "b" "world" }}', True),
        ('{{ eq .name "a" "b" }}', False),
        ("{{ eq .nothing .nothing }}", True),
        ('{{ eq .nothing "x" }}', False),
        ('{{ ne .name "world" }}', False),
        ("{{ lt 1 2 }}", True),
        ("{{ le 2 2 }}", True),
        ("{{ gt 1.5 2.5 }}", False),
        ('{{ ge "b" "a" }}', True),
        ("{{ len .nums }}", 3),
        ("{{ len .m }}", 3),
        ('{{ len "héllo" }}', 6),  # bytes, as Go's len of a string
        ('{{ index .m "k" }}', "v"),
        ('{{ index .m "absent" }}', None),  # a missing map key is the zero value
        ("{{ index .nums 1 }}", 1),
        ('{{ index .users 0 "name" }}', "ann"),
        ('{{ index ._gxo.tasks "my-task" "status" }}', "Completed"),
        ('{{ print "a" 1 2 "b" }}', "a1 2b"),  # spaces when neither operand is a string
        ('{{ println "a" 1 }}', "a 1\n"),
        ("{{ .name }}{{ print }}", "world"),
        ('{{ printf "%d-%s" 7 "x" }}', "7-x"),
        ('{{ .name | printf "%q" }}', '"world"'),
        ('{{ printf "%v" .m }}', "map[a:1 b:2 k:v]"),
        ('{{ printf "%6.2f" 12.0 }}', " 12.00"),
        ('{{ printf "%d" "hi" }}', "%!d(string=hi)"),
        ('{{ printf "hi" "guys" }}', "hi%!(EXTRA string=guys)"),
        ('{{ printf "hi%d" }}', "hi%!d(MISSING)"),
        ('{{ printf "%#x %#x" 16 17 }}', "0x10 0x11"),
        ('{{ printf "%q" .words }}', '["a b" "c"]'),  # %q quotes each element of a list
        ('{{ printf "%s" .nums }}', "[%!s(int=3) %!s(int=1) %!s(int=2)]"),
        ('{{ printf "%t %v %v" true .nothing .half }}', "true <nil> 0.5"),
        ('{{ printf "%5s|%-5s|" "ab" "ab" }}', "   ab|ab   |"),
    ],
)
def test_functions_follow_go(template: str, expected: Any) -> None:
    assert render(template) == expected


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ('{{ eq 1 "1" }}', "error calling eq: incompatible types for comparison"),
        ("{{ eq 1 1.0 }}", "error calling eq: incompatible types for comparison"),
        ("{{ lt .nums 1 }}", "error calling lt: invalid type for comparison"),
        ("{{ len 3 }}", "error calling len: len of type int"),
        ("{{ index .nums 7 }}", "error calling index: index out of range: 7"),
        # a map's keys are strings: Go's prepareArg refuses another type (gxo gave nil)
        ("{{ index .m 1 }}", "error calling index: value has type int; should be string"),
        ("{{ index .m nil }}", "error calling index: value is nil; should be of type string"),
        ("{{ range .name }}{{ end }}", "range can't iterate over world"),
    ],
)
def test_function_errors_are_go_errors(template: str, message: str) -> None:
    with pytest.raises(TemplateError) as info:
        render(template)
    assert message in info.value.message
    assert info.value.where == "$.t"


def test_a_missing_key_is_an_error_as_with_missingkey_error() -> None:
    with pytest.raises(TemplateError, match="undefined variable 'missing'"):
        render("{{ .missing }}")
    with pytest.raises(TemplateError, match="has no attribute 'zz'"):
        render("x {{ .a.zz }}")
    with pytest.raises(TemplateError, match="undefined variable 'missing'"):
        render("{{ if .missing }}y{{ end }}")


# -- control forms --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{ if .flag }}yes{{ end }}", "yes"),
        ("{{ if .empty }}yes{{ end }}", ""),
        ("{{ if .flag }}yes{{ else }}no{{ end }}", "yes"),
        ("{{ if .zero }}yes{{ else }}no{{ end }}", "no"),
        ('{{ if eq .name "a" }}A{{ else if eq .name "world" }}W{{ else }}O{{ end }}', "W"),
        ("{{ if not .nums }}none{{ else if gt (len .nums) 2 }}many{{ end }}", "many"),
        ("{{- if .flag }}\n  yes\n{{- end }}", "\n  yes"),
        ("{{ range .nums }}[{{ . }}]{{ end }}", "[3][1][2]"),
        ("{{ range $i, $e := .nums }}{{ $i }}={{ $e }};{{ end }}", "0=3;1=1;2=2;"),
        ("{{ range $e := .nums }}{{ $e }}{{ end }}", "312"),
        ("{{ range $k, $v := .m }}{{ $k }}:{{ $v }} {{ end }}", "a:1 b:2 k:v "),  # sorted keys
        ("{{ range .m }}{{ . }}{{ end }}", "12v"),
        ("{{ range .empty_list }}x{{ else }}none{{ end }}", "none"),
        ("{{ range .nothing }}x{{ else }}none{{ end }}", "none"),
        ("{{ range .users }}{{ .name }}({{ $.name }}) {{ end }}", "ann(world) bob(world) "),
        ("{{ range .users }}{{ if ge .age 18 }}{{ .name }}{{ end }}{{ end }}", "ann"),
        ("{{ with .m }}{{ .k }}{{ end }}", "v"),
        ("{{ with .empty }}x{{ else }}{{ .name }}{{ end }}", "world"),
        ('{{ with $x := index .m "k" }}{{ $x }}{{ . }}{{ end }}', "vv"),
        ("{{ $x := 1 }}{{ if true }}{{ $x := 2 }}{{ $x }}{{ end }}{{ $x }}", "21"),
        ("{{ $x := 1 }}{{ if true }}{{ $x = 2 }}{{ end }}{{ $x }}", "2"),
        ("{{/* a comment */}}ok", "ok"),
        ("a {{- /* trimmed */ -}} b", "ab"),
    ],
)
def test_control_forms(template: str, expected: Any) -> None:
    namespace = {**NS, "empty_list": []}
    assert render(template, namespace) == expected


def test_when_templates_written_for_gxo_decide_like_gxo() -> None:
    assert truthy(render("{{ eq .run_task_a true }}")) is False
    assert truthy(render("{{ eq ._gxo.tasks.x.status `Skipped` }}")) is True
    assert truthy(render("{{ if .flag }}true{{ else }}false{{ end }}")) is True


def test_dependencies_are_read_from_go_templates() -> None:
    refs = compile_value(
        '{{ if eq ._gxo.tasks.build.status "Completed" }}{{ .reg.stdout }}{{ end }}'
        '{{ index ._gxo.tasks "my-task" "status" }}{{ range .items }}{{ .x }}{{ end }}',
        where="$.t",
    ).references
    assert ("_gxo", "tasks", "build", "status") in refs
    assert ("reg", "stdout") in refs
    assert ("_gxo", "tasks", "my-task", "status") in refs
    assert ("items",) in refs
    assert not any(ref[0].startswith("_g") and ref[0] != "_gxo" for ref in refs)


def test_secret_names_are_found_in_go_form() -> None:
    from gxo.template.compiled import secret_names

    value = compile_value({"a": '{{ secret "DB" }}', "b": "x{{ secret `API` }}"}, where="$")
    assert secret_names(value) == {"DB", "API"}


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("{{ .a.b }}", "{{ a.b }}"),
        ("x {{ .a }} y", "x {{ a | go_str }} y"),
        ('{{ secret "N" }}', "{{ secret('N') }}"),
        ('{{- env "N" -}}', "{{- env('N') -}}"),
        ("{{ x }}", "{{ x }}"),
        ("{% raw %}{{ .a }}{% endraw %}{{ .b }}", "{% raw %}{{ .a }}{% endraw %}{{ b | go_str }}"),
        ("{# {{ .a }} #}{{ .b }}", "{# {{ .a }} #}{{ b | go_str }}"),
        ("{{ '{{ .a }}' }}", "{{ '{{ .a }}' }}"),
        ("line1\n{{ .a }}\nline3", "line1\n{{ a | go_str }}\nline3"),
        ("{{ if .a }}\n{{ end }}", "{% if a %}\n{% endif %}"),
        ("{{ if\n .a }}x{{ end }}", "{% if a \n%}x{% endif %}"),
    ],
)
def test_translate(source: str, expected: str) -> None:
    assert translate(source) == expected


# -- outside the subset: errors with a position and the Jinja spelling ----------------------


@pytest.mark.parametrize(
    ("template", "column", "hint"),
    [
        ('{{ index .m "k" | html }}', 19, "escape"),
        ("{{ html .x }}", 4, "{{ x | escape }}"),
        ("{{ slice .x 1 2 }}", 4, "{{ x[1:2] }}"),
        ("{{ urlquery .x }}", 4, "urlencode"),
        ("{{ upper .name }}", 4, "{{ name | upper }}"),
        ("{{ .name | upper }}", 12, "{{ name | upper }}"),
        ('{{ template "t" . }}', 4, "macro"),
        ('{{ define "t" }}x{{ end }}', 4, "macro"),
        ("{{ range .l }}{{ break }}{{ end }}", 18, "filter the list"),
        ("{{ ._gxo.tasks.my-task.status }}", 18, "{{ _gxo.tasks['my-task'].status }}"),
    ],
)
def test_go_outside_the_subset_is_an_error_with_the_jinja_spelling(
    template: str, column: int, hint: str
) -> None:
    with pytest.raises(TemplateError) as info:
        compile_value({"cmd": ["echo", template]}, where="$.tasks[0].params")
    error = info.value
    assert error.where == "$.tasks[0].params.cmd[1]"
    assert f"Go template, at column {column}:" in error.message
    assert hint in error.hint


@pytest.mark.parametrize(
    ("template", "where", "message"),
    [
        ("{{ if .x }}", "column 4", "{{ if }} has no {{ end }}"),
        ("{{ end }}", "column 4", "unexpected {{ end }}"),
        ("{{ else }}", "column 4", "unexpected {{ else }}"),
        ("{{ $y }}", "column 4", "undefined variable '$y'"),
        ("{{ . }}", "column 4", "the whole state"),
        ("{{ eq .a }}", "column 4", "wrong number of args for eq: want at least 2 got 1"),
        ("{{ not .a .b }}", "column 4", "wrong number of args for not: want 1 got 2"),
        ('{{ "a" .b }}', "column 4", "can't give argument to non-function"),
        ("{{ .a ) }}", "column 7", "unexpected ')'"),
        ("line1\n  {{ .a }} {{ nope .b }}", "line 2, column 15", 'function "nope" not defined'),
        ("{{ range .l }}{{ $x := 1 }}{{ end }}{{ $x }}", "column 40", "undefined variable"),
        (
            "{{ range $i, $e := .l }}{{ range .l }}{{ $e = 1 }}{{ end }}{{ end }}",
            "column 42",
            "inside a {{ range }}",
        ),
    ],
)
def test_error_positions(template: str, where: str, message: str) -> None:
    with pytest.raises(TemplateError) as info:
        compile_value(template, where="$.tasks[2].when", allow_secret=False)
    assert info.value.where == "$.tasks[2].when"
    assert f"at {where}:" in info.value.message
    assert message in info.value.message


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        (
            "{{ $first := true }}{{ range .nums }}{{ if not $first }},{{ end }}"
            "{{ $first = false }}{{ . }}{{ end }}",
            "3,1,2",
        ),
        ("{{ $n := 0 }}{{ range .nums }}{{ $n = . }}{{ end }}{{ $n }}", "2"),
        ("{{ $c := 0 }}{{ range .nums }}{{ range $.nums }}{{ $c = . }}{{ end }}{{ end }}x{{ $c }}",
         "x2"),
        ("{{ $s := `` }}{{ range .users }}{{ $s = printf `%s%s;` $s .name }}{{ end }}{{ $s }}",
         "ann;bob;"),
    ],
)  # fmt: skip
def test_a_variable_assigned_inside_a_range_changes_it_outside(
    template: str, expected: str
) -> None:
    # Go (since 1.11): "$x = pipeline" assigns the variable declared outside the range.
    assert render(template) == expected


def test_a_bare_name_in_a_go_template_hints_at_the_dot() -> None:
    with pytest.raises(TemplateError) as info:
        compile_value("{{ .a }} and {{ name }}", where="$.t")
    assert 'function "name" not defined' in info.value.message
    assert "{{ .name }}" in info.value.hint


def test_a_jinja_line_error_points_into_the_go_source() -> None:
    with pytest.raises(TemplateError) as info:
        compile_value("{{ if .a }}\n{% for x in %}\n{{ end }}", where="$.t")
    assert "line 2" in info.value.message


# -- telling Go from Jinja --------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        ".a",
        ".",
        "$x",
        "$.a",
        "eq .a .b",
        'printf "%s" .x',
        "len .x",
        'index .m "k"',
        "`raw`",
        "if .x",
        "if true",
        "else",
        "else if .x",
        "end",
        "range .l",
        "with .x",
        "/* c */",
        'x | default "a"',
        "eq -1 -1",
        "and -1",
        "len (print 1)",
    ],
)
def test_go_forms_are_recognised(body: str) -> None:
    assert is_go_action(body)


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


def test_go_field_named_like_a_function_or_jinja_word_reads_the_state() -> None:
    # A Go field is always data: GXO reads {{ .env }} as the state entry 'env'.
    namespace = {"env": "prod", "none": "n", "true": 1, "range": [1, 2], "secret": {"k": "v"}}
    assert render("{{ .env }}", namespace) == "prod"
    assert render('{{ .none }}-{{ .true }}-{{ env "X" }}', namespace) == "n-1-env:X"
    assert render("{{ range .range }}{{ . }}{{ end }}{{ .secret.k }}", namespace) == "12v"
    compiled = compile_value("{{ .env }} {{ .secret.k }} {{ secret `S` }}", where="$.t")
    assert compiled.references == {("env",), ("secret", "k")}
    assert compiled.uses_secret is True


def test_go_form_inside_a_statement_gets_a_hint() -> None:
    with pytest.raises(TemplateError, match="syntax error") as info:
        compile_value("{% if .x %}y{% endif %}", where="$.t")
    assert "leading dot" in info.value.hint
