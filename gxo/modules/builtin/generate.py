"""``generate:from_list``: turn a list from the playbook (or from state) into records.

Each item becomes one record, the way GXO does it: a mapping is the record itself, any other
value is wrapped as ``{"item": value}``. A mapping with a non-string key cannot be a record;
GXO skipped such an item silently, here it is a parameter error at conversion time.
"""

from __future__ import annotations

from typing import Any, ClassVar

import msgspec

from gxo.modules.base import Module, ModuleContext

__all__ = ["FromListModule", "FromListParams"]


class FromListParams(msgspec.Struct, forbid_unknown_fields=True):
    """Parameters of ``generate:from_list``; see :class:`FromListModule`."""

    items: list[Any]

    def __post_init__(self) -> None:
        for index, item in enumerate(self.items):
            if isinstance(item, dict):
                for key in item:
                    if not isinstance(key, str):
                        raise ValueError(
                            f"parameter 'items[{index}]' is a mapping with a non-string key "
                            f"{key!r} ({type(key).__name__}); record keys must be strings"
                        )


class FromListModule(Module[FromListParams]):
    """Generate one record per item of a list.

    Params:
        items (list, required): the items; a mapping is used as the record, any other value
            becomes ``{"item": value}``. Mapping keys must be strings.

    Each record is sent to every stream output (the consumers that list this task in
    ``stream_inputs``), in list order; stream inputs, if any, are drained and ignored.

    Summary: ``{records_generated: N}`` (GXO's summary). No side effects, so dry-run behaves
    exactly like a real run.
    """

    name: ClassVar[str] = "generate:from_list"
    Params: ClassVar[type[msgspec.Struct]] = FromListParams
    supports_dry_run: ClassVar[bool] = True

    def run(self, params: FromListParams, ctx: ModuleContext) -> dict[str, Any]:
        records = [item if isinstance(item, dict) else {"item": item} for item in params.items]
        for _ in ctx.input_batches():
            pass
        ctx.emit_many(records)
        return {"records_generated": len(records)}
