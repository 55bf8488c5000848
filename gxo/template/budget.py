"""The render budget: templates rendered by the scheduler are bounded in time and size.

Why a module of its own: ``when`` and a string ``loop`` are rendered in the parent, on the
scheduler's thread. A heavy template there (nested loops over ``range(100000)``,
``'a' * 10**9``) would freeze the scheduler, hold off Ctrl-C and SIGTERM (the scheduler only
sees them between renders) and grow the parent without bound. So a parent-side render runs
under a :class:`RenderBudget`:

- **time**: a trace function (:func:`sys.settrace`, which is per thread, so this works in the
  main thread and in a library caller's thread alike, where ``signal.alarm`` would not)
  checks a deadline every few hundred Python events while the template runs, and stops it.
  Only a template with a loop, a macro or a filter that iterates in Python is traced (the
  others cannot run long, and tracing makes a small render about five times slower);
- **size**: the operators and calls that make a large value in one C-level step (``*``,
  ``+``, ``**``, ``%`` and ``replace``/``center``/``ljust``/``rjust``/``zfill``/``indent``/
  ``format``) are checked *before* they run, and a template's text output is counted as it
  is produced.

Going over either fails the render with a clear :class:`~gxo.errors.TemplateError` (the task
fails with ``template_error``). One C-level step on a value within the size budget (a regex
over a 1M-character string) is not interrupted: it can overrun the time budget by its own
length, which the size bound keeps short.

A signal never waits for a render: the engine's SIGINT/SIGTERM handler calls
:func:`interrupt_renders`, and the render running at that moment stops at its next check with
:class:`RenderInterrupted` (the task ends ``Cancelled``).

Templates rendered in a worker (``params``) are not bounded here: they run in their own
process, which the scheduler can always stop.
"""

from __future__ import annotations

import math
import re
import sys
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import Any, Final, TypeVar

import msgspec

__all__ = [
    "DEFAULT_RENDER_BUDGET",
    "BudgetExceeded",
    "RenderBudget",
    "RenderInterrupted",
    "allow_renders",
    "check_size",
    "interrupt_renders",
    "render_budget",
    "run_bounded",
    "set_render_budget",
]

T = TypeVar("T")


class RenderBudget(msgspec.Struct, frozen=True, kw_only=True):
    """How long one parent-side render may take and how large a value it may build."""

    #: Seconds one render of a ``when`` or ``loop`` template may take (``--render-timeout``).
    seconds: float = 2.0
    #: Largest string (characters) or list (items) one render may build
    #: (``--render-max-size``).
    max_size: int = 1024 * 1024


DEFAULT_RENDER_BUDGET: Final = RenderBudget()

_budget: list[RenderBudget] = [DEFAULT_RENDER_BUDGET]
_local = threading.local()


def set_render_budget(budget: RenderBudget) -> None:
    """Set the budget of every later parent-side render in this process."""
    _budget[0] = budget


def render_budget() -> RenderBudget:
    """The budget parent-side renders use."""
    return _budget[0]


class BudgetExceeded(BaseException):
    """A bounded render went over its budget.

    A ``BaseException``, so that no ``except Exception`` inside Jinja or a filter can swallow
    it on its way out of the template.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class RenderInterrupted(BudgetExceeded):
    """A bounded render was stopped because the run is being interrupted (a signal)."""


#: Set by :func:`interrupt_renders`, cleared by :func:`allow_renders`.
_interrupted: list[bool] = [False]


def interrupt_renders() -> None:
    """Stop the bounded render running now, in any thread, at its next check, and every
    bounded render that starts until :func:`allow_renders` is called.

    Safe to call from a signal handler (it only stores a flag). Sticky, so a signal that
    arrives just before a render starts still stops it.
    """
    _interrupted[0] = True


def allow_renders() -> None:
    """Let bounded renders run again (a run calls it when it starts)."""
    _interrupted[0] = False


def active() -> RenderBudget | None:
    """The budget of the render running on this thread, if it is bounded."""
    return getattr(_local, "budget", None)


def check_size(size: int, what: str) -> None:
    """Refuse to build a value of ``size`` characters or items in a bounded render."""
    budget = active()
    if budget is not None and size > budget.max_size:
        raise BudgetExceeded(
            f"{what} would make a value of {size:,} characters or items, more than the "
            f"render budget allows ({budget.max_size:,})"
        )


_TICKS = 256  # Python events between two looks at the clock


def run_bounded(
    render: Callable[[], T], budget: RenderBudget | None = None, *, trace: bool = True
) -> T:
    """Call ``render()`` under ``budget`` (the process's budget by default).

    Raises :class:`BudgetExceeded` when it takes longer than ``budget.seconds`` or tries to
    build a value larger than ``budget.max_size``. A render already under a budget on this
    thread just runs. With ``trace=False`` only sizes are checked: for a template without a
    loop or a macro, which cannot run long, and then costs no tracing (tracing makes a small
    render about five times slower).
    """
    if active() is not None:
        return render()
    budget = budget if budget is not None else _budget[0]
    interrupted = _interrupted
    if interrupted[0]:
        raise RenderInterrupted("the render was stopped: the run is being interrupted")
    if not trace:
        _local.budget = budget
        try:
            return render()
        finally:
            _local.budget = None
    deadline = time.monotonic() + budget.seconds
    ticks = 0
    clock = time.monotonic

    def lines(frame: FrameType, event: str, arg: Any) -> Any:
        nonlocal ticks
        ticks += 1
        if ticks >= _TICKS:
            ticks = 0
            if interrupted[0]:
                raise RenderInterrupted("the render was stopped: the run is being interrupted")
            if clock() > deadline:
                raise BudgetExceeded(
                    f"the template took longer than the render budget allows ({budget.seconds:g}s)"
                )
        return lines

    def tracer(frame: FrameType, event: str, arg: Any) -> Any:
        # Every call and every line, in the template's code and in the filters it calls
        # (textwrap's loop in `wordwrap` makes few calls).
        lines(frame, event, arg)
        return lines

    previous = sys.gettrace()
    _local.budget = budget
    sys.settrace(tracer)
    try:
        return render()
    finally:
        sys.settrace(previous)
        _local.budget = None


# -- checks before one operation builds a large value -------------------------------------------

_SIZED = (str, list, tuple, bytes)


def check_binop(operator: str, left: Any, right: Any) -> None:
    """Refuse ``left <operator> right`` when its result would be over the budget."""
    budget = active()
    if budget is None:
        return
    if operator == "*":
        for seq, count in ((left, right), (right, left)):
            if isinstance(seq, _SIZED) and isinstance(count, int) and not isinstance(count, bool):
                check_size(len(seq) * max(count, 0), f"{type(seq).__name__} * {count}")
                return
        if _is_int(left) and _is_int(right):
            _check_bits(abs(left).bit_length() + abs(right).bit_length(), budget)
    elif operator == "+":
        if isinstance(left, _SIZED) and isinstance(right, _SIZED):
            check_size(len(left) + len(right), f"{type(left).__name__} + {type(right).__name__}")
    elif operator == "**":
        if _is_int(left) and _is_int(right) and right > 0 and abs(left) > 1:
            _check_bits(math.ceil(right * math.log2(abs(left))), budget)
    elif operator == "%" and isinstance(left, str):
        check_format_widths(left, "'%' formatting")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_bits(bits: int, budget: RenderBudget) -> None:
    # A number of more than max_size decimal digits is as large as a string that long.
    digits = int(bits * 0.30103)
    if digits > budget.max_size:
        raise BudgetExceeded(
            f"the template would compute a number of about {digits:,} digits, more than the "
            f"render budget allows ({budget.max_size:,})"
        )


_WIDTH = re.compile(r"%[-#0 +]*(\d+)|\{[^{}]*?:[^{}]*?(\d+)[^{}]*\}")


def check_format_widths(text: str, what: str) -> None:
    """Refuse a ``%`` or ``str.format`` pattern whose field width is over the budget."""
    budget = active()
    if budget is None or len(text) > budget.max_size:
        return
    for match in _WIDTH.finditer(text):
        width = int(match.group(1) or match.group(2))
        check_size(width, f"{what} with a width of {width}")


def _width_check(name: str) -> Callable[..., None]:
    def check(value: Any, width: Any = 0, *_: Any, **__: Any) -> None:
        if _is_int(width):
            check_size(max(width, len(value) if isinstance(value, _SIZED) else 0), name)

    return check


def _replace_check(value: Any, old: Any = "", new: Any = "", count: Any = -1, *_: Any) -> None:
    if isinstance(value, str) and isinstance(old, str) and isinstance(new, str):
        hits = value.count(old) if old else len(value) + 1
        if _is_int(count) and count >= 0:
            hits = min(hits, count)
        check_size(len(value) + hits * max(0, len(new) - len(old)), "replace()")


def _indent_check(value: Any, width: Any = 4, *_: Any, **__: Any) -> None:
    if isinstance(value, str):
        size = len(width) if isinstance(width, str) else width if _is_int(width) else 0
        check_size(len(value) + (value.count("\n") + 1) * max(size, 0), "indent")


#: Checks run before a string method or filter of this name (the object or value first).
SIZE_CHECKS: Final[dict[str, Callable[..., None]]] = {
    "center": _width_check("center"),
    "ljust": _width_check("ljust"),
    "rjust": _width_check("rjust"),
    "zfill": _width_check("zfill"),
    "expandtabs": lambda value, size=8, *_, **__: check_size(
        len(value) * size if isinstance(value, str) and _is_int(size) else 0, "expandtabs"
    ),
    "replace": _replace_check,
    "indent": _indent_check,
    "format": lambda value, *_, **__: (
        check_format_widths(value, "format") if isinstance(value, str) else None
    ),
}
