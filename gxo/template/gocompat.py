"""GXO's Go-template forms, rewritten to Jinja before Jinja sees the text.

Why a module of its own: GXO playbooks were written for Go's ``text/template``. The forms they
use most keep working (``{{ .a.b }}`` becomes ``{{ a.b }}``, ``{{ secret "N" }}`` becomes
``{{ secret('N') }}``, the same for ``env``); every other Go form is an error whose hint is
the Jinja spelling. Several Go forms are *valid Jinja with another meaning* (``{{ eq .a .b }}``
parses as ``eq.a.b``, ``{{ end }}`` as a variable), so they must be caught here, before
parsing, by their Go shape: a leading ``.``, a ``$`` variable, or a word followed by
arguments with no operator between them.

Only the inside of ``{{ }}`` is examined, with string literals masked; ``{% raw %}`` blocks
and ``{# #}`` comments are skipped. The rewrite keeps the text's lines where they are.
"""

from __future__ import annotations

import json
import re

from gxo.errors import TemplateError
from gxo.template.references import format_path

__all__ = ["JINJA_RESERVED", "translate"]

_IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
_FIELD_PATH = re.compile(rf"\.{_IDENT}(?:\.{_IDENT})*")
_OPENER = re.compile(r"\{\{|\{%|\{#")
_RAW_START = re.compile(r"\{%[-+]?\s*raw\s*[-+]?%\}")
_RAW_END = re.compile(r"\{%[-+]?\s*endraw\s*[-+]?%\}")
_LEADING_WORD = re.compile(rf"({_IDENT})(\s*)")
# A word then, after spaces, a field: a Go call with a field argument (``len .x``). In
# Jinja that would be attribute access written with a space before the dot.
_WORD_THEN_FIELD = re.compile(rf"(?<![\w.]){_IDENT}[ \t]+\.[A-Za-z_]")
# A word at the start of a command (after ``|``, ``(`` or ``,``) and what follows it.
_COMMAND_WORD = re.compile(rf"(?:^|[|(,])\s*({_IDENT})\s+(?=\S)")

# Words that may legally follow an operand in a Jinja expression.
_JINJA_OPERATOR_WORDS = frozenset({"and", "or", "not", "in", "is", "if", "else"})
#: Names that cannot start a Jinja variable path (constants, operators, the template itself).
JINJA_RESERVED = _JINJA_OPERATOR_WORDS | {
    "true", "false", "none", "True", "False", "None", "self",
}  # fmt: skip
_GO_ALONE = frozenset({"end", "else"})
_GENERIC_HINT = (
    "gxo templates are Jinja2: write fields without the leading dot (.a.b is a.b), call "
    "functions with parentheses (f(x)) or as filters (x | f), and use {% if %}/{% for %} blocks"
)


def translate(source: str) -> str:
    """``source`` with GXO's Go forms rewritten to Jinja; raises on any other Go form.

    Raises :class:`gxo.errors.TemplateError` (without ``where``; the caller adds it).
    """
    pieces: list[str] = []
    copied = 0
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
        end = _find_end(source, start + 2, "}}")
        if end < 0:
            break
        pos = end + 2
        lo, hi = start + 2, end
        if source.startswith(("-", "+"), lo):
            lo += 1
        if hi > lo and source[hi - 1] == "-":
            hi -= 1
        while lo < hi and source[lo].isspace():
            lo += 1
        while hi > lo and source[hi - 1].isspace():
            hi -= 1
        replacement = _action(source[lo:hi])
        if replacement is not None:
            pieces.append(source[copied:lo])
            pieces.append(replacement)
            copied = hi
    if not pieces:
        return source
    pieces.append(source[copied:])
    return "".join(pieces)


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


def _action(body: str) -> str | None:
    """The Jinja text for the inside of one ``{{ }}``, or None to leave it as it is."""
    if not body:
        return None
    if body.startswith("/*"):
        raise _go_error(body)
    if body[0] == ".":
        if _FIELD_PATH.fullmatch(body):
            head = body[1:].split(".", 1)[0]
            if head in JINJA_RESERVED:
                raise TemplateError(
                    f"`{{{{ {body} }}}}`: {head!r} is a reserved word in Jinja and cannot be "
                    "a variable name",
                    hint="rename the variable",
                )
            return body[1:]
        if body == "." or body[1:2].isalpha() or body[1:2] == "_":
            raise _go_error(body)
        return None
    masked = _mask_strings(body)
    if "$" in masked:
        raise _go_error(body)
    word = _LEADING_WORD.match(masked)
    if word is not None and word.end() == len(masked):
        if body in _GO_ALONE:
            raise _go_error(body)
        return None
    if word is not None and word.group(2) and _is_go_call(word.group(1), masked[word.end() :]):
        if word.group(1) in ("secret", "env"):
            call = _function_call(body)
            if call is not None:
                return call
        raise _go_error(body)
    if _WORD_THEN_FIELD.search(masked):
        raise _go_error(body)
    for command in _COMMAND_WORD.finditer(masked):
        if _is_go_call(command.group(1), masked[command.end() :]):
            raise _go_error(body)
    return None


def _is_go_call(word: str, rest: str) -> bool:
    """Whether ``word`` followed by whitespace and ``rest`` reads as a Go function call."""
    if word == "else":
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


def _function_call(body: str) -> str | None:
    """``secret "N"`` / ``env .x`` as a Jinja call, or None when it is not that simple."""
    tokens = _tokenize(body)
    if tokens is None or len(tokens) != 2:
        return None
    (_, name), (kind, arg) = tokens
    if kind == "str":
        return f"{name}({_jinja_string(arg)})"
    if kind == "field" and arg != ".":
        return f"{name}({arg[1:]})"
    return None


def _go_error(body: str) -> TemplateError:
    suggestion = _suggest(body)
    hint = f"in Jinja: {suggestion}" if suggestion else _GENERIC_HINT
    return TemplateError(
        f"`{{{{ {body} }}}}` is Go template syntax, which gxo does not run (templates are "
        'Jinja2; only {{ .a.b }}, {{ secret "NAME" }} and {{ env "NAME" }} are accepted '
        "in Go form)",
        hint=hint,
    )


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
    return f"{name}({', '.join(args)})"
