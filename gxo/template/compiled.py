"""A parameter value with its templates compiled: what the rest of gxo holds and renders.

Why a module of its own: this is the package's contract (``compile_value``,
:class:`CompiledValue`, ``truthy``). It walks any nesting of dicts, lists and tuples, compiles
each template string once (through the process-wide cache in :mod:`.templates`), remembers
each one's JSON path for error messages, and renders the whole value in one call. A value
without templates costs one walk and renders to itself.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, cast

from gxo.errors import TemplateError
from gxo.template.budget import BudgetExceeded, RenderInterrupted, render_budget, run_bounded
from gxo.template.names import GLOBAL_NAMES, TemplateFunctions
from gxo.template.paths import PathTemplate, bare_path, compile_path, read_path

if TYPE_CHECKING:
    from gxo.template.environment import Scope
    from gxo.template.paths import Template
    from gxo.template.templates import JinjaTemplate

# Jinja2 (with gxo.template.environment, .templates and .gocompat) is imported by the first
# template compiled that is not a bare ``{{ a.b }}`` (:mod:`.paths` compiles those), never
# before: a value without templates compiles, renders and pickles without it, so a
# template-free playbook never imports Jinja2 (parent or workers), and the parent of one
# whose templates are all bare paths in params (rendered in the workers) does not either.

__all__ = [
    "GLOBAL_NAMES",
    "CompiledValue",
    "RenderStopped",
    "TemplateFunctions",
    "NOT_PATHS",
    "compile_value",
    "render_paths",
    "secret_names",
    "truthy",
]

_EMPTY: frozenset[Any] = frozenset()
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SECRET_MESSAGE = (
    "secret() cannot be used here: `when`, `loop` and `name` are evaluated by the scheduler, "
    "which never sees secret values"
)
_SECRET_HINT = (
    "move the secret into the task's params (rendered in the worker), for example as an "
    "environment variable of the command"
)


class RenderStopped(TemplateError):
    """A parent-side render was stopped because the run is being interrupted: the task is
    cancelled, not failed."""


class _Node:
    __slots__ = ()

    def render(self, scope: Scope) -> Any:
        raise NotImplementedError


class _Constant(_Node):
    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def render(self, scope: Scope) -> Any:
        return self.value


class _Leaf(_Node):
    """One template string, at one place in the value."""

    __slots__ = ("bounded", "template", "where")

    def __init__(self, template: Template, where: str, bounded: bool) -> None:
        self.template = template
        self.where = where
        # Only full Jinja templates can run long or build large values: a path or a text
        # with paths is a dict walk.
        self.bounded = bounded and template.runs_code

    def render(self, scope: Scope) -> Any:
        try:
            if self.bounded:
                template = self.template
                trace = cast("JinjaTemplate", template).loops
                return run_bounded(lambda: template.render(scope), trace=trace)
            return self.template.render(scope)
        except RenderInterrupted as exc:
            raise RenderStopped(exc.message, self.where) from None
        except BudgetExceeded as exc:
            budget = render_budget()
            raise TemplateError(
                exc.message,
                self.where,
                "`when` and `loop` are rendered by the scheduler, which bounds them: simplify "
                "the template, or compute the value in a task and register it; to raise the "
                f"bounds use --render-timeout (now {budget.seconds:g}s) or --render-max-size "
                f"(now {budget.max_size:,})",
            ) from None
        except TemplateError as exc:
            # Raised by secret()/env() or the functions behind them (SecretMissing...):
            # passed on as it is, told where it happened.
            if not exc.where:
                exc.where = self.where
                exc.args = (exc.args[0], self.where, *exc.args[2:])
            raise
        except Exception as exc:
            from gxo.template.templates import describe_failure

            message, hint = describe_failure(exc, self.template, scope)
            raise TemplateError(message, self.where, hint) from exc


class _Dict(_Node):
    __slots__ = ("items",)

    def __init__(self, items: list[tuple[Any, _Node]]) -> None:
        self.items = items

    def render(self, scope: Scope) -> dict[Any, Any]:
        return {key: node.render(scope) for key, node in self.items}


class _Sequence(_Node):
    __slots__ = ("items", "tuple")

    def __init__(self, items: list[_Node], as_tuple: bool) -> None:
        self.items = items
        self.tuple = as_tuple

    def render(self, scope: Scope) -> list[Any] | tuple[Any, ...]:
        rendered = [node.render(scope) for node in self.items]
        return tuple(rendered) if self.tuple else rendered


class _NamespaceOnly:
    """What a :class:`~gxo.template.paths.PathTemplate` reads of a scope: the namespace."""

    __slots__ = ("namespace",)

    def __init__(self, namespace: Mapping[str, Any]) -> None:
        self.namespace = namespace


class CompiledValue:
    """A parameter value (any nesting of dict/list/scalars) with its templates compiled."""

    #: Every variable path referenced, as far as it is static: ``{{ reg.stdout }}`` gives
    #: ``("reg", "stdout")``, ``{{ _gxo.tasks['a-b'].status }}`` gives
    #: ``("_gxo", "tasks", "a-b", "status")``, ``{{ x[i] }}`` gives ``("x",)`` and ``("i",)``.
    references: frozenset[tuple[str, ...]]
    #: The first element of every reference, minus GLOBAL_NAMES and template-local names
    #: (``{% for %}`` targets, ``{% set %}`` names).
    top_level_names: frozenset[str]
    #: Whether any template in the value calls ``secret``.
    uses_secret: bool
    #: True when the value holds no template at all (render returns it unchanged).
    is_constant: bool
    #: Top-level names read only where an undefined value is handled (``x | default(1)``,
    #: ``x is defined``): the load does not call them undefined variables.
    guarded_names: frozenset[str]

    __slots__ = (
        "_allow_secret",
        "_paths_only",
        "_root",
        "_value",
        "_where",
        "guarded_names",
        "is_constant",
        "references",
        "top_level_names",
        "uses_secret",
    )

    def __init__(
        self, value: Any, where: str, allow_secret: bool, root: _Node | None, leaves: list[Template]
    ) -> None:
        self._value = value
        self._where = where
        self._allow_secret = allow_secret
        self._root = root
        self.is_constant = root is None
        # Bare ``{{ a.b }}`` leaves read only the namespace: rendering them needs neither the
        # function layer nor Jinja2 (the parent renders params for the journal's
        # fingerprints, and must not import Jinja2 for a playbook of bare paths).
        self._paths_only = bool(leaves) and all(type(leaf) is PathTemplate for leaf in leaves)
        guarded = [leaf.guarded for leaf in leaves if leaf.guarded]
        self.guarded_names = (
            frozenset()
            .union(*guarded)
            .difference(*(leaf.top_level_names - leaf.guarded for leaf in leaves))
            if guarded
            else _EMPTY
        )
        if not leaves:
            self.references = self.top_level_names = _EMPTY
            self.uses_secret = False
        elif len(leaves) == 1:
            self.references = leaves[0].references
            self.top_level_names = leaves[0].top_level_names
            self.uses_secret = leaves[0].uses_secret
        else:
            self.references = frozenset().union(*(leaf.references for leaf in leaves))
            self.top_level_names = frozenset(ref[0] for ref in self.references)
            self.uses_secret = any(leaf.uses_secret for leaf in leaves)

    def render(
        self, namespace: Mapping[str, Any], functions: TemplateFunctions | None = None
    ) -> Any:
        """Render every template in the value against ``namespace``.

        ``namespace`` maps top-level names (vars, registered results, ``_gxo``, the loop
        variable) to values; it is read, never copied. A string that is one whole
        ``{{ expression }}`` renders to the expression's native value, any other template
        to a string; containers are rebuilt around the rendered values. Values from the
        namespace are data: they are never rendered again.

        ``functions`` supplies ``secret()`` and ``env()``. Without it, ``env()`` reads
        ``os.environ`` and ``secret()`` raises :class:`TemplateError`.

        Raises :class:`TemplateError` naming the field (``where``) that failed; errors
        raised by ``functions`` that are ``TemplateError``\\ s (``SecretMissing``) come out
        as themselves, with ``where`` filled in.
        """
        root = self._root
        if root is None:
            return self._value
        if self._paths_only:
            return root.render(cast("Scope", _NamespaceOnly(namespace)))
        from gxo.template.environment import Scope, function_layer  # loaded by the compile

        return root.render(Scope(function_layer(functions), namespace))

    def __reduce__(self) -> tuple[Any, ...]:
        # Compiled Jinja code cannot be pickled; the receiving process compiles again
        # (through its own cache).
        return (_recompile, (self._value, self._where, self._allow_secret))

    def __repr__(self) -> str:
        kind = "constant" if self.is_constant else "template"
        return f"<CompiledValue {kind} at {self._where}>"


def secret_names(value: CompiledValue) -> frozenset[str]:
    """The literal names ``value``'s templates pass to ``secret()`` (``secret('DB')``,
    ``{{ secret "DB" }}``); a name computed at render time (``secret(name)``) is not known.

    Computed on demand (parsing again each template that calls ``secret``), so it costs
    nothing to playbooks without secrets.
    """
    names: set[str] = set()
    stack: list[_Node | None] = [value._root]
    while stack:
        node = stack.pop()
        if isinstance(node, _Leaf):
            if node.template.uses_secret:
                names.update(_literal_secret_names(node.template.source))
        elif isinstance(node, _Dict):
            stack.extend(child for _, child in node.items)
        elif isinstance(node, _Sequence):
            stack.extend(node.items)
    return frozenset(names)


def _literal_secret_names(source: str) -> set[str]:
    from jinja2 import nodes

    from gxo.template.environment import environment
    from gxo.template.gocompat import translate

    tree = environment().parse(translate(source))
    return {
        call.args[0].value
        for call in tree.find_all(nodes.Call)
        if isinstance(call.node, nodes.Name)
        and call.node.name == "secret"
        and call.args
        and isinstance(call.args[0], nodes.Const)
        and isinstance(call.args[0].value, str)
    }


def _recompile(value: Any, where: str, allow_secret: bool) -> CompiledValue:
    return compile_value(value, where=where, allow_secret=allow_secret)


def compile_value(value: Any, *, where: str, allow_secret: bool = True) -> CompiledValue:
    """Compile every template string inside ``value``.

    A string is a template when it contains ``{{``, ``{%`` or ``{#``; other strings, dict
    keys and non-string scalars are constants. ``where`` is the JSON path of ``value``
    (``$.tasks[2].params``); an error names the exact nested path
    (``$.tasks[2].params.args[0]``). With ``allow_secret=False`` a template that calls
    ``secret`` is an error (``when``, ``loop`` and ``name`` are rendered by the scheduler,
    which never sees secrets), and the value renders under the render budget
    (:mod:`gxo.template.budget`): a template that runs too long or builds too large a value
    fails with a :class:`TemplateError` instead of freezing the scheduler.

    Raises :class:`TemplateError` for a syntax error, a Go-template form gxo does not
    accept, an unknown filter or test, or a forbidden ``secret()``.
    """
    leaves: list[Template] = []
    root = _compile(value, where, allow_secret, leaves)
    return CompiledValue(value, where, allow_secret, root, leaves)


_CONTAINERS = (dict, list, tuple)


#: What :func:`render_paths` returns for a value it does not render (compile it instead).
NOT_PATHS: Any = object()


class _Unusable(Exception):
    """A template that is not a bare path (inside :func:`render_paths` only)."""


def render_paths(value: Any, namespace: Mapping[str, Any]) -> Any:
    """``value`` rendered in one walk, without compiling it, when every template in it is a
    bare ``{{ a.b }}`` that renders; :data:`NOT_PATHS` otherwise.

    For a value rendered once (a worker's first instance of a task: each link of a chain is
    a new task), compiling it into nodes and then rendering them costs about twice this
    walk, and nothing is kept (not even in the process-wide cache of compiled templates,
    which would otherwise grow by one template per link). The result is the one
    :meth:`CompiledValue.render` gives (the same templates, rendered the same way;
    containers rebuilt only around templates, the rest returned as they are). On
    :data:`NOT_PATHS` (another kind of template, or one that fails: a name that is not
    defined, say) the caller compiles and renders the value as usual, which gives the same
    result or the same error, at the same ``where``; rendering a bare path only reads the
    namespace, so doing it twice changes nothing.
    """
    try:
        rendered = _render_paths(value, namespace)
    except Exception:  # noqa: BLE001 - any failure: the usual path reports it exactly
        return NOT_PATHS
    return value if rendered is _NO_TEMPLATE else rendered


#: What :func:`_render_paths` returns for a value that holds no template (kept as it is).
_NO_TEMPLATE: Any = object()


# _render_paths and _compile walk a value the same way, and are kept apart on purpose: a
# worker renders every chain link's params once through the first, and one walker for both
# (a mode flag choosing what a template becomes, and the containers around it) measured
# 1-2 % slower on each (min of 30 interleaved rounds, s6-tidy: a chain link's params
# rendered 1.81 -> 1.84 us, compiled 3.37 -> 3.40 us); with a callback per template, 5-9 %.
def _render_paths(value: Any, namespace: Mapping[str, Any]) -> Any:
    if isinstance(value, str):
        if not _is_template(value):
            return _NO_TEMPLATE
        path = bare_path(value)  # nothing compiled or kept: this value is rendered once
        if path is None:
            raise _Unusable
        return read_path(namespace, *path)
    if isinstance(value, dict):
        rendered: dict[Any, Any] | None = None
        for key, item in value.items():
            if isinstance(item, str):
                if not _is_template(item):
                    continue
            elif not isinstance(item, _CONTAINERS):
                continue
            new = _render_paths(item, namespace)
            if new is not _NO_TEMPLATE:
                if rendered is None:
                    rendered = {}
                rendered[key] = new
        if rendered is None:
            return _NO_TEMPLATE
        return {key: rendered.get(key, item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        items: list[Any] | None = None
        for index, item in enumerate(value):
            if isinstance(item, str):
                if not _is_template(item):
                    continue
            elif not isinstance(item, _CONTAINERS):
                continue
            new = _render_paths(item, namespace)
            if new is not _NO_TEMPLATE:
                if items is None:
                    items = list(value)
                items[index] = new
        if items is None:
            return _NO_TEMPLATE
        return tuple(items) if isinstance(value, tuple) else items
    return _NO_TEMPLATE


def _is_template(text: str) -> bool:
    return "{" in text and ("{{" in text or "{%" in text or "{#" in text)


def _compile(value: Any, where: str, allow_secret: bool, leaves: list[Template]) -> _Node | None:
    """The node that renders ``value``, or None when ``value`` holds no template."""
    if isinstance(value, str):
        if not _is_template(value):
            return None
        try:
            template = _compile_template(value)
        except TemplateError as exc:
            raise TemplateError(exc.message, where, exc.hint) from None
        if template.uses_secret and not allow_secret:
            raise TemplateError(_SECRET_MESSAGE, where, _SECRET_HINT)
        leaves.append(template)
        return _Leaf(template, where, bounded=not allow_secret)
    if isinstance(value, dict):
        # A child's path is spelt only for a child that may hold a template; the nodes are
        # built only when one does (most params hold none).
        found: dict[Any, _Node] | None = None
        for key, item in value.items():
            if isinstance(item, str):
                if not _is_template(item):
                    continue
            elif not isinstance(item, _CONTAINERS):
                continue
            node = _compile(item, _child_path(where, key), allow_secret, leaves)
            if node is not None:
                if found is None:
                    found = {}
                found[key] = node
        if found is None:
            return None
        return _Dict(
            [(key, found[key] if key in found else _Constant(item)) for key, item in value.items()]
        )
    if isinstance(value, list | tuple):
        nodes: list[_Node | None] | None = None
        for index, item in enumerate(value):
            if isinstance(item, str):
                if not _is_template(item):
                    continue
            elif not isinstance(item, _CONTAINERS):
                continue
            node = _compile(item, f"{where}[{index}]", allow_secret, leaves)
            if node is not None:
                if nodes is None:
                    nodes = [None] * len(value)
                nodes[index] = node
        if nodes is None:
            return None
        return _Sequence(
            [
                node if node is not None else _Constant(item)
                for node, item in zip(nodes, value, strict=True)
            ],
            isinstance(value, tuple),
        )
    return None


def _compile_template(source: str) -> Template:
    """:func:`gxo.template.templates.compile_template` (Jinja2 comes with the module, so it
    is imported by the first template compiled, then kept)."""
    template = compile_path(source)  # a bare {{ a.b }}: no Jinja2
    if template is not None:
        return template
    compile_template = _TEMPLATES.get("compile")
    if compile_template is None:
        from gxo.template import templates

        compile_template = _TEMPLATES["compile"] = templates.compile_template
    return compile_template(source)


_TEMPLATES: dict[str, Callable[[str], Template]] = {}


def _child_path(where: str, key: Any) -> str:
    if isinstance(key, str) and _IDENTIFIER.fullmatch(key):
        return f"{where}.{key}"
    import json  # only for a key that is not an identifier (the parent of a plain run has none)

    if isinstance(key, str):
        return f"{where}[{json.dumps(key, ensure_ascii=False)}]"
    if isinstance(key, bool) or key is None or isinstance(key, int | float):
        return f"{where}[{json.dumps(key)}]"
    return f"{where}[{json.dumps(str(key), ensure_ascii=False)}]"


_FALSE_WORDS = frozenset({"", "false", "no", "off", "0", "0.0", "none", "null"})
# A decimal number as Go's strconv.ParseFloat reads it (``0.00``, ``-0``, ``0e0``, ``.0``).
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def truthy(value: Any) -> bool:
    """How a rendered ``when`` decides.

    - ``bool``: itself; ``None``: false.
    - numbers: false when equal to zero (Python's ``bool()``).
    - strings: false when, trimmed and lower-cased, they are one of ``""``, ``false``,
      ``no``, ``off``, ``none``, ``null``, or a decimal number equal to zero (``0``,
      ``0.00``, ``-0``, ``0e3``: GXO parses the text as a float); every other string is true
      (``" False "`` is false; ``"x"``, ``"0.01"`` and ``"<no value>"`` are true).
    - containers (dicts, lists, ...): true when not empty.
    - anything else: Python's ``bool()`` as well.
    """
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _FALSE_WORDS:
            return False
        return not (_DECIMAL.fullmatch(text) and float(text) == 0)
    return bool(value)
