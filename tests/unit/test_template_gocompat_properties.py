"""Property: a translated Go template renders what a small reference evaluator of the subset
computes, for generated expressions of every function and control form.

The reference evaluator below is written from Go's documentation (text/template "Functions",
fmt "Printing"), independently of :mod:`gxo.template.gofuncs`; the generator builds a typed
expression, prints it as Go source and evaluates it directly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from gxo.template import compile_value

NS: dict[str, Any] = {
    "i1": 3,
    "i2": -7,
    "s1": "héllo",
    "s2": "b",
    "yes": True,
    "no": False,
    "l": [4, 0, 9],
    "m": {"k": "vee", "n": "x"},
}


@dataclass(frozen=True)
class Expr:
    source: str  # Go text of an operand (parenthesised when it is a call)
    value: Any


def go_print(value: Any) -> str:
    """fmt.Sprint of one value, for the types generated here."""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, list):
        return "[" + " ".join(go_print(v) for v in value) + "]"
    return str(value)


def truth(value: Any) -> bool:
    """text/template: false, 0, "" and empty collections are empty (false)."""
    return value not in (False, 0, "", None) and value not in ([], {})


def quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def call(name: str, *args: Expr) -> str:
    return "(" + " ".join([name, *(a.source for a in args)]) + ")"


# A negative literal: Go reads "-5" as a number; keep the generated values exact.
ints = st.one_of(
    st.sampled_from([Expr(".i1", 3), Expr(".i2", -7)]),
    st.integers(0, 50).map(lambda n: Expr(str(n), n)),
    st.integers(-50, -1).map(lambda n: Expr(str(n), n)),
    st.sampled_from([Expr("(len .l)", 3), Expr("(len .s1)", 6), Expr("(len .m)", 2)]),
    st.integers(0, 2).map(lambda i: Expr(f"(index .l {i})", NS["l"][i])),
)
words = st.text(alphabet="abcxyz é", max_size=5)
strs_base = st.one_of(
    st.sampled_from([Expr(".s1", "héllo"), Expr(".s2", "b")]),
    words.map(lambda w: Expr(quote(w), w)),
    words.map(lambda w: Expr(f"`{w}`", w)),
    st.sampled_from(["k", "n"]).map(lambda k: Expr(f'(index .m "{k}")', NS["m"][k])),
)


def _strs(children: st.SearchStrategy[Expr]) -> st.SearchStrategy[Expr]:
    return st.one_of(
        st.tuples(children, ints).map(
            lambda p: Expr(call('printf "%s-%d"', *p), f"{p[0].value}-{p[1].value}")
        ),
        st.tuples(children, children).map(
            lambda p: Expr(call("print", *p), p[0].value + p[1].value)
        ),
        st.tuples(ints, ints).map(lambda p: Expr(call("print", *p), f"{p[0].value} {p[1].value}")),
        children.map(lambda e: Expr(f'({e.source} | printf "<%s>")', f"<{e.value}>")),
    )


strs = st.recursive(strs_base, _strs, max_leaves=4)

COMPARE = {
    "eq": lambda a, b: a == b,
    "ne": lambda a, b: a != b,
    "lt": lambda a, b: a < b,
    "le": lambda a, b: a <= b,
    "gt": lambda a, b: a > b,
    "ge": lambda a, b: a >= b,
}


def _comparisons(operands: st.SearchStrategy[Expr]) -> st.SearchStrategy[Expr]:
    two = st.tuples(st.sampled_from(sorted(COMPARE)), operands, operands).map(
        lambda t: Expr(call(t[0], t[1], t[2]), COMPARE[t[0]](t[1].value, t[2].value))
    )
    many = st.tuples(operands, st.lists(operands, min_size=2, max_size=3)).map(
        lambda t: Expr(call("eq", t[0], *t[1]), any(t[0].value == o.value for o in t[1]))
    )
    return two | many


bools_base = st.one_of(
    st.sampled_from([Expr("true", True), Expr("false", False), Expr(".yes", True)]),
    st.just(Expr(".no", False)),
    _comparisons(ints),
    _comparisons(strs),
)


def _any_and_or(children: st.SearchStrategy[Expr]) -> st.SearchStrategy[Expr]:
    def and_(args: list[Expr]) -> Any:
        for arg in args:
            if not truth(arg.value):
                return arg.value
        return args[-1].value

    def or_(args: list[Expr]) -> Any:
        for arg in args:
            if truth(arg.value):
                return arg.value
        return args[-1].value

    group = st.lists(children, min_size=1, max_size=3)
    return st.one_of(
        group.map(lambda args: Expr(call("and", *args), and_(args))),
        group.map(lambda args: Expr(call("or", *args), or_(args))),
        children.map(lambda e: Expr(call("not", e), not truth(e.value))),
    )


anything = st.recursive(bools_base | ints | strs, _any_and_or, max_leaves=6)


@st.composite
def templates(draw: st.DrawFn) -> tuple[str, Any]:
    """(Go template text, the value the reference evaluator gives it)."""
    shape = draw(st.sampled_from(["alone", "text", "if", "range", "with", "pipe", "var"]))
    if shape == "alone":
        expr = draw(anything)
        source = expr.source[1:-1] if expr.source.startswith("(") else expr.source
        return "{{ " + source + " }}", expr.value
    if shape == "text":
        expr = draw(anything)
        return "[{{/* go */}}{{ " + expr.source + " }}]", "[" + go_print(expr.value) + "]"
    if shape == "if":
        cond, a, b = draw(anything), draw(strs), draw(strs)
        text = (
            f"{{{{ if {cond.source} }}}}{{{{ {a.source} }}}}"
            f"{{{{ else }}}}{{{{ {b.source} }}}}{{{{ end }}}}"
        )
        return text, a.value if truth(cond.value) else b.value
    if shape == "range":
        body = draw(
            st.sampled_from(["{{ . }},", "{{ $i }}={{ $e }};", "{{ if gt . 3 }}+{{ end }}"])
        )
        head = "{{ range $i, $e := .l }}" if "$i" in body else "{{ range .l }}"
        out = ""
        for i, e in enumerate(NS["l"]):
            out += {"{{ . }},": f"{e},", "{{ $i }}={{ $e }};": f"{i}={e};"}.get(
                body, "+" if e > 3 else ""
            )
        return head + body + "{{ end }}", out
    if shape == "with":
        expr = draw(anything)
        text = "{{ with " + expr.source + " }}<{{ . }}>{{ else }}empty{{ end }}"
        return text, f"<{go_print(expr.value)}>" if truth(expr.value) else "empty"
    if shape == "var":
        expr = draw(anything)
        printed = go_print(expr.value)
        return "{{ $v := " + expr.source + " }}{{ $v }}|{{ $v }}", f"{printed}|{printed}"
    expr = draw(ints)
    return "{{ " + expr.source + ' | printf "%03d" }}', f"{expr.value:03d}"


@settings(max_examples=400, deadline=None)
@given(templates())
def test_translated_go_templates_match_the_reference_evaluator(case: tuple[str, Any]) -> None:
    text, expected = case
    got = compile_value(text, where="$.t").render(NS)
    assert got == expected
    assert type(got) is type(expected)


_IDENT = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,6}", fullmatch=True)


@settings(max_examples=300, deadline=None)
@given(
    parts=st.lists(
        _IDENT | st.sampled_from(["end", "else", "break", "if", "true", "env"]),
        min_size=1,
        max_size=3,
    ),
    left=st.sampled_from(["", " ", "\n"]),
    inner=st.sampled_from(["", " ", "  "]),
)
def test_a_whole_path_that_skips_translation_is_left_unchanged_by_it(
    parts: list[str], left: str, inner: str
) -> None:
    """``{{ a.b }}`` alone is compiled without the Go translation: only when translating
    would return it unchanged (a bare ``{{ end }}`` is still translated, and refused)."""
    from gxo.template.gocompat import translate
    from gxo.template.templates import _GO_WORDS, _WHOLE_PATH, PathTemplate, _compile, _simple

    path = ".".join(parts)
    source = f"{left}{{{{{inner}{path}{inner}}}}}"
    whole = _WHOLE_PATH.fullmatch(source)
    assert whole is not None
    if _simple(path) and path not in _GO_WORDS:
        assert translate(source) == source
        template = _compile(source)
        assert isinstance(template, PathTemplate)
        assert template.references == frozenset({tuple(parts)})
