"""Fake third-party modules for the registry tests."""

from __future__ import annotations

from typing import Any, ClassVar

import msgspec

from gxo.modules import Module, ModuleContext


class GreetParams(msgspec.Struct, forbid_unknown_fields=True):
    who: str
    times: int = 1


class GreetModule(Module[GreetParams]):
    """Say hello to someone.

    Params:
        who (str, required): whom to greet.
        times (int, default 1): how often.
    """

    name: ClassVar[str] = "test:greet"
    Params: ClassVar[type[msgspec.Struct]] = GreetParams

    def run(self, params: GreetParams, ctx: ModuleContext) -> Any:
        return {"greeting": " ".join([f"hello {params.who}"] * params.times)}


class NotAModule:
    """Has the shape of nothing gxo can run."""
