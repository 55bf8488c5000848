"""Hypothesis properties: constants stay constant, data comes back exactly, fast paths = Jinja."""

from __future__ import annotations

import re
from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

from gxo.errors import TemplateError
from gxo.template import compile_value
from gxo.template.environment import environment

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
    try:
        expected: Any = environment().from_string(text).render(_NAMESPACE)
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
