"""The input limits a playbook load enforces, each one setting with a flag to raise it.

Why a module of its own: the limits are read by the YAML reader (scalar size), the loader
(task count) and the command line (``--max-scalar-size``, ``--max-tasks``), and listed in the
README's "Limits" table; one small Struct keeps their defaults and wording in one place.

A limit protects gxo from a playbook it cannot reasonably run: a generated file with a
runaway loop, a log pasted into a var, a task list that would take the scheduler longer to
plan than to run. Hitting one is a problem at load (exit 2, nothing runs), with the flag that
raises it in the hint.
"""

from __future__ import annotations

from typing import Final

import msgspec

__all__ = ["DEFAULT_LIMITS", "MAX_SCALAR_BYTES", "MAX_TASKS", "InputLimits", "describe_bytes"]

#: Largest single YAML scalar (a string, a key) accepted, in UTF-8 bytes: 1 MiB.
MAX_SCALAR_BYTES: Final = 1024 * 1024
#: Most tasks one playbook may hold.
MAX_TASKS: Final = 10_000


class InputLimits(msgspec.Struct, frozen=True, kw_only=True):
    """Limits on what one playbook may contain (see the README's "Limits" table)."""

    #: Largest single scalar, in UTF-8 bytes (``--max-scalar-size``).
    max_scalar_bytes: int = MAX_SCALAR_BYTES
    #: Most tasks in the file (``--max-tasks``).
    max_tasks: int = MAX_TASKS

    def scalar_too_large(self, text: str) -> int | None:
        """The size of ``text`` in UTF-8 bytes when it is over the limit, else None.

        Cheap for the common case: a string of at most a quarter of the limit in characters
        cannot exceed it in bytes, so it is never encoded.
        """
        limit = self.max_scalar_bytes
        if len(text) * 4 <= limit:
            return None
        size = len(text.encode("utf-8", "surrogatepass"))
        return size if size > limit else None


DEFAULT_LIMITS: Final = InputLimits()


def describe_bytes(size: int) -> str:
    """``1048576`` → ``1 MiB``, ``1500`` → ``1,500 bytes``: how limits are shown."""
    for unit, scale in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if size >= scale and size % scale == 0:
            return f"{size // scale} {unit}"
    if size >= 1024**2:
        return f"{size / 1024**2:.1f} MiB"
    return f"{size:,} bytes"
