"""The module registry: built-ins without an entry-point scan, plugins by entry point."""

from __future__ import annotations

import logging
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from importlib.metadata import EntryPoint
from pathlib import Path
from typing import Any

import pytest

from gxo.errors import ModuleLookupError
from gxo.modules import registry
from gxo.modules.builtin.exec import ExecModule

ROOT = Path(__file__).resolve().parents[2]
TESTS = ROOT / "tests"


def test_builtin_table_equals_pyproject_entry_points() -> None:
    with (ROOT / "pyproject.toml").open("rb") as f:
        project = tomllib.load(f)["project"]
    assert dict(registry.BUILTIN_MODULES) == project["entry-points"][registry.GROUP]


@pytest.fixture
def fresh(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[EntryPoint]]:
    """A registry with empty caches whose entry-point scan returns the yielded list."""
    fake: list[EntryPoint] = []
    calls: list[str] = []

    def entry_points(*, group: str) -> list[EntryPoint]:
        calls.append(group)
        return list(fake)

    monkeypatch.setattr(registry, "_loaded", {})
    monkeypatch.setattr(registry, "_third_party", None)
    monkeypatch.setattr(registry, "entry_points", entry_points)
    monkeypatch.syspath_prepend(str(TESTS))
    yield fake
    assert len(calls) <= 1, "the entry points were scanned more than once"


def plugin(name: str, target: str) -> EntryPoint:
    return EntryPoint(name=name, value=target, group=registry.GROUP)


def test_available_types_lists_builtins_and_plugins_sorted(fresh: list[EntryPoint]) -> None:
    fresh.append(plugin("test:greet", "fixtures_modules.plugins:GreetModule"))
    assert registry.available_types() == [
        "exec",
        "file:read",
        "file:write",
        "generate:from_list",
        "passthrough",
        "python",
        "stream:join",
        "test:greet",
    ]


def test_builtin_lookup_never_scans_entry_points(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_scan(**_: Any) -> None:
        raise AssertionError("entry points scanned for a built-in type")

    monkeypatch.setattr(registry, "_loaded", {})
    monkeypatch.setattr(registry, "_third_party", None)
    monkeypatch.setattr(registry, "entry_points", no_scan)
    assert registry.load_module("exec") is ExecModule
    assert registry.load_module("exec") is ExecModule
    assert registry.describe("exec").name == "exec"


def test_modules_are_imported_only_when_looked_up() -> None:
    code = (
        "import sys\n"
        "from gxo.modules import registry\n"
        "assert not [m for m in sys.modules if m.startswith('gxo.modules.builtin.')]\n"
        "registry.load_module('passthrough')\n"
        "loaded = sorted(m for m in sys.modules if m.startswith('gxo.modules.builtin.'))\n"
        "assert loaded == ['gxo.modules.builtin.passthrough'], loaded\n"
        "assert registry._third_party is None\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


def test_plugin_loads_through_its_entry_point(fresh: list[EntryPoint]) -> None:
    fresh.append(plugin("test:greet", "fixtures_modules.plugins:GreetModule"))
    from fixtures_modules.plugins import GreetModule

    assert registry.load_module("test:greet") is GreetModule
    info = registry.describe("test:greet")
    assert info.description == "Say hello to someone."
    assert info.target == "fixtures_modules.plugins:GreetModule"
    assert [(p.name, p.type, p.required, p.default) for p in info.parameters] == [
        ("who", "str", True, None),
        ("times", "int", False, 1),
    ]


def test_unknown_type_suggests_close_names(fresh: list[EntryPoint]) -> None:
    with pytest.raises(ModuleLookupError) as info:
        registry.load_module("exce")
    assert str(info.value) == (
        "unknown module type 'exce' (did you mean 'exec'?); available types: "
        "exec, file:read, file:write, generate:from_list, passthrough, python, stream:join"
    )


def test_unknown_type_without_close_match(fresh: list[EntryPoint]) -> None:
    with pytest.raises(ModuleLookupError, match=r"^unknown module type 'zzzz'; available"):
        registry.load_module("zzzz")


def test_failed_import_names_type_entry_point_target_and_error(fresh: list[EntryPoint]) -> None:
    fresh.append(plugin("acme:broken", "fixtures_modules.broken_import:Thing"))
    with pytest.raises(ModuleLookupError) as info:
        registry.load_module("acme:broken")
    assert str(info.value) == (
        "module type 'acme:broken' failed to load: entry point 'acme:broken' = "
        "'fixtures_modules.broken_import:Thing' (group 'gxo.modules'): ImportError: "
        "the plugin needs libfoo, which is not installed"
    )


def test_missing_package_names_the_import_error(fresh: list[EntryPoint]) -> None:
    fresh.append(plugin("acme:gone", "acme_not_installed.mod:Gone"))
    with pytest.raises(ModuleLookupError, match="ModuleNotFoundError: No module named 'acme_not"):
        registry.load_module("acme:gone")


def test_target_that_is_not_a_module_class(fresh: list[EntryPoint]) -> None:
    fresh.append(plugin("acme:odd", "fixtures_modules.plugins:NotAModule"))
    with pytest.raises(ModuleLookupError, match=r"is not a gxo\.modules\.Module subclass"):
        registry.load_module("acme:odd")


def test_type_registered_twice_is_ambiguous(fresh: list[EntryPoint]) -> None:
    fresh.append(plugin("test:greet", "fixtures_modules.plugins:GreetModule"))
    fresh.append(plugin("test:greet", "other_pkg:GreetModule"))
    with pytest.raises(ModuleLookupError, match="registered by several entry points"):
        registry.load_module("test:greet")


def test_plugin_cannot_replace_a_builtin(
    fresh: list[EntryPoint], caplog: pytest.LogCaptureFixture
) -> None:
    fresh.append(plugin("exec", "fixtures_modules.plugins:GreetModule"))
    fresh.append(plugin("python", registry.BUILTIN_MODULES["python"]))  # gxo's own, installed
    with caplog.at_level(logging.WARNING, logger="gxo.modules.registry"):
        assert "exec" in registry.available_types()
    assert registry.load_module("exec") is ExecModule
    assert [r.getMessage() for r in caplog.records] == [
        "ignoring entry point exec = fixtures_modules.plugins:GreetModule from unknown "
        "distribution: 'exec' is a built-in module type"
    ]


def test_describe_exec() -> None:
    info = registry.describe("exec")
    assert info.description == "Run a command and capture its stdout, stderr and exit code."
    assert info.supports_dry_run is True
    params = {p.name: p for p in info.parameters}
    assert params["command"] == registry.ParamInfo("command", "str | list[str]", True, None)
    assert params["success_codes"] == registry.ParamInfo("success_codes", "list[int]", False, [0])
    assert params["env"].type == "dict[str, str]"
    assert "timeout" not in params


@pytest.mark.parametrize("type_name", sorted(registry.BUILTIN_MODULES))
def test_builtin_docstrings_list_every_parameter(type_name: str) -> None:
    info = registry.describe(type_name)
    cls = registry.load_module(type_name)
    assert cls.name == type_name
    assert cls.Params.__struct_config__.forbid_unknown_fields
    assert "Summary:" in info.doc
    for param in info.parameters:
        assert f"{param.name} (" in info.doc, param.name


def test_type_text() -> None:
    from typing import Annotated, Any, Literal

    import msgspec

    assert registry.type_text(Annotated[int, msgspec.Meta(ge=0)]) == "int"
    assert registry.type_text(Literal["a", "b"]) == "'a' | 'b'"
    assert registry.type_text(dict[str, list[Any]] | None) == "dict[str, list[Any]] | None"
