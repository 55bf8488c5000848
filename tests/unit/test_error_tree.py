"""One error tree: every public exception class of gxo is a GxoError, drawn in errors.py."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import gxo
from gxo import errors


def _public_exceptions() -> dict[str, type[BaseException]]:
    found: dict[str, type[BaseException]] = {}
    for info in pkgutil.walk_packages(gxo.__path__, "gxo."):
        if info.name.endswith("__main__") or "forkserver_preload" in info.name:
            continue
        if info.name == "gxo.config._schema_code":
            # fastjsonschema's generated code (scripts/gen-schema): its exception never leaves
            # gxo.config.schema, which turns it into the playbook's problems.
            continue
        module = importlib.import_module(info.name)
        for name, value in vars(module).items():
            if (
                inspect.isclass(value)
                and issubclass(value, BaseException)
                and value.__module__ == info.name
                and not name.startswith("_")
            ):
                found[f"{info.name}.{name}"] = value
    return found


def test_every_public_exception_is_a_gxo_error() -> None:
    found = _public_exceptions()
    assert "gxo.modules.base.ModuleError" in found  # the walk reaches every subpackage
    outside = sorted(
        name
        for name, cls in found.items()
        if not issubclass(cls, errors.GxoError)
        # Jinja's own hierarchy: raised inside template rendering, turned into TemplateError.
        and name != "gxo.template.environment.UndefinedAccess"
        # Control flow out of a bounded render (BaseException on purpose, so no `except
        # Exception` in Jinja or a filter swallows it), turned into TemplateError.
        and issubclass(cls, Exception)
    )
    assert not outside, f"public exceptions outside GxoError: {outside}"


def test_the_docstring_draws_every_class_of_the_tree() -> None:
    for name, cls in _public_exceptions().items():
        if issubclass(cls, errors.GxoError):
            assert cls.__name__ in (errors.__doc__ or ""), name


def test_internal_error_says_it_is_a_gxo_bug() -> None:
    assert "gxo bug" in str(errors.InternalError("x"))
    assert issubclass(errors.UsageError, errors.GxoError)
    assert gxo.UsageError is errors.UsageError
