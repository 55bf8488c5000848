"""Rendering: native types, strings, nested params, errors, functions, sandbox, cache."""

from __future__ import annotations

import pickle
from typing import Any

import pytest

from gxo.errors import SecretMissing, TemplateError
from gxo.template import GLOBAL_NAMES, CompiledValue, compile_value, truthy
from gxo.template.environment import environment
from gxo.template.templates import compile_template

NS: dict[str, Any] = {
    "users": [{"name": "ann", "uid": 1}, {"name": "bob", "uid": 2}],
    "reg": {"stdout": "hello\n", "rc": 0, "items": "the items key"},
    "count": 3,
    "ratio": 1.5,
    "flag": True,
    "nothing": None,
    "mapping": {"a": 1, "b": [1, 2]},
    "name": "world",
    "_gxo": {"tasks": {"my-task": {"status": "Completed"}, "build": {"status": "Failed"}}},
}


def render(value: Any, namespace: dict[str, Any] | None = None, **kwargs: Any) -> Any:
    return compile_value(value, where="$.t").render(
        NS if namespace is None else namespace, **kwargs
    )


class Functions:
    """A TemplateFunctions that records calls."""

    def __init__(self, secrets: dict[str, str] | None = None) -> None:
        self.secrets = secrets or {}
        self.calls: list[tuple[str, str]] = []

    def secret(self, name: str) -> str:
        self.calls.append(("secret", name))
        if name not in self.secrets:
            raise SecretMissing(name)
        return self.secrets[name]

    def env(self, name: str) -> str:
        self.calls.append(("env", name))
        return f"env:{name}"


# --- native types -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{ users }}", NS["users"]),
        ("{{ count }}", 3),
        ("{{ ratio }}", 1.5),
        ("{{ flag }}", True),
        ("{{ nothing }}", None),
        ("{{ mapping }}", {"a": 1, "b": [1, 2]}),
        ("{{ mapping.b }}", [1, 2]),
        ("  {{ users }}\n", NS["users"]),
        ("{{users}}", NS["users"]),
        ("{{ count + 1 }}", 4),
        ("{{ count > 2 }}", True),
        ("{{ users | length }}", 2),
        ("{{ users | map(attribute='name') | list }}", ["ann", "bob"]),
        ("{{ [count, name] }}", [3, "world"]),
        ("{{ {'k': count} }}", {"k": 3}),
        ("{{ users[0] }}", {"name": "ann", "uid": 1}),
        ("{{ mapping['b'] }}", [1, 2]),
        ("{{ 'lit' }}", "lit"),
        ("{{ none }}", None),
        ("{{ range(3) }}", [0, 1, 2]),
        ("{{ users | map(attribute='uid') }}", [1, 2]),
        ("{{ mapping.keys() }}", ["a", "b"]),
        ("{{ name | tojson }}", '"world"'),
        ("{{ name | escape }}", "world"),
    ],
)
def test_single_expression_keeps_native_type(template: str, expected: Any) -> None:
    result = render(template)
    assert result == expected
    assert type(result) is type(expected)


def test_single_path_returns_the_namespace_object_itself() -> None:
    assert render("{{ users }}") is NS["users"]


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("hello {{ name }}", "hello world"),
        ("{{ count }} users", "3 users"),
        ("{{ 'a' }}{{ 'b' }}", "ab"),
        ("{{ count }}{{ count }}", "33"),
        ("x {{ users[0].name }} y", "x ann y"),
        ("{% if flag %}yes{% else %}no{% endif %}", "yes"),
        ("{% for u in users %}{{ u.name }},{% endfor %}", "ann,bob,"),
        ("{{ nothing }} and {{ flag }}", "None and True"),
        ("n={{ mapping.b }}", "n=[1, 2]"),
        ("{{ reg.stdout | trim }}!", "hello!"),
        ("line1\n{{ name }}\n", "line1\nworld\n"),
        ("{# a comment #}", ""),
        ("a {# c #} b", "a  b"),
        ("{% raw %}{{ name }}{% endraw %}", "{{ name }}"),
        ("{{- ' x ' -}}  ", " x "),
        ("{ {{ name }} }", "{ world }"),
        ("{{ name }}}", "world}"),
    ],
)
def test_other_templates_render_to_strings(template: str, expected: str) -> None:
    assert render(template) == expected


def test_nested_params_dict_in_list_in_dict() -> None:
    value = {
        "cmd": "echo {{ name }}",
        "args": ["-n", "{{ count }}", {"inner": "{{ users[1].name }}", "const": 7}],
        "env": {"HOME": "/home/{{ users[0].name }}", "KEEP": "plain"},
        "n": 5,
        "t": ("{{ flag }}", "x"),
    }
    compiled = compile_value(value, where="$.tasks[0].params")
    assert not compiled.is_constant
    result = compiled.render(NS)
    assert result == {
        "cmd": "echo world",
        "args": ["-n", 3, {"inner": "bob", "const": 7}],
        "env": {"HOME": "/home/ann", "KEEP": "plain"},
        "n": 5,
        "t": (True, "x"),
    }
    # New containers: the compiled value is untouched and renders again the same way.
    assert value["args"][1] == "{{ count }}"  # type: ignore[index]
    assert compiled.render(NS) == result


def test_dict_keys_are_not_templated() -> None:
    assert render({"{{ name }}": "{{ name }}"}) == {"{{ name }}": "world"}


@pytest.mark.parametrize(
    "value",
    [
        "plain text",
        "a { b } c",
        "",
        42,
        None,
        True,
        1.5,
        ["a", 1, {"b": "c", "d": [None]}],
        {"x": {"y": ("z",)}},
        b"{{ bytes are not templates }}",
    ],
)
def test_constants_are_returned_unchanged(value: Any) -> None:
    compiled = compile_value(value, where="$.c")
    assert compiled.is_constant
    assert compiled.references == frozenset()
    assert compiled.top_level_names == frozenset()
    assert compiled.uses_secret is False
    assert compiled.render({}) is value


def test_dict_values_by_attribute_and_by_key() -> None:
    assert render("{{ reg.rc }}") == 0
    assert render("{{ reg['rc'] }}") == 0
    assert render("{{ reg.stdout }}") == "hello\n"


def test_dict_key_wins_over_dict_method() -> None:
    assert render("{{ reg.items }}") == "the items key"
    assert render("{{ mapping.items() | list }}") == [("a", 1), ("b", [1, 2])]


def test_go_field_paths_render() -> None:
    assert render("{{ .users }}") is NS["users"]
    assert render("x {{ .reg.rc }} y {{ .name }}") == "x 0 y world"
    assert render("{{ ._gxo.tasks.build.status }}") == "Failed"


# --- data is never rendered again -----------------------------------------------------------


@pytest.mark.parametrize(
    "template",
    ["{{ payload }}", "{{ .payload }}", "{{ payload | trim }}", "{{ (payload) }}"],
)
def test_namespace_values_are_data(template: str) -> None:
    namespace = {"payload": "{{ name }} {% if x %}{% endif %}", "name": "no"}
    assert render(template, namespace) == "{{ name }} {% if x %}{% endif %}"
    assert render("pre " + template, namespace) == "pre {{ name }} {% if x %}{% endif %}"


def test_nested_data_with_braces_is_returned_as_is() -> None:
    namespace = {"rec": {"cmd": "{{ .secret }}", "list": ["{% raw %}"]}}
    assert render("{{ rec }}", namespace) == namespace["rec"]


def test_secret_value_is_data() -> None:
    functions = Functions({"TOKEN": "{{ name }}"})
    assert render("{{ secret('TOKEN') }}", functions=functions) == "{{ name }}"


# --- errors while rendering -------------------------------------------------------------------


def test_undefined_variable_names_it_and_the_path() -> None:
    compiled = compile_value({"env": {"HOME": "{{ missing_var }}"}}, where="$.tasks[2].params")
    with pytest.raises(TemplateError) as info:
        compiled.render(NS)
    assert info.value.message == "undefined variable 'missing_var'"
    assert info.value.where == "$.tasks[2].params.env.HOME"


@pytest.mark.parametrize(
    "template",
    [
        "{{ missing_var }}",
        "x {{ missing_var }}",
        "{{ missing_var | default(missing_var) }}",
        "{% if missing_var %}{% endif %}",
        "{{ [missing_var] }}",
        "{{ missing_var + 1 }}",
        "{% for x in missing_var %}{% endfor %}",
    ],
)
def test_undefined_is_an_error_never_empty(template: str) -> None:
    with pytest.raises(TemplateError, match="undefined variable 'missing_var'"):
        render(template)


def test_undefined_variable_hint_suggests_a_close_name() -> None:
    with pytest.raises(TemplateError) as info:
        render("{{ user }}")
    assert "'users'" in info.value.hint


@pytest.mark.parametrize(
    "template",
    ["{{ reg.stdoutt }}", "{{ .reg.stdoutt }}", "x {{ reg.stdoutt }}", "{{ reg.stdoutt | trim }}"],
)
def test_attribute_miss_names_object_attribute_and_keys(template: str) -> None:
    with pytest.raises(TemplateError) as info:
        render(template)
    message = info.value.message
    assert message.startswith("'reg' has no attribute 'stdoutt'")
    assert "'rc'" in message
    assert "'stdout'" in message
    assert info.value.where == "$.t"
    assert "'stdout'" in info.value.hint


def test_attribute_miss_deep_in_a_hyphenated_path() -> None:
    with pytest.raises(TemplateError) as info:
        render("{{ _gxo.tasks['my-task'].state }}")
    assert info.value.message.startswith("\"_gxo.tasks['my-task']\" has no attribute 'state'")


def test_attribute_of_a_string() -> None:
    with pytest.raises(TemplateError, match=r"'reg\.stdout' \(a str\) has no attribute 'x'"):
        render("{{ reg.stdout.x }}")


def test_missing_list_element() -> None:
    with pytest.raises(TemplateError, match=r"'users' \(a list\) has no element 5"):
        render("{{ users[5] }}")


def test_undefined_inside_a_computed_native_value() -> None:
    with pytest.raises(TemplateError, match="no attribute 'nope'"):
        render("{{ users | map(attribute='nope') | list }}")


def test_runtime_errors_become_template_errors() -> None:
    with pytest.raises(TemplateError, match="ZeroDivisionError") as info:
        render({"a": ["{{ count / 0 }}"]})
    assert info.value.where == "$.t.a[0]"
    assert isinstance(info.value.__cause__, ZeroDivisionError)


@pytest.mark.parametrize(
    "template",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ ''.__class__ }}",
        "{{ name.__class__.__base__.__subclasses__() }}",
        "{{ count.__class__ }}",
        "{{ .name.__class__ }}",
        "{{ users.append(1) }}",
        "{{ mapping.update({'a': 2}) }}",
        "{{ mapping.pop('a') }}",
        "{{ range.__globals__ }}",
        "{{ (1).__class__.__mro__[1].__subclasses__() }}",
    ],
)
def test_sandbox_blocks_python_internals(template: str) -> None:
    with pytest.raises(TemplateError) as info:
        render(template, {**NS, "users": list(NS["users"]), "mapping": dict(NS["mapping"])})
    message = info.value.message
    assert "sandbox" in message or "undefined" in message or "without being called" in message
    assert info.value.where == "$.t"


def test_sandbox_does_not_modify_data() -> None:
    data = {"users": [1, 2]}
    with pytest.raises(TemplateError):
        render("{{ users.append(3) }}", data)
    assert data == {"users": [1, 2]}


# --- functions: secret() and env() -------------------------------------------------------------


@pytest.mark.parametrize(
    "template",
    ["{{ secret('DB') }}", '{{ secret "DB" }}', "{{ secret `DB` }}", "x{{ secret('DB') }}"],
)
def test_secret_comes_from_the_functions_object(template: str) -> None:
    functions = Functions({"DB": "s3cr3t"})
    compiled = compile_value(template, where="$.p")
    assert compiled.uses_secret
    assert compiled.render({}, functions).endswith("s3cr3t")
    assert functions.calls == [("secret", "DB")]


def test_secret_missing_propagates_as_itself_with_where() -> None:
    compiled = compile_value({"env": {"PW": "{{ secret('NOPE') }}"}}, where="$.tasks[1].params")
    with pytest.raises(SecretMissing) as info:
        compiled.render({}, Functions())
    assert info.value.name == "NOPE"
    assert info.value.where == "$.tasks[1].params.env.PW"
    assert "$.tasks[1].params.env.PW" in str(info.value)
    assert info.value.__cause__ is None


def test_template_error_from_functions_keeps_its_own_where() -> None:
    class Raising:
        def secret(self, name: str) -> str:
            raise SecretMissing(name, where="$.elsewhere")

        def env(self, name: str) -> str:
            return ""

    with pytest.raises(SecretMissing) as info:
        render("{{ secret('A') }}", {}, functions=Raising())
    assert info.value.where == "$.elsewhere"


def test_secret_without_functions_is_unavailable() -> None:
    with pytest.raises(TemplateError, match=r"secret\(\) is not available here") as info:
        render("{{ secret('X') }}", {})
    assert info.value.where == "$.t"


def test_secret_name_must_be_a_string() -> None:
    with pytest.raises(TemplateError, match="takes a name"):
        render("{{ secret(1) }}", {}, functions=Functions())


def test_env_default_reads_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GXO_TEST_VAR", "value-1")
    monkeypatch.delenv("GXO_TEST_UNSET", raising=False)
    assert render("{{ env('GXO_TEST_VAR') }}", {}) == "value-1"
    assert render('{{ env "GXO_TEST_VAR" }}', {}) == "value-1"
    assert render("[{{ env('GXO_TEST_UNSET') }}]", {}) == "[]"


def test_env_from_the_functions_object() -> None:
    functions = Functions()
    assert render('{{ env "HOME" }}', {}, functions=functions) == "env:HOME"
    assert functions.calls == [("env", "HOME")]


def test_functions_shadow_namespace_entries() -> None:
    namespace = {"secret": "not a function", "env": 1}
    assert render("{{ env('X') }}", namespace, functions=Functions()) == "env:X"


def test_global_names() -> None:
    assert frozenset({"secret", "env", "range", "dict", "namespace"}) == GLOBAL_NAMES
    assert render("{{ dict(a=1) }}", {}) == {"a": 1}
    assert render("{% set ns = namespace(n=1) %}{{ ns.n }}", {}) == "1"
    for removed in ("lipsum", "cycler", "joiner"):
        assert removed not in environment().globals
        with pytest.raises(TemplateError, match=f"undefined variable '{removed}'"):
            render("{{ " + removed + "() }}", {})


# --- compile cache, pickling ------------------------------------------------------------------


def test_identical_sources_share_one_compiled_template(monkeypatch: pytest.MonkeyPatch) -> None:
    source = "{% if flag %}{{ name | upper }}{% endif %} cache-test-1"
    env = environment()
    parses: list[str] = []
    original = env.parse

    def counting_parse(text: str, *args: Any, **kwargs: Any) -> Any:
        parses.append(text)
        return original(text, *args, **kwargs)

    monkeypatch.setattr(env, "parse", counting_parse)
    first = compile_template(source)
    second = compile_template(source)
    assert first is second
    a = compile_value({"x": source}, where="$.a")
    b = compile_value([source], where="$.b")
    assert parses == [source]
    assert a.render(NS) == {"x": "WORLD cache-test-1"}
    assert b.render(NS) == ["WORLD cache-test-1"]


def test_compile_errors_are_cached_but_name_each_place() -> None:
    source = "{{ 1 +* }} cache-test-2"
    with pytest.raises(TemplateError) as one:
        compile_value(source, where="$.one")
    with pytest.raises(TemplateError) as two:
        compile_value({"k": source}, where="$.two")
    assert one.value.where == "$.one"
    assert two.value.where == "$.two.k"
    assert one.value.message == two.value.message


def test_compiled_value_pickles() -> None:
    compiled = compile_value({"a": "{{ count }}", "b": ["{{ name }}!"]}, where="$.p")
    clone = pickle.loads(pickle.dumps(compiled))
    assert isinstance(clone, CompiledValue)
    assert clone.render(NS) == {"a": 3, "b": ["world!"]}
    assert clone.references == compiled.references


def test_render_is_repeatable_with_different_namespaces() -> None:
    compiled = compile_value("{{ item }}-{{ item | upper }}", where="$.n")
    assert [compiled.render({"item": x}) for x in ("a", "b")] == ["a-A", "b-B"]


# --- truthy -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (True, True),
        (False, False),
        (None, False),
        (0, False),
        (0.0, False),
        (1, True),
        (-1, True),
        (0.5, True),
        ("", False),
        ("  ", False),
        ("false", False),
        (" False ", False),
        ("FALSE", False),
        ("no", False),
        ("off", False),
        ("0", False),
        ("0.0", False),
        ("none", False),
        ("None", False),
        ("null", False),
        ("\n0\n", False),
        ("true", True),
        ("yes", True),
        ("x", True),
        ("1", True),
        ("00", False),
        ("0.00", False),
        (" -0 ", False),
        ("+0e3", False),
        (".0", False),
        ("0.01", True),
        ("1e-9", True),
        ("0x0", True),
        ("0_0", True),
        ("nan", True),
        ("<no value>", True),
        ([], False),
        ([0], True),
        ({}, False),
        ({"a": 1}, True),
        ((), False),
        (set(), False),
    ],
)
def test_truthy(value: Any, expected: bool) -> None:
    assert truthy(value) is expected


def test_when_style_rendering() -> None:
    assert truthy(render("{{ count > 5 }}")) is False
    assert truthy(render("{{ reg.rc == 0 }}")) is True
    assert truthy(render("{{ nothing }}")) is False
    assert truthy(render("{{ _gxo.tasks.build.status == 'Completed' }}")) is False
