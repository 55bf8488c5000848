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


class _Emitted:
    """A stand-in module context: what ``emit`` received."""

    def __init__(self, record_limit: int = 0) -> None:
        self.records: list[Any] = []
        self.record_limit = record_limit

    def emit(self, record: Any) -> None:
        self.records.append(record)


def _stdout_records(chunks: list[bytes], record_limit: int = 0) -> list[str]:
    from gxo.modules.builtin.exec import ExecParams, _StreamingIO

    ctx = _Emitted(record_limit)
    io = _StreamingIO(None, ExecParams(command="x", stdout_records=True), ctx)  # type: ignore[arg-type]
    for chunk in chunks:
        io.records(chunk)
    io.records(b"", final=True)
    return [record["line"] for record in ctx.records]


@pytest.mark.parametrize(
    ("chunks", "lines"),
    [
        ([b"a\nb", b"c\n", b"\n", b"d"], ["a", "bc", "", "d"]),
        ([b"a\r", b"\nb\r\n"], ["a", "b"]),  # CRLF split across two reads
        ([b"", b"x", b"", b"y\n"], ["xy"]),
        ([b"a\n\n"], ["a", ""]),
        ([b"\xc3", b"\xa9\n"], ["é"]),  # a UTF-8 character split across two reads
    ],
)
def test_exec_stdout_lines_across_reads(chunks: list[bytes], lines: list[str]) -> None:
    assert _stdout_records(chunks) == lines


def test_exec_a_long_stdout_line_costs_its_length_not_its_length_times_its_reads() -> None:
    """10,000 reads of one line: joined once (a few ms), not once per read (seconds)."""
    import time

    started = time.perf_counter()
    lines = _stdout_records([b"x" * 100] * 10_000 + [b"\nend"])
    assert [len(line) for line in lines] == [1_000_000, 3]
    assert time.perf_counter() - started < 1.0


def test_exec_a_stdout_line_over_the_record_limit_fails_before_it_ends() -> None:
    """A command printing without newlines is stopped at the record limit, not when the
    memory is full; lines up to the limit pass."""
    from gxo.modules import ModuleError

    assert _stdout_records([b"x" * 600, b"x" * 400 + b"\n"], record_limit=1000) == ["x" * 1000]
    with pytest.raises(ModuleError) as info:
        _stdout_records([b"ok\n" + b"x" * 600, b"x" * 600], record_limit=1000)
    assert info.value.reason == "record_too_large"
    assert "record 1 (stdout line 2) is over the limit of 1000 bytes" in str(info.value)
