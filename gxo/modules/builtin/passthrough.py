"""``passthrough``: forward records unchanged; without stream inputs, report that there were none.

Kept in GXO's shape so GXO playbooks run unchanged, and handy in examples and tests. The
optional ``value`` parameter makes it the simplest way to put a value into state.
"""

from __future__ import annotations

from typing import Any, ClassVar

import msgspec

from gxo.modules.base import Module, ModuleContext

__all__ = ["PassthroughModule", "PassthroughParams"]


class PassthroughParams(msgspec.Struct, forbid_unknown_fields=True):
    """Parameters of ``passthrough``; see :class:`PassthroughModule`."""

    value: Any = msgspec.UNSET


class PassthroughModule(Module[PassthroughParams]):
    """Forward every record of every stream input to every output, unchanged.

    Params:
        value (Any): optional; when given, the summary is ``{value, records_processed: 0}``,
            so ``register`` stores it (a simple way to pass a value between tasks).

    Summary: ``{records_processed: N}`` after forwarding N records (from all inputs, in
    the order they arrived; each input's order is kept). A task with no stream inputs
    forwards nothing and returns ``{records_processed: 0, message: "no input streams
    provided"}`` (GXO's summary). Records are not changed (GXO added
    ``_passthrough_source_id``; use ``ctx.input(name)`` in a python module to tell inputs
    apart). No side effects, so dry-run behaves exactly like a real run.
    """

    name: ClassVar[str] = "passthrough"
    Params: ClassVar[type[msgspec.Struct]] = PassthroughParams
    supports_dry_run: ClassVar[bool] = True

    def run(self, params: PassthroughParams, ctx: ModuleContext) -> dict[str, Any]:
        processed = ctx.forward_inputs() if ctx.has_inputs else 0
        if params.value is not msgspec.UNSET:
            return {"value": params.value, "records_processed": processed}
        if not ctx.has_inputs:
            return {"records_processed": 0, "message": "no input streams provided"}
        return {"records_processed": processed}
