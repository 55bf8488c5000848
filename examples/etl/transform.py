"""The ETL example's transform step: typed, cleaned user records, streamed on."""

from __future__ import annotations

from typing import Any

from gxo.modules import ModuleContext


def clean_users(ctx: ModuleContext, countries: list[str]) -> dict[str, Any]:
    """Keep users of ``countries``; ids become integers, names are capitalised."""
    kept = dropped = 0
    for row in ctx.inputs:
        if row["country"] not in countries:
            dropped += 1
            continue
        ctx.emit(
            {"user_id": int(row["user_id"]), "name": row["name"].title(), "country": row["country"]}
        )
        kept += 1
    return {"kept": kept, "dropped": dropped}
