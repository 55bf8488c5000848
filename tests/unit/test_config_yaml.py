"""Safe YAML with positions: YAML 1.2 scalars, tags, keys, anchors, limits and marks."""

from __future__ import annotations

import math
from typing import Any

import pytest

from gxo.config import yaml_source
from gxo.config.problems import Problems
from gxo.config.yaml_source import MAX_ALIAS_NODES, MAX_BYTES, MAX_DEPTH, parse_yaml
from gxo.errors import Problem


def parse(text: str) -> tuple[Any, list[Problem]]:
    problems = Problems("t.yaml")
    document = parse_yaml(text, problems)
    return (document.data if document is not None else None), problems.sorted()


def value(text: str) -> Any:
    data, problems = parse(f"v: {text}\n")
    assert problems == []
    return data["v"]


@pytest.mark.parametrize(
    "text", ["yes", "no", "on", "off", "y", "n", "Yes", "OFF", "fAlSe", "tRUE", ".iNf", "nULL"]
)
def test_yaml_1_1_booleans_stay_strings(text: str) -> None:
    # and the core schema's words in a case neither it nor yaml.v3 (GXO) reads
    assert value(text) == text


@pytest.mark.parametrize(
    ("text", "expected"),
    [("true", True), ("True", True), ("TRUE", True), ("false", False), ("FALSE", False)],
)
def test_only_true_and_false_are_booleans(text: str, expected: bool) -> None:
    assert value(text) is expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("12", 12),
        ("-3", -3),
        ("+4", 4),
        ("0o17", 15),
        ("0x1f", 31),
        ("1.5", 1.5),
        ("1e3", 1000.0),
        ("-.5", -0.5),
        ("1.0", 1.0),
        ("~", None),
        ("null", None),
        ("NULL", None),
        ("", None),
        ("2024-01-01", "2024-01-01"),  # timestamps stay strings
        # gopkg.in/yaml.v3 (GXO) removes every '_' and parses Go's base-prefixed integers
        ("1_000", 1000),
        ("1_000.5", 1000.5),
        ("0b101", 5),
        ("-0b11", -3),
        ("0X1F", 31),
        ("+0x_1f", 31),
        ("0O17", 15),
        ("1_", 1),
        (".5_0", ".5_0"),
        ("_1", "_1"),
        ("1_a", "1_a"),
        ("1.2_3.4", "1.2_3.4"),
        ("v1.0.0", "v1.0.0"),
        ("1.0.0", "1.0.0"),
        ("'12'", "12"),
        ('"true"', "true"),
        ("!!str 12", "12"),
        ("!!int '12'", 12),
        ("!!float 1", 1.0),
        ("!!bool true", True),
        ("!!null ''", None),
        ("! 12", "12"),
        ("|\n  line\n", "line\n"),
    ],
)
def test_core_schema_scalars(text: str, expected: Any) -> None:
    assert value(text) == expected
    assert type(value(text)) is type(expected)


def test_huge_integer_stays_a_string() -> None:
    digits = "9" * 5000
    assert value(digits) == digits
    assert value("1_" + digits) == "1_" + digits
    # Past 64 bits, as gopkg.in/yaml.v3 reads it: a decimal is a float while one fits, a hex
    # or octal number a string (an int that large could not be sent to a worker).
    assert value("0x" + "f" * 5000) == "0x" + "f" * 5000
    assert value("0x1" + "0" * 16) == "0x1" + "0" * 16
    assert value("0xffffffffffffffff") == 2**64 - 1
    assert value("99999999999999999999999") == 1e23
    assert value("-9223372036854775808") == -(2**63)
    assert value("-9223372036854775809") == -9223372036854775809.0
    assert value("9" * 400) == "9" * 400


def test_special_floats() -> None:
    assert value(".inf") == math.inf
    assert value("-.Inf") == -math.inf
    assert math.isnan(value(".NaN"))


@pytest.mark.parametrize(
    ("text", "tag"),
    [
        ("!!python/object:os.system {}", "!!python/object:os.system"),
        ("!!python/name:os.system ''", "!!python/name:os.system"),
        ("!!binary aGVsbG8=", "!!binary"),
        ("!!timestamp 2024-01-01", "!!timestamp"),
        ("!!set {a: null}", "!!set"),
        ("!vault secret", "!vault"),
        ("!!map [1]", "!!map"),
    ],
)
def test_tags_outside_the_core_schema_are_problems(text: str, tag: str) -> None:
    _, problems = parse(f"v: {text}\n")
    assert [p.message for p in problems] == [f"the YAML tag '{tag}' is not allowed"]
    assert problems[0].location.path == "$.v"
    assert (problems[0].location.line, problems[0].location.column) == (1, 4)


def test_python_object_is_never_constructed() -> None:
    data, problems = parse("v: !!python/object/apply:os.system ['echo pwned']\n")
    assert problems
    assert data == {"v": ["echo pwned"]}  # plain data, nothing called


def test_tagged_value_that_does_not_fit() -> None:
    _, problems = parse("v: !!int twelve\n")
    assert [p.message for p in problems] == ["'twelve' cannot be read as !!int"]


def test_duplicate_keys_are_problems_at_the_second_key() -> None:
    data, problems = parse("a: 1\nb:\n  c: 1\n  c: 2\na: 3\n")
    assert data == {"a": 1, "b": {"c": 1}}  # the first value is kept
    assert [(p.location.line, p.location.column, p.location.path) for p in problems] == [
        (4, 3, "$.b.c"),
        (5, 1, "$.a"),
    ]
    assert problems[0].message == "duplicate key 'c'"
    assert "first defined on line 3" in problems[0].hint


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1: x", "mapping keys must be strings, got a number (1)"),
        ("true: x", "mapping keys must be strings, got a boolean (true)"),
        ("~: x", "mapping keys must be strings, got null (null)"),
        ("[a]: x", "mapping keys must be strings, got a list"),
        ("{a: 1}: x", "mapping keys must be strings, got a mapping"),
    ],
)
def test_non_string_keys_are_problems(text: str, message: str) -> None:
    data, problems = parse(f"{text}\nok: 1\n")
    assert data == {"ok": 1}
    assert [p.message for p in problems] == [message]
    assert problems[0].location.line == 1


def test_quoted_number_key_is_fine() -> None:
    assert parse("'1': x\n") == ({"1": "x"}, [])


def test_anchors_and_aliases_give_independent_copies() -> None:
    data, problems = parse("a: &x {k: [1, 2]}\nb: *x\n")
    assert problems == []
    assert data == {"a": {"k": [1, 2]}, "b": {"k": [1, 2]}}
    assert data["a"] is not data["b"]
    assert data["a"]["k"] is not data["b"]["k"]


def test_merge_keys() -> None:
    text = "base: &b {x: 1, y: 2}\nother: &o {z: 3}\nm:\n  <<: [*b, *o]\n  y: 20\n"
    data, problems = parse(text)
    assert problems == []
    assert data["m"] == {"x": 1, "y": 20, "z": 3}
    assert parse("m:\n  '<<': 1\n")[0] == {"m": {"<<": 1}}  # a quoted << is a plain key


def test_merge_of_a_scalar_is_a_problem() -> None:
    _, problems = parse("m:\n  <<: 3\n")
    assert [p.message for p in problems] == [
        "a '<<' merge key needs a mapping or a list of mappings"
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a: *nope\n", "the alias '*nope' has no anchor '&nope' before it"),
        ("a: &x [1, *x]\n", "the alias '*x' is inside the node its anchor names"),
    ],
)
def test_bad_aliases(text: str, message: str) -> None:
    data, problems = parse(text)
    assert data is None
    assert problems[0].message.startswith(message)


def _laughs(levels: int, width: int = 9) -> str:
    lines = ["a0: &a0 [" + ", ".join(["lol"] * width) + "]"]
    for level in range(1, levels):
        refs = ", ".join([f"*a{level - 1}"] * width)
        lines.append(f"a{level}: &a{level} [{refs}]")
    return "\n".join(lines) + "\n"


def test_billion_laughs_stops_at_the_alias_limit() -> None:
    data, problems = parse(_laughs(10))  # 9**10 ≈ 3.5e9 nodes if expanded
    assert data is None
    assert [p.message for p in problems] == [
        f"aliases expand to more than {MAX_ALIAS_NODES:,} nodes"
    ]
    assert "billion laughs" in problems[0].hint
    assert problems[0].location.line == 6  # the first alias that crosses the limit


def test_modest_alias_use_is_fine() -> None:
    data, problems = parse(_laughs(4))  # 9**4 = 6,561 nodes
    assert problems == []
    assert len(data["a3"]) == 9


@pytest.mark.parametrize(
    "text",
    [
        "[" * 1_000_000 + "]" * 1_000_000,  # would crash libyaml's recursive composer
        "{a: " * 200_000 + "}" * 200_000,
        "".join("  " * i + "-\n" for i in range(MAX_DEPTH + 5)),
    ],
    ids=["flow-lists", "flow-maps", "block-lists"],
)
def test_deep_nesting_fails_fast_without_crashing(text: str) -> None:
    data, problems = parse(text)
    assert data is None
    assert [p.message for p in problems] == [
        f"the playbook is nested more than {MAX_DEPTH} levels deep"
    ]


def test_nesting_up_to_the_limit_is_fine() -> None:
    depth = MAX_DEPTH - 1
    _data, problems = parse("v: " + "[" * depth + "]" * depth)
    assert problems == []


def test_deep_nesting_through_aliases_is_caught() -> None:
    half = MAX_DEPTH // 2 + 2
    text = f"a: &a {'[' * half}{']' * half}\nb: {'[' * half}*a{']' * half}\n"
    data, problems = parse(text)
    assert data is None
    assert "levels deep (through aliases)" in problems[0].message


def test_size_limit_is_checked_before_parsing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(yaml_source, "MAX_BYTES", 1000)
    data, problems = parse("a: [" + "1, " * 1000 + "]")
    assert data is None
    assert problems[0].message.startswith("the playbook is larger than")
    assert MAX_BYTES == 10 * 1024 * 1024


def test_default_size_limit() -> None:
    data, problems = parse("# " + "x" * MAX_BYTES + "\n")
    assert data is None
    assert problems[0].message == "the playbook is larger than 10 MiB"


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n", "---\n", "~\n", "null"])
def test_empty_documents(text: str) -> None:
    data, problems = parse(text)
    assert data is None
    assert [p.message for p in problems] == ["the playbook is empty"]


def test_two_documents() -> None:
    data, problems = parse("a: 1\n---\nb: 2\n")
    assert data is None
    assert problems[0].location.line == 2
    assert "more than one" in problems[0].message


@pytest.mark.parametrize(
    ("text", "line", "column", "message"),
    [
        ("a: 1\n b: 2\n", 2, 3, "mapping values are not allowed"),
        ("a: [1, 2\n", 2, 1, "did not find expected ',' or ']'"),
        ("a: 'open\n", 2, 1, "found unexpected end of stream"),
        ("a:\n\t- 1\n", 2, 1, "found character"),
    ],
)
def test_syntax_errors_have_the_parser_position(
    text: str, line: int, column: int, message: str
) -> None:
    data, problems = parse(text)
    assert data is None
    assert len(problems) == 1
    assert (problems[0].location.line, problems[0].location.column) == (line, column)
    assert problems[0].message.startswith(f"invalid YAML: {message}")


def test_byte_order_mark_is_ignored() -> None:
    assert parse("\ufeffa: 1\n") == ({"a": 1}, [])


def test_positions_of_keys_and_values() -> None:
    text = "top:\n  list:\n    - first\n    - {k: v}\n  'quoted key': 12\n"
    problems = Problems("t.yaml")
    document = parse_yaml(text, problems)
    assert document is not None
    where = document.positions.locate
    assert where(("top",), at="key") == (1, 1)
    assert where(("top",)) == (2, 3)  # the value: the nested mapping
    assert where(("top", "list", 0)) == (3, 7)
    assert where(("top", "list", 1, "k"), at="key") == (4, 8)
    assert where(("top", "list", 1, "k")) == (4, 11)
    assert where(("top", "quoted key"), at="key") == (5, 3)
    assert where(("top", "quoted key")) == (5, 17)
    # A path the document does not have points at its deepest existing part.
    assert where(("top", "list", 7)) == (3, 5)
    assert where(("top", "missing", "deeper")) == (2, 3)
    assert where(()) == (1, 1)


def test_pure_python_loader_gives_the_same_result(monkeypatch: pytest.MonkeyPatch) -> None:
    import yaml

    text = "a: &x [1, yes, {b: 'c'}]\nd: *x\ne: !!str 3\n<<: {f: ~}\n"
    expected = parse(text)
    monkeypatch.setattr(yaml_source, "_Loader", yaml.SafeLoader)
    assert parse(text) == expected
    _, problems = parse("a: 1\na: 2\n")
    assert problems[0].location.line == 2
