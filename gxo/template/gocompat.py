"""GXO's Go templates (``text/template``), translated into Jinja before Jinja sees the text.

Why a module of its own: GXO playbooks were written for Go's ``text/template``; gxo renders
Jinja2. A template is read as Go when one of its ``{{ }}`` actions uses a form Jinja cannot
mean (the rule, also in the README):

- a leading ``.`` field path (``{{ .a.b }}``, ``{{ . }}``) or a ``$`` variable;
- a Go function applied by juxtaposition (``eq .a .b``, ``printf "%s" .x``, ``len .x``,
  ``index .m "k"``, ``secret "NAME"``), or a back-quoted string;
- ``{{ if``, ``{{ else``, ``{{ end }}``, ``{{ range``, ``{{ with``, or a ``{{/* comment */}}``.

Anything Jinja can parse as written is Jinja; a ``{#`` or ``{%`` that nothing closes is text
(shell's ``${#HOME}``), as Go reads it. In a Go template every ``{{ }}`` action is Go
(``{% %}`` tags and ``{# #}`` comments are left to Jinja). The subset translated: field
paths, ``.``, ``$`` and ``$x`` variables (``:=`` and ``=``), pipelines, parentheses,
string (double- and back-quoted), rune, number, ``true``/``false``/``nil`` literals,
``if``/``else if``/``else``/``end``, ``range`` (with one or two variables, and ``else``),
``with`` (and ``else``), comments, trim markers (``{{-`` and ``-}}``), and the functions
``and or not eq ne lt le gt ge len index print printf println secret env``. Their meaning
is Go's (:mod:`gxo.template.gofuncs`): ``and``/``or`` return an operand (and stop early,
as since Go 1.18), ``eq`` takes several arguments, ``printf`` has Go's verbs, and a value
printed inside text prints as Go prints it (``true``, ``1e+06``, ``[a b]``, ``map[k:v]``,
``<no value>``). A template that is one action alone keeps the native value, like every gxo
template (``"{{ .users }}"`` is the list itself). Anything else of Go's (``html``, ``js``,
``urlquery``, ``slice``, ``call``, ``define``/``template``/``block``, ``break``/``continue``)
is an error at load, with the template column and the Jinja spelling as the hint.

The rewrite keeps the text's lines where they are, so a Jinja error's line still points
into the source.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from gxo.errors import TemplateError
from gxo.template.names import GLOBAL_NAMES, JINJA_OPERATOR_WORDS, JINJA_RESERVED, STATE_LOOKUP
from gxo.template.references import format_path

__all__ = ["JINJA_RESERVED", "is_go_action", "translate"]

_IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
_OPENER = re.compile(r"\{\{|\{%|\{#")
_RAW_START = re.compile(r"\{%[-+]?\s*raw\s*[-+]?%\}")
_RAW_END = re.compile(r"\{%[-+]?\s*endraw\s*[-+]?%\}")
_LEADING_WORD = re.compile(rf"({_IDENT})(\s*)")
# A field that does not follow an operand: ``len .x``, ``(.a).b``, ``"a" .b``. In Jinja a dot
# only follows a name, a closing bracket or a literal, with no space before it.
_LEADING_FIELD = re.compile(r"(?:^|[\s(|,])\.[A-Za-z_]")
# A word at the start of a command (after ``|``, ``(`` or ``,``) and what follows it.
_COMMAND_WORD = re.compile(rf"(?:^|[|(,])\s*({_IDENT})\s+(?=\S)")

# Go functions that Jinja would read as an undefined callable in ``and (x)``, ``len (x)``.
_GO_ONLY_CALLS = frozenset(
    {"and", "or", "eq", "ne", "lt", "le", "gt", "ge", "len", "index", "print", "printf", "println"}
)
# Words that may legally follow an operand in a Jinja expression.
_JINJA_OPERATOR_WORDS = JINJA_OPERATOR_WORDS
_GENERIC_HINT = (
    "gxo templates are Jinja2: write fields without the leading dot (.a.b is a.b), call "
    "functions with parentheses (f(x)) or as filters (x | f), and use {% if %}/{% for %} blocks"
)


@dataclass
class _Action:
    """One ``{{ }}`` of the source: its span, its body's span, and its trim markers."""

    start: int
    end: int
    lo: int
    hi: int
    ltrim: bool
    rtrim: bool


def translate(source: str) -> str:
    """``source`` with its Go actions translated to Jinja, or unchanged when it is Jinja.

    Raises :class:`gxo.errors.TemplateError` (without ``where``; the caller adds it) for a
    Go form outside the subset, with the template position and the Jinja spelling.
    """
    source = _unclosed_as_text(source)
    actions = _actions(source)
    if not any(is_go_action(source[a.lo : a.hi]) for a in actions):
        return source
    boxed: set[str] = set()
    while True:
        try:
            return _Translator(source, actions, frozenset(boxed)).run()
        except _Rebox as rebox:
            # A $x assigned inside a {{ range }} that it was declared outside of: Jinja's
            # `for` scopes a plain `set`, so translate again with $x held in a namespace.
            if rebox.name in boxed:
                raise AssertionError(f"translated {rebox.name} twice") from None
            boxed.add(rebox.name)


class _Rebox(Exception):
    """A signal to translate again with one more variable in a namespace (not an error)."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


def _unclosed_as_text(source: str) -> str:
    """``source`` with each ``{#`` or ``{%`` that nothing closes written as text.

    Go reads only ``{{`` as a delimiter, so GXO commands hold shell such as ``${#HOME}`` (a
    length) as plain text; Jinja would read it as a comment that never ends (a syntax error
    at load). A comment or tag with no ``#}`` or ``%}`` after it cannot be one, so it is
    text in either language: ``{{ "{#" }}`` prints it back.
    """
    if "{#" not in source and "{%" not in source:
        return source
    out: list[str] = []
    pos = last = 0
    while (match := _OPENER.search(source, pos)) is not None:
        start = match.start()
        opener = match.group()
        if opener == "{{":
            if source.startswith("{{/*", start) or source.startswith("{{- /*", start):
                end = source.find("*/", start)
                end = source.find("}}", end) if end >= 0 else -1
            else:
                end = _find_end(source, start + 2, "}}")
        elif opener == "{#":
            end = source.find("#}", start + 2)
        elif (raw := _RAW_START.match(source, start)) is not None:
            endraw = _RAW_END.search(source, raw.end())
            end = -1 if endraw is None else endraw.end() - 2
        else:
            end = _find_end(source, start + 2, "%}")
        if end >= 0:
            pos = end + 2
        elif opener == "{{":
            break  # an action that never ends: the parser says so
        else:
            out.append(source[last:start] + '{{ "' + opener + '" }}')
            pos = last = start + 2
    if not out:
        return source
    out.append(source[last:])
    return "".join(out)


def _actions(source: str) -> list[_Action]:
    """Every ``{{ }}`` action, skipping ``{% raw %}`` blocks, ``{% %}`` tags and comments."""
    found: list[_Action] = []
    pos = 0
    while (match := _OPENER.search(source, pos)) is not None:
        start = match.start()
        opener = match.group()
        if opener == "{#":
            end = source.find("#}", start + 2)
            if end < 0:
                break
            pos = end + 2
            continue
        if opener == "{%":
            raw = _RAW_START.match(source, start)
            if raw is not None:
                endraw = _RAW_END.search(source, raw.end())
                if endraw is None:
                    break
                pos = endraw.end()
                continue
            end = _find_end(source, start + 2, "%}")
            if end < 0:
                break
            pos = end + 2
            continue
        if source.startswith("{{/*", start) or source.startswith("{{- /*", start):
            end = source.find("*/", start)
            end = source.find("}}", end) if end >= 0 else -1
        else:
            end = _find_end(source, start + 2, "}}")
        if end < 0:
            break
        pos = end + 2
        lo, hi = start + 2, end
        ltrim = rtrim = False
        if source.startswith(("-", "+"), lo):
            ltrim = source[lo] == "-"
            lo += 1
        if hi > lo and source[hi - 1] == "-":
            rtrim = True
            hi -= 1
        while lo < hi and source[lo].isspace():
            lo += 1
        while hi > lo and source[hi - 1].isspace():
            hi -= 1
        found.append(_Action(start, end + 2, lo, hi, ltrim, rtrim))
    return found


def _find_end(source: str, pos: int, terminator: str) -> int:
    """Index of ``terminator`` closing a tag, past strings and balanced brackets; -1 if none."""
    depth = 0
    length = len(source)
    while pos < length:
        char = source[pos]
        if char in "'\"`":
            pos = _skip_string(source, pos)
            continue
        if char in "([{":
            depth += 1
        elif depth and char in ")]}":
            depth -= 1
        elif depth == 0 and source.startswith(terminator, pos):
            return pos
        pos += 1
    return -1


def _skip_string(text: str, pos: int) -> int:
    """Index just past the string literal that starts at ``pos`` (or the end of ``text``)."""
    quote = text[pos]
    pos += 1
    while pos < len(text):
        char = text[pos]
        if char == "\\" and quote != "`":
            pos += 2
            continue
        if char == quote:
            return pos + 1
        pos += 1
    return pos


def _mask_strings(body: str) -> str:
    """``body`` with every string literal's content replaced by ``#`` (same length)."""
    out: list[str] = []
    pos = 0
    while pos < len(body):
        char = body[pos]
        if char in "'\"`":
            end = _skip_string(body, pos)
            out.append(char + "#" * (end - pos - 1))
            pos = end
        else:
            out.append(char)
            pos += 1
    return "".join(out)


def is_go_action(body: str) -> bool:
    """Whether the inside of one ``{{ }}`` uses a form only Go can mean (the rule above)."""
    if not body:
        return False
    if body.startswith("/*"):
        return True
    if body[0] == ".":
        return body == "." or body[1:2].isalpha() or body[1:2] == "_"
    masked = _mask_strings(body)
    if "$" in masked or "`" in masked:
        return True
    word = _LEADING_WORD.match(masked)
    if word is not None and word.end() == len(masked):
        return body in ("end", "else", "break", "continue")
    if word is not None and word.group(2) and _is_go_call(word.group(1), masked[word.end() :]):
        return True
    if _LEADING_FIELD.search(masked):
        return True
    return any(
        _is_go_call(command.group(1), masked[command.end() :])
        for command in _COMMAND_WORD.finditer(masked)
    )


def _is_go_call(word: str, rest: str) -> bool:
    """Whether ``word`` followed by whitespace and ``rest`` reads as a Go function call."""
    if word == "else" or (word in _GO_ONLY_CALLS and rest[:1] == "("):
        return True
    if word in _GO_ONLY_CALLS and rest[:1] in "+-" and rest[1:2].isdigit():
        return True  # eq -1 2: Jinja would read "eq - 1 ...", arithmetic on an undefined name
    if word in ("and", "or"):  # Jinja operators: they cannot start an expression
        return True
    if word == "not" or not rest:
        return False
    char = rest[0]
    if char == ".":
        return rest[1:2].isalpha() or rest[1:2] == "_"
    if char in "$\"'`" or char.isdigit():
        return True
    following = _LEADING_WORD.match(rest)
    return following is not None and following.group(1) not in _JINJA_OPERATOR_WORDS


# --- the Go action language -------------------------------------------------------------------

_GO_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<comment>/\*.*?\*/)
  | (?P<field>\.[A-Za-z_][A-Za-z0-9_]*)
  | (?P<var>\$[A-Za-z0-9_]*)
  | (?P<str>"(?:[^"\\\n]|\\.)*")
  | (?P<raw>`[^`]*`)
  | (?P<char>'(?:[^'\\\n]|\\[^'\n]+)')
  | (?P<num>[+-]?(?:0[xXbBoO][0-9a-fA-F_]+|(?:\d[\d_]*)?\.?\d[\d_]*(?:[eE][+-]?\d+)?)i?)
  | (?P<dot>\.)
  | (?P<declare>:=)
  | (?P<op>[=|(),])
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
    """,
    re.VERBOSE | re.DOTALL,
)
_FUNCTIONS = frozenset(
    {"and", "or", "not", "eq", "ne", "lt", "le", "gt", "ge", "len", "index", "print",
     "printf", "println", "secret", "env"}
)  # fmt: skip
_OUTSIDE = frozenset({"html", "js", "urlquery", "slice", "call"})
_COMPARE = {
    "eq": "go_eq", "ne": "go_ne", "lt": "go_lt", "le": "go_le", "gt": "go_gt", "ge": "go_ge",
}  # fmt: skip
_ARITY = {"not": (1, 1), "ne": (2, 2), "lt": (2, 2), "le": (2, 2), "gt": (2, 2), "ge": (2, 2),
          "eq": (2, None), "and": (1, None), "or": (1, None), "len": (1, 1), "index": (1, None),
          "printf": (1, None), "secret": (1, 1), "env": (1, 1)}  # fmt: skip
_GO_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v",
               "\\": "\\", "'": "'", '"': '"'}  # fmt: skip


@dataclass
class _Token:
    kind: str
    text: str
    pos: int  # offset in the whole source
    spaced: bool  # whitespace before it


@dataclass
class _Scope:
    """What ``.`` and each ``$variable`` are, in Jinja, at one point of the template."""

    dot: str | None  # None: the top of the state (fields are top-level names)
    variables: dict[str, tuple[str, int]] = field(default_factory=dict)  # $x -> (name, loops)
    loops: int = 0


@dataclass
class _Block:
    kind: str  # if, range, with
    pos: int
    outer: _Scope
    inner: _Scope
    has_else: bool = False


class _Translator:
    def __init__(self, source: str, actions: list[_Action], boxed: frozenset[str]) -> None:
        self.source = source
        self.actions = actions
        self.scope = _Scope(None)
        self.blocks: list[_Block] = []
        self.counter = 0
        #: Variables held in a Jinja namespace (``N.v``): assigned inside a range.
        self.boxed = boxed
        #: Variables declared by an action of their own (``{{ $x := ... }}``), which can be.
        self.plain: set[str] = set()
        stripped = [a for a in actions if not source[a.lo : a.hi].startswith("/*")]
        self.alone = (
            len(actions) == 1
            and len(stripped) == 1
            and not source[: actions[0].start].strip()
            and not source[actions[0].end :].strip()
        )

    # -- driver ----------------------------------------------------------------------------

    def run(self) -> str:
        pieces: list[str] = []
        copied = 0
        for action in self.actions:
            replacement = self.action(action)
            original = self.source[action.start : action.end]
            missing = original.count("\n") - replacement.count("\n")
            if missing > 0:
                cut = len(replacement) - (3 if replacement[-3:-2] == "-" else 2)
                replacement = replacement[:cut] + "\n" * missing + replacement[cut:]
            pieces.append(self.source[copied : action.start])
            pieces.append(replacement)
            copied = action.end
        if self.blocks:
            block = self.blocks[-1]
            raise self.error(block.pos, f"{{{{ {block.kind} }}}} has no {{{{ end }}}}", "")
        pieces.append(self.source[copied:])
        return "".join(pieces)

    def error(self, pos: int, message: str, hint: str | None) -> TemplateError:
        line = self.source.count("\n", 0, pos) + 1
        column = pos - (self.source.rfind("\n", 0, pos) + 1) + 1
        where = f"line {line}, column {column}" if "\n" in self.source else f"column {column}"
        return TemplateError(f"Go template, at {where}: {message}", hint=hint or "")

    def unsupported(
        self, action: _Action, pos: int, message: str, *, fallback: str = _GENERIC_HINT
    ) -> TemplateError:
        body = self.source[action.lo : action.hi]
        suggestion = _suggest(body)
        hint = f"in Jinja: {suggestion}" if suggestion else fallback
        return self.error(pos, message, hint)

    def fresh(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}{self.counter}"

    def tags(self, action: _Action, kind: str, *inners: str) -> str:
        """One or more Jinja tags for one action; the trim markers go on the outer ends."""
        opener, closer = ("{%", "%}") if kind == "%" else ("{{", "}}")
        out = []
        for position, inner in enumerate(inners):
            left = opener + ("-" if action.ltrim and position == 0 else "")
            right = ("-" if action.rtrim and position == len(inners) - 1 else "") + closer
            out.append(f"{left} {inner} {right}")
        return "".join(out)

    # -- actions ---------------------------------------------------------------------------

    def action(self, action: _Action) -> str:
        body = self.source[action.lo : action.hi]
        if body.startswith("/*"):
            if not body.endswith("*/"):
                raise self.error(action.lo, "unclosed comment", "end it with */}}")
            left = "{#-" if action.ltrim else "{#"
            right = "-#}" if action.rtrim else "#}"
            return left + " " + right
        tokens = self.lex(action)
        if not tokens:
            raise self.error(action.lo, "missing value for command", "remove the empty {{ }}")
        first = tokens[0]
        word = first.text if first.kind == "ident" else ""
        if word == "if":
            return self.open_block(action, "if", tokens[1:])
        if word == "with":
            return self.open_block(action, "with", tokens[1:])
        if word == "range":
            return self.open_range(action, tokens[1:])
        if word == "else":
            return self.else_(action, tokens[1:])
        if word == "end":
            if len(tokens) > 1:
                raise self.error(tokens[1].pos, "unexpected token after end", "")
            return self.end(action, first)
        if word in ("define", "template", "block", "break", "continue"):
            raise self.unsupported(
                action, first.pos, f"{{{{ {word} }}}} is outside the Go-template subset gxo reads"
            )
        names, expression = self.pipeline(action, tokens, declare=True)
        if names:
            if tokens[1].kind == "declare":
                self.plain.add(names[0])
                if names[0] in self.boxed:
                    expression = f"namespace(v={expression})"
            return self.tags(action, "%", f"set {names[0]} = {expression}")
        if not self.alone:
            expression = f"{expression} | go_str"
        return self.tags(action, "{", expression)

    def open_block(self, action: _Action, kind: str, tokens: list[_Token]) -> str:
        if not tokens:
            raise self.error(action.lo, f"missing value for {kind}", "")
        outer = self.scope
        inner = _Scope(outer.dot, dict(outer.variables), outer.loops)
        self.scope = inner
        names, expression = self.pipeline(action, tokens, declare=True)
        self.blocks.append(_Block(kind, action.lo, outer, inner))
        if kind == "if":
            if names:
                return self.tags(action, "%", f"set {names[0]} = {expression}", f"if {names[0]}")
            return self.tags(action, "%", f"if {expression}")
        dot = names[0] if names else self.fresh("_gd")
        inner.dot = dot
        return self.tags(action, "%", f"set {dot} = {expression}", f"if {dot}")

    def open_range(self, action: _Action, tokens: list[_Token]) -> str:
        if not tokens:
            raise self.error(action.lo, "missing value for range", "")
        outer = self.scope
        inner = _Scope(outer.dot, dict(outer.variables), outer.loops + 1)
        dot = self.fresh("_gd")
        key = f"_gk{self.counter}"
        declared: list[str] = []
        if (
            len(tokens) > 3
            and tokens[0].kind == "var"
            and tokens[1].text == ","
            and tokens[2].kind == "var"
            and tokens[3].kind == "declare"
        ):
            declared = [tokens[0].text, tokens[2].text]
            tokens = tokens[4:]
        elif len(tokens) > 1 and tokens[0].kind == "var" and tokens[1].kind == "declare":
            declared = [tokens[0].text]
            tokens = tokens[2:]
        # The range expression is evaluated outside the loop's scope.
        _, expression = self.pipeline(action, tokens, declare=False)
        inner.dot = dot
        if len(declared) == 2:
            inner.variables[declared[0]] = (key, inner.loops)
            inner.variables[declared[1]] = (dot, inner.loops)
        elif declared:
            inner.variables[declared[0]] = (dot, inner.loops)
        self.scope = inner
        self.blocks.append(_Block("range", action.lo, outer, inner))
        return self.tags(action, "%", f"for {key}, {dot} in {expression} | go_range")

    def else_(self, action: _Action, tokens: list[_Token]) -> str:
        if not self.blocks:
            raise self.error(action.lo, "unexpected {{ else }}: no {{ if }}, {{ range }} or "
                             "{{ with }} is open", "")  # fmt: skip
        block = self.blocks[-1]
        if block.has_else:
            raise self.error(action.lo, f"{{{{ {block.kind} }}}} has two {{{{ else }}}}", "")
        if tokens and tokens[0].kind == "ident" and tokens[0].text == "if" and block.kind == "if":
            scope = _Scope(block.outer.dot, dict(block.outer.variables), block.outer.loops)
            self.scope = scope
            names, expression = self.pipeline(action, tokens[1:], declare=True)
            if names:
                raise self.unsupported(action, action.lo, "a variable declared in {{ else if }}")
            return self.tags(action, "%", f"elif {expression}")
        if tokens:
            raise self.unsupported(
                action, tokens[0].pos, f"{{{{ else {tokens[0].text} }}}} in {{{{ {block.kind} }}}}"
            )
        block.has_else = True
        self.scope = _Scope(block.outer.dot, dict(block.outer.variables), block.outer.loops)
        return self.tags(action, "%", "else")

    def end(self, action: _Action, token: _Token) -> str:
        if not self.blocks:
            raise self.error(token.pos, "unexpected {{ end }}: nothing is open", "")
        block = self.blocks.pop()
        self.scope = block.outer
        return self.tags(action, "%", "endfor" if block.kind == "range" else "endif")

    # -- tokens ----------------------------------------------------------------------------

    def lex(self, action: _Action) -> list[_Token]:
        tokens: list[_Token] = []
        pos = action.lo
        spaced = False
        while pos < action.hi:
            match = _GO_TOKEN.match(self.source, pos, action.hi)
            if match is None or match.lastgroup is None:
                raise self.unsupported(
                    action, pos, f"unexpected {self.source[pos]!r} in a Go action"
                )
            kind = match.lastgroup
            pos = match.end()
            if kind == "space":
                spaced = True
                continue
            if kind == "comment":
                raise self.error(match.start(), "a comment must be alone in its action", "")
            tokens.append(_Token(kind, match.group(), match.start(), spaced))
            spaced = False
        return tokens

    # -- pipelines -------------------------------------------------------------------------

    def pipeline(
        self, action: _Action, tokens: list[_Token], *, declare: bool
    ) -> tuple[list[str], str]:
        """(declared Jinja names, the Jinja expression) of ``[$x :=] cmd | cmd ...``."""
        names: list[str] = []
        if len(tokens) > 1 and tokens[0].kind == "var" and tokens[1].kind == "declare":
            if not declare:
                raise self.error(tokens[0].pos, "a variable cannot be declared here", "")
            names.append(self.declare(tokens[0]))
            tokens = tokens[2:]
        elif len(tokens) > 1 and tokens[0].kind == "var" and tokens[1].text == "=":
            if not declare:
                raise self.error(tokens[0].pos, "a variable cannot be assigned here", "")
            names.append(self.assign(tokens[0]))
            tokens = tokens[2:]
        if not tokens:
            raise self.error(action.lo, "missing value for command", "")
        expression, position = self.commands(action, tokens, 0)
        if position < len(tokens):
            raise self.error(tokens[position].pos, f"unexpected {tokens[position].text!r}", "")
        return names, expression

    def declare(self, token: _Token) -> str:
        if token.text == "$":
            raise self.error(token.pos, "$ cannot be declared", "")
        name = f"_gv_{token.text[1:]}_{self.fresh('')}"
        read = f"{name}.v" if name in self.boxed else name
        self.scope.variables[token.text] = (read, self.scope.loops)
        return name

    def assign(self, token: _Token) -> str:
        known = self.scope.variables.get(token.text)
        if known is None:
            raise self.error(token.pos, f"undefined variable {token.text!r}", "declare it with :=")
        if known[0].endswith(".v") and known[0][:-2] in self.boxed:
            return known[0]  # `set N.v = ...` changes it in any scope
        if known[1] != self.scope.loops:
            if known[0] in self.plain:
                raise _Rebox(known[0])
            raise self.error(
                token.pos,
                f"assigning {token.text} inside a {{{{ range }}}} to change it outside is not "
                "supported",
                "declare it in an action of its own before the range ({{ $x := ... }}): "
                "such a variable can be assigned inside it",
            )
        return known[0]

    def commands(self, action: _Action, tokens: list[_Token], pos: int) -> tuple[str, int]:
        """A chain of commands up to ``)`` or the end; the Jinja expression and where it
        stopped."""
        piped: str | None = None
        while True:
            start = pos
            operands: list[tuple[str, _Token]] = []
            while pos < len(tokens) and tokens[pos].text not in ("|", ")"):
                if tokens[pos].kind in ("declare",) or tokens[pos].text in ("=", ","):
                    raise self.error(tokens[pos].pos, f"unexpected {tokens[pos].text!r}", "")
                expression, pos = self.operand(action, tokens, pos, first=not operands)
                operands.append((expression, tokens[start] if not operands else tokens[pos - 1]))
            if not operands:
                where = tokens[pos].pos if pos < len(tokens) else action.hi
                raise self.error(where, "missing value for command", "")
            head = tokens[start]
            if head.kind == "ident" and head.text not in ("true", "false", "nil"):
                arguments = [expression for expression, _ in operands[1:]]
                if piped is not None:
                    arguments.append(piped)
                piped = self.call(action, head, arguments, [t for _, t in operands[1:]])
            else:
                if len(operands) > 1 or piped is not None:
                    raise self.error(
                        head.pos, f"can't give argument to non-function {head.text}", ""
                    )
                piped = operands[0][0]
            if pos < len(tokens) and tokens[pos].text == "|":
                pos += 1
                continue
            return piped, pos

    def operand(
        self, action: _Action, tokens: list[_Token], pos: int, *, first: bool
    ) -> tuple[str, int]:
        token = tokens[pos]
        pos += 1
        kind = token.kind
        if kind == "field":
            expression = self.field(token, self.scope.dot, token.text[1:])
        elif kind == "dot":
            if self.scope.dot is None:
                raise self.error(
                    token.pos,
                    "'.' is the whole state here, which gxo does not hand to a template",
                    "name the value you want: {{ .name }}",
                )
            expression = self.scope.dot
        elif kind == "var":
            expression = self.variable(tokens, token)
            while pos < len(tokens) and tokens[pos].kind == "field" and not tokens[pos].spaced:
                if expression == "":
                    expression = self.field(tokens[pos], None, tokens[pos].text[1:])
                else:
                    expression += tokens[pos].text
                pos += 1
            if expression == "":
                raise self.error(
                    token.pos,
                    "'$' is the whole state, which gxo does not hand to a template",
                    "name the value you want: {{ $.name }}",
                )
            return expression, pos
        elif kind in ("str", "raw", "char"):
            expression = _literal(self.string(token))
            if kind == "char":
                expression = str(ord(self.string(token)))
        elif kind == "num":
            expression = self.number(action, token)
        elif kind == "ident":
            if token.text in ("true", "false"):
                expression = token.text
            elif token.text == "nil":
                expression = "none"
            elif first:
                return token.text, pos  # a function name; the caller makes the call
            else:
                expression = self.call(action, token, [], [])
        elif token.text == "(":
            inner, pos = self.commands(action, tokens, pos)
            if pos >= len(tokens) or tokens[pos].text != ")":
                raise self.error(token.pos, "unclosed left paren", "")
            pos += 1
            expression = f"({inner})"
        else:
            raise self.error(token.pos, f"unexpected {token.text!r}", "")
        while pos < len(tokens) and tokens[pos].kind == "field" and not tokens[pos].spaced:
            if kind in ("str", "raw", "char", "num") or (kind == "ident" and first):
                raise self.error(tokens[pos].pos, f"unexpected {tokens[pos].text!r}", "")
            expression += tokens[pos].text
            pos += 1
        return expression, pos

    def variable(self, tokens: list[_Token], token: _Token) -> str:
        if token.text == "$":
            return ""
        known = self.scope.variables.get(token.text)
        if known is None:
            raise self.error(token.pos, f"undefined variable {token.text!r}", "")
        return known[0]

    def field(self, token: _Token, base: str | None, path: str) -> str:
        if base is not None:
            return f"{base}.{path}"
        head, dot, rest = path.partition(".")
        if head in JINJA_RESERVED or head in GLOBAL_NAMES:
            # A Go field is always data (``.env`` is a var named env, ``.none`` one named
            # none); in Jinja these names are a function or a constant, so read the entry.
            return f"{STATE_LOOKUP}[{_literal(head)}]{dot}{rest}"
        return path

    def string(self, token: _Token) -> str:
        text = token.text
        if token.kind == "raw":
            return text[1:-1]
        try:
            return _unquote(text[1:-1])
        except ValueError as exc:
            raise self.error(token.pos, f"bad string literal: {exc}", "") from None

    def number(self, action: _Action, token: _Token) -> str:
        text = token.text.replace("_", "")
        if text.endswith("i"):
            raise self.unsupported(action, token.pos, "complex numbers are not supported")
        try:
            if re.fullmatch(r"[+-]?0[0-7]+", text):
                value: int | float = int(text, 8)
            elif re.fullmatch(r"[+-]?(?:0[xXbBoO][0-9a-fA-F]+|\d+)", text):
                value = int(text, 0)
            else:
                value = float(text)
        except ValueError:
            raise self.error(token.pos, f"bad number syntax: {token.text!r}", "") from None
        literal = repr(value)
        return f"({literal})" if literal.startswith("-") else literal

    # -- functions -------------------------------------------------------------------------

    def call(
        self, action: _Action, head: _Token, arguments: list[str], tokens: list[_Token]
    ) -> str:
        name = head.text
        if name in _OUTSIDE:
            raise self.unsupported(
                action, head.pos, f"{name} is outside the Go-template subset gxo reads"
            )
        if name not in _FUNCTIONS:
            if not arguments:
                raise self.error(
                    head.pos,
                    f'function "{name}" not defined',
                    f"in a Go template a value is written with a dot: {{{{ .{name} }}}}",
                )
            raise self.unsupported(
                action,
                head.pos,
                f'function "{name}" not defined',
                fallback=f"gxo templates have no function or filter named {name!r} (GXO had "
                "no sprig functions either): compute the value in a task and register it",
            )
        low, high = _ARITY.get(name, (0, None))
        count = len(arguments)
        if count < low or (high is not None and count > high):
            want = f"{low}" if low == high else f"at least {low}"
            raise self.error(
                head.pos, f"wrong number of args for {name}: want {want} got {count}", ""
            )
        if name in ("and", "or"):
            return "(" + f" {name} ".join(arguments) + ")"
        if name == "not":
            return f"(not {arguments[0]})"
        if name in ("secret", "env"):
            return f"{name}({arguments[0]})"
        if name in ("print", "println") and not arguments:
            return "''" if name == "print" else "'\\n'"
        filter_name = _COMPARE.get(name) or f"go_{name}"
        rest = ", ".join(arguments[1:])
        call = f"({arguments[0]} | {filter_name}({rest}))"
        if name == "index" and self._constant_keys(tokens[1:]):
            # The same access as a subscript, in a branch never taken: gxo infers
            # dependencies from the template's paths, and this one names them
            # (index ._gxo.tasks "my-task" "status" depends on my-task, as it should).
            keys = "".join(f"[{key}]" for key in arguments[1:])
            return f"({arguments[0]}{keys} if false else {call})"
        return call

    @staticmethod
    def _constant_keys(tokens: list[_Token]) -> bool:
        return bool(tokens) and all(t.kind in ("str", "raw") for t in tokens)


def _literal(text: str) -> str:
    """A Jinja string literal that reads back as ``text`` exactly."""
    escaped = text.encode("unicode_escape").decode("ascii").replace("'", "\\'")
    return f"'{escaped}'"


def _unquote(body: str) -> str:
    """The value of a Go double-quoted (or rune) literal's inside."""
    out: list[str] = []
    pos = 0
    while pos < len(body):
        char = body[pos]
        if char != "\\":
            out.append(char)
            pos += 1
            continue
        escape = body[pos + 1 : pos + 2]
        if escape in _GO_ESCAPES:
            out.append(_GO_ESCAPES[escape])
            pos += 2
        elif escape in ("x", "u", "U"):
            size = {"x": 2, "u": 4, "U": 8}[escape]
            digits = body[pos + 2 : pos + 2 + size]
            if len(digits) != size or not re.fullmatch(r"[0-9a-fA-F]+", digits):
                raise ValueError(f"bad \\{escape} escape")
            value = int(digits, 16)
            if escape == "x":
                out.append(bytes([value]).decode("latin-1"))
            else:
                out.append(chr(value))
            pos += 2 + size
        elif escape.isdigit():
            digits = body[pos + 1 : pos + 4]
            if not re.fullmatch(r"[0-7]{3}", digits):
                raise ValueError("bad octal escape")
            out.append(chr(int(digits, 8)))
            pos += 4
        else:
            raise ValueError(f"unknown escape sequence \\{escape}")
    return "".join(out)


# --- hints: a best-effort Go → Jinja rewrite of one action --------------------------------

_TOKEN = re.compile(
    r"""\s*(?:
      (?P<field>\.(?:[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)?)
    | (?P<var>\$(?:[A-Za-z_]\w*)?(?:\.[A-Za-z_]\w*)*)
    | (?P<str>"(?:[^"\\]|\\.)*"|`[^`]*`|'(?:[^'\\]|\\.)*')
    | (?P<num>-?\d+(?:\.\d+)?)
    | (?P<word>[A-Za-z_]\w*)
    | (?P<op>:=|=|\||\(|\)|,)
    )""",
    re.VERBOSE,
)
_COMPARISONS = {"eq": "==", "ne": "!=", "lt": "<", "le": "<=", "gt": ">", "ge": ">="}
_AS_FILTER = {
    "len": "length",
    "html": "escape",
    "js": "tojson",
    "urlquery": "urlencode",
    "toJson": "tojson",
    "upper": "upper",
    "lower": "lower",
    "trim": "trim",
    "title": "title",
    "default": "default",
    "join": "join",
    "replace": "replace",
    "first": "first",
    "last": "last",
    "int": "int",
    "float": "float",
}
_HYPHEN_PATH = re.compile(r"\.[A-Za-z_][\w.-]*")

Token = tuple[str, str]


class _Untranslatable(Exception):
    pass


def _tokenize(body: str) -> list[Token] | None:
    tokens: list[Token] = []
    pos = 0
    while pos < len(body):
        if body[pos:].isspace():
            break
        match = _TOKEN.match(body, pos)
        if match is None or match.lastgroup is None:
            return None
        tokens.append((match.lastgroup, match.group(match.lastgroup)))
        pos = match.end()
    return tokens


def _jinja_string(go_literal: str) -> str:
    if go_literal[0] == "`":
        return repr(go_literal[1:-1])
    if go_literal[0] == '"':
        try:
            return repr(json.loads(go_literal))
        except ValueError:
            pass
    return go_literal


def _suggest(body: str) -> str | None:
    """The Jinja spelling of one Go action, or None when no rewrite is known."""
    if body.startswith("/*"):
        return "{# " + body.removeprefix("/*").removesuffix("*/").strip() + " #}"
    if _HYPHEN_PATH.fullmatch(body):
        return "{{ " + format_path(tuple(body[1:].split("."))) + " }}"
    tokens = _tokenize(body)
    if not tokens:
        return None
    try:
        return _statement(tokens)
    except (_Untranslatable, IndexError):
        return None


def _statement(tokens: list[Token]) -> str:
    kind, first = tokens[0]
    rest = tokens[1:]
    if kind == "word":
        if first == "if":
            return "{% if " + _expression(rest) + " %}...{% endif %}"
        if first == "with":
            return "{% if " + _expression(_after_assignment(rest)) + " %}...{% endif %}"
        if first == "else":
            if rest and rest[0] in (("word", "if"), ("word", "with")):
                return "{% elif " + _expression(rest[1:]) + " %}"
            return "{% else %}"
        if first == "end":
            return "{% endif %} or {% endfor %} (Jinja names the block it closes)"
        if first == "range":
            return _range(rest)
        if first in ("break", "continue"):
            return "filter the list instead: {% for x in items if condition %}"
        if first in ("define", "block"):
            return "{% macro NAME() %}...{% endmacro %} and call it as {{ NAME() }}"
        if first == "template":
            return "call a macro: {{ NAME() }}"
    if kind == "var" and len(tokens) > 2 and tokens[1][1] in (":=", "="):
        return "{% set " + first[1:] + " = " + _expression(tokens[2:]) + " %}"
    if kind == "var" and len(tokens) == 1 and len(first) > 1:
        name = first[1:].split(".", 1)[0]
        return "{% set " + name + " = ... %} then {{ " + first[1:] + " }}"
    return "{{ " + _expression(tokens) + " }}"


def _after_assignment(tokens: list[Token]) -> list[Token]:
    for index, (_, text) in enumerate(tokens):
        if text in (":=", "="):
            return tokens[index + 1 :]
    return tokens


def _range(tokens: list[Token]) -> str:
    names = [text[1:] for kind, text in tokens if kind == "var"]
    source = _expression(_after_assignment(tokens))
    target = names[-1] if names and any(t in (":=", "=") for _, t in tokens) else "item"
    text = "{% for " + target + " in " + source + " %}...{% endfor %}"
    if len(names) == 2:
        text += f" ({names[0]} is loop.index0 inside the loop)"
    if target == "item":
        text += " (inside, write item where Go wrote .)"
    return text


def _expression(tokens: list[Token]) -> str:
    value, end = _pipeline(tokens, 0)
    if end != len(tokens):
        raise _Untranslatable
    return value


def _pipeline(tokens: list[Token], pos: int) -> tuple[str, int]:
    piped: str | None = None
    while True:
        operands: list[Token | str] = []
        while pos < len(tokens) and tokens[pos][1] not in ("|", ")"):
            kind, text = tokens[pos]
            if text == "(":
                inner, pos = _pipeline(tokens, pos + 1)
                if pos >= len(tokens) or tokens[pos][1] != ")":
                    raise _Untranslatable
                operands.append(f"({inner})")
            elif kind == "op":
                raise _Untranslatable
            else:
                operands.append((kind, text))
            pos += 1
        piped = _command(operands, piped)
        if pos < len(tokens) and tokens[pos][1] == "|":
            pos += 1
            continue
        return piped, pos


def _operand(token: Token | str) -> str:
    if isinstance(token, str):
        return token
    kind, text = token
    if kind == "field":
        return text[1:] if text != "." else "item"
    if kind == "var":
        return text[1:] or "item"
    if kind == "str":
        return _jinja_string(text)
    if kind == "word":
        return {"nil": "none", "true": "true", "false": "false"}.get(text, text)
    return text


def _command(operands: list[Token | str], piped: str | None) -> str:
    if not operands:
        raise _Untranslatable
    head = operands[0]
    if len(operands) == 1 and piped is None:
        return _operand(head)
    if isinstance(head, tuple) and head[0] == "word" and head[1] not in ("nil", "true", "false"):
        name = head[1]
        args = [_operand(token) for token in operands[1:]]
        if piped is not None:
            args.append(piped)
        return _call(name, args)
    raise _Untranslatable


def _call(name: str, args: list[str]) -> str:
    if name in _COMPARISONS and len(args) >= 2:
        if name == "eq" and len(args) > 2:
            return " or ".join(f"{args[0]} == {other}" for other in args[1:])
        return f"{args[0]} {_COMPARISONS[name]} {args[1]}"
    if name in ("and", "or") and args:
        return f" {name} ".join(args)
    if name == "not" and len(args) == 1:
        return f"not {args[0]}"
    if name == "index" and args:
        return args[0] + "".join(f"[{key}]" for key in args[1:])
    if name == "slice" and args:
        return f"{args[0]}[{':'.join(args[1:3])}]" if len(args) > 1 else args[0]
    if name == "printf" and len(args) == 1:
        return args[0]
    if name == "printf" and args:
        return f"{args[0]} | format({', '.join(args[1:])})"
    if name in ("print", "println") and args:
        return " ~ ".join(args)
    if name == "call" and args:
        return f"{args[0]}({', '.join(args[1:])})"
    if name in ("secret", "env"):
        return f"{name}({', '.join(args)})"
    if name in _AS_FILTER and args:
        extra = f"({', '.join(args[:-1])})" if len(args) > 1 else ""
        return f"{args[-1]} | {_AS_FILTER[name]}{extra}"
    # sprig's functions, which GXO's docs used (GXO had none): their Jinja spelling
    if name in ("split", "splitList") and args:
        return f"{args[-1]}.split({', '.join(args[:-1])})"
    if name == "coalesce" and args:
        return " or ".join(args)
    if name == "get" and len(args) == 2:
        return f"{args[0]}[{args[1]}]"
    if name == "quote" and len(args) == 1:
        return f"{args[0]} | tojson"
    if name == "dict" and len(args) % 2 == 0:
        return (
            "{" + ", ".join(f"{k}: {v}" for k, v in zip(args[::2], args[1::2], strict=True)) + "}"
        )
    if name == "range":
        return f"range({', '.join(args)})"
    raise _Untranslatable  # no such function in Jinja: a spelling would mislead
