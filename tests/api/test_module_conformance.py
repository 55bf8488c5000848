"""``gxo.modules.testing.check_module``: every built-in conforms; broken modules are named."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import msgspec
import pytest

from gxo.modules import Module, ModuleContext
from gxo.modules.registry import BUILTIN_MODULES, load_module
from gxo.modules.testing import check_module


def _samples(tmp_path: Path) -> dict[str, dict[str, Any]]:
    marker = tmp_path / "exec-ran"
    return {
        # A dry run must not run the command: the marker must not appear.
        "exec": {"command": ["touch", str(marker)]},
        "python": {"function": "os:getcwd"},
        "passthrough": {"value": {"a": 1}},
        "generate:from_list": {"items": [1, {"b": 2}]},
        "stream:join": {
            "join_type": "inner",
            "on": [
                {"stream": "a", "role": "build", "field": "id"},
                {"stream": "b", "role": "probe", "field": "id"},
            ],
        },
        "file:read": {"path": str(_jsonl(tmp_path)), "format": "jsonl"},
        "file:write": {"path": str(tmp_path / "out.jsonl")},
    }


def _jsonl(tmp_path: Path) -> Path:
    path = tmp_path / "in.jsonl"
    path.write_text('{"id": 1}\n')
    return path


@pytest.mark.parametrize("type_name", sorted(BUILTIN_MODULES))
def test_builtin_module_conforms(type_name: str, tmp_path: Path) -> None:
    # A built-in without sample params here is still checked, without the dry-run call.
    check_module(load_module(type_name), sample_params=_samples(tmp_path).get(type_name))
    assert not (tmp_path / "exec-ran").exists()


# -- broken modules -------------------------------------------------------------------------


class GoodParams(msgspec.Struct, forbid_unknown_fields=True):
    who: str


class Good(Module[GoodParams]):
    """Greet someone."""

    name: ClassVar[str] = "test:good"
    Params: ClassVar[type[msgspec.Struct]] = GoodParams
    supports_dry_run: ClassVar[bool] = True

    def run(self, params: GoodParams, ctx: ModuleContext) -> dict[str, Any]:
        return {"greeting": f"hello, {params.who}", "dry_run": ctx.dry_run}


def test_a_good_module_passes() -> None:
    check_module(Good, sample_params={"who": "x"})


def test_required_params_without_samples_skip_the_dry_run() -> None:
    check_module(Good)


class LooseParams(msgspec.Struct):
    who: str = "x"


class NoName(Module[LooseParams]):
    """Docstring."""

    Params: ClassVar[type[msgspec.Struct]] = LooseParams

    def run(self, params: LooseParams, ctx: ModuleContext) -> None:
        return None


class EmptyName(Good):
    """Docstring."""

    name = ""


class NotAStruct(Module[Any]):
    """Docstring."""

    name = "test:not-a-struct"
    Params = dict  # type: ignore[assignment]

    def run(self, params: Any, ctx: ModuleContext) -> None:
        return None


class WrongSignature(Good):
    """Docstring."""

    def run(self, params: GoodParams) -> None:  # type: ignore[override]
        return None


class WrongNames(Good):
    """Docstring."""

    def run(self, p: GoodParams, context: ModuleContext) -> None:  # type: ignore[override]
        return None


class AsyncRun(Good):
    """Docstring."""

    async def run(self, params: GoodParams, ctx: ModuleContext) -> None:  # type: ignore[override]
        return None


class NoRun(Module[GoodParams]):
    """Docstring."""

    name = "test:no-run"
    Params = GoodParams


class NoDoc(Good):
    pass


class DryRunNotBool(Good):
    """Docstring."""

    supports_dry_run = "yes"  # type: ignore[assignment]


class DryRunRaises(Good):
    """Docstring."""

    def run(self, params: GoodParams, ctx: ModuleContext) -> None:
        raise OSError("tried to touch the disk")


class DryRunNotJson(Good):
    """Docstring."""

    def run(self, params: GoodParams, ctx: ModuleContext) -> Any:
        return {"handle": object()}


class NotAModule:
    """Docstring."""

    name = "test:plain"


@pytest.mark.parametrize(
    ("cls", "message"),
    [
        (NoName, "has no `name`"),
        (NoName, "must be declared with forbid_unknown_fields=True"),
        (EmptyName, "`name` must not be empty"),
        (NotAStruct, "`Params` must be a msgspec.Struct subclass"),
        (WrongSignature, "`run` must have the signature (self, params, ctx), got (self, params)"),
        (
            WrongNames,
            "`run` parameters should be named (self, params, ctx), got (self, p, context)",
        ),
        (AsyncRun, "`run` must be a plain method, not `async def`"),
        (NoRun, "does not implement `run(self, params, ctx)`"),
        (NoDoc, "has no docstring"),
        (DryRunNotBool, "supports_dry_run must be a bool, got str 'yes'"),
        (DryRunRaises, "a dry run with sample_params raised OSError: tried to touch the disk"),
        (DryRunNotJson, "the dry-run summary is not JSON-compatible"),
        (NotAModule, "not a subclass of gxo.modules.Module"),
    ],
)
def test_broken_module_is_reported(cls: type[Any], message: str) -> None:
    with pytest.raises(AssertionError) as info:
        check_module(cls, sample_params={"who": "x"})
    text = str(info.value)
    assert message in text
    assert cls.__qualname__ in text


def test_bad_sample_params_are_reported_in_the_playbook_wording() -> None:
    with pytest.raises(AssertionError, match="sample_params do not convert") as info:
        check_module(Good, sample_params={"who": 3})
    assert "parameter 'who' must be a string, got int" in str(info.value)


def test_every_violation_is_listed() -> None:
    class Broken(Module[LooseParams]):
        Params = LooseParams
        supports_dry_run = 1  # type: ignore[assignment]

        def run(self, params: LooseParams) -> None:  # type: ignore[override]
            return None

    with pytest.raises(AssertionError) as info:
        check_module(Broken)
    lines = [line for line in str(info.value).splitlines() if line.startswith("  - ")]
    assert len(lines) == 5, info.value
