"""Module classes and secrets providers given to gxo in code (issue 15's tests and docs).

They live in a module file so that worker processes can import them by name, as real ones
must.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import msgspec

from gxo.modules import Module, ModuleContext


class ShoutParams(msgspec.Struct, forbid_unknown_fields=True):
    text: str


class ShoutModule(Module[ShoutParams]):
    """Upper-case a text (a module registered in code, not by an entry point)."""

    Params: ClassVar[type[msgspec.Struct]] = ShoutParams

    def run(self, params: ShoutParams, ctx: ModuleContext) -> Any:
        return {"text": params.text.upper(), "task": ctx.task_name}


class LeakyParams(msgspec.Struct, forbid_unknown_fields=True):
    line: str


class LeakyModule(Module[LeakyParams]):
    """Reads a credential by itself (no secret()) and prints, logs and fails with it."""

    Params: ClassVar[type[msgspec.Struct]] = LeakyParams

    def run(self, params: LeakyParams, ctx: ModuleContext) -> Any:
        print(params.line, flush=True)
        logging.getLogger("leaky").warning("connecting with %s", params.line)
        raise RuntimeError(f"cannot connect: {params.line}")


class JsonFileProvider:
    """Secrets from one JSON object in a file: ``{"DB_PASSWORD": "..."}``."""

    def __init__(self, path: str) -> None:
        self.path = path

    def options(self) -> Mapping[str, Any]:
        return {"path": self.path}

    def get(self, name: str) -> str | None:
        values = json.loads(Path(self.path).read_text(encoding="utf-8"))
        value = values.get(name)
        return None if value is None else str(value)


class FailingProvider:
    """A backend that fails, and says too much when it does (the value it was sent)."""

    def __init__(self, leak: str = "") -> None:
        self.leak = leak

    def options(self) -> Mapping[str, Any]:
        return {"leak": self.leak}

    def get(self, name: str) -> str | None:
        raise ConnectionError(f"vault unreachable; request was token={self.leak}")


class NumberProvider:
    """A provider with a bug: its values are numbers, not strings."""

    def options(self) -> Mapping[str, Any]:
        return {}

    def get(self, name: str) -> Any:
        return 12345


class NoOptionsProvider:
    """Has get() but no options(): gxo cannot build it again in a worker."""

    def get(self, name: str) -> str | None:
        return None


class CountUsersModule(Module[msgspec.Struct]):
    """Reads ``users`` from the state without a template referencing it (GXO's StateReader),
    and reports whether it could change it."""

    reads_state: ClassVar[tuple[str, ...]] = ("users",)

    def run(self, params: Any, ctx: ModuleContext) -> Any:
        users = ctx.state["users"]["value"]
        attempts = {}
        for what, change in {
            "top": lambda: ctx.state.__setitem__("users", None),  # type: ignore[index]
            "nested_mapping": lambda: users.__setitem__("stdout", "x"),
            "nested_list": lambda: users["names"].append("mallory"),
            "deeper": lambda: users["meta"]["tags"].append("x"),
        }.items():
            try:
                change()
                attempts[what] = "changed"
            except (TypeError, AttributeError):
                attempts[what] = "read-only"
        return {"count": len(users["names"]), "attempts": attempts}


class ChattyModule(Module[msgspec.Struct]):
    """Logs one line through the logging module (traced logs test)."""

    def run(self, params: Any, ctx: ModuleContext) -> Any:
        logging.getLogger("chatty").warning("chatty says hello")
        return {}
