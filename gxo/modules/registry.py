"""Find module classes by type name: built-ins from a static table, others by entry point.

Built-in modules are declared in ``pyproject.toml`` under ``[project.entry-points."gxo.modules"]``
like any third-party module, and :data:`BUILTIN_MODULES` keeps a copy of that table (a test
keeps the two equal), so a playbook that only uses built-ins never pays for an entry-point
scan. The scan of installed distributions happens at most once per process, and only when a
type is not built-in or when every type is listed. A module is imported when it is first
looked up, and then cached. A built-in name cannot be taken over by a third-party entry point.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import logging
import threading
import types
import typing
from collections.abc import Collection, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Final, NamedTuple

import msgspec

from gxo.errors import ModuleLookupError
from gxo.modules.base import Module

if TYPE_CHECKING:  # importlib.metadata costs ~10 ms: imported only for a third-party scan
    from importlib.metadata import EntryPoint

__all__ = [
    "BUILTIN_MODULES",
    "GROUP",
    "ModuleInfo",
    "ParamInfo",
    "available_types",
    "describe",
    "describe_all",
    "load_module",
]

_log = logging.getLogger(__name__)

#: The entry-point group modules register under.
GROUP: Final = "gxo.modules"

#: Built-in type name -> ``"package.module:Class"``; equal to the pyproject.toml table.
BUILTIN_MODULES: Final[Mapping[str, str]] = types.MappingProxyType(
    {
        "exec": "gxo.modules.builtin.exec:ExecModule",
        "python": "gxo.modules.builtin.python:PythonModule",
        "passthrough": "gxo.modules.builtin.passthrough:PassthroughModule",
        "generate:from_list": "gxo.modules.builtin.generate:FromListModule",
        "stream:join": "gxo.modules.builtin.join:JoinModule",
        "file:read": "gxo.modules.builtin.files:FileReadModule",
        "file:write": "gxo.modules.builtin.files:FileWriteModule",
    }
)

_lock = threading.Lock()
_loaded: dict[str, type[Module[Any]]] = {}
_third_party: dict[str, list[EntryPoint]] | None = None


class ParamInfo(msgspec.Struct, frozen=True):
    """One parameter of a module, as ``gxo modules`` shows it."""

    name: str
    type: str
    required: bool
    default: Any = None


class ModuleInfo(msgspec.Struct, frozen=True):
    """What ``gxo modules TYPE`` shows: the first docstring line, the docstring, the params.

    ``broken`` is empty for a module that loads; for one that does not (its import raised, it
    is not a Module, two distributions register it) it says why, and the other fields are
    empty.
    """

    name: str
    description: str
    doc: str
    target: str
    supports_dry_run: bool
    parameters: tuple[ParamInfo, ...]
    broken: str = ""


def available_types() -> list[str]:
    """Every module type that can be used: built-ins and installed entry points, sorted."""
    return sorted({*BUILTIN_MODULES, *_scan()})


class KnownTypes(Collection[str]):
    """The installed module types, for validation, scanning entry points only when needed.

    ``"exec" in KnownTypes()`` answers from the built-in table; only a type that is not
    built-in (or listing them all, for a "did you mean" hint) reads installed metadata.
    """

    def __contains__(self, name: object) -> bool:
        return name in BUILTIN_MODULES or (isinstance(name, str) and name in _scan())

    def __iter__(self) -> Iterator[str]:
        return iter(available_types())

    def __len__(self) -> int:
        return len(available_types())


def load_module(type_name: str) -> type[Module[Any]]:
    """The module class registered as ``type_name``, imported on first use and cached.

    Raises:
        ModuleLookupError: the type is unknown (the message suggests close names), several
            distributions register it, or its import failed (the message names the type, the
            entry point, its target and the import error).
    """
    cls = _loaded.get(type_name)
    if cls is not None:
        return cls
    entry = _entry_point(type_name)
    with _lock:
        cls = _loaded.get(type_name)
        if cls is None:
            cls = _import(entry)
            _loaded[type_name] = cls
    return cls


def describe_all() -> list[ModuleInfo]:
    """Every available module type, described; one that cannot be loaded is listed with
    ``broken`` set, so one broken plugin does not hide the others."""
    described = []
    for name in available_types():
        try:
            described.append(describe(name))
        except ModuleLookupError as exc:
            target = ", ".join(sorted({ep.value for ep in _scan().get(name, [])}))
            described.append(
                ModuleInfo(
                    name=name,
                    description="",
                    doc="",
                    target=target,
                    supports_dry_run=False,
                    parameters=(),
                    broken=str(exc),
                )
            )
    return described


def describe(type_name: str) -> ModuleInfo:
    """Name, description, docstring and parameters of a module type (loads the module)."""
    cls = load_module(type_name)
    doc = inspect.cleandoc(cls.__doc__ or "")
    params = tuple(
        ParamInfo(
            name=field.encode_name,
            type=type_text(field.type),
            required=field.required,
            default=_default(field),
        )
        for field in msgspec.structs.fields(cls.Params)
    )
    return ModuleInfo(
        name=type_name,
        description=doc.partition("\n")[0],
        doc=doc,
        target=_entry_point(type_name).value,
        supports_dry_run=cls.supports_dry_run,
        parameters=params,
    )


def type_text(tp: Any) -> str:
    """A type annotation as a playbook author reads it: ``str | list[str]``, ``dict[str, Any]``."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Annotated:
        return type_text(args[0])
    if isinstance(tp, types.UnionType) or origin is typing.Union:
        return " | ".join(type_text(a) for a in args if a is not msgspec.UnsetType)
    if origin is typing.Literal:
        return " | ".join(repr(a) for a in args)
    if tp is Any:
        return "Any"
    if tp is type(None):
        return "None"
    if origin is not None:
        return f"{type_text(origin)}[{', '.join(type_text(a) for a in args)}]"
    if isinstance(tp, type):
        return tp.__name__
    return repr(tp)


def _default(field: msgspec.structs.FieldInfo) -> Any:
    if field.default_factory is not msgspec.NODEFAULT:
        return field.default_factory()
    if field.default is msgspec.NODEFAULT or field.default is msgspec.UNSET:
        return None
    return field.default


def entry_points(*, group: str) -> Collection[EntryPoint]:
    """``importlib.metadata.entry_points``, imported on the first third-party lookup."""
    from importlib.metadata import entry_points as scan

    return scan(group=group)


class _BuiltinEntry(NamedTuple):
    """A built-in's entry, loaded without reading any distribution metadata."""

    name: str
    value: str
    dist: None = None

    def load(self) -> Any:
        module_name, _, attr = self.value.partition(":")
        return getattr(importlib.import_module(module_name), attr)


def _entry_point(type_name: str) -> EntryPoint | _BuiltinEntry:
    target = BUILTIN_MODULES.get(type_name)
    if target is not None:
        return _BuiltinEntry(type_name, target)
    candidates = _scan().get(type_name)
    if not candidates:
        known = available_types()
        message = f"unknown module type {type_name!r}"
        close = difflib.get_close_matches(type_name, known, n=3, cutoff=0.6)
        if close:
            message += f" (did you mean {' or '.join(repr(c) for c in close)}?)"
        message += f"; available types: {', '.join(known)}"
        raise ModuleLookupError(message)
    if len({ep.value for ep in candidates}) > 1:
        targets = ", ".join(f"{ep.value} ({_dist_name(ep)})" for ep in candidates)
        raise ModuleLookupError(
            f"module type {type_name!r} is registered by several entry points in group "
            f"{GROUP!r}: {targets}; uninstall all but one"
        )
    return candidates[0]


def _scan() -> dict[str, list[EntryPoint]]:
    """Third-party entry points by name; read from installed metadata once per process."""
    global _third_party  # noqa: PLW0603 - a once-per-process cache
    if _third_party is None:
        with _lock:
            if _third_party is None:
                found: dict[str, list[EntryPoint]] = {}
                for ep in entry_points(group=GROUP):
                    builtin = BUILTIN_MODULES.get(ep.name)
                    if builtin is None:
                        found.setdefault(ep.name, []).append(ep)
                    elif ep.value != builtin:
                        _log.warning(
                            "ignoring entry point %s = %s from %s: %r is a built-in module type",
                            ep.name,
                            ep.value,
                            _dist_name(ep),
                            ep.name,
                        )
                _third_party = found
    return _third_party


def _import(entry: EntryPoint | _BuiltinEntry) -> type[Module[Any]]:
    where = f"entry point {entry.name!r} = {entry.value!r} (group {GROUP!r})"
    try:
        obj = entry.load()
    except Exception as exc:
        raise ModuleLookupError(
            f"module type {entry.name!r} failed to load: {where}: {type(exc).__name__}: {exc}"
        ) from exc
    if not (isinstance(obj, type) and issubclass(obj, Module)):
        raise ModuleLookupError(
            f"module type {entry.name!r}: {where} is not a gxo.modules.Module subclass"
        )
    params = getattr(obj, "Params", None)
    if not (isinstance(params, type) and issubclass(params, msgspec.Struct)):
        raise ModuleLookupError(
            f"module type {entry.name!r}: {where}: its Params is not a msgspec.Struct"
        )
    return obj


def _dist_name(entry: EntryPoint | _BuiltinEntry) -> str:
    dist = entry.dist
    return "unknown distribution" if dist is None else f"{dist.name} {dist.version}"


def module_version(type_name: str) -> str:
    """The version that stands for a module type's code, without importing it.

    gxo's own version for a built-in; the installed distribution's ``name version`` for an
    entry-point module (read from its metadata); ``""`` when neither is known. The run
    journal puts it in each instance's fingerprint, so upgrading a module reruns its tasks.
    """
    if type_name in BUILTIN_MODULES:
        from gxo._version import __version__

        return f"gxo {__version__}"
    candidates = _scan().get(type_name)
    if not candidates or candidates[0].dist is None:
        return ""
    dist = candidates[0].dist
    return f"{dist.name} {dist.version}"
