"""Sizes in bytes: ``1GiB``, ``512MiB``, ``64KB``, ``10M`` or a plain number of bytes.

Units: ``B``; ``KB``, ``MB``, ``GB``, ``TB`` (powers of 1000); ``KiB``, ``MiB``, ``GiB``,
``TiB`` (powers of 1024); and the short forms ``K``, ``M``, ``G``, ``T`` (powers of 1024, as
Docker, SLURM and ``ulimit`` read them). Case does not matter; a fraction is allowed
(``1.5GiB``) and the result is rounded down to whole bytes.
"""

from __future__ import annotations

import re
from typing import Final

__all__ = ["SIZE_PATTERN", "format_size", "parse_size"]

#: The schema's pattern for a size string (the JSON schema file carries the same text).
SIZE_PATTERN: Final = r"^[0-9]+(\.[0-9]+)?\s*([kKmMgGtT]([iI]?[bB])?|[bB])?$"

_SIZE = re.compile(r"([0-9]+(?:\.[0-9]+)?)\s*([kmgt](?:i?b)?|b)?\Z", re.IGNORECASE)
_POWER: Final = {"k": 1, "m": 2, "g": 3, "t": 4}
_EXAMPLES: Final = "like 1GiB, 512MiB, 64KB or a number of bytes"


def parse_size(value: str | int) -> int:
    """Bytes in ``value`` (raises ValueError for text that is not a size)."""
    if isinstance(value, bool):
        raise ValueError(f"expected a size {_EXAMPLES}, got {value!r}")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"a size must not be negative, got {value}")
        return value
    match = _SIZE.match(value.strip())
    if match is None:
        raise ValueError(f"{value!r} is not a size {_EXAMPLES}")
    number, unit = match.group(1), (match.group(2) or "b").lower()
    if unit == "b":
        scale = 1
    else:
        base = 1000 if unit.endswith("b") and not unit.endswith("ib") else 1024
        scale = base ** _POWER[unit[0]]
    return int(float(number) * scale) if "." in number else int(number) * scale


def format_size(size: int) -> str:
    """``1073741824`` -> ``1GiB``; sizes that are not whole units stay in bytes (``1000B``)."""
    for unit, power in (("TiB", 4), ("GiB", 3), ("MiB", 2), ("KiB", 1)):
        scale = 1024**power
        if size and size % scale == 0:
            return f"{size // scale}{unit}"
    return f"{size}B"
