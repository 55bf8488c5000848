"""Functions the ``python`` module tests call by ``fixtures_modules.funcs:<name>``."""

from __future__ import annotations

import dataclasses
from typing import Any

from gxo.modules import ModuleContext


def add(a: int, b: int = 0) -> dict[str, int]:
    return {"sum": a + b}


def echo(*args: Any, **kwargs: Any) -> dict[str, Any]:
    return {"args": list(args), "kwargs": kwargs}


def with_ctx(x: int, ctx: ModuleContext) -> dict[str, Any]:
    return {"x": x, "task": ctx.task_name, "attempt": ctx.attempt, "dry_run": ctx.dry_run}


def with_gxo_context(gxo_context: ModuleContext) -> str:
    return gxo_context.task_name


def returns_object() -> object:
    return object()


@dataclasses.dataclass
class Point:
    x: int
    y: int


def returns_dataclass() -> Point:
    return Point(1, 2)


def returns_int_keys() -> dict[int, str]:
    return {1: "one"}


async def async_add(a: int, b: int) -> int:
    return a + b


def boom() -> None:
    raise RuntimeError("boom from user code")


class Greeter:
    @staticmethod
    def hello(name: str) -> str:
        return f"hello {name}"


NOT_CALLABLE = 42
