"""passthrough and generate:from_list."""

from __future__ import annotations

from typing import Any

import pytest

from gxo.modules import ModuleContext, ParamsError, convert_params
from gxo.modules.builtin.generate import FromListModule
from gxo.modules.builtin.passthrough import PassthroughModule
from gxo.streams import InputSpec, OutputSpec, Streams, make_pipe


def ctx(dry_run: bool = False) -> ModuleContext:
    return ModuleContext(task_name="t", instance_id=1, dry_run=dry_run)


@pytest.mark.parametrize("dry_run", [False, True])
def test_passthrough_without_inputs_returns_the_gxo_summary(dry_run: bool) -> None:
    params = convert_params(PassthroughModule, {})
    assert PassthroughModule().run(params, ctx(dry_run)) == {
        "records_processed": 0,
        "message": "no input streams provided",
    }


@pytest.mark.parametrize("value", [None, 0, "text", [1, {"a": 2}], {"k": "v"}])
def test_passthrough_value_is_returned(value: Any) -> None:
    params = convert_params(PassthroughModule, {"value": value})
    assert PassthroughModule().run(params, ctx()) == {"value": value, "records_processed": 0}


def test_passthrough_rejects_other_params() -> None:
    with pytest.raises(ParamsError, match=r"unknown parameter 'valeu' \(did you mean 'value'\?\)"):
        convert_params(PassthroughModule, {"valeu": 1})


@pytest.mark.parametrize("dry_run", [False, True])
def test_from_list_wraps_non_mappings(dry_run: bool) -> None:
    items = [{"name": "a"}, "b", 3, None, [1, 2]]
    params = convert_params(FromListModule, {"items": items})
    read_fd, write_fd = make_pipe()
    streams = Streams("t", outputs=[OutputSpec("c", write_fd)])
    try:
        context = ModuleContext(task_name="t", instance_id=1, dry_run=dry_run, streams=streams)
        assert FromListModule().run(params, context) == {"records_generated": 5}
        streams.finish()
    finally:
        streams.close()
    consumer = Streams("c", inputs=[InputSpec("t", read_fd)])
    try:
        assert list(consumer.records()) == [
            {"name": "a"},
            {"item": "b"},
            {"item": 3},
            {"item": None},
            {"item": [1, 2]},
        ]
    finally:
        consumer.close()


def test_from_list_empty() -> None:
    params = convert_params(FromListModule, {"items": []})
    assert FromListModule().run(params, ctx()) == {"records_generated": 0}


def test_from_list_mapping_with_non_string_key() -> None:
    with pytest.raises(ParamsError) as info:
        convert_params(FromListModule, {"items": [{"a": 1}, {1: "x"}]})
    assert info.value.message == (
        "parameter 'items[1]' is a mapping with a non-string key 1 (int); record keys must be "
        "strings"
    )


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({}, "missing required parameter 'items'"),
        ({"items": "a,b"}, "parameter 'items' must be a list, got str"),
        ({"items": {"a": 1}}, "parameter 'items' must be a list, got mapping"),
    ],
)
def test_from_list_bad_params(raw: dict[str, Any], expected: str) -> None:
    with pytest.raises(ParamsError) as info:
        convert_params(FromListModule, raw)
    assert info.value.message == expected


def test_side_effect_free_modules_support_dry_run() -> None:
    assert PassthroughModule.supports_dry_run is True
    assert FromListModule.supports_dry_run is True
