"""Find module classes by type name: built-ins from a static table, others by entry point.

Built-in modules are declared in ``pyproject.toml`` under ``[project.entry-points."gxo.modules"]``
like any third-party module, and :data:`BUILTIN_MODULES` keeps a copy of that table (a test
keeps the two equal), so a playbook that only uses built-ins never pays for an entry-point
scan. The scan of installed distributions happens at most once per process, and only when a
type is not built-in or when every type is listed. A module is imported when it is first
looked up, and then cached. A built-in name cannot be taken over by a third-party entry point.

A :class:`ModuleRegistry` holds module types given in code (``gxo.run(modules=...)``, ``gxo
--module NAME=pkg.mod:Class``, GXO's ``Register``): each travels to the workers as its import
path, so a class must be importable by name (not defined in ``__main__`` or a notebook).
"""

from __future__ import annotations

import inspect
import logging
import threading
import types
import typing
from collections.abc import Collection, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Final, NamedTuple

import msgspec

from gxo._util.importable import import_target, qualified_name
from gxo.errors import ModuleLookupError, UsageError
from gxo.modules.base import Module

if TYPE_CHECKING:  # importlib.metadata costs ~10 ms: imported only for a third-party scan
    from importlib.metadata import EntryPoint

__all__ = [
    "BUILTIN_MODULES",
    "GROUP",
    "ModuleInfo",
    "ModuleRegistry",
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
_loaded: dict[tuple[str, str], type[Module[Any]]] = {}
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


def available_types(extra: Mapping[str, str] | None = None) -> list[str]:
    """Every module type that can be used: built-ins, installed entry points and ``extra``
    (type name -> ``"pkg.mod:Class"``, from a :class:`ModuleRegistry`), sorted."""
    return sorted({*BUILTIN_MODULES, *_scan(), *(extra or {})})


class ModuleRegistry:
    """Module types given in code rather than by an installed entry point (GXO's ``Register``).

    ::

        registry = ModuleRegistry()
        registry.register("my:step", MyStep)          # a class, importable by name
        registry.register("my:other", "pkg.mod:Other")  # or its import path
        gxo.run("site.yaml", modules=registry)

    Workers import each class by its qualified name, so a class defined in ``__main__`` (a
    script run directly), a REPL, a notebook or a function is refused here, before any run.
    A registered name may not be a built-in type's; it wins over an entry point of that name.
    """

    def __init__(self, modules: Mapping[str, type[Module[Any]] | str] | None = None) -> None:
        self._targets: dict[str, str] = {}
        self._classes: dict[str, type[Module[Any]]] = {}
        for name, module in (modules or {}).items():
            self.register(name, module)

    def register(self, name: str, module: type[Module[Any]] | str) -> None:
        """Add module type ``name``: a :class:`~gxo.modules.Module` subclass or its
        ``"pkg.mod:Class"`` path (imported when first used).

        Raises:
            UsageError: a built-in name, a class that is not a Module or not importable by
                name, or a malformed path.
        """
        if not isinstance(name, str) or not name or name != name.strip():
            raise UsageError(f"a module type name must be a non-empty string, got {name!r}")
        if name in BUILTIN_MODULES:
            raise UsageError(f"module type {name!r} is built in and cannot be replaced")
        if isinstance(module, str):
            module_name, sep, attr = module.partition(":")
            if not (sep and module_name and attr):
                raise UsageError(f"module {name!r}: expected package.module:Class, got {module!r}")
            self._targets[name] = module
            self._classes.pop(name, None)
            return
        if not (isinstance(module, type) and issubclass(module, Module)):
            raise UsageError(f"module {name!r}: {module!r} is not a gxo.modules.Module subclass")
        self._targets[name] = qualified_name(module, f"module {name!r}:")
        self._classes[name] = module

    def reads_state(self, used: Collection[str] = ()) -> dict[str, tuple[str, ...]]:
        """Type name -> the state keys its class declares in ``reads_state``, for every type
        given as a class here and for each non-built-in type in ``used`` (a playbook's types).

        A type given here as a path, or installed by an entry point, is imported in the parent
        to read its declaration (built-ins declare none and are never imported here). A path
        given here that cannot be imported is an error now, before any run; an entry point
        that cannot be imported declares nothing, and its tasks fail in the worker with
        ``module_unavailable`` as they would without this lookup.

        Raises:
            UsageError: a registered path that cannot be imported or is not a Module.
        """
        found = {
            name: tuple(cls.reads_state) for name, cls in self._classes.items() if cls.reads_state
        }
        for name in sorted(set(used) - set(self._classes) - set(BUILTIN_MODULES)):
            try:
                cls = load_module(name, self._targets)
            except ModuleLookupError as exc:
                if name in self._targets:
                    raise UsageError(f"module {name!r}: {exc}") from exc
                continue
            if cls.reads_state:
                found[name] = tuple(cls.reads_state)
        return found

    def get(self, name: str) -> type[Module[Any]]:
        """The class registered as ``name`` (imported if it was given as a path).

        Raises:
            ModuleLookupError: ``name`` is not registered here, or its import failed.
        """
        if name not in self._targets:
            raise ModuleLookupError(
                f"module type {name!r} is not registered; registered: "
                f"{', '.join(self.list()) or 'none'}"
            )
        return load_module(name, self._targets)

    def list(self) -> list[str]:
        """The registered type names, sorted."""
        return sorted(self._targets)

    @property
    def targets(self) -> Mapping[str, str]:
        """Type name -> ``"pkg.mod:Class"``: what workers are sent."""
        return types.MappingProxyType(self._targets)

    def __contains__(self, name: object) -> bool:
        return name in self._targets

    def __repr__(self) -> str:
        return f"ModuleRegistry({self._targets!r})"


class KnownTypes(Collection[str]):
    """The installed module types, for validation, scanning entry points only when needed.

    ``"exec" in KnownTypes()`` answers from the built-in table; only a type that is not
    built-in (or listing them all, for a "did you mean" hint) reads installed metadata.
    """

    def __init__(self, extra: Mapping[str, str] | None = None) -> None:
        self.extra = dict(extra or {})

    def __contains__(self, name: object) -> bool:
        return (
            name in BUILTIN_MODULES
            or name in self.extra
            or (isinstance(name, str) and name in _scan())
        )

    def __iter__(self) -> Iterator[str]:
        return iter(available_types(self.extra))

    def __len__(self) -> int:
        return len(available_types(self.extra))


def load_module(type_name: str, extra: Mapping[str, str] | None = None) -> type[Module[Any]]:
    """The module class registered as ``type_name``, imported on first use and cached.

    Raises:
        ModuleLookupError: the type is unknown (the message suggests close names), several
            distributions register it, or its import failed (the message names the type, the
            entry point, its target and the import error).

    ``extra`` (type name -> ``"pkg.mod:Class"``, a :class:`ModuleRegistry`'s targets) is
    looked up after the built-ins and before the entry points.
    """
    entry = _entry_point(type_name, extra)
    key = (type_name, entry.value)
    cls = _loaded.get(key)
    if cls is not None:
        return cls
    with _lock:
        cls = _loaded.get(key)
        if cls is None:
            cls = _import(entry)
            _loaded[key] = cls
    return cls


def describe_all(extra: Mapping[str, str] | None = None) -> list[ModuleInfo]:
    """Every available module type (with ``extra``, as for :func:`available_types`),
    described; one that cannot be loaded is listed with ``broken`` set, so one broken plugin
    does not hide the others."""
    described = []
    for name in available_types(extra):
        try:
            described.append(describe(name, extra))
        except ModuleLookupError as exc:
            if extra and name in extra:
                target = extra[name]
            else:
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


def describe(type_name: str, extra: Mapping[str, str] | None = None) -> ModuleInfo:
    """Name, description, docstring and parameters of a module type (loads the module)."""
    cls = load_module(type_name, extra)
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
        target=_entry_point(type_name, extra).value,
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
        return import_target(self.value)


def _entry_point(
    type_name: str, extra: Mapping[str, str] | None = None
) -> EntryPoint | _BuiltinEntry:
    target = BUILTIN_MODULES.get(type_name)
    if target is None and extra:
        target = extra.get(type_name)
    if target is not None:
        return _BuiltinEntry(type_name, target)
    candidates = _scan().get(type_name)
    if not candidates:
        known = available_types(extra)
        message = f"unknown module type {type_name!r}"
        import difflib  # only for a message: not at start-up

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
    if isinstance(entry, _BuiltinEntry):  # a built-in, or a class given by --module/a registry
        where = f"class {entry.value!r}"
    else:
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
