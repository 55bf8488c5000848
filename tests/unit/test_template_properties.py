"""Hypothesis properties: constants stay constant, data comes back exactly, fast paths = Jinja."""

from __future__ import annotations

import re
from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

from gxo.errors import TemplateError
from gxo.template import NOT_PATHS, compile_value, render_paths
from gxo.template.environment import environment
from gxo.template.gocompat import translate

json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
json_data = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@given(st.text().filter(lambda text: "{" not in text))
def test_text_without_braces_is_a_constant_rendering_to_itself(text: str) -> None:
    compiled = compile_value(text, where="$.t")
    assert compiled.is_constant
    assert compiled.references == frozenset()
    assert compiled.render({}) is text


@given(json_data)
def test_data_without_templates_is_constant(data: Any) -> None:
    compiled = compile_value(data, where="$.t")
    if compiled.is_constant:
        assert compiled.render({}) is data


@given(json_data)
@example("{{ not rendered }}")
@example({"k": ["{% if x %}", "{{ y }}"]})
def test_whole_expression_renders_exactly_the_data(data: Any) -> None:
    namespace = {"x": data}
    for template in ("{{ x }}", "{{ .x }}", " {{x}}\n", "{{ (x) }}", "{{ x if true else 0 }}"):
        assert compile_value(template, where="$.t").render(namespace) == data
    assert compile_value({"a": ["{{ x }}"]}, where="$.t").render(namespace) == {"a": [data]}


# Text made of literal pieces and {{ path }} pieces, close to what the fast paths accept:
# whatever the pieces, gxo must render exactly what plain Jinja renders (or fail with it).
_literal = st.text(alphabet="ab {}\n%#x", max_size=6)
_path = st.sampled_from(["a", "a.b", "b", "a.c", "c.d", "x", "a.b.e"])
_piece = _literal | st.builds(
    lambda before, path, after: "{{" + before + path + after + "}}",
    st.sampled_from(["", " ", "  "]),
    _path,
    st.sampled_from(["", " ", "\n"]),
)
_NAMESPACE: dict[str, Any] = {"a": {"b": [1, "two"], "c": None}, "b": 3.5, "x": "{{ a }}"}


@given(st.lists(_piece, max_size=6).map("".join))
@example("{{{ a }}")
@example("{{ a }}}")
@example("{ {{ b }} }")
def test_fast_paths_render_like_jinja(text: str) -> None:
    # A "{#" or "{%" that nothing closes is text, as Go reads it (translate writes it as
    # {{ "{#" }}): plain Jinja is given the same text.
    try:
        expected: Any = environment().from_string(translate(text)).render(_NAMESPACE)
    except Exception as exc:  # noqa: BLE001 - whatever Jinja raises, the fast path must match
        expected = exc
    try:
        result: Any = compile_value(text, where="$.t").render(_NAMESPACE)
    except TemplateError as exc:
        result = exc
    assert isinstance(expected, Exception) == isinstance(result, Exception), (expected, result)
    if isinstance(result, Exception):
        return
    if re.fullmatch(r"\s*\{\{[^{}]*\}\}\s*", text) or not isinstance(result, str) or "{#" in text:
        # One whole expression (whitespace and comments around it aside: Jinja reads an
        # unterminated "{#" as a comment to the end) keeps its native type; Jinja gives its
        # str(), with the whitespace around it.
        assert str(result).strip() == expected.strip()
    else:
        assert result == expected


# Values mixing data, bare paths (defined or not, with attributes), text with paths and
# Jinja code: render_paths either declines or gives exactly what the compiled value gives.
_template_strings = st.sampled_from(
    [
        "{{ a }}",
        " {{ a.b }}\n",
        "{{ a.c }}",
        "{{ b }}",
        "{{ x }}",
        "{{ missing }}",
        "{{ a.missing }}",
        "{{ b.real }}",
        "x {{ b }}",
        "{{ a | length }}",
        "{% if b %}1{% endif %}",
        "{{ end }}",
        "{{ range }}",
        "{{",
    ]
)
_mixed = st.recursive(
    json_scalars | _template_strings,
    lambda children: (
        st.lists(children, max_size=4)
        | st.lists(children, max_size=3).map(tuple)
        | st.dictionaries(st.text(max_size=4) | _template_strings, children, max_size=4)
    ),
    max_leaves=12,
)


def _same(left: Any, right: Any) -> bool:
    """Equal, with the same container types all the way down (a tuple is not a list)."""
    if type(left) is not type(right):
        return False
    if isinstance(left, dict):
        return list(left) == list(right) and all(_same(left[k], right[k]) for k in left)
    if isinstance(left, list | tuple):
        return len(left) == len(right) and all(map(_same, left, right))
    return bool(left == right) or (left != left and right != right)  # noqa: PLR0124 - NaN


@given(_mixed)
@example({"function": "f.py:g", "kwargs": {"prev": "{{ a }}"}})
@example(["{{ a.b }}", ("{{ b }}", 1)])
@example({"k": "{{ missing }}"})
def test_render_paths_gives_what_the_compiled_value_gives(value: Any) -> None:
    try:
        expected: Any = compile_value(value, where="$.t").render(_NAMESPACE)
    except TemplateError as exc:
        expected = exc
    result = render_paths(value, _NAMESPACE)
    if result is NOT_PATHS:
        return
    assert not isinstance(expected, Exception), (value, expected, result)
    assert _same(result, expected), (value, expected, result)
    if not compile_value(value, where="$.t").references:
        assert result is value  # nothing rendered: the value itself, as a constant renders


def test_render_paths_renders_bare_paths_and_declines_the_rest() -> None:
    value = {"f": "m:f", "kwargs": {"prev": "{{ a.b }}", "n": [1, "{{ b }}"]}}
    assert render_paths(value, _NAMESPACE) == {
        "f": "m:f",
        "kwargs": {"prev": [1, "two"], "n": [1, 3.5]},
    }
    for declined in ("x {{ b }}", "{{ missing }}", {"k": ["{{ a | length }}"]}, "{{ range }}"):
        assert render_paths(declined, _NAMESPACE) is NOT_PATHS, declined
