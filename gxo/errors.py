"""The one exception tree of gxo, and where in a playbook a problem is.

::

    GxoError                                      every error gxo raises on purpose
    ├── UsageError            bad command line or run option              (exit 2)
    │   ├── JournalLocked     another run holds the playbook's journal (gxo.journal)
    │   └── LimitsUnenforceable  a limit or network: false cannot be enforced here
    │                         (gxo.pool.enforce)
    ├── PlaybookError         the playbook cannot run; carries every      (exit 2)
    │                         Problem found, each with a Location
    ├── TemplateError         a template failed to compile or render
    │   ├── SecretMissing     secret('NAME') had no value
    │   ├── SecretProviderFailed  the secrets provider raised (its message redacted)
    │   └── RenderStopped     a parent-side render stopped by an interrupt (gxo.template)
    ├── ModuleLookupError     a module type is not installed / failed to import
    ├── ModuleError           a module fails its task (raised in a worker; gxo.modules)
    │   └── ParamsError       the rendered params do not fit the module's Params
    ├── StreamError           a stream edge broke; ``reason`` names it (gxo.streams)
    │   ├── StreamTruncated   EOF without the end-of-stream mark (the producer died)
    │   ├── UpstreamFailed    the producer failed and said so on the stream
    │   ├── ConsumersGone     every consumer stopped reading
    │   ├── StreamOverflow    ``overflow_strategy: error`` and the edge was full
    │   ├── BadRecord         a record the task emitted cannot be encoded
    │   └── RecordTooLarge    a record over ``--record-limit``, encoded
    ├── TruncatedFrame        a frame cut short or over the size limit (gxo.wire)
    │   └── InvalidFrame      a whole frame that is not the message expected
    ├── NetnsUnavailable      the kernel refused a network namespace (gxo.pool.netns)
    └── InternalError         a gxo bug: the message says so              (exit 3)
        └── StreamSetupError  a worker got fewer pipe ends than its run lists

Task failures are not exceptions in the parent: they are data (a status and a reason from
:mod:`gxo.reasons`) in the run report. Inside a worker, a module signals failure with
:class:`gxo.modules.ModuleError`; every other exception it raises fails the task too.

Fields are kept in ``args`` so the errors survive pickling.
"""

from __future__ import annotations

import msgspec

__all__ = [
    "GxoError",
    "InternalError",
    "Location",
    "ModuleLookupError",
    "PlaybookError",
    "Problem",
    "SecretMissing",
    "SecretProviderFailed",
    "TemplateError",
    "UsageError",
]


class Location(msgspec.Struct, frozen=True):
    """Where a problem is: a file, a 1-based line and column, and a JSON-path-like address.

    ``path`` uses msgspec's style: ``$.tasks[3].retry.delay``. Line and column are ``None``
    when the problem has no single place in the source (for example a missing key).
    """

    file: str
    line: int | None = None
    column: int | None = None
    path: str = "$"

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        return where


class Problem(msgspec.Struct, frozen=True):
    """One thing wrong with a playbook: where, what, and what to do next."""

    location: Location
    message: str
    hint: str = ""

    def format(self) -> str:
        """``file:line:col: $.path: message`` and, on the next line, the hint."""
        text = f"{self.location}: {self.location.path}: {self.message}"
        if self.hint:
            text += f"\n    hint: {self.hint}"
        return text


class GxoError(Exception):
    """Base of every error gxo raises on purpose."""


class UsageError(GxoError):
    """The command line is wrong (exit code 2)."""


class PlaybookError(GxoError):
    """The playbook is invalid; ``problems`` lists every problem found, not only the first."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__(problems)
        self.problems = problems

    def __str__(self) -> str:
        count = len(self.problems)
        head = f"playbook is invalid ({count} problem{'s' if count != 1 else ''}):"
        return "\n".join([head, *(p.format() for p in self.problems)])


class TemplateError(GxoError):
    """A template could not be compiled or rendered.

    ``where`` names the field (``$.tasks[2].params.command``) so the message can point at it.
    """

    def __init__(self, message: str, where: str = "", hint: str = "") -> None:
        super().__init__(message, where, hint)
        self.message = message
        self.where = where
        self.hint = hint

    def __str__(self) -> str:
        text = f"{self.where}: {self.message}" if self.where else self.message
        if self.hint:
            text += f" (hint: {self.hint})"
        return text


class SecretMissing(TemplateError):
    """``secret('NAME')`` found no value. The message names the secret, never a value."""

    def __init__(self, name: str, where: str = "", hint: str = "") -> None:
        super().__init__(
            f"secret {name!r} is not set",
            where,
            hint or f"export {name} in the environment gxo runs in",
        )
        self.name = name

    def __reduce__(self) -> tuple[type[SecretMissing], tuple[str, str, str]]:
        return (type(self), (self.name, self.where, self.hint))


class SecretProviderFailed(TemplateError):
    """The secrets provider raised while looking up ``secret('NAME')`` (or could not be built
    on the worker). The message names the secret and the error; values are redacted."""

    def __init__(self, name: str, error: str, where: str = "", hint: str = "") -> None:
        super().__init__(
            f"the secrets provider failed to look up {name!r}: {error}",
            where,
            hint or "check the provider's configuration and its access to its backend",
        )
        self.name = name
        self.error = error

    def __reduce__(self) -> tuple[type[SecretProviderFailed], tuple[str, str, str, str]]:
        return (type(self), (self.name, self.error, self.where, self.hint))


class ModuleLookupError(GxoError):
    """A module type is unknown, or its entry point failed to load."""


class InternalError(GxoError):
    """A bug in gxo itself, not in the playbook or a module."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return f"internal error: {self.message} (this is a gxo bug; please report it)"
