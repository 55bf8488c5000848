"""Turn a task's rendered ``params`` mapping into a module's ``Params`` Struct, and check
a task's unrendered ``params`` at load.

msgspec does the validation; this module only rewrites its messages
(``Expected `str`, got `int` - at `$.args[1]```) into the wording a playbook author reads
(``parameter 'args[1]' must be a string, got int``), close to GXO's own messages, and adds a
"did you mean" for misspelt parameter names.

:func:`check_params` is the load-time check (``gxo validate`` and every run): the same
conversion, field by field so every wrong field is reported, on params that still hold
templates. A templated string stands in for a value of whatever type the field declares, so
only literal values are judged. It is pure data in, data out, so it runs in the parent for
built-in modules and in a short-lived worker process (:mod:`gxo.modules._check`) for
third-party ones.
"""

from __future__ import annotations

import functools
import re
import types
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

import msgspec

from gxo.modules.base import Module, ParamsError

__all__ = ["ParamIssue", "check_params", "convert_params"]

S = TypeVar("S", bound=msgspec.Struct)

# Patterns for msgspec's error messages, needed only when a conversion fails: kept as text and
# compiled by ``re``'s own cache on first use, so a valid run does not compile them at start-up.
_EXPECTED = r"(?s)^Expected `(?P<expected>[^`]+)`(?P<constraint>[^,]*?)(?:, got `(?P<got>[^`]+)`)?$"
_UNKNOWN = r"^Object contains unknown field `(?P<field>[^`]+)`$"
_MISSING = r"^Object missing required field `(?P<field>[^`]+)`$"
_AT = r"(?s)^(?P<message>.*) - at (?P<where>`[^`]*`(?: in `[^`]*`)?)$"
_KEY_IN = r"^`key` in `(?P<path>[^`]*)`$"
_SEGMENT = r"\.([^.\[]+)|\[([^\]]*)\]"

#: msgspec's type names, as "must be ..." and as "got ...".
_EXPECTED_WORDS = {
    "str": "a string",
    "int": "an integer",
    "float": "a number",
    "bool": "a boolean",
    "null": "null",
    "array": "a list",
    "object": "a mapping",
}
_GOT_WORDS = {"null": "None", "array": "list", "object": "mapping"}


def convert_params(
    module_cls: type[Module[S]], raw: Mapping[str, Any] | None, *, unknown: str = "error"
) -> S:
    """Validate ``raw`` against ``module_cls.Params`` and return the Struct.

    Conversion is strict (``"3"`` is not an integer): templates render to native values, so a
    string where a number belongs is a mistake worth reporting. ``None`` means no parameters.
    Cross-field rules live in the Struct's ``__post_init__`` (raise ``ValueError`` with the
    final message); they surface here as :class:`ParamsError` too.

    With ``unknown="ignore"`` a parameter the Struct does not declare (at any depth) is left
    out instead of failing, as GXO ignores parameters a module does not read; the load-time
    check (:func:`check_params`) has already warned about it, or refused it with
    ``--strict``. Workers convert this way.

    Raises:
        ParamsError: with a message such as ``parameter 'args[1]' must be a string, got int``,
            ``unknown parameter 'comand' (did you mean 'command'?)`` or
            ``missing required parameter 'command'``.
    """
    params_type = module_cls.Params
    data: Any = {} if raw is None else raw
    if not isinstance(data, dict) and isinstance(data, Mapping):
        data = dict(data)
    data = module_cls.prepare_params(data)
    for _ in range(_MAX_ROUNDS):
        try:
            return typing.cast(S, msgspec.convert(data, params_type))
        except msgspec.ValidationError as exc:
            message = str(exc)
            if unknown == "ignore":
                core, where = _split(message)
                found = re.match(_UNKNOWN, core)
                if found is not None:
                    data = _without(data, (*(where or ()), found["field"]))
                    continue
            raise ParamsError(plain_message(message, params_type)) from None
    raise ParamsError("params: too many unknown parameters")  # pragma: no cover - bound only


_MAX_ROUNDS = 200
#: A stand-in for a templated value, by the type msgspec says it expected there.
_PLACEHOLDERS: dict[str, Any] = {
    "str": "x",
    "int": 0,
    "float": 0.0,
    "bool": False,
    "null": None,
    "array": [],
    "object": {},
}


class ParamIssue(msgspec.Struct, frozen=True, array_like=True):
    """One thing wrong with a task's params: where (relative to ``params``), what, and
    whether it is an unknown parameter (a warning unless the check is strict)."""

    path: tuple[str | int, ...]
    message: str
    unknown: bool = False


def is_template(value: object) -> bool:
    """Whether a params string holds a template (rendered in the worker, type unknown)."""
    return isinstance(value, str) and ("{{" in value or "{%" in value or "{#" in value)


def check_params(params_type: type[msgspec.Struct], raw: Any) -> list[ParamIssue]:
    """Every problem of a task's unrendered ``params`` for a module whose Params is
    ``params_type``: missing required parameters, literal values of the wrong type (one per
    parameter), unknown parameters (flagged ``unknown``, with a "did you mean"), and, when
    nothing is templated, the Struct's own cross-field rules.
    """
    if raw is None:
        raw = {}
    if is_template(raw):
        return []  # the whole mapping comes from a template
    if not isinstance(raw, dict):
        return [ParamIssue((), f"params must be a mapping, got {_kind(raw)}")]
    fields = _fields(params_type)
    by_name = {field.encode_name: field for field in fields}
    issues: list[ParamIssue] = []
    for key in raw:
        if key not in by_name:
            text = f"unknown parameter {key!r}"
            import difflib  # only for a message: not at start-up

            close = difflib.get_close_matches(str(key), list(by_name), n=1)
            if close:
                text += f" (did you mean {close[0]!r}?)"
            issues.append(ParamIssue((key,), text, unknown=True))
    templated = False
    for field in fields:
        name = field.encode_name
        if name not in raw:
            if field.required:
                issues.append(ParamIssue((), f"missing required parameter {name!r}"))
            continue
        value = raw[name]
        if is_template(value):
            templated = True
            continue
        if _holds_template(value):
            templated = True
        issues.extend(_check_field(params_type, field.type, name, value))
    if not templated and all(issue.unknown for issue in issues):
        known = {key: value for key, value in raw.items() if key in by_name}
        try:
            msgspec.convert(known, params_type)
        except msgspec.ValidationError as exc:
            core, where = _split(str(exc))
            if not re.match(_UNKNOWN, core):
                issues.append(ParamIssue(where or (), plain_message(str(exc), params_type)))
    return issues


def _check_field(
    params_type: type[msgspec.Struct], field_type: Any, name: str, value: Any
) -> list[ParamIssue]:
    """The problems of one parameter's value; templated strings inside it are replaced, one
    by one, by a placeholder of the type msgspec expected there."""
    issues: list[ParamIssue] = []
    for _ in range(_MAX_ROUNDS):
        try:
            msgspec.convert(value, field_type)
            return issues
        except msgspec.ValidationError as exc:
            core, where = _split(str(exc))
            where = where or ()
            full = (name, *where)
            unknown = re.match(_UNKNOWN, core)
            if unknown is not None:
                field = unknown["field"]
                text = plain_message(f"{core} - at `{_format(full)}`", params_type)
                issues.append(ParamIssue((*full, field), text, unknown=True))
                value = _without(value, (*where, field))
                continue
            expected = re.match(_EXPECTED, core)
            if _ANY_VALUE in where:
                # msgspec does not say which value of a mapping failed: stand in for every
                # templated value of that mapping at once.
                prefix = where[: where.index(_ANY_VALUE)]
                mapping = _get(value, prefix)
                if isinstance(mapping, dict) and expected is not None:
                    placeholder = _placeholder(expected["expected"])
                    swapped = {
                        key: placeholder if is_template(item) else item
                        for key, item in mapping.items()
                    }
                    if placeholder is not _NONE and swapped != mapping:
                        value = _replaced(value, prefix, swapped)
                        continue
                current: Any = None
            else:
                current = _get(value, where)
            if is_template(current) and expected is not None:
                placeholder = _placeholder(expected["expected"])
                if placeholder is not _NONE and placeholder != current:
                    value = _replaced(value, where, placeholder)
                    continue
            if is_template(current):
                return issues  # a constraint a placeholder cannot meet: judged at run time
            issues.append(
                ParamIssue(full, plain_message(f"{core} - at `{_format(full)}`", params_type))
            )
            return issues
    return issues


_NONE = object()
#: msgspec's ``[...]``: some value of a mapping.
_ANY_VALUE = "..."


def _placeholder(expected: str) -> Any:
    for part in expected.split(" | "):
        if part in _PLACEHOLDERS:
            return _PLACEHOLDERS[part]
    return _NONE


def _holds_template(value: Any) -> bool:
    if isinstance(value, str):
        return is_template(value)
    if isinstance(value, dict):
        return any(_holds_template(item) for item in value.values())
    if isinstance(value, list):
        return any(_holds_template(item) for item in value)
    return False


def _kind(value: Any) -> str:
    if isinstance(value, list):
        return "a list"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return "a string" if isinstance(value, str) else type(value).__name__


def _split(message: str) -> tuple[str, tuple[str | int, ...] | None]:
    """A msgspec message as (message without its location, the path it names, if any)."""
    at = re.match(_AT, message)
    if at is None:
        return message, None
    where = at["where"]
    if re.match(_KEY_IN, where) is not None:
        return at["message"], None
    parts: list[str | int] = []
    for name, index in re.findall(_SEGMENT, where.strip("`")[1:]):
        if name:
            parts.append(name)
        else:
            try:
                parts.append(int(index))
            except ValueError:
                parts.append(index)
    return at["message"], tuple(parts)


def _format(path: tuple[str | int, ...]) -> str:
    return "$" + "".join(
        f"[{part}]" if isinstance(part, int) or part == _ANY_VALUE else f".{part}" for part in path
    )


def _get(value: Any, path: tuple[str | int, ...]) -> Any:
    for part in path:
        try:
            value = value[part]
        except (KeyError, IndexError, TypeError):
            return None
    return value


def _replaced(value: Any, path: tuple[str | int, ...], new: Any) -> Any:
    """A copy of ``value`` with the item at ``path`` replaced (containers on the way copied)."""
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        return {**value, head: _replaced(value[head], rest, new)}
    if isinstance(value, list) and isinstance(head, int):
        copy = list(value)
        copy[head] = _replaced(value[head], rest, new)
        return copy
    return value


def _without(value: Any, path: tuple[str | int, ...]) -> Any:
    """A copy of ``value`` without the mapping key at the end of ``path``."""
    if not path:
        return value
    if len(path) == 1:
        if isinstance(value, Mapping):
            return {key: item for key, item in value.items() if key != path[0]}
        return value
    head = path[0]
    try:
        child = value[head]
    except (KeyError, IndexError, TypeError):
        return value
    return _replaced(value, (head,), _without(child, path[1:]))


def exclusive(params: msgspec.Struct, *names: str) -> None:
    """Raise ``ValueError`` when more than one of the fields ``names`` is given.

    Meant for a Params Struct's ``__post_init__`` (``convert_params`` turns the error into a
    :class:`ParamsError`), so every module words it the same way, as GXO's paramutil did:
    ``parameters 'a' and 'b' are mutually exclusive``. A field counts as given when its value
    differs from its default.
    """
    defaults = _defaults(type(params))
    given = [n for n in names if getattr(params, n) != defaults.get(n, msgspec.NODEFAULT)]
    if len(given) > 1:
        quoted = [f"'{n}'" for n in given]
        raise ValueError(
            f"parameters {', '.join(quoted[:-1])} and {quoted[-1]} are mutually exclusive"
        )


@functools.cache
def _fields(params_type: type[msgspec.Struct]) -> tuple[msgspec.structs.FieldInfo, ...]:
    """``msgspec.structs.fields``, once per Params type (it resolves type hints: slow)."""
    return msgspec.structs.fields(params_type)


@functools.cache
def _defaults(params_type: type[msgspec.Struct]) -> dict[str, Any]:
    """Each field's default, once per Params type: ``msgspec.structs.fields`` resolves type
    hints (~120 µs), too slow for every conversion on a module's hot path."""
    return {
        f.name: (f.default_factory() if f.default_factory is not msgspec.NODEFAULT else f.default)
        for f in msgspec.structs.fields(params_type)
    }


def plain_message(message: str, params_type: type[msgspec.Struct]) -> str:
    """Rewrite one msgspec validation message for a playbook author."""
    path, is_key = "$", False
    at = re.match(_AT, message)
    if at is not None:
        message, where = at["message"], at["where"]
        key_in = re.match(_KEY_IN, where)
        if key_in is not None:
            path, is_key = key_in["path"], True
        else:
            path = where.strip("`")

    if (m := re.match(_UNKNOWN, message)) is not None:
        name = _join(path, m["field"])
        text = f"unknown parameter {name!r}"
        import difflib  # only for a message: not at start-up

        close = difflib.get_close_matches(m["field"], _field_names(params_type, path), n=1)
        return f"{text} (did you mean {close[0]!r}?)" if close else text
    if (m := re.match(_MISSING, message)) is not None:
        return f"missing required parameter {_join(path, m['field'])!r}"
    if (m := re.match(_EXPECTED, message)) is not None:
        expected = " or ".join(
            _EXPECTED_WORDS.get(part, f"a {part}") for part in m["expected"].split(" | ")
        )
        text = f"must be {expected}{m['constraint']}"
        if m["got"]:
            text += f", got {_GOT_WORDS.get(m['got'], m['got'])}"
        return f"{_subject(path, is_key)} {text}"
    if path == "$":
        return message
    return f"{_subject(path, is_key)}: {message[:1].lower()}{message[1:]}"


def _subject(path: str, is_key: bool) -> str:
    if path == "$":
        return "every parameter name" if is_key else "params"
    name = path[2:]
    if is_key:
        return f"every key of parameter {name!r}"
    if name.endswith("[...]"):
        return f"every value of parameter {name[:-5]!r}"
    return f"parameter {name!r}"


def _join(path: str, field: str) -> str:
    return field if path == "$" else f"{path[2:]}.{field}"


def _field_names(params_type: type[msgspec.Struct], path: str) -> list[str]:
    """The parameter names of the Struct found at ``path`` (``$.a[0].b``), if there is one."""
    current: Any = params_type
    for name, _index in re.findall(_SEGMENT, path[1:]):
        current = _unwrap(current, want_struct=bool(name))
        if current is None:
            return []
        if name:
            by_name = {f.encode_name: f.type for f in msgspec.structs.fields(current)}
            if name not in by_name:
                return []
            current = by_name[name]
        else:
            args = typing.get_args(current)
            current = args[-1] if args else Any
    struct = _unwrap(current, want_struct=True)
    return [] if struct is None else [f.encode_name for f in msgspec.structs.fields(struct)]


def _unwrap(tp: Any, *, want_struct: bool) -> Any:
    """Strip ``Annotated`` and pick the Struct (or container) member of a union."""
    while typing.get_origin(tp) is typing.Annotated:
        tp = typing.get_args(tp)[0]
    members = (
        typing.get_args(tp)
        if isinstance(tp, types.UnionType) or typing.get_origin(tp) is typing.Union
        else (tp,)
    )
    for member in members:
        if want_struct and isinstance(member, type) and issubclass(member, msgspec.Struct):
            return member
        if not want_struct and typing.get_origin(member) in (list, tuple, set, frozenset, dict):
            return member
    return None
