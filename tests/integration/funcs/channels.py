"""Functions for ``test_worker_channels.py``: a module that holds its worker busy on demand."""

from __future__ import annotations

from pathlib import Path


def wait_then_read(fifo: str, path: str) -> dict[str, str]:
    """Block until the test opens ``fifo`` for writing and closes it; return ``path``'s text
    (a secret's value: it must come back masked)."""
    with open(fifo, "rb") as gate:
        gate.read()
    return {"value": Path(path).read_text(encoding="utf-8")}
