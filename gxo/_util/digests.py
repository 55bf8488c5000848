"""SHA-1, SHA-256 and BLAKE2b hex digests without importing :mod:`hashlib` where CPython has
its own.

Importing :mod:`hashlib` loads OpenSSL's libcrypto (``_hashlib``): ~2.5 ms, on a one-task
run's critical path twice (the parent names the journal's file and checks a ``python``
function's file; the forkserver preloads the ``python`` module). CPython builds its own
SHA-1, SHA-256 and BLAKE2b as small modules (``_sha1``, ``_sha256``, ``_sha2`` from 3.12,
``_blake2``) that give the same digests; :mod:`hashlib`'s are used where they are not built.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any, BinaryIO

__all__ = ["blake2b_hex", "sha1_hex", "sha256_file", "sha256_hex"]

_found: dict[str, Callable[..., Any]] = {}


def _constructor(name: str, *builtins: str) -> Callable[..., Any]:
    """CPython's own ``name`` from the first of ``builtins`` that exists, else hashlib's."""
    found = _found.get(name)
    if found is None:
        for module in builtins:
            try:
                found = getattr(importlib.import_module(module), name)
                break
            except (ImportError, AttributeError):
                continue
        else:
            import hashlib

            found = getattr(hashlib, name)
        _found[name] = found
    return found


def sha1_hex(data: bytes) -> str:
    """SHA-1 of ``data`` in hex (names, not security)."""
    return str(_constructor("sha1", "_sha1")(data).hexdigest())


def sha256_hex(data: bytes) -> str:
    """SHA-256 of ``data`` in hex."""
    return str(_constructor("sha256", "_sha256", "_sha2")(data).hexdigest())


def sha256_file(file: BinaryIO) -> str:
    """SHA-256 of what is left to read of ``file``, in hex, read in 256 KiB chunks."""
    digest = _constructor("sha256", "_sha256", "_sha2")()
    while chunk := file.read(1 << 18):
        digest.update(chunk)
    return str(digest.hexdigest())


def blake2b_hex(data: bytes, digest_size: int) -> str:
    """BLAKE2b of ``data`` with a ``digest_size``-byte digest, in hex (the journal's
    fingerprints: twice per instance, so the constructor found is read straight back)."""
    new = _found.get("blake2b") or _constructor("blake2b", "_blake2")
    digest: str = new(data, digest_size=digest_size).hexdigest()
    return digest
