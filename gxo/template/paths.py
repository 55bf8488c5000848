"""The bare ``{{ a.b.c }}`` template, compiled and rendered without Jinja2.

Why a module of its own: most templates of a playbook are one variable path (a chain passes
``{{ r41 }}`` from task to task), and such a template needs no parser: a regular expression
compiles it and a dict walk renders it. Keeping it, the base class every compiled template
shares and the process-wide cache of compiled templates out of :mod:`.templates` (which
imports Jinja2) means that a playbook whose templates are all bare paths is loaded, and its
values rendered, without importing Jinja2 (30-50 ms of CPU in the parent before a run).
Jinja2's lookup rules are still the ones used: an attribute is read through the Jinja
environment's ``getattr`` (imported then), and a missing name fails as a Jinja template would.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, ClassVar, cast

from gxo.errors import TemplateError
from gxo.template.names import GLOBAL_NAMES, JINJA_RESERVED

if TYPE_CHECKING:
    from collections.abc import Mapping

    from gxo.template.environment import GxoUndefined, Scope
    from gxo.template.references import Reference

__all__ = ["CACHE", "PathTemplate", "Template", "bare_path", "compile_path", "read_path"]

_EMPTY: frozenset[Any] = frozenset()
_RESERVED_HEADS = GLOBAL_NAMES | JINJA_RESERVED
_PATH = r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*"
_WHOLE_PATH = re.compile(rf"\s*\{{\{{\s*({_PATH})\s*\}}\}}\s*")
#: Bare words that are Go actions (``{{ end }}``): translation reports them.
_GO_WORDS = frozenset({"end", "else", "break", "continue"})

#: Every template compiled in this process, by source (a failure is kept as its error), so
#: a playbook that repeats a template compiles it once. :mod:`.templates` fills it too.
CACHE: dict[str, Template | TemplateError] = {}


class Template:
    """A compiled template string (shared: one per distinct source, per process)."""

    __slots__ = ("native", "references", "source", "top_level_names", "uses_secret")

    #: Whether rendering runs generated code that may loop (only a Jinja template's does:
    #: the scheduler bounds those, see :mod:`gxo.template.budget`).
    runs_code: ClassVar[bool] = False
    #: Names read only where an undefined value is handled (``x | default(1)``,
    #: ``x is defined``): only a Jinja template has any.
    guarded: frozenset[str] = _EMPTY

    def __init__(
        self, source: str, references: frozenset[Reference], uses_secret: bool, native: bool
    ) -> None:
        self.source = source
        self.references = references
        self.top_level_names = frozenset(ref[0] for ref in references) if references else _EMPTY
        self.uses_secret = uses_secret
        self.native = native

    def render(self, scope: Scope) -> Any:
        """The rendered value: native when ``native``, else a string."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.source!r})"


class PathTemplate(Template):
    """``{{ a.b.c }}`` alone: a walk through the namespace, returning the value itself."""

    __slots__ = ("attributes", "head")

    def __init__(self, source: str, path: str) -> None:
        # What Template.__init__ sets, without its generator: a chain compiles one of these
        # per link in the worker (each link's params name the previous register).
        parts = tuple(path.split("."))
        self.source = source
        self.references = frozenset((parts,))
        self.top_level_names = frozenset(parts[:1])
        self.uses_secret = False
        self.native = True
        self.head = parts[0]
        self.attributes = parts[1:]

    def render(self, scope: Scope) -> Any:
        return read_path(scope.namespace, self.head, self.attributes)


def read_path(namespace: Mapping[str, Any], head: str, attributes: tuple[str, ...]) -> Any:
    """What ``{{ head.attr1.attr2 }}`` renders to (a :class:`PathTemplate`'s render)."""
    if head not in namespace:
        from gxo.template.environment import GxoUndefined, UndefinedAccess

        raise UndefinedAccess(GxoUndefined(name=head))
    value = namespace[head]
    if attributes:
        undefined, environment = _jinja()
        getattr_ = environment().getattr
        for attribute in attributes:
            value = getattr_(value, attribute)
        if isinstance(value, undefined):
            cast("GxoUndefined", value).fail()
    return value


def bare_path(source: str) -> tuple[str, tuple[str, ...]] | None:
    """``(head, attributes)`` of ``source`` when :func:`compile_path` compiles it (one bare
    ``{{ a.b.c }}``), without compiling or keeping anything; None otherwise. For a template
    rendered once (each link of a chain names the previous register)."""
    cached = CACHE.get(source)
    if cached is not None:
        return (cached.head, cached.attributes) if type(cached) is PathTemplate else None
    path = _whole_path(source)
    if path is None:
        return None
    head, *attributes = path.split(".")
    return head, tuple(attributes)


def _whole_path(source: str) -> str | None:
    """The ``a.b.c`` of a ``source`` that is one bare ``{{ a.b.c }}`` reading a variable (no
    function, Jinja or Go word); None otherwise."""
    whole = _WHOLE_PATH.fullmatch(source)
    if whole is None:
        return None
    path: str = whole.group(1)
    if not simple(path) or path in _GO_WORDS:
        return None
    return path


_JINJA: dict[str, tuple[Any, Any]] = {}


def _jinja() -> tuple[Any, Any]:
    """Jinja2's ``Undefined`` and gxo's environment, imported by the first attribute read."""
    found = _JINJA.get("jinja")
    if found is None:
        from jinja2 import Undefined

        from gxo.template.environment import environment

        found = _JINJA["jinja"] = (Undefined, environment)
    return found


def simple(path: str) -> bool:
    """Whether ``path`` (``a.b``) reads a variable: its head is no function nor Jinja word."""
    return path.split(".", 1)[0] not in _RESERVED_HEADS


def compile_path(source: str) -> Template | None:
    """``source`` compiled when it is one bare ``{{ a.b.c }}`` (or was compiled before, in
    this process); None when it needs :func:`gxo.template.templates.compile_template`."""
    cached = CACHE.get(source)
    if cached is not None:
        return cached if isinstance(cached, Template) else None
    path = _whole_path(source)
    if path is None:
        return None
    template = CACHE[source] = PathTemplate(source, path)
    return template
