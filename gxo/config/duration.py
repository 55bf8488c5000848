"""Go durations (``1h30m``, ``1.5s``, ``300ms``, ``10µs``) to seconds, and back.

The grammar is GXO's schema pattern, ``^([0-9]+(\\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$``: one or
more number-unit pairs, no sign, no bare number, no spaces. Like Go's ``time.ParseDuration``
the value is computed in whole nanoseconds (fractions below 1 ns are dropped) and must fit in
a signed 64-bit count of nanoseconds (about 292 years). Both the micro sign ``µ`` (U+00B5)
and the Greek mu ``μ`` (U+03BC) are accepted, as Go accepts both.

A gxo extension: in a playbook a duration may also be a plain non-negative number of seconds
(``timeout: 90`` or ``delay: 0.5``); :func:`parse_duration` accepts ints and floats for that.
"""

from __future__ import annotations

import math
import re
from typing import Final

__all__ = ["DURATION_PATTERN", "MAX_DURATION", "format_duration", "parse_duration"]

#: The schema's pattern (the JSON schema file carries the same text).
DURATION_PATTERN: Final = r"^([0-9]+(\.[0-9]+)?(ns|us|µs|μs|ms|s|m|h))+$"

_WHOLE = re.compile(r"(?:[0-9]+(?:\.[0-9]+)?(?:ns|us|µs|μs|ms|s|m|h))+\Z")
_PAIR = re.compile(r"([0-9]+)(?:\.([0-9]+))?(ns|us|µs|μs|ms|s|m|h)")

_NS_PER: Final = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,
    "μs": 1_000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
}
_MAX_NS: Final = 2**63 - 1

#: The longest duration a playbook may give (a timeout, a retry delay): 30 days, in seconds.
#: A longer value is almost always a unit mistake (milliseconds written as seconds, ``1e12``);
#: to wait without bound, leave the timeout out.
MAX_DURATION: Final = 30 * 24 * 3600.0
_EXAMPLES: Final = "like 30s, 1m30s or 500ms (units: ns, us, ms, s, m, h)"


def parse_duration_ns(text: str) -> int:
    """A Go duration string as a whole number of nanoseconds (raises ValueError)."""
    if not isinstance(text, str):
        raise TypeError(f"a duration must be a string, got {type(text).__name__}")
    if not _WHOLE.match(text):
        raise ValueError(f"{text!r} is not a duration {_EXAMPLES}")
    total = 0
    for whole, fraction, unit in _PAIR.findall(text):
        scale = _NS_PER[unit]
        total += int(whole) * scale
        if fraction:
            total += int(fraction) * scale // 10 ** len(fraction)
        if total > _MAX_NS:
            raise ValueError(f"the duration {text!r} is too long (the limit is about 292 years)")
    return total


def parse_duration(value: str | float) -> float:
    """Seconds in a duration: a Go duration string, or a plain non-negative number of seconds.

    >>> parse_duration("1h30m"), parse_duration("1.5s"), parse_duration("10µs"), parse_duration(2)
    (5400.0, 1.5, 1e-05, 2.0)

    Raises ValueError with a message that shows the accepted forms.
    """
    if isinstance(value, bool):
        raise ValueError(f"a duration cannot be a boolean; write it {_EXAMPLES}")
    if isinstance(value, int | float):
        seconds = float(value)
        if not math.isfinite(seconds) or seconds < 0:
            raise ValueError(f"a duration in seconds must be a finite number >= 0, got {value!r}")
        return seconds
    return parse_duration_ns(value) / 1e9


def format_duration(seconds: float) -> str:
    """Seconds as Go's ``Duration.String()`` writes them: ``1h30m0s``, ``1.5s``, ``300ms``.

    The value is rounded to whole nanoseconds first. ``parse_duration(format_duration(s))``
    gives back ``s`` for every non-negative whole number of nanoseconds.
    """
    ns = round(seconds * 1e9)
    return format_duration_ns(ns)


def _fraction(value: int, digits: int) -> str:
    """``value`` / 10**digits as ``int[.frac]`` with trailing zeros dropped."""
    whole, rest = divmod(value, 10**digits)
    if not rest:
        return str(whole)
    return f"{whole}.{rest:0{digits}d}".rstrip("0")


def format_duration_ns(ns: int) -> str:
    """Nanoseconds as Go's ``Duration.String()`` writes them (µ is U+00B5, as in Go)."""
    if ns < 0:
        return "-" + format_duration_ns(-ns)
    if ns == 0:
        return "0s"
    if ns < 1_000:
        return f"{ns}ns"
    if ns < 1_000_000:
        return f"{_fraction(ns, 3)}µs"
    if ns < 1_000_000_000:
        return f"{_fraction(ns, 6)}ms"
    hours, rest = divmod(ns, 3_600_000_000_000)
    minutes, rest = divmod(rest, 60_000_000_000)
    text = f"{_fraction(rest, 9)}s"
    if hours:
        return f"{hours}h{minutes}m{text}"
    if minutes:
        return f"{minutes}m{text}"
    return text
