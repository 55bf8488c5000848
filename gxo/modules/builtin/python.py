"""``python``: call a Python function in the worker and keep its return value as the summary.

The function is named ``"package.module:name"`` (imported with importlib, so anything on
``sys.path``) or ``"path/to/file.py:name"`` (a file, relative to the playbook's directory,
or to the current working directory when it is not there; loaded under a private module
name and cached until the file changes; its directory first on ``sys.path``, so it imports
the modules beside it). Errors in finding the function are module errors
with a precise reason; an exception the function itself raises is not caught here, so the
worker reports it with its traceback.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import inspect
import os
import sys
import threading
import types
import weakref
from collections.abc import Callable
from importlib.machinery import ModuleSpec
from typing import Any, ClassVar

import msgspec

from gxo._util.digests import sha1_hex
from gxo.modules.base import Module, ModuleContext, ModuleError, ParamsError

__all__ = ["PythonModule", "PythonParams"]

#: Parameter names through which a function asks for the :class:`ModuleContext`.
CONTEXT_PARAMETERS = ("ctx", "gxo_context")

_lock = threading.Lock()
#: (resolved file path, mtime_ns, size) -> module loaded from that file.
_file_modules: dict[tuple[str, int, int], types.ModuleType] = {}
#: The same key -> the module's name, spec and compiled code. A pooled worker forgets a
#: user's module between two instances, so that each starts with fresh globals
#: (:mod:`gxo.pool.isolation`); running the module's code again costs microseconds, finding,
#: reading and compiling its file far more (most of a chained no-op task's time in its
#: worker). Bounded by the files (and versions of them) a run uses.
_file_code: dict[tuple[str, int, int], tuple[str, ModuleSpec, types.CodeType]] = {}
#: The same key -> the attributes a fresh module of that file starts with (``__name__``,
#: ``__spec__``, ``__file__``...), as ``importlib.util.module_from_spec`` sets them: copying
#: them into a new module costs a tenth of building them again for each instance.
_file_attrs: dict[tuple[str, int, int], dict[str, Any]] = {}
#: A function that is not a plain one (see :func:`_shape`) -> how to call it.
#: Weak keys: nothing is kept alive for the cache's sake.
_callees: weakref.WeakKeyDictionary[Callable[..., Any], _Callee] = weakref.WeakKeyDictionary()


class PythonParams(msgspec.Struct, forbid_unknown_fields=True):
    """Parameters of ``python``; see :class:`PythonModule`."""

    function: str
    kwargs: dict[str, Any] = {}
    args: list[Any] = []

    def __post_init__(self) -> None:
        target, sep, attr = self.function.rpartition(":")
        if not sep or not target or not attr:
            raise ValueError(
                f"parameter 'function' must look like 'package.module:name' or "
                f"'path/to/file.py:name', got {self.function!r}"
            )


class PythonModule(Module[PythonParams]):
    """Call a Python function; its return value (JSON-compatible) is the summary.

    Params:
        function (str, required): ``"package.module:name"`` or ``"path/to/file.py:name"``;
            ``name`` may be dotted (``"pkg.mod:Class.method"``). A relative file path is
            resolved against the playbook's directory first, then the current working directory.
        kwargs (dict[str, Any]): keyword arguments.
        args (list[Any]): positional arguments (GXO style).

    A function that has a parameter named ``ctx`` or ``gxo_context`` receives the
    :class:`gxo.modules.ModuleContext` through it (task name, attempt, dry_run, log, state).
    An ``async def`` function is run to completion with :func:`asyncio.run`.

    Summary: the return value, converted with ``msgspec.to_builtins`` (dataclasses, Structs,
    datetimes become plain data). A value that cannot be converted fails the task with reason
    ``bad_summary``; a function that cannot be imported gives ``import_failed``, a missing
    name ``function_not_found``. Dry-run is not supported: the function is not called.
    """

    name: ClassVar[str] = "python"
    Params: ClassVar[type[msgspec.Struct]] = PythonParams
    supports_dry_run: ClassVar[bool] = False

    def run(self, params: PythonParams, ctx: ModuleContext) -> Any:
        func = resolve_function(params.function, ctx.playbook_dir)
        kwargs = dict(params.kwargs)
        callee = _callee(func)
        ctx_name = callee.ctx_name
        if ctx_name:
            if ctx_name in kwargs:
                raise ParamsError(
                    f"kwargs must not contain {ctx_name!r}: {params.function} receives the "
                    f"module context through that parameter"
                )
            kwargs[ctx_name] = ctx
        problem = callee.check(params.args, kwargs)
        if problem:
            raise ParamsError(f"cannot call {params.function}: {problem}")
        result = func(*params.args, **kwargs)
        if isinstance(result, types.CoroutineType):
            import asyncio  # only for async functions: a fresh process per attempt pays it

            result = asyncio.run(result)
        try:
            return msgspec.to_builtins(result, str_keys=True)
        except (TypeError, ValueError, RecursionError) as exc:
            cause = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
            raise ModuleError(
                f"{params.function} returned a value that is not JSON-compatible "
                f"(a {type(result).__name__}): {cause}",
                reason="bad_summary",
            ) from None


def resolve_function(spec: str, base_dir: str = "") -> Callable[..., Any]:
    """Import ``"module:name"`` or ``"file.py:name"`` and return the callable it names.

    A relative file path is looked up in ``base_dir`` (the playbook's directory) first.
    """
    target, _, attr_path = spec.rpartition(":")
    if target.endswith(".py") or "/" in target or os.sep in target:
        absolute = _absolute.get(target)
        if absolute is None:
            if base_dir and not os.path.isabs(target):
                candidate = os.path.join(base_dir, target)
                if os.path.exists(candidate):
                    target = candidate
            absolute = os.path.abspath(target)
            if os.path.isabs(target) and len(_absolute) < _ABSOLUTE_MAX:
                _absolute[target] = absolute  # relative ones depend on the cwd and base_dir
        module = _load_file(absolute, spec)
    else:
        try:
            module = importlib.import_module(target)
        except Exception as exc:  # noqa: BLE001 - any import-time error is the user's to see
            raise ModuleError(
                f"cannot import module {target!r} for function {spec!r}: "
                f"{type(exc).__name__}: {exc}",
                reason="import_failed",
            ) from None
    obj: Any = module
    for part in attr_path.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            message = _missing_attr(spec, module, obj, part)
            raise ModuleError(message, reason="function_not_found") from None
    if not callable(obj):
        raise ModuleError(
            f"{spec!r} is not callable (it is a {type(obj).__name__})", reason="function_not_found"
        )
    return obj  # type: ignore[no-any-return]


#: Absolute file paths named by tasks -> the same, normalised (``os.path.abspath``).
_absolute: dict[str, str] = {}
_ABSOLUTE_MAX = 4096


def _load_file(path: str, spec: str) -> types.ModuleType:
    """The module of the file at ``path`` (absolute), run afresh if it was forgotten.

    The file's directory comes first on ``sys.path``, as for ``python path/to/file.py``, so
    the file imports the modules beside it (``import helpers``), when it is loaded and when
    its function runs; a pooled worker puts ``sys.path`` back after each instance.
    """
    directory = os.path.dirname(path)
    if sys.path[:1] != [directory]:
        sys.path.insert(0, directory)
    try:
        stat = os.stat(path)
    except OSError as exc:
        raise ModuleError(
            f"cannot load {spec!r}: file {path!r}: {exc.strerror}", reason="import_failed"
        ) from None
    key = (path, stat.st_mtime_ns, stat.st_size)
    with _lock:
        module = _file_modules.get(key)
        if module is not None and sys.modules.get(module.__name__) is module:
            return module
        # Not loaded yet, or forgotten by the worker between two instances (it restores the
        # process state, user modules included): load it afresh, with fresh globals.
        _file_modules.pop(key, None)
        name, loader_spec, code = _file_code.get(key) or _compile_file(key, spec)
        attrs = _file_attrs.get(key)
        if attrs is None:
            attrs = dict(importlib.util.module_from_spec(loader_spec).__dict__)
            _file_attrs[key] = attrs
        module = types.ModuleType(name)
        module.__dict__.update(attrs)
        sys.modules[name] = module  # dataclasses, pickle and typing look modules up by name
        try:
            exec(code, module.__dict__)  # what the loader's exec_module does
        except BaseException as exc:
            del sys.modules[name]
            if not isinstance(exc, Exception):
                raise
            raise ModuleError(
                f"cannot import file {path!r} for function {spec!r}: {type(exc).__name__}: {exc}",
                reason="import_failed",
            ) from None
        _file_modules[key] = module
        return module


def _compile_file(key: tuple[str, int, int], spec: str) -> tuple[str, ModuleSpec, types.CodeType]:
    """The private module name, spec and code of the file version ``key`` (cached)."""
    path = key[0]
    digest = sha1_hex(f"{key}".encode())[:16]
    name = f"_gxo_file_{digest}"
    loader_spec = importlib.util.spec_from_file_location(name, path)
    if loader_spec is None or loader_spec.loader is None:
        raise ModuleError(
            f"cannot load {spec!r}: {path!r} is not a Python source file",
            reason="import_failed",
        )
    try:
        code = loader_spec.loader.get_code(name)  # type: ignore[attr-defined]
    except Exception as exc:  # noqa: BLE001 - a syntax error is the user's to see
        raise ModuleError(
            f"cannot import file {path!r} for function {spec!r}: {type(exc).__name__}: {exc}",
            reason="import_failed",
        ) from None
    if code is None:
        raise ModuleError(f"cannot load {spec!r}: {path!r} has no code", reason="import_failed")
    _file_code[key] = (name, loader_spec, code)
    return name, loader_spec, code


def _missing_attr(spec: str, module: types.ModuleType, owner: Any, part: str) -> str:
    if owner is not module:
        place = repr(owner)
    elif module.__name__.startswith("_gxo_file_"):
        place = f"file {module.__file__!r}"
    else:
        place = f"module {module.__name__!r} ({getattr(module, '__file__', None) or 'built-in'})"
    message = f"function {spec!r} not found: {part!r} is not defined in {place}"
    names = [n for n in dir(owner) if not n.startswith("_")]
    import difflib  # only where it is used: not at start-up

    close = difflib.get_close_matches(part, names, n=3)
    if close:
        message += f"; did you mean {' or '.join(repr(c) for c in close)}?"
    return message


class _Callee:
    """How to call one function: its signature (None: it has none Python can read), the name
    of its context parameter ("" when it takes none), and whether a call binds.

    Whether ``signature.bind(*args, **kwargs)`` succeeds, and the message when it does not,
    depend only on how many positional arguments there are and on the keyword names, in
    order: that answer is kept, so the same call (every instance of a task) is checked once.
    """

    __slots__ = ("_binds", "ctx_name", "signature")

    def __init__(self, signature: inspect.Signature | None, ctx_name: str) -> None:
        self.signature = signature
        self.ctx_name = ctx_name
        #: (positional count, keyword names) -> "" (binds) or the reason it does not.
        self._binds: dict[tuple[int, tuple[str, ...]], str] = {}

    def check(self, args: list[Any], kwargs: dict[str, Any]) -> str:
        """Why ``func(*args, **kwargs)`` cannot be called ("" when it can)."""
        signature = self.signature
        if signature is None:
            return ""
        key = (len(args), tuple(kwargs))
        problem = self._binds.get(key)
        if problem is None:
            try:
                signature.bind(*args, **kwargs)
                problem = ""
            except TypeError as exc:
                problem = str(exc)
            if len(self._binds) < _BINDS_MAX:
                self._binds[key] = problem
        return problem


_BINDS_MAX = 64


def _callee(func: Callable[..., Any]) -> _Callee:
    shape = _shape(func)
    if shape is not None:
        callee = _by_shape.get(shape)
        if callee is None:
            callee = _by_shape[shape] = _inspect(func)
        return callee
    try:
        cached = _callees.get(func)
    except TypeError:  # not weak-referenceable (or unhashable): not cached
        cached = None
    if cached is None:
        cached = _inspect(func)
        with contextlib.suppress(TypeError):  # an unhashable or unreferenceable one is not
            _callees[func] = cached
    return cached


#: A plain function's parameters, by what they follow from (see :func:`_shape`): the function
#: of a user's file is a new object in each instance (its module is run afresh), made from
#: the same code object (the file's code is cached), and ``inspect.signature`` costs tens of
#: microseconds. The signature is used only to check that the call binds and to find the
#: context parameter, which depend on the code and on which parameters have defaults only.
_by_shape: dict[tuple[Any, ...], _Callee] = {}


def _shape(func: Callable[..., Any]) -> tuple[Any, ...] | None:
    """What a plain function's signature follows from, or None when it may be more (a
    ``__signature__`` or ``__wrapped__``: a decorated function, whose signature is another's)."""
    if type(func) is not types.FunctionType or "__signature__" in func.__dict__:
        return None
    if "__wrapped__" in func.__dict__:
        return None
    defaults = func.__defaults__
    kwdefaults = func.__kwdefaults__
    return (
        func.__code__,
        len(defaults) if defaults else 0,
        tuple(kwdefaults) if kwdefaults else (),
    )


def _inspect(func: Callable[..., Any]) -> _Callee:
    try:
        signature: inspect.Signature | None = inspect.signature(func)
    except (TypeError, ValueError):  # some builtins have no signature
        signature = None
    names = signature.parameters if signature is not None else {}
    ctx_name = next((n for n in CONTEXT_PARAMETERS if n in names), "")
    return _Callee(signature, ctx_name)
