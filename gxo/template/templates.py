"""One template string, compiled once per process, and how its render errors read.

Why a module of its own: this is the cost centre. A 10,000-task playbook repeats templates,
so compilation is cached by source text; and most templates are a bare variable path
(``{{ reg.stdout }}``, or ``"x {{ a.b }} y"``), which is resolved here without Jinja at all —
a regular expression to compile, a dict walk to render — through the same lookup rules the
Jinja environment uses (:meth:`_Environment.getattr`). Everything else is parsed by Jinja at
compile time (syntax errors and references are needed at load) and turned into Python code
on its first render, so loading a playbook does not pay for code generation.

Three kinds, one interface (``render(scope)``, ``references``, ``uses_secret``, ``native``):

- :class:`PathTemplate`: ``{{ a.b.c }}`` and nothing else; renders to the native value.
- :class:`TextTemplate`: text with ``{{ a.b }}`` paths in it; renders to a string.
- :class:`JinjaTemplate`: anything else; native when it is one ``{{ expression }}``.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar, cast

from jinja2 import Undefined, nodes
from jinja2.environment import Template as _JinjaCode
from jinja2.exceptions import SecurityError, TemplateSyntaxError
from jinja2.utils import missing

from gxo.errors import TemplateError
from gxo.template.budget import active, check_size
from gxo.template.environment import (
    GxoUndefined,
    Scope,
    UndefinedAccess,
    environment,
)
from gxo.template.gocompat import translate
from gxo.template.gofuncs import go_text
from gxo.template.paths import (
    _GO_WORDS,
    _PATH,
    _WHOLE_PATH,
    CACHE,
    PathTemplate,
    Template,
    simple,
)
from gxo.template.references import Reference, analyse, format_path

__all__ = [
    "JinjaTemplate",
    "PathTemplate",
    "Template",
    "TextTemplate",
    "compile_template",
    "describe_failure",
]

_EMPTY: frozenset[Any] = frozenset()
_TEXT_PATH = re.compile(rf"\{{\{{\s*({_PATH})\s*\}}\}}")
# A Go field printed inside text (gocompat writes ``{{ a.b | go_str }}``): the same fast path,
# printed as Go prints it.
_GO_TEXT_PATH = re.compile(rf"\{{\{{ ({_PATH}) \| go_str \}}\}}")
_RESULT = "gxo_native_result_"
#: Filters that run Python code per item or per word: a template using one is traced.
_ITERATING_FILTERS = frozenset(
    {
        "map",
        "select",
        "reject",
        "selectattr",
        "rejectattr",
        "sort",
        "groupby",
        "unique",
        "dictsort",
        "wordwrap",
        "urlize",
        "batch",
        "slice",
    }
)
_MAX_LISTED_KEYS = 12


class TextTemplate(Template):
    """Text with ``{{ a.b }}`` paths in it: each path's value, as ``str()``, in the text
    (as Go prints it, when the template was Go)."""

    __slots__ = ("parts", "text")

    def __init__(
        self, source: str, parts: tuple[str | PathTemplate, ...], go: bool = False
    ) -> None:
        references = frozenset(
            ref for part in parts if isinstance(part, PathTemplate) for ref in part.references
        )
        super().__init__(source, references, False, False)
        self.parts = parts
        self.text = go_text if go else str

    def render(self, scope: Scope) -> str:
        text = self.text
        return "".join(
            part if type(part) is str else text(cast(PathTemplate, part).render(scope))
            for part in self.parts
        )


class JinjaTemplate(Template):
    """Any other template: parsed now, turned into code on its first render."""

    __slots__ = ("_code", "_scan", "_tree", "guarded", "loops")

    runs_code: ClassVar[bool] = True

    def __init__(self, source: str, tree: nodes.Template) -> None:
        references, uses_secret, guarded = analyse(tree)
        expression = _single_expression(tree)
        super().__init__(source, references, uses_secret, expression is not None)
        self.guarded = guarded
        #: Whether it has a loop or a macro: only such a template can run long (the render
        #: budget traces it; see gxo.template.budget).
        self.loops = next(
            tree.find_all((nodes.For, nodes.Macro, nodes.CallBlock)), None
        ) is not None or any(
            node.name in _ITERATING_FILTERS for node in tree.find_all(nodes.Filter)
        )
        if expression is not None:
            assign = nodes.Assign(nodes.Name(_RESULT, "store"), expression, lineno=1)
            tree = nodes.Template([assign], lineno=1)
            tree.set_environment(environment())
        self._tree: nodes.Template | None = tree
        self._code: _JinjaCode | None = None
        # A bare path yields data from the namespace, which never holds Undefined; anything
        # computed (a filter, a literal, a call) is checked, and iterators become lists.
        self._scan = not _is_path(expression)

    def _compiled(self) -> _JinjaCode:
        code = self._code
        if code is None:
            assert self._tree is not None
            code = self._code = environment().from_string(self._tree)
            self._tree = None
        return code

    def render(self, scope: Scope) -> Any:
        code = self._compiled()
        context = code.new_context(cast(dict[str, Any], scope), shared=True)
        if not self.native:
            if active() is None:
                return "".join(code.root_render_func(context))
            return _counted(code.root_render_func(context))
        for _ in code.root_render_func(context):
            pass
        value = context.vars[_RESULT]
        if isinstance(value, Undefined):
            cast(GxoUndefined, value).fail()
        return _checked(value) if self._scan else value


def _counted(chunks: Iterator[str]) -> str:
    """The chunks joined, checked against the render budget as they come."""
    out: list[str] = []
    size = 0
    for chunk in chunks:
        size += len(chunk)
        check_size(size, "the template's output")
        out.append(chunk)
    return "".join(out)


def _single_expression(tree: nodes.Template) -> nodes.Expr | None:
    """The expression when the template is one ``{{ }}`` with only whitespace around it."""
    if len(tree.body) != 1 or not isinstance(tree.body[0], nodes.Output):
        return None
    found: list[nodes.Expr] = [
        node
        for node in tree.body[0].nodes
        if not (isinstance(node, nodes.TemplateData) and (not node.data or node.data.isspace()))
    ]
    if len(found) == 1 and not isinstance(found[0], nodes.TemplateData):
        return found[0]
    return None


def _is_path(node: nodes.Node | None) -> bool:
    while isinstance(node, nodes.Getattr | nodes.Getitem):
        if isinstance(node, nodes.Getitem) and not isinstance(node.arg, nodes.Const):
            return False
        node = node.node
    return isinstance(node, nodes.Name)


def _checked(value: Any) -> Any:
    """A computed native value as plain data: iterators become lists, ``Markup`` (from
    ``tojson``, ``escape``) a plain ``str``; raises on any Undefined inside."""
    if isinstance(value, Undefined):
        cast(GxoUndefined, value).fail()
    if isinstance(value, str):
        return value if type(value) is str else str(value)
    if isinstance(value, dict):
        return {key: _checked(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        items = [_checked(item) for item in value]
        return tuple(items) if isinstance(value, tuple) else items
    if isinstance(value, Iterator | range) or type(value) in _DICT_VIEWS:
        return [_checked(item) for item in value]
    return value


_DICT_VIEWS: tuple[type[Any], ...] = (type({}.keys()), type({}.values()), type({}.items()))

_CACHE = CACHE  # shared with gxo.template.paths, which compiles bare paths without Jinja2


def compile_template(source: str) -> Template:
    """The compiled form of ``source``, from the process-wide cache.

    Raises :class:`TemplateError` without ``where`` (failures are cached too, so a playbook
    that repeats a broken template a thousand times parses it once).
    """
    cached = _CACHE.get(source)
    if cached is None:
        try:
            cached = _compile(source)
        except TemplateError as exc:
            cached = exc
        _CACHE[source] = cached
    if isinstance(cached, TemplateError):
        raise TemplateError(cached.message, "", cached.hint)
    return cached


def _compile(source: str) -> Template:
    # ``{{ a.b }}`` alone is Jinja and Go alike (translation would return it unchanged, but
    # costs more than the rest of this compile): each task of a chain passing the previous
    # one's result has a template of its own, compiled in the worker that runs it.
    whole = _WHOLE_PATH.fullmatch(source)
    if whole is not None and _simple(whole.group(1)) and whole.group(1) not in _GO_WORDS:
        return PathTemplate(source, whole.group(1))
    text = translate(source)
    whole = _WHOLE_PATH.fullmatch(text)
    if whole is not None and _simple(whole.group(1)):
        return PathTemplate(source, whole.group(1))
    parts = _text_parts(text)
    if parts is not None:
        return TextTemplate(source, parts)
    if text is not source and "| go_str }}" in text:
        go_parts = _text_parts(_GO_TEXT_PATH.sub(r"{{ \1 }}", text))
        if go_parts is not None and "| go_str" not in _GO_TEXT_PATH.sub("", text):
            return TextTemplate(source, go_parts, go=True)
    env = environment()
    try:
        tree = env.parse(text)
    except TemplateSyntaxError as exc:
        raise _syntax_error(exc, source, text) from None
    return JinjaTemplate(source, tree)


_simple = simple


def _text_parts(text: str) -> tuple[str | PathTemplate, ...] | None:
    """``text`` split into literal text and paths, or None when it needs Jinja proper."""
    pieces = _TEXT_PATH.split(text)
    literals = pieces[0::2]
    if len(pieces) == 1 or "\r" in text:
        return None
    for index, literal in enumerate(literals):
        if "{{" in literal or "{%" in literal or "{#" in literal:
            return None
        if literal.endswith("{") and index < len(literals) - 1:
            return None
    parts: list[str | PathTemplate] = []
    for index, piece in enumerate(pieces):
        if index % 2 == 0:
            if piece:
                parts.append(piece)
        elif _simple(piece):
            parts.append(PathTemplate("{{ " + piece + " }}", piece))
        else:
            return None
    return tuple(parts)


def _syntax_error(exc: TemplateSyntaxError, source: str, text: str) -> TemplateError:
    unclosed = _unclosed_action(source)
    if unclosed is not None:
        # Go says "unclosed action"; Jinja's complaint is about what follows the '{{'.
        line = source.count("\n", 0, unclosed) + 1
        column = unclosed - (source.rfind("\n", 0, unclosed) + 1) + 1
        where = f"line {line}, column {column}" if "\n" in source else f"column {column}"
        return TemplateError(
            f"template syntax error: unclosed action: the '{{{{' at {where} has no '}}}}'",
            hint="end the expression with '}}', as in {{ .x }} (Go) or {{ x }} (Jinja)",
        )
    message = f"template syntax error: {exc.message}"
    lines = (source if source.count("\n") == text.count("\n") else text).splitlines()
    if len(lines) > 1 and exc.lineno and exc.lineno <= len(lines):
        message += f" (line {exc.lineno}: {lines[exc.lineno - 1].strip()})"
    if re.search(r"(?:^|[\s(,])\.[A-Za-z_]", text):
        hint = "Jinja names have no leading dot: write {% if x.y %}, not {% if .x.y %}"
    else:
        hint = "gxo templates are Jinja2: {{ expression }}, {% statement %}, {# comment #}"
    return TemplateError(message, hint=hint)


def _unclosed_action(source: str) -> int | None:
    """The offset of the first ``{{`` that no ``}}`` closes before the next ``{{``; None
    also when a ``{% raw %}`` block may hold a lone ``{{`` as text."""
    if "raw" in source:
        return None
    start = source.find("{{")
    while start >= 0:
        end = source.find("}}", start + 2)
        following = source.find("{{", start + 2)
        if end < 0 or 0 <= following < end:
            return start
        start = source.find("{{", end + 2)
    return None


# --- render errors ---------------------------------------------------------------------------


def describe_failure(exc: Exception, template: Template, scope: Scope) -> tuple[str, str]:
    """The message and hint for an exception raised while rendering ``template``."""
    if isinstance(exc, UndefinedAccess):
        return _describe_undefined(exc.undefined, template.references, scope.namespace)
    if isinstance(exc, SecurityError):
        return (
            f"blocked by the template sandbox: {exc}",
            "templates may read data, not Python internals or methods that change it",
        )
    if isinstance(exc, TemplateSyntaxError):
        return f"template syntax error: {exc.message}", ""
    return f"{type(exc).__name__}: {exc}", ""


def _describe_undefined(
    undefined: GxoUndefined, references: frozenset[Reference], namespace: Mapping[str, Any]
) -> tuple[str, str]:
    owner = undefined._undefined_obj
    name = undefined._undefined_name
    if undefined._undefined_hint:
        return undefined._undefined_hint, ""
    if owner is missing:
        hint = ""
        if isinstance(name, str) and len(namespace) <= 10_000:
            close = difflib.get_close_matches(name, [str(key) for key in namespace], n=3)
            if close:
                hint = f"did you mean {', '.join(map(repr, close))}?"
        return f"undefined variable {name!r}", hint
    label = _label(owner, name, references, namespace)
    subject = repr(label) if label else f"the {type(owner).__name__}"
    if not isinstance(owner, dict):
        kind = type(owner).__name__
        subject += f" ({'an' if kind[0] in 'aeiou' else 'a'} {kind})" if label else ""
    what = f"attribute {name!r}" if isinstance(name, str) else f"element {name!r}"
    message = f"{subject} has no {what}"
    hint = ""
    if isinstance(owner, dict):
        keys = [key for key in owner if isinstance(key, str)]
        if not owner:
            message += " (it is empty)"
        elif len(keys) == len(owner) and len(keys) <= _MAX_LISTED_KEYS:
            message += f" (keys: {', '.join(map(repr, sorted(keys)))})"
        if isinstance(name, str):
            close = difflib.get_close_matches(name, keys, n=3)
            if close:
                hint = f"did you mean {', '.join(map(repr, close))}?"
    return message, hint


def _label(
    owner: Any, name: Any, references: frozenset[Reference], namespace: Mapping[str, Any]
) -> str:
    """The written path of ``owner`` in the template, found by walking ``references``."""
    getattr_ = environment().getattr
    fallback = ""
    for reference in sorted(references):
        if reference[0] not in namespace:
            continue
        value = namespace[reference[0]]
        for depth in range(1, len(reference) + 1):
            if value is owner:
                if depth < len(reference) and reference[depth] == name:
                    return format_path(reference[:depth])
                fallback = fallback or format_path(reference[:depth])
            if depth == len(reference):
                break
            value = getattr_(value, reference[depth])
            if isinstance(value, Undefined):
                break
    return fallback
