"""convert_params: msgspec validation, reworded for playbook authors, and the SDK surface."""

from __future__ import annotations

from typing import Any, ClassVar

import msgspec
import pytest

import gxo.modules
from gxo.modules import Module, ModuleContext, NoParams, ParamsError, convert_params, exclusive


class Inner(msgspec.Struct, forbid_unknown_fields=True):
    depth: int


class SampleParams(msgspec.Struct, forbid_unknown_fields=True):
    command: str | list[str]
    args: list[str] = []
    env: dict[str, str] = {}
    count: int = 0
    ratio: float = 1.0
    verbose: bool = False
    inner: Inner | None = None
    inners: list[Inner] = []
    mode: str = "fast"

    def __post_init__(self) -> None:
        if self.mode not in ("fast", "slow"):
            raise ValueError(f"parameter 'mode' must be 'fast' or 'slow', got {self.mode!r}")


class Sample(Module[SampleParams]):
    name: ClassVar[str] = "sample"
    Params: ClassVar[type[msgspec.Struct]] = SampleParams


class Bare(Module[NoParams]):
    name: ClassVar[str] = "bare"


def message(raw: Any, module: type[Module[Any]] = Sample) -> str:
    with pytest.raises(ParamsError) as info:
        convert_params(module, raw)
    assert info.value.reason == "bad_params"
    return info.value.message


def test_sdk_all_is_sorted_and_exact() -> None:
    expected = [
        "Module",
        "ModuleContext",
        "ModuleError",
        "ModuleRegistry",
        "NoParams",
        "ParamsError",
    ]
    assert gxo.modules.__all__ == [*expected, "convert_params", "exclusive"]
    assert gxo.modules.__all__ == sorted(gxo.modules.__all__)
    for name in gxo.modules.__all__:
        assert getattr(gxo.modules, name) is not None


def test_valid_params_convert_to_the_struct() -> None:
    params = convert_params(Sample, {"command": ["ls", "-l"], "env": {"A": "1"}, "count": 2})
    assert params == SampleParams(command=["ls", "-l"], env={"A": "1"}, count=2)


def test_no_params_accepts_none_and_empty() -> None:
    assert convert_params(Bare, None) == NoParams()
    assert convert_params(Bare, {}) == NoParams()


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"command": "x", "args": ["a", 1]}, "parameter 'args[1]' must be a string, got int"),
        ({"comand": "x"}, "unknown parameter 'comand' (did you mean 'command'?)"),
        ({"command": "x", "zzz": 1}, "unknown parameter 'zzz'"),
        ({}, "missing required parameter 'command'"),
        ({"command": 3}, "parameter 'command' must be a string or a list, got int"),
        ({"command": "x", "args": "a b"}, "parameter 'args' must be a list, got str"),
        ({"command": "x", "count": 1.5}, "parameter 'count' must be an integer, got float"),
        ({"command": "x", "count": "3"}, "parameter 'count' must be an integer, got str"),
        ({"command": "x", "count": None}, "parameter 'count' must be an integer, got None"),
        ({"command": "x", "verbose": "yes"}, "parameter 'verbose' must be a boolean, got str"),
        ({"command": "x", "ratio": []}, "parameter 'ratio' must be a number, got list"),
        ({"command": "x", "args": {}}, "parameter 'args' must be a list, got mapping"),
        (
            {"command": "x", "env": {"A": 1}},
            "every value of parameter 'env' must be a string, got int",
        ),
        (
            {"command": "x", "env": {1: "a"}},
            "every key of parameter 'env' must be a string, got int",
        ),
        ({"command": "x", "inner": {}}, "missing required parameter 'inner.depth'"),
        (
            {"command": "x", "inner": {"dept": 1}},
            "unknown parameter 'inner.dept' (did you mean 'depth'?)",
        ),
        (
            {"command": "x", "inners": [{"depth": 1}, {"depht": 2}]},
            "unknown parameter 'inners[1].depht' (did you mean 'depth'?)",
        ),
        ({"command": "x", "inner": 5}, "parameter 'inner' must be a mapping or null, got int"),
        (
            {"command": "x", "mode": "medium"},
            "parameter 'mode' must be 'fast' or 'slow', got 'medium'",
        ),
        ({1: "x"}, "every parameter name must be a string"),
    ],
)
def test_messages_use_plain_wording(raw: dict[Any, Any], expected: str) -> None:
    assert message(raw) == expected


def test_params_that_are_not_a_mapping() -> None:
    assert message(["command"]) == "params must be a mapping, got list"


def test_unknown_parameter_on_a_module_without_params() -> None:
    assert message({"value": 1}, Bare) == "unknown parameter 'value'"


def test_params_error_is_a_module_error_with_reason_bad_params() -> None:
    error = ParamsError("x")
    assert isinstance(error, gxo.modules.ModuleError)
    assert (error.message, error.reason, error.summary) == ("x", "bad_params", None)


def test_module_context_defaults() -> None:
    ctx = ModuleContext(task_name="t", instance_id=7)
    assert (ctx.attempt, ctx.loop_index, ctx.dry_run, dict(ctx.state)) == (1, None, False, {})
    assert ctx.log.name == "gxo.task.t"
    ctx.mark_secret("ignored without a taint function")


class _Exclusive(msgspec.Struct, forbid_unknown_fields=True):
    a: str | None = None
    b: str | None = None
    c: list[str] = msgspec.field(default_factory=list)

    def __post_init__(self) -> None:
        exclusive(self, "a", "b", "c")


class _ExclusiveModule(Module[_Exclusive]):
    name = "test:exclusive"
    Params = _Exclusive


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"a": "x", "b": "y"}, "parameters 'a' and 'b' are mutually exclusive"),
        ({"a": "x", "b": "y", "c": ["z"]}, "parameters 'a', 'b' and 'c' are mutually exclusive"),
    ],
)
def test_exclusive_gives_one_wording(raw, message):
    with pytest.raises(ParamsError) as info:
        convert_params(_ExclusiveModule, raw)
    assert str(info.value) == message


def test_exclusive_accepts_one_or_none():
    assert convert_params(_ExclusiveModule, {"c": ["z"]}).c == ["z"]
    assert convert_params(_ExclusiveModule, {}).a is None
