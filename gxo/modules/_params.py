"""Turn a task's rendered ``params`` mapping into a module's ``Params`` Struct.

msgspec does the validation; this module only rewrites its messages
(``Expected `str`, got `int` - at `$.args[1]```) into the wording a playbook author reads
(``parameter 'args[1]' must be a string, got int``), close to GXO's own messages, and adds a
"did you mean" for misspelt parameter names.
"""

from __future__ import annotations

import difflib
import functools
import re
import types
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

import msgspec

from gxo.modules.base import Module, ParamsError

__all__ = ["convert_params"]

S = TypeVar("S", bound=msgspec.Struct)

_EXPECTED = re.compile(
    r"^Expected `(?P<expected>[^`]+)`(?P<constraint>[^,]*?)(?:, got `(?P<got>[^`]+)`)?$",
    re.DOTALL,
)
_UNKNOWN = re.compile(r"^Object contains unknown field `(?P<field>[^`]+)`$")
_MISSING = re.compile(r"^Object missing required field `(?P<field>[^`]+)`$")
_AT = re.compile(r"^(?P<message>.*) - at (?P<where>`[^`]*`(?: in `[^`]*`)?)$", re.DOTALL)
_KEY_IN = re.compile(r"^`key` in `(?P<path>[^`]*)`$")
_SEGMENT = re.compile(r"\.([^.\[]+)|\[([^\]]*)\]")

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


def convert_params(module_cls: type[Module[S]], raw: Mapping[str, Any] | None) -> S:
    """Validate ``raw`` against ``module_cls.Params`` and return the Struct.

    Conversion is strict (``"3"`` is not an integer): templates render to native values, so a
    string where a number belongs is a mistake worth reporting. ``None`` means no parameters.
    Cross-field rules live in the Struct's ``__post_init__`` (raise ``ValueError`` with the
    final message); they surface here as :class:`ParamsError` too.

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
    try:
        result = msgspec.convert(data, params_type)
    except msgspec.ValidationError as exc:
        raise ParamsError(plain_message(str(exc), params_type)) from None
    return typing.cast(S, result)


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
    at = _AT.match(message)
    if at is not None:
        message, where = at["message"], at["where"]
        key_in = _KEY_IN.match(where)
        if key_in is not None:
            path, is_key = key_in["path"], True
        else:
            path = where.strip("`")

    if (m := _UNKNOWN.match(message)) is not None:
        name = _join(path, m["field"])
        text = f"unknown parameter {name!r}"
        close = difflib.get_close_matches(m["field"], _field_names(params_type, path), n=1)
        return f"{text} (did you mean {close[0]!r}?)" if close else text
    if (m := _MISSING.match(message)) is not None:
        return f"missing required parameter {_join(path, m['field'])!r}"
    if (m := _EXPECTED.match(message)) is not None:
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
    for name, _index in _SEGMENT.findall(path[1:]):
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
