"""The one sandboxed Jinja2 environment of the process, and the names every template sees.

Why a module of its own: the environment is costly to create, so one is shared by every
template of the process (created on first use); and the lookup rules defined here (dict keys
before attributes, an undefined value that remembers what was missing, the functions layer
above the namespace) are used both by full Jinja templates and by the fast paths in
:mod:`gxo.template.templates`, which must behave exactly alike.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterator, Mapping
from typing import Any, NoReturn

from jinja2 import StrictUndefined, Undefined
from jinja2.exceptions import UndefinedError
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import Namespace

from gxo.errors import TemplateError
from gxo.template.budget import SIZE_CHECKS, active, check_binop, check_format_widths
from gxo.template.gofuncs import FILTERS as GO_FILTERS
from gxo.template.names import GLOBAL_NAMES, STATE_LOOKUP, TemplateFunctions

__all__ = [
    "GLOBAL_NAMES",
    "GxoUndefined",
    "Scope",
    "TemplateFunctions",
    "UndefinedAccess",
    "environment",
    "function_layer",
]


class UndefinedAccess(UndefinedError):
    """An undefined value was used; ``undefined`` says what was missing and where from."""

    def __init__(self, undefined: GxoUndefined) -> None:
        super().__init__(undefined._undefined_message)
        self.undefined = undefined


class GxoUndefined(StrictUndefined):
    """``StrictUndefined`` that raises :class:`UndefinedAccess`, which keeps the object.

    The object lets the renderer name the missing thing (``'reg' has no attribute 'x'``)
    instead of Jinja's ``'dict object' has no attribute 'x'``.
    """

    __slots__ = ()

    def _fail_with_undefined_error(self, *args: Any, **kwargs: Any) -> NoReturn:
        if self._undefined_exception is UndefinedError:
            raise UndefinedAccess(self)
        raise self._undefined_exception(self._undefined_message)

    def fail(self) -> NoReturn:
        """Raise the error that using this value raises."""
        self._fail_with_undefined_error()


# Jinja binds every operator of Undefined/StrictUndefined to the base class's function at
# class creation, so overriding the method alone would not reach ``str()``, ``+`` or ``==``.
for _cls in (Undefined, StrictUndefined):
    for _name, _attr in list(vars(_cls).items()):
        if _attr is Undefined._fail_with_undefined_error and _name.startswith("__"):
            setattr(GxoUndefined, _name, GxoUndefined._fail_with_undefined_error)
del _cls, _name, _attr


class _Environment(ImmutableSandboxedEnvironment):
    """The sandbox, with two changes.

    ``a.b`` on a dict reads the key ``b`` first: Jinja looks up attributes before keys, so
    ``reg.items`` would be the dict method even when the registered result has an ``items``
    key. Data wins here, as it does in Go templates; methods stay reachable when no key has
    their name.

    Operators and calls that can build a huge value in one step (``'a' * 10**9``) are checked
    against the render budget (:mod:`gxo.template.budget`) before they run, when the render
    is bounded (a ``when`` or ``loop`` in the scheduler); otherwise they run as usual.
    """

    intercepted_binops = frozenset({"*", "+", "**", "%"})

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        check_binop(operator, left, right)
        return super().call_binop(context, operator, left, right)

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        wrapped = super().wrap_str_format(value)
        if wrapped is None:
            return None
        pattern = value.__self__

        def checked(*args: Any, **kwargs: Any) -> str:
            if active() is not None:
                check_format_widths(pattern, "format()")
            return wrapped(*args, **kwargs)

        return checked

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        if active() is not None:
            owner = getattr(__obj, "__self__", None)
            check = SIZE_CHECKS.get(getattr(__obj, "__name__", ""))
            if check is not None and isinstance(owner, str):
                check(owner, *args, **kwargs)
        return super().call(__context, __obj, *args, **kwargs)

    def getattr(self, obj: Any, attribute: str) -> Any:
        if type(obj) is dict:
            try:
                return obj[attribute]
            except KeyError:
                pass
        return super().getattr(obj, attribute)


_ENVIRONMENT: _Environment | None = None
_BASE_LAYER: dict[str, Any] = {}
_DEFAULT_LAYER: dict[str, Any] = {}


def environment() -> _Environment:
    """The process's environment, created on first use."""
    global _ENVIRONMENT  # noqa: PLW0603 - one lazily created environment per process
    env = _ENVIRONMENT
    if env is None:
        env = _Environment(undefined=GxoUndefined, autoescape=False, keep_trailing_newline=True)
        for name in ("lipsum", "cycler", "joiner"):
            env.globals.pop(name, None)
        for name in ("center", "indent", "replace", "format"):
            env.filters[name] = _size_checked(name, env.filters[name])
        env.filters.update(GO_FILTERS)  # what translated Go templates call (gocompat)
        _BASE_LAYER.update(range=env.globals["range"], dict=dict, namespace=Namespace)
        _DEFAULT_LAYER.update(_BASE_LAYER, secret=_secret_unavailable, env=_read_environ)
        _ENVIRONMENT = env
    return env


def _size_checked(name: str, original: Callable[..., Any]) -> Callable[..., Any]:
    """``original`` (a filter), checked against the render budget before it runs."""
    skip = 1 if hasattr(original, "jinja_pass_arg") else 0  # eval context / environment
    check = SIZE_CHECKS[name]

    @functools.wraps(original)
    def checked(*args: Any, **kwargs: Any) -> Any:
        if active() is not None:
            check(*args[skip:], **kwargs)
        return original(*args, **kwargs)

    return checked


def _check_name(function: str, name: object) -> str:
    if not isinstance(name, str):
        raise TemplateError(f"{function}() takes a name (a string), not {type(name).__name__}")
    return name


def _secret_unavailable(name: object) -> NoReturn:
    _check_name("secret", name)
    raise TemplateError(
        "secret() is not available here",
        hint="secret() is resolved only where a task's params are rendered, in the worker",
    )


def _read_environ(name: object) -> str:
    return os.environ.get(_check_name("env", name), "")


def function_layer(functions: TemplateFunctions | None) -> dict[str, Any]:
    """The globals a render sees: ``secret`` and ``env`` from ``functions``, plus Jinja's."""
    environment()
    if functions is None:
        return _DEFAULT_LAYER

    def secret(name: object) -> str:
        return functions.secret(_check_name("secret", name))

    def env(name: object) -> str:
        return functions.env(_check_name("env", name))

    return {**_BASE_LAYER, "secret": secret, "env": env}


class Scope(Mapping[str, Any]):
    """What a template's names resolve to: the function layer, then the namespace.

    A view, never a copy: the namespace may hold the whole run state, and a render must not
    cost time in proportion to it.
    """

    __slots__ = ("functions", "namespace")

    def __init__(self, functions: Mapping[str, Any], namespace: Mapping[str, Any]) -> None:
        self.functions = functions
        self.namespace = namespace

    def __getitem__(self, key: str) -> Any:
        functions = self.functions
        if key in functions:
            return functions[key]
        if key == STATE_LOOKUP:
            return self.namespace
        return self.namespace[key]

    def __contains__(self, key: object) -> bool:
        return key in self.functions or key == STATE_LOOKUP or key in self.namespace

    def __iter__(self) -> Iterator[str]:
        yield from self.functions
        yield from (key for key in self.namespace if key not in self.functions)

    def __len__(self) -> int:
        return len(self.functions) + sum(1 for key in self.namespace if key not in self.functions)
