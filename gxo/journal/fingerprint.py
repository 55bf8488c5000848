"""Fingerprints: what must be unchanged for a completed instance to be reused by ``--resume``.

An instance's fingerprint is a digest of five parts, each kept as a short digest of its own so
``gxo journal`` can say which one changed:

``definition``
    the task as written (module type, params before rendering, a template ``loop``, when,
    retry, timeout, inputs/outputs...), without what does not change one instance's work (its
    position, its tags, the items of a literal ``loop`` list: each instance's own item is in
    ``state``, so adding an item to the list runs only that item);
``params``
    its params rendered against the state it reads, *before* secret resolution: a
    ``secret('NAME')`` renders as a placeholder naming the secret, never its value, and
    ``env('NAME')`` reads the environment (a changed variable reruns the task);
``state``
    the values of the state its params read (vars, registers, statuses) and its loop item;
``module``
    the module's version: gxo's version for a built-in, the distribution's for an entry-point
    module; for ``python`` also the function's source file (its content hash for
    ``path/file.py:fn``, the distribution's version or the module file's hash for
    ``package.module:fn``), read once per run;
``inputs``
    the files in the task's ``inputs:`` (size and modification time, or their content's
    SHA-256 with ``--checksum``; a missing file is part of the fingerprint too).

Declared ``outputs:`` are not in the fingerprint: they are checked when deciding to resume
(a missing or changed output reruns the task), against what they were when it completed.

The parent computes all of this without importing module code or seeing a secret.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Final

import msgspec

from gxo._util.digests import blake2b_hex, sha256_file
from gxo.errors import TemplateError
from gxo.modules.registry import module_version

if TYPE_CHECKING:
    from gxo.config.model import Task
    from gxo.dag import Plan

__all__ = ["MISSING", "Fingerprint", "Fingerprinter", "file_signature"]

#: What a missing file's signature is.
MISSING: Final = "missing"

_encoder = msgspec.json.Encoder(order="sorted", enc_hook=repr)
#: The task definition's bytes only feed a digest: msgpack is twice as fast as JSON here.
_definition_encoder = msgspec.msgpack.Encoder(order="deterministic", enc_hook=repr)


def _digest(data: bytes, size: int = 8) -> str:
    return blake2b_hex(data, size)


def file_signature(path: str, *, checksum: bool) -> str:
    """``size:mtime_ns`` of ``path`` (or ``sha256:<hex>`` of its content), or ``missing``."""
    try:
        if checksum:
            with open(path, "rb") as file:
                return "sha256:" + sha256_file(file)
        stat = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return MISSING
    return f"{stat.st_size}:{stat.st_mtime_ns}"


class Fingerprint(msgspec.Struct, frozen=True):
    """An instance's fingerprint (``value``) and the digests of its parts."""

    value: str
    parts: dict[str, str]


class _Placeholders:
    """``secret()`` renders as a placeholder that names the secret; ``env()`` reads os.environ."""

    def secret(self, name: str) -> str:
        return f"<secret:{name}>"

    def env(self, name: str) -> str:
        return os.environ.get(name, "")


_PLACEHOLDERS: Final = _Placeholders()


class Fingerprinter:
    """Computes fingerprints for the tasks of one playbook.

    ``base_dir`` is where relative ``python`` file paths are looked up (the playbook's
    directory); ``checksum`` hashes the content of ``inputs``/``outputs`` files instead of
    reading their size and modification time.
    """

    def __init__(self, plan: Plan, *, base_dir: str = "", checksum: bool = False) -> None:
        self.plan = plan
        self.base_dir = base_dir
        self.checksum = checksum
        self._definitions: dict[str, str] = {}
        self._modules: dict[tuple[str, str], str] = {}
        self._names: dict[str, tuple[str, ...]] = {}

    def definition(self, task: Task) -> str:
        """The digest of the task as written (cached per task).

        The journal's record of a task's register carries it: a register is restored for a
        task left out of the run only while this is unchanged, literal loop list included.
        """
        found = self._definitions.get(task.name)
        return found if found is not None else self._digest_definition(task.name, task)

    def instance_definition(self, task: Task) -> str:
        """The ``definition`` part of an instance's fingerprint (cached per task).

        :meth:`definition`, except for a literal ``loop`` list: an instance does one item's
        work, and its item is in the ``state`` part, so adding, removing or reordering items
        leaves the other items' fingerprints as they were (as a template ``loop`` whose
        variable changed does). With the list in it, adding one sample to a loop of 100 ran
        all 101 again.
        """
        if not isinstance(task.loop, list):
            return self.definition(task)
        key = "\0loop " + task.name
        found = self._definitions.get(key)
        return found if found is not None else self._digest_definition(key, task, loop=[])

    def _digest_definition(self, key: str, task: Task, **changes: Any) -> str:
        """Digest (and keep under ``key``) the task as written, without what does not change
        the work (its position, its tags), with ``changes`` made."""
        work = msgspec.structs.replace(task, index=0, tags=(), named=True, **changes)
        found = self._definitions[key] = blake2b_hex(_definition_encoder.encode(work), 8)
        return found

    def instance(self, task: Task, namespace: Mapping[str, Any]) -> Fingerprint:
        """The fingerprint of one instance of ``task`` that reads ``namespace``.

        ``namespace`` is what the scheduler sends the instance: the state its templates
        reference, plus its loop item.
        """
        # Constant params are part of the definition, and read no state: their digests are
        # the definition's (the common case costs no encoding).
        definition = self.instance_definition(task)
        params_digest = state_digest = definition
        params: Any = task.params
        names = self._read_names(task)
        if names:
            read = {name: namespace[name] for name in names if name in namespace}
            state_digest = _digest(_encoder.encode(read))
        # Rendered whenever they are templates, even when they read no state: ``env('X')``
        # reads the environment (rendering them only when they read state left a task whose
        # params read nothing but env() cached after its variable changed).
        templates = self.plan.templates[task.name]
        if not templates.params.is_constant:
            try:
                params = templates.params.render(namespace, _PLACEHOLDERS)
            except TemplateError as exc:
                params = {"unrenderable": str(exc)}
            params_digest = _digest(_encoder.encode(params))
        parts = {
            "definition": definition,
            "params": params_digest,
            "state": state_digest,
            "module": self.module(task, params),
            "inputs": self.files(task.inputs) if task.inputs else "",
        }
        return Fingerprint(blake2b_hex("|".join(parts.values()).encode(), 16), parts)

    def _read_names(self, task: Task) -> tuple[str, ...]:
        """The state names the params read, and the loop item, sorted (cached per task).

        What ``when`` and ``loop`` read decides whether and how often the task runs, not
        what one instance does: growing a loop's list must not rerun the items already done.
        """
        found = self._names.get(task.name)
        if found is None:
            top = self.plan.templates[task.name].params.top_level_names
            if not top and task.loop is None:
                found = ()  # the common case: constant params, no loop
            else:
                names = set(top)
                if task.loop is not None:
                    names.add(task.loop_control.loop_var)
                found = tuple(sorted(names))
            self._names[task.name] = found
        return found

    def files(self, paths: Iterable[str]) -> str:
        """The digest of the signatures of ``paths`` (``""`` for none)."""
        paths = tuple(paths)
        if not paths:
            return ""
        return _digest(_encoder.encode(self.signatures(paths)))

    def signatures(self, paths: Iterable[str]) -> dict[str, str]:
        """Each path's :func:`file_signature`."""
        return {path: file_signature(path, checksum=self.checksum) for path in paths}

    def module(self, task: Task, rendered_params: Any) -> str:
        """The digest of the module's version (and of a ``python`` function's source)."""
        function = ""
        if task.type == "python" and isinstance(rendered_params, dict):
            spec = rendered_params.get("function")
            function = spec if isinstance(spec, str) else ""
        key = (task.type, function)
        found = self._modules.get(key)
        if found is None:
            version = module_version(task.type)
            if function:
                version += " " + self._python_source(function)
            found = self._modules[key] = _digest(version.encode())
        return found

    def _python_source(self, spec: str) -> str:
        target = spec.rpartition(":")[0]
        if target.endswith(".py") or "/" in target or os.sep in target:
            path = target
            if self.base_dir and not os.path.isabs(target):
                candidate = os.path.join(self.base_dir, target)
                if os.path.exists(candidate):
                    path = candidate
            return _file_source(os.path.abspath(path))
        return _module_source(target)


def _file_source(path: str) -> str:
    """A source file's content hash, read again only when its size or mtime changed."""
    try:
        stat = os.stat(path)
    except OSError:
        return MISSING
    return _file_digest(path, stat.st_size, stat.st_mtime_ns)


@lru_cache(maxsize=256)
def _file_digest(path: str, size: int, mtime_ns: int) -> str:
    return file_signature(path, checksum=True)


@lru_cache(maxsize=256)
def _module_source(module: str) -> str:
    """A Python module's version without importing it: its distribution's version if it
    belongs to one, else the content hash of its source file on ``sys.path``."""
    top = module.partition(".")[0]
    import importlib.metadata  # email, csv, zipfile: only a third-party module pays

    dists = importlib.metadata.packages_distributions().get(top)
    if dists:
        try:
            return f"{dists[0]} {importlib.metadata.version(dists[0])}"
        except importlib.metadata.PackageNotFoundError:
            pass
    relative = module.replace(".", os.sep)
    for entry in ["", *sys.path]:
        for candidate in (relative + ".py", os.path.join(relative, "__init__.py")):
            path = os.path.join(entry or os.getcwd(), candidate)
            if os.path.isfile(path):
                return file_signature(path, checksum=True)
    return f"module {module}"
