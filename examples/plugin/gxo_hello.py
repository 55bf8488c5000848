"""``hello:greet``, an example third-party gxo module written against the module SDK only.

Everything it imports from gxo comes from :mod:`gxo.modules`, the stable SDK surface.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import msgspec

from gxo.modules import Module, ModuleContext, ModuleError

__all__ = ["GreetModule", "GreetParams"]


class GreetParams(msgspec.Struct, forbid_unknown_fields=True):
    """Parameters of ``hello:greet``; see :class:`GreetModule`."""

    who: str
    greeting: str = "hello"
    shout: bool = False
    #: Also append the message to this file (relative paths start at the playbook's directory).
    to_file: str | None = None

    def __post_init__(self) -> None:
        if not self.who.strip():
            raise ValueError("parameter 'who' must not be blank")


class GreetModule(Module[GreetParams]):
    """Greet someone, and optionally write the greeting to a file.

    Params:
        who (str, required): whom to greet.
        greeting (str, default "hello"): the word to use.
        shout (bool, default false): upper-case the message.
        to_file (str): append the message to this file.

    Summary: ``{message, written_to}``. Dry run returns the message and ``would_write``
    without touching the file.
    """

    name: ClassVar[str] = "hello:greet"
    Params: ClassVar[type[msgspec.Struct]] = GreetParams
    supports_dry_run: ClassVar[bool] = True

    def run(self, params: GreetParams, ctx: ModuleContext) -> dict[str, Any]:
        message = f"{params.greeting}, {params.who}!"
        if params.shout:
            message = message.upper()
        target = None
        if params.to_file is not None:
            target = Path(ctx.playbook_dir or ".", params.to_file)
        if ctx.dry_run:
            return {"message": message, "would_write": None if target is None else str(target)}
        if target is not None:
            try:
                with target.open("a", encoding="utf-8") as file:
                    file.write(message + "\n")
            except OSError as exc:
                raise ModuleError(f"cannot write {target}: {exc.strerror}") from None
        ctx.log.info("greeted %s", params.who)
        return {"message": message, "written_to": None if target is None else str(target)}
