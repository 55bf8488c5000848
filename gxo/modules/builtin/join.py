"""``stream:join``: the two-phase hash join of GXO, over stream inputs.

Build streams are read to their end into ``key -> stream -> [records]``; then the probe
stream is read in order and each probe record is joined with the build records of its key.
Join types, key normalisation and the output shapes follow the Go original
(``reference/gxo-go-behaviour.md`` section 9.4).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from typing import Any, ClassVar

import msgspec

from gxo.errors import TemplateError
from gxo.modules.base import Module, ModuleContext, ModuleError, ParamsError

__all__ = ["JoinModule", "JoinParams"]

_JOIN_TYPES = ("inner", "left", "right", "outer")
_INT64 = (-(2**63), 2**63 - 1)
_DECIMAL = re.compile(r"[+-]?[0-9]+\Z")


class JoinParams(msgspec.Struct, forbid_unknown_fields=True):
    """Parameters of ``stream:join``; see :class:`JoinModule`."""

    join_type: str
    on: list[Any]
    output: Any = None
    limits: Any = None

    def __post_init__(self) -> None:
        # GXO's checks that need no records, with GXO's messages: here, a literal mistake
        # (join_type: sideways, a side with both field and template) is a load error
        # (`gxo validate`, exit 2) rather than a failure after the producers ran.
        try:
            if self.join_type not in _JOIN_TYPES:
                raise ParamsError(f"unsupported join_type: '{self.join_type}'")
            _output(self.output, _sides(self.on, None, compile_templates=False))
            _limit(self.limits)
        except ParamsError as exc:
            raise ValueError(exc.message) from None


class _Side(msgspec.Struct):
    stream: str
    probe: bool
    field: str | None
    template: Any


class JoinModule(Module[JoinParams]):
    """Join the records of several stream inputs on a key (a two-phase hash join).

    Params:
        join_type (str, required): ``inner``, ``left``, ``right`` or ``outer``.
        on (list, required): one mapping per stream input (at least two), each with
            ``stream`` (the producer task's name), ``role`` (``probe`` for exactly one of
            them; any other value is ``build``) and exactly one of ``field`` (a record key)
            or ``template`` (rendered per record against the state with the record's fields
            on top, as GXO writes it: ``template: "{{ .user_id }}"``; the loader keeps it out
            of the params rendering, see :mod:`gxo.config.join_keys`).
        output (mapping): ``merge_strategy`` ``flat`` (default: the records' fields merged,
            streams in name order, later names win) or ``nested`` (``{nesting_key: record}``
            with ``nesting_keys`` mapping each stream to its key).
        limits (mapping): ``max_build_records`` (int; 0 = unlimited): more build records
            fail the task.

    Keys are normalised like GXO: integers and whole floats are integers, a string of a
    base-10 integer is that integer (``"1"`` joins ``1``), ``None`` joins ``None``, other
    values compare as their text (``true`` is ``"true"``); a non-whole float is a key error.
    A record whose key cannot be found or normalised is skipped and counted in
    ``skipped_key_errors``. Left and outer joins emit unmatched probe records with the build
    sides empty; right and outer joins then emit unmatched build keys (ordered by their
    text) with no probe side.

    Summary: ``{records_joined, probe_stream_records, build_stream_records,
    skipped_key_errors}``.
    """

    name: ClassVar[str] = "stream:join"
    Params: ClassVar[type[msgspec.Struct]] = JoinParams

    def run(self, params: JoinParams, ctx: ModuleContext) -> dict[str, Any]:
        join_type = params.join_type
        if join_type not in _JOIN_TYPES:
            raise ParamsError(f"unsupported join_type: '{join_type}'")
        sides = _sides(params.on, len(ctx.input_names))
        names = set(ctx.input_names)
        for side in sides:
            if side.stream not in names:
                raise ParamsError(
                    f"stream '{side.stream}' defined but no input channel provided by engine"
                )
        nested, nesting = _output(params.output, sides)
        limit = _limit(params.limits)
        probe = next(side for side in sides if side.probe)
        builds = [side for side in sides if not side.probe]
        stats = {"skipped_key_errors": 0, "build_stream_records": 0, "probe_stream_records": 0}

        table = _build(builds, limit, stats, ctx)

        def shape(combo: dict[str, Any]) -> dict[str, Any]:
            if nested:
                return {nesting[name]: value for name, value in combo.items()}
            merged: dict[str, Any] = {}
            for name in sorted(combo):
                value = combo[name]
                if isinstance(value, dict):
                    merged.update(value)
            return merged

        joined = 0
        matched: set[Any] = set()
        emit = ctx.emit
        outer_probe = join_type in ("left", "outer")
        for record in ctx.input(probe.stream):
            stats["probe_stream_records"] += 1
            ok, key = _key(probe, record, ctx)
            if not ok:
                stats["skipped_key_errors"] += 1
                continue
            entries = table.get(_hashable(key))
            if entries is not None:
                matched.add(_hashable(key))
                for combo in _combinations(builds, entries, join_type == "inner"):
                    emit(shape({probe.stream: record, **combo}))
                    joined += 1
            elif outer_probe:
                emit(shape({probe.stream: record, **{side.stream: None for side in builds}}))
                joined += 1
        if join_type in ("right", "outer"):
            for key in sorted(table, key=_text):
                if key in matched:
                    continue
                for combo in _combinations(builds, table[key], False):
                    emit(shape(combo))
                    joined += 1
        return {"records_joined": joined, **_ordered(stats)}


def _build(
    builds: list[_Side], limit: int, stats: dict[str, int], ctx: ModuleContext
) -> dict[Any, dict[str, list[Any]]]:
    """Build phase: every build stream read to its end into ``key -> stream -> [records]``."""
    table: dict[Any, dict[str, list[Any]]] = {}
    exceeded = False
    for side in builds:
        for record in ctx.input(side.stream):
            stats["build_stream_records"] += 1
            if limit and stats["build_stream_records"] > limit:
                exceeded = True  # keep draining, like GXO
                continue
            ok, key = _key(side, record, ctx)
            if not ok:
                stats["skipped_key_errors"] += 1
                continue
            table.setdefault(key, {}).setdefault(side.stream, []).append(record)
    if exceeded:
        raise ModuleError(f"limit exceeded: max_build_records of {limit} reached")
    return table


def _ordered(stats: dict[str, int]) -> dict[str, int]:
    return {
        "probe_stream_records": stats["probe_stream_records"],
        "build_stream_records": stats["build_stream_records"],
        "skipped_key_errors": stats["skipped_key_errors"],
    }


def _combinations(
    builds: list[_Side], entries: dict[str, list[Any]], inner: bool
) -> Iterator[dict[str, Any]]:
    """The cartesian product of each build stream's entries, in build-stream order."""
    columns: list[list[Any]] = []
    for side in builds:
        found = entries.get(side.stream)
        if not found:
            if inner:
                return
            found = [None]
        columns.append(found)
    for values in itertools.product(*columns):
        yield {side.stream: value for side, value in zip(builds, values, strict=True)}


def _sides(on: list[Any], inputs: int | None, *, compile_templates: bool = True) -> list[_Side]:
    """The sides of ``on``, checked; ``inputs`` is the number of stream inputs (``None``:
    not known yet, at load)."""
    if len(on) < 2 or (inputs is not None and len(on) != inputs):
        count = "at least 2" if inputs is None else str(inputs)
        raise ParamsError(
            f"parameter 'on' must be a list of {count} objects, one for each input stream"
        )
    sides: list[_Side] = []
    seen: set[str] = set()
    for index, element in enumerate(on):
        if not isinstance(element, dict):
            raise ParamsError(f"element {index} in 'on' is not a map")
        stream = element.get("stream")
        if not isinstance(stream, str):
            raise ParamsError(f"missing 'stream' key in element {index} of 'on'")
        if stream in seen:
            raise ParamsError(f"duplicate stream name '{stream}' in 'on'")
        seen.add(stream)
        if "role" not in element:
            raise ParamsError(f"stream '{stream}' must have 'role' ('build' or 'probe')")
        field = element.get("field")
        template = element.get("template")
        field = field if isinstance(field, str) else None
        template = template if isinstance(template, str) else None
        if (field is None) == (template is None):
            raise ParamsError(f"stream '{stream}' must have exactly one of 'field' or 'template'")
        compiled = None
        if template is not None and compile_templates:
            from gxo.template import compile_value

            try:
                compiled = compile_value(
                    template, where=f"$.params.on[{index}].template", allow_secret=False
                )
            except TemplateError as exc:
                raise ParamsError(f"failed to render join key template: {exc}") from None
        sides.append(_Side(stream, element["role"] == "probe", field, compiled))
    probes = sum(1 for side in sides if side.probe)
    if probes != 1:
        raise ParamsError(f"exactly one stream must have role 'probe', found {probes}")
    return sides


def _output(output: Any, sides: list[_Side]) -> tuple[bool, dict[str, str]]:
    if not isinstance(output, dict):
        return False, {}
    strategy = output.get("merge_strategy", "flat")
    if strategy == "flat":
        return False, {}
    if strategy != "nested":
        raise ParamsError(f"unsupported merge_strategy: '{strategy}'")
    keys = output.get("nesting_keys")
    if not isinstance(keys, dict):
        raise ParamsError("'nesting_keys' is required for nested merge_strategy")
    if not all(isinstance(value, str) for value in keys.values()):
        raise ParamsError("values in 'nesting_keys' must be strings")
    for side in sides:
        if side.stream not in keys:
            raise ParamsError(f"missing nesting_key for stream '{side.stream}'")
    return True, {str(k): v for k, v in keys.items()}


def _limit(limits: Any) -> int:
    if not isinstance(limits, dict):
        return 0
    value = limits.get("max_build_records", 0)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ParamsError("parameter 'limits.max_build_records' must be a non-negative integer")
    return value


def _key(side: _Side, record: Any, ctx: ModuleContext) -> tuple[bool, Any]:
    """(True, normalised key) or (False, None) on a key error."""
    if side.field is not None:
        if not isinstance(record, dict) or side.field not in record:
            return False, None
        raw = record[side.field]
    else:
        scope = dict(ctx.state)
        if isinstance(record, dict):
            scope.update(record)
        try:
            raw = side.template.render(scope)
        except TemplateError:
            return False, None
    try:
        return True, _hashable(_normalise(raw))
    except ValueError:
        return False, None


def _normalise(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if value.is_integer():
            return int(value)
        raise ValueError(f"cannot use non-integer float64 '{value:f}' as a join key")
    if isinstance(value, str):
        if _DECIMAL.match(value):
            number = int(value)
            if _INT64[0] <= number <= _INT64[1]:
                return number
        return value
    return _text(value)


def _hashable(key: Any) -> Any:
    return key if key is None or isinstance(key, int | str) else _text(key)


def _text(key: Any) -> str:
    """Go's ``%v`` of a key, as far as it matters for ordering."""
    return "<nil>" if key is None else str(key)
