"""Checks of a library call's arguments: a wrong type is a :class:`TypeError`, a wrong value a
:class:`ValueError`, each naming the argument, what it must be and what it got.

The command line checks its flags as it parses them; :func:`gxo.run` is called with whatever
a program passes, and a value of the wrong kind used to surface far from its cause: a
``TypeError`` between ``int`` and ``str`` from the pool's sizing (``workers="2"``), every worker
dying at start-up (``dry_run=None``), a run directory outside the state directory
(``run_id="../x"``). These checks run first, before any process starts.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping

__all__ = [
    "check_flag",
    "check_mapping",
    "check_number",
    "check_one_of",
    "check_whole",
    "describe",
]


def describe(value: object) -> str:
    """``value``'s type and (a short) repr, as the messages of these checks show it."""
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) <= 60 else text[:57] + '...'}"


def check_flag(name: str, value: object) -> None:
    """``value`` is ``True`` or ``False`` (not 0, None or ``"no"``: they travel to workers that
    expect a bool)."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, got {describe(value)}")


def check_whole(
    name: str, value: object, *, minimum: int, maximum: int | None = None, none: bool = True
) -> None:
    """``value`` is an ``int`` (not a bool, a float or a str) from ``minimum`` to ``maximum``,
    or None when ``none``."""
    if value is None and none:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        kind = "a whole number" + (" or None" if none else "")
        raise TypeError(f"{name} must be {kind}, got {describe(value)}")
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be at most {maximum}, got {value}")


def check_number(name: str, value: object, *, unit: str, none: bool = True) -> None:
    """``value`` is a finite ``int`` or ``float`` at least 0 (``unit`` names what it counts),
    or None when ``none``."""
    if value is None and none:
        return
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a number of {unit}, got {describe(value)}")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number of {unit}, at least 0, got {value}")


def check_one_of(name: str, value: object, choices: Collection[str]) -> None:
    """``value`` is one of the strings ``choices``."""
    if value not in choices or not isinstance(value, str):
        allowed = ", ".join(repr(choice) for choice in choices)
        raise ValueError(f"{name} must be one of {allowed}, got {describe(value)}")


def check_mapping(name: str, value: object) -> None:
    """``value`` is None or a mapping with string keys."""
    if value is None:
        return
    if not isinstance(value, Mapping):
        raise TypeError(f"{name} must be a mapping (a dict), got {describe(value)}")
    for key in value:
        if not isinstance(key, str):
            raise TypeError(f"{name} keys must be strings, got {describe(key)}")
