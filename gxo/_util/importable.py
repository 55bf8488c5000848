"""Classes named so a worker process can import them: ``"package.module:Qualified.Name"``.

Modules and secrets providers given to :func:`gxo.run` as Python objects cross the process
boundary as their import path, never pickled: a worker imports the name and finds the same
class. A class defined in ``__main__`` (a script run directly), a REPL, a notebook or inside a
function has no such name, so it is refused before the run, with what to do instead.
"""

from __future__ import annotations

import importlib
from typing import Any

from gxo.errors import UsageError

__all__ = ["import_target", "qualified_name"]

_NOT_IMPORTABLE = ("__main__", "__mp_main__", "builtins", "__console__")


def import_target(target: str) -> Any:
    """The object ``"package.module:Name"`` (or ``"package.module:Outer.Inner"``) names.

    Raises:
        ValueError: ``target`` is not of that form.
        ImportError, AttributeError: it names nothing.
    """
    module_name, sep, attr = target.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"expected package.module:Name, got {target!r}")
    obj: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


def qualified_name(cls: type, what: str) -> str:
    """``"package.module:Class"`` for ``cls``, checked to import back to ``cls`` itself.

    Raises:
        UsageError: ``cls`` is not importable by that name (defined in ``__main__``, a REPL,
            a notebook or a function, or shadowed), saying what to do.
    """
    module = getattr(cls, "__module__", None) or ""
    qualname = getattr(cls, "__qualname__", "") or ""
    shown = f"{module}.{qualname}" if module else repr(cls)
    advice = (
        "worker processes import it by name, so define it in a module file on the Python "
        "path (mymodules.py, a package) and import it from there"
    )
    if module in _NOT_IMPORTABLE or not module or "<locals>" in qualname:
        where = "inside a function" if "<locals>" in qualname else f"in {module or '?'!r}"
        raise UsageError(
            f"{what} {shown} cannot be imported by name in a worker process: it is defined "
            f"{where} (a script run directly, a REPL or a notebook); {advice}"
        )
    target = f"{module}:{qualname}"
    try:
        found = import_target(target)
    except Exception as exc:  # noqa: BLE001 - any import failure means "not importable"
        raise UsageError(
            f"{what} {shown} cannot be imported as {target!r}: "
            f"{type(exc).__name__}: {exc}; {advice}"
        ) from None
    if found is not cls:
        raise UsageError(f"{what} {shown}: importing {target!r} gives another object; {advice}")
    return target
