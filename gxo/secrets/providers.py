"""Where secret values come from: the environment (the default) or a directory of files.

A provider answers one question, "what is the value of NAME?", with a string or ``None``. It
never logs or caches values. Names are checked against :data:`NAME_PATTERN` before any
lookup, so a template cannot use ``secret('../../etc/passwd')`` to read outside the secrets
directory.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from gxo.errors import TemplateError

__all__ = [
    "NAME_PATTERN",
    "EnvProvider",
    "FileProvider",
    "MappingProvider",
    "SecretProvider",
    "check_name",
]

#: What a secret name may look like (also what ``prefix + name`` must look like).
NAME_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")
_PREFIX_PATTERN = r"[A-Za-z0-9_.-]*"  # compiled on first use (re's cache)


@runtime_checkable
class SecretProvider(Protocol):
    """Something that knows secret values by name.

    A provider given to ``gxo.run(secrets=...)`` (or ``gxo --secrets-provider``) is built
    again in every worker, as ``type(provider)(**provider.options())``: its class must be
    importable by name (not defined in ``__main__`` or a notebook), and ``options()`` returns
    the keyword arguments of its constructor. Those are plain configuration (a URL, a path, a
    prefix): they travel to the workers in the clear, like any other run option. A provider
    reads its own credentials on the worker (from the environment, a file, a token path),
    never from its options. ``get`` may raise: the task that asked fails with reason
    ``secret_provider_failed``, its error redacted. ``hint(name)``, if defined, says what to do
    when ``get`` returns ``None``.
    """

    def get(self, name: str) -> str | None:
        """The value of secret ``name``, or ``None`` when it has none."""
        ...

    def options(self) -> Mapping[str, Any]:
        """The constructor's keyword arguments: strings, numbers, booleans, None, lists and
        mappings of those (they are sent to every worker)."""
        ...


def check_name(name: str) -> str:
    """Return ``name`` if it is a valid secret name, else raise :class:`TemplateError`."""
    if not isinstance(name, str) or NAME_PATTERN.fullmatch(name) is None:
        raise TemplateError(
            f"invalid secret name {name!r}",
            hint="a secret name starts with a letter or '_' and holds only letters, digits, "
            "'_', '.' and '-'",
        )
    return name


def _check_prefix(prefix: str) -> str:
    if re.fullmatch(_PREFIX_PATTERN, prefix) is None:
        raise ValueError(f"invalid secret name prefix {prefix!r}")
    return prefix


class EnvProvider:
    """Secrets from environment variables: ``secret('DB_PASSWORD')`` reads ``prefix + name``."""

    def __init__(self, prefix: str = "") -> None:
        self.prefix = _check_prefix(prefix)

    def get(self, name: str) -> str | None:
        return os.environ.get(self.prefix + check_name(name))

    def options(self) -> Mapping[str, Any]:
        return {"prefix": self.prefix}

    def hint(self, name: str) -> str:
        """What to do when ``name`` has no value."""
        return f"export {self.prefix}{name} in the environment gxo runs in"

    def __repr__(self) -> str:
        return f"EnvProvider(prefix={self.prefix!r})"


class FileProvider:
    """Secrets from files, one per secret, as Docker and Kubernetes mount them.

    ``secret('db_password')`` reads ``<directory>/<prefix>db_password``; one trailing newline
    (``\\n`` or ``\\r\\n``) is removed, as editors and ``echo`` add one. A missing file means
    no value; a file that exists but cannot be read is an error (it names the path only).
    """

    def __init__(self, directory: str | os.PathLike[str], prefix: str = "") -> None:
        self.directory = Path(directory)
        self.prefix = _check_prefix(prefix)

    def options(self) -> Mapping[str, Any]:
        return {"directory": str(self.directory), "prefix": self.prefix}

    def path(self, name: str) -> Path:
        """Where the value of ``name`` is read from."""
        return self.directory / (self.prefix + check_name(name))

    def get(self, name: str) -> str | None:
        path = self.path(name)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "not valid UTF-8"
            raise TemplateError(
                f"cannot read secret {name!r} from {str(path)!r}: {reason}"
            ) from None
        if text.endswith("\r\n"):
            return text[:-2]
        if text.endswith("\n"):
            return text[:-1]
        return text

    def hint(self, name: str) -> str:
        """What to do when ``name`` has no value."""
        return f"create the file {str(self.path(name))!r}"

    def __repr__(self) -> str:
        return f"FileProvider({str(self.directory)!r}, prefix={self.prefix!r})"


class MappingProvider:
    """Secrets from a mapping held in memory (tests, and embedding gxo as a library)."""

    def __init__(self, values: Mapping[str, str]) -> None:
        self._values = dict(values)

    def get(self, name: str) -> str | None:
        return self._values.get(check_name(name))

    def hint(self, name: str) -> str:
        """What to do when ``name`` has no value."""
        return f"add {name!r} to the secrets given to gxo"

    def options(self) -> Mapping[str, Any]:
        """Refused: its options would be the values themselves, sent in the clear."""
        raise TypeError(
            "a MappingProvider holds the values themselves and cannot be sent to workers; "
            "use a provider that reads them on the worker (environment, files, a JSON file)"
        )

    def __repr__(self) -> str:  # never show the values
        return f"MappingProvider(<{len(self._values)} secrets>)"
