"""Which state a template reads: variable paths found in the Jinja AST.

Why a module of its own: gxo builds its DAG from these paths (a reference to a register name
is a dependency edge), so they must be exact through filters, tests, conditionals, loops,
macros and nested calls, and must leave out the names a template binds itself. Where Jinja's
scoping is subtle (a ``{% set %}`` inside one branch of an ``if``, a ``{% block %}``), the walk
errs towards reporting a reference: a needless edge is harmless, a missing one is a failure.

The same walk rejects what Jinja would only reject when generating code (an unknown filter or
test) and what has no meaning for a one-string template (``{% include %}`` and friends), so
such errors are reported when the playbook is loaded.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable

from jinja2 import nodes

from gxo.errors import TemplateError
from gxo.template.environment import GLOBAL_NAMES, environment
from gxo.template.names import STATE_LOOKUP

__all__ = ["Reference", "analyse", "format_path"]

Reference = tuple[str, ...]

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_MACRO_NAMES = frozenset({"varargs", "kwargs", "caller"})
_UNSUPPORTED = (nodes.Extends, nodes.Include, nodes.Import, nodes.FromImport)
_CALL_HINTS = {
    "secret": """secret('NAME'), or in a Go template {{ secret "NAME" }}""",
    "env": """env('NAME'), or in a Go template {{ env "NAME" }}""",
}


def format_path(path: Reference) -> str:
    """A reference as a template would spell it: ``_gxo.tasks['a-b'].status``."""
    return path[0] + "".join(
        f".{part}" if _IDENTIFIER.fullmatch(part) else f"[{part!r}]" for part in path[1:]
    )


def analyse(template: nodes.Template) -> tuple[frozenset[Reference], bool, frozenset[str]]:
    """The references of a parsed template, whether it calls (or names) ``secret``, and the
    names it reads only where their absence is handled (see :data:`_GUARDS`)."""
    walker = _Walker()
    walker.statements(template.body, frozenset())
    guarded = frozenset(walker.guarded - walker.unguarded)
    return frozenset(walker.references), walker.uses_secret, guarded


#: Filters and tests that handle an undefined operand: ``x | default(1)``, ``x is defined``.
#: A name read only as their bare operand may be left undefined (the load does not call it
#: an undefined variable); ``x.y | default(1)`` still reads ``x``.
_GUARDS = frozenset({"default", "d", "defined", "undefined"})


class _Walker:
    def __init__(self) -> None:
        self.references: set[Reference] = set()
        self.uses_secret = False
        #: Names read as the bare operand of a guard, or where a test has just found them
        #: defined (``x is defined and x``), and names read anywhere else.
        self.guarded: set[str] = set()
        self.unguarded: set[str] = set()
        #: Names the enclosing test found defined, where this part is evaluated.
        self.known: frozenset[str] = frozenset()
        env = environment()
        self.filters = env.filters
        self.tests = env.tests

    # -- statements: each returns the names bound after it ---------------------------------

    def statements(self, body: Iterable[nodes.Node], bound: frozenset[str]) -> frozenset[str]:
        for node in body:
            bound = self.statement(node, bound)
        return bound

    def statement(self, node: nodes.Node, bound: frozenset[str]) -> frozenset[str]:
        if isinstance(node, nodes.Expr):
            self.expression(node, bound)
        elif isinstance(node, nodes.Output):
            for output in node.nodes:
                _printed_function(output, bound)
                self.expression(output, bound)
        elif isinstance(node, nodes.Assign):
            self.expression(node.node, bound)
            return bound | self.targets(node.target, bound)
        elif isinstance(node, nodes.AssignBlock):
            if node.filter is not None:
                self.expression(node.filter, bound)
            self.statements(node.body, bound)
            return bound | self.targets(node.target, bound)
        elif isinstance(node, nodes.If):
            return self.branches(node, bound)
        elif isinstance(node, nodes.For):
            self.expression(node.iter, bound)
            inner = bound | self.targets(node.target, bound)
            if node.test is not None:
                self.expression(node.test, inner)
            self.statements(node.body, inner | {"loop"})
            self.statements(node.else_, bound)
        elif isinstance(node, nodes.With):
            for value in node.values:
                self.expression(value, bound)
            inner = bound
            for target in node.targets:
                inner |= self.targets(target, bound)
            self.statements(node.body, inner)
        elif isinstance(node, nodes.Macro):
            self.callable_body(node, bound | {node.name})
            return bound | {node.name}
        elif isinstance(node, nodes.CallBlock):
            self.expression(node.call, bound)
            self.callable_body(node, bound)
        elif isinstance(node, nodes.Block):
            # A block does not see the loop around it; start it with nothing bound.
            self.statements(node.body, frozenset())
        elif isinstance(node, _UNSUPPORTED):
            tag = type(node).__name__.lower().replace("fromimport", "from")
            raise TemplateError(
                f"{{% {tag} %}} is not supported: a gxo template is a single string, with no "
                "template files to load",
                hint="use a {% macro %} defined in the same string",
            )
        else:
            for child in node.iter_child_nodes():
                self.statement(child, bound)
        return bound

    def branches(self, node: nodes.If, bound: frozenset[str]) -> frozenset[str]:
        """Walk an if/elif/else; a name is bound after it only if every branch binds it.
        A branch sees as defined what its test found defined, or the tests before found not
        (``{% if x is defined %}{{ x }}{% endif %}``)."""
        outer = self.known
        self.expression(node.test, bound)
        self.known = outer | _defined_when(node.test, True)
        after = [self.statements(node.body, bound)]
        passed = outer | _defined_when(node.test, False)
        for branch in node.elif_:
            self.known = passed
            self.expression(branch.test, bound)
            self.known = passed | _defined_when(branch.test, True)
            after.append(self.statements(branch.body, bound))
            passed |= _defined_when(branch.test, False)
        self.known = passed
        after.append(self.statements(node.else_, bound))
        self.known = outer
        return frozenset.intersection(*after)

    def callable_body(self, node: nodes.Macro | nodes.CallBlock, bound: frozenset[str]) -> None:
        for default in node.defaults:
            self.expression(default, bound)
        inner = bound | _MACRO_NAMES | {arg.name for arg in node.args}
        self.statements(node.body, inner)

    def targets(self, node: nodes.Node, bound: frozenset[str]) -> frozenset[str]:
        """Names an assignment target binds; ``ns.attr`` targets read ``ns``."""
        if isinstance(node, nodes.Name):
            return frozenset({node.name})
        if isinstance(node, nodes.NSRef):
            if node.name not in bound:
                self.name(node.name, (), bound)
            return frozenset()
        names: frozenset[str] = frozenset()
        for child in node.iter_child_nodes():
            names |= self.targets(child, bound)
        return names

    # -- expressions -------------------------------------------------------------------------

    def expression(self, node: nodes.Node, bound: frozenset[str]) -> None:
        if isinstance(node, nodes.Name | nodes.Getattr | nodes.Getitem):
            self.chain(node, bound)
            return
        if isinstance(node, nodes.And | nodes.Or | nodes.CondExpr):
            self.conditional(node, bound)
            return
        if isinstance(node, nodes.Call):
            function = node.node
            if isinstance(function, nodes.Getattr):
                # A method call: the method's name is not part of the state's shape.
                self.chain(function.node, bound)
            elif isinstance(function, nodes.Name) and function.name in GLOBAL_NAMES:
                if function.name == "secret" and function.name not in bound:
                    self.uses_secret = True
            else:
                self.expression(function, bound)
            for child in node.iter_child_nodes(exclude=("node",)):
                self.expression(child, bound)
            return
        if isinstance(node, nodes.Filter) and node.name not in self.filters:
            raise _unknown("filter", node.name, self.filters)
        if isinstance(node, nodes.Test) and node.name not in self.tests:
            raise _unknown("test", node.name, self.tests)
        if (
            isinstance(node, nodes.Filter | nodes.Test)
            and node.name in _GUARDS
            and isinstance(node.node, nodes.Name)
        ):
            # The operand is read as a guarded name (still a reference: an edge when it is
            # a register); the filter's arguments are read as anywhere else.
            outer = self.known
            self.known = outer | {node.node.name}
            self.expression(node.node, bound)
            self.known = outer
            for child in node.iter_child_nodes(exclude=("node",)):
                self.expression(child, bound)
            return
        for child in node.iter_child_nodes():
            self.expression(child, bound)

    def conditional(
        self, node: nodes.And | nodes.Or | nodes.CondExpr, bound: frozenset[str]
    ) -> None:
        """``a and b``, ``a or b``, ``x if t else y``: the part evaluated only when a test
        found a name defined may read it (``x is defined and x``)."""
        outer = self.known
        if isinstance(node, nodes.CondExpr):
            self.expression(node.test, bound)
            self.known = outer | _defined_when(node.test, True)
            self.expression(node.expr1, bound)
            if node.expr2 is not None:
                self.known = outer | _defined_when(node.test, False)
                self.expression(node.expr2, bound)
        else:
            self.expression(node.left, bound)
            # The right side runs when an ``and``'s left is true, an ``or``'s false.
            self.known = outer | _defined_when(node.left, isinstance(node, nodes.And))
            self.expression(node.right, bound)
        self.known = outer

    def chain(self, node: nodes.Node, bound: frozenset[str]) -> None:
        """Record ``name.attr['key']...`` as one path; walk whatever breaks the chain."""
        path: list[str] = []
        while True:
            if isinstance(node, nodes.Getattr):
                path.append(node.attr)
                node = node.node
            elif (
                isinstance(node, nodes.Getitem)
                and isinstance(node.arg, nodes.Const)
                and isinstance(node.arg.value, str)
            ):
                path.append(node.arg.value)
                node = node.node
            else:
                break
        if isinstance(node, nodes.Name):
            if node.ctx == "load":
                self.name(node.name, tuple(reversed(path)), bound)
        elif isinstance(node, nodes.Getitem):
            self.chain(node.node, bound)
            self.expression(node.arg, bound)
        else:
            self.expression(node, bound)

    def name(self, name: str, path: Reference, bound: frozenset[str]) -> None:
        if name in bound or name == "self":
            return
        if name == STATE_LOOKUP and path:
            self.references.add(path)  # a Go field Jinja cannot name: gxo_state_['env']
            return
        if name in GLOBAL_NAMES:
            # Called, it was handled by expression(); anywhere else it would be the function
            # object itself (``{{ env ~ 'x' }}`` printed ``<function ...>x``).
            raise _uncalled(name)
        self.references.add((name, *path))
        (self.guarded if name in self.known else self.unguarded).add(name)


def _defined_when(test: nodes.Node, outcome: bool) -> frozenset[str]:
    """Names ``test`` evaluating to ``outcome`` shows defined: ``x is defined`` true,
    ``x is undefined`` false, through ``not``, either side of a true ``and`` or a false
    ``or``."""
    if isinstance(test, nodes.Test) and isinstance(test.node, nodes.Name):
        shows = test.name == ("defined" if outcome else "undefined")
        return frozenset({test.node.name}) if shows else frozenset()
    if isinstance(test, nodes.Not):
        return _defined_when(test.node, not outcome)
    if isinstance(test, nodes.And if outcome else nodes.Or):
        return _defined_when(test.left, outcome) | _defined_when(test.right, outcome)
    return frozenset()


def _printed_function(node: nodes.Node, bound: frozenset[str]) -> None:
    """Reject ``{{ secret }}``, ``{{ env | string }}``: a function printed, not called, would
    render as its Python repr (``<function ...>``) into a command's argument. Go says "wrong
    number of args for secret"."""
    while isinstance(node, nodes.Filter) and node.node is not None:
        node = node.node
    if isinstance(node, nodes.Name) and node.name in GLOBAL_NAMES and node.name not in bound:
        raise _uncalled(node.name)


def _uncalled(name: str) -> TemplateError:
    """The error for a template function named anywhere but as the function of a call."""
    return TemplateError(
        f"{name!r} is a function, named here without being called",
        hint="call it: "
        + _CALL_HINTS.get(name, f"{name}(...)")
        + f"; a var or register named '{name}' is read in a Go template: {{{{ .{name} }}}}",
    )


def _unknown(kind: str, name: str, known: Iterable[str]) -> TemplateError:
    close = difflib.get_close_matches(name, list(known), n=3)
    hint = f"did you mean {', '.join(map(repr, close))}?" if close else ""
    hint = hint or f"see the list of Jinja2 built-in {kind}s"
    return TemplateError(f"no {kind} named {name!r}", hint=hint)
