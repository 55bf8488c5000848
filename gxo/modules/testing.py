"""A conformance check module authors run in their own tests.

::

    from gxo.modules.testing import check_module

    def test_greet_module_conforms():
        check_module(GreetModule, sample_params={"who": "world"})

:func:`check_module` checks what gxo relies on when it loads and runs a module, and raises
one :class:`AssertionError` that lists every violation found, one per line, each saying what
to change. It runs the module only in dry-run mode (and only if the module says it supports
it): a module's dry run must not change anything, which is the author's responsibility; the
check can only see that the call returns JSON-compatible data.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

import msgspec

from gxo.modules._params import convert_params
from gxo.modules.base import Module, ModuleContext, ParamsError

__all__ = ["check_module"]


def check_module(cls: type[Any], *, sample_params: Mapping[str, Any] | None = None) -> None:
    """Check that ``cls`` follows the module contract of :mod:`gxo.modules`.

    Args:
        cls: the module class, as its entry point names it.
        sample_params: parameters as a playbook would give them (after template rendering).
            Without them, the empty mapping is used when every parameter is optional, and
            the conversion and dry-run checks are skipped otherwise.

    Raises:
        AssertionError: listing every violation, one per line.
    """
    problems: list[str] = []
    label = getattr(cls, "__qualname__", repr(cls))
    if not (isinstance(cls, type) and issubclass(cls, Module)):
        raise AssertionError(
            f"{label}: not a subclass of gxo.modules.Module; a module class must subclass it"
        )
    _check_name(cls, problems)
    params_ok = _check_params_type(cls, problems)
    run_ok = _check_run(cls, problems)
    if not (cls.__dict__.get("__doc__") or "").strip():
        problems.append(
            "has no docstring; write one: its first line is what `gxo modules` shows, the "
            "rest documents the parameters and the summary"
        )
    dry_run_ok = isinstance(cls.supports_dry_run, bool)
    if not dry_run_ok:
        problems.append(
            f"supports_dry_run must be a bool, got {type(cls.supports_dry_run).__name__} "
            f"{cls.supports_dry_run!r}"
        )
    if params_ok:
        _check_sample(cls, sample_params, problems, dry_run=run_ok and dry_run_ok)
    if problems:
        lines = "\n".join(f"  - {p}" for p in problems)
        raise AssertionError(
            f"module {label} does not conform to the gxo module contract:\n{lines}"
        )


def _check_name(cls: type[Module[Any]], problems: list[str]) -> None:
    name = getattr(cls, "name", None)
    if name is None:
        problems.append("has no `name`; set the class attribute `name = 'ns:type'`")
    elif not isinstance(name, str):
        problems.append(f"`name` must be a str, got {type(name).__name__} {name!r}")
    elif not name.strip():
        problems.append("`name` must not be empty; it is the playbook's `type`")


def _check_params_type(cls: type[Module[Any]], problems: list[str]) -> bool:
    params: object = cls.Params  # declared as a Struct type, but that is what is checked
    if not (isinstance(params, type) and issubclass(params, msgspec.Struct)):
        problems.append(
            f"`Params` must be a msgspec.Struct subclass, got {params!r}; declare "
            "`class Params(msgspec.Struct, forbid_unknown_fields=True)`"
        )
        return False
    if not params.__struct_config__.forbid_unknown_fields:
        problems.append(
            f"`Params` ({params.__qualname__}) must be declared with "
            "forbid_unknown_fields=True, so a misspelt parameter is an error"
        )
    return True


def _check_run(cls: type[Module[Any]], problems: list[str]) -> bool:
    run = cls.__dict__.get("run")
    if run is None and cls.run is Module.run:
        problems.append("does not implement `run(self, params, ctx)`")
        return False
    run = cls.run
    ok = True
    if inspect.iscoroutinefunction(run):
        ok = False
        problems.append(
            "`run` must be a plain method, not `async def`: workers call it and use the "
            "return value as the summary"
        )
    try:
        signature = inspect.signature(run)
    except (TypeError, ValueError):
        problems.append("`run` has no inspectable signature; define `def run(self, params, ctx)`")
        return False
    positional = [
        p
        for p in signature.parameters.values()
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    required_other = [
        p.name
        for p in signature.parameters.values()
        if p.kind is p.KEYWORD_ONLY and p.default is p.empty
    ]
    names = [p.name for p in positional]
    if len(positional) != 3 or required_other:
        ok = False
        problems.append(
            f"`run` must have the signature (self, params, ctx), got "
            f"({', '.join(signature.parameters)}); gxo calls `run(params, ctx)`"
        )
    elif names[1:] != ["params", "ctx"]:
        problems.append(
            f"`run` parameters should be named (self, params, ctx), got ({', '.join(names)})"
        )
    return ok


def _check_sample(
    cls: type[Module[Any]],
    sample_params: Mapping[str, Any] | None,
    problems: list[str],
    *,
    dry_run: bool,
) -> None:
    if sample_params is None:
        if any(f.required for f in msgspec.structs.fields(cls.Params)):
            return  # nothing to convert with: the author did not give sample parameters
        sample_params = {}
    try:
        params = convert_params(cls, sample_params)
    except ParamsError as exc:
        problems.append(f"sample_params do not convert to `Params`: {exc.message}")
        return
    if not (dry_run and cls.supports_dry_run):
        return
    ctx = ModuleContext(task_name="conformance-check", instance_id=0, dry_run=True)
    try:
        summary = cls().run(params, ctx)
    except Exception as exc:  # noqa: BLE001 - every failure is reported as a violation
        problems.append(
            f"supports_dry_run is true, but a dry run with sample_params raised "
            f"{type(exc).__name__}: {exc}"
        )
        return
    try:
        msgspec.json.encode(msgspec.to_builtins(summary))
    except (TypeError, ValueError, msgspec.EncodeError) as exc:
        problems.append(
            f"the dry-run summary is not JSON-compatible ({type(summary).__name__}): {exc}; "
            "return dicts, lists, strings, numbers, booleans or None"
        )
