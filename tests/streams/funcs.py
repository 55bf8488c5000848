"""Python module functions used by the stream tests (run inside worker processes)."""

from __future__ import annotations

import os
import signal
from typing import Any

from gxo.modules import ModuleContext


def produce(ctx: ModuleContext, count: int = 10, size: int = 0, start: int = 0) -> dict[str, Any]:
    """Emit ``count`` records ``{"i": n, "pad": "x" * size}``."""
    pad = "x" * size
    for n in range(start, start + count):
        ctx.emit({"i": n, "pad": pad} if size else {"i": n})
    return {"emitted": count}


def produce_sizes(ctx: ModuleContext, sizes: list[int]) -> dict[str, Any]:
    """One record per size, with a payload of that many bytes."""
    for n, size in enumerate(sizes):
        ctx.emit({"i": n, "pad": "y" * size})
    return {"emitted": len(sizes)}


def produce_then_fail(ctx: ModuleContext, count: int = 5, how: str = "raise") -> None:
    """Emit ``count`` records (flushed), then raise, exit or die by SIGKILL."""
    for n in range(count):
        ctx.emit({"i": n})
    ctx._streams.writers[0].flush()  # type: ignore[union-attr]
    if how == "raise":
        raise RuntimeError("producer broke mid-stream")
    if how == "exit":
        os._exit(7)
    os.kill(os.getpid(), signal.SIGKILL)


def produce_until_gone(ctx: ModuleContext, size: int = 1000) -> None:
    """Emit for ever: ends only when every consumer is gone (ConsumersGone)."""
    n = 0
    pad = "z" * size
    while True:
        ctx.emit({"i": n, "pad": pad})
        n += 1


def produce_until_gone_then_signal(ctx: ModuleContext, fifo: str) -> None:
    """Emit until every consumer is gone, then open ``fifo`` for writing, and re-raise."""
    from gxo.streams import ConsumersGone

    n = 0
    try:
        while True:
            ctx.emit({"i": n})
            n += 1
    except ConsumersGone:
        with open(fifo, "w") as handle:
            handle.write("gone")
        raise


def produce_then_signal(ctx: ModuleContext, count: int, fifo: str) -> dict[str, Any]:
    """Emit ``count`` records, then open ``fifo`` for writing: the consumer starts reading.

    The FIFO is opened whatever happens, so a consumer waiting on it is always released.
    """
    try:
        for n in range(count):
            ctx.emit({"i": n})
    finally:
        with open(fifo, "w") as handle:
            handle.write("go")
    return {"emitted": count}


def consume(ctx: ModuleContext) -> dict[str, Any]:
    """Every record's ``i``, per producer when several."""
    if len(ctx.input_names) > 1:
        order: list[Any] = []
        per: dict[str, list[Any]] = {name: [] for name in ctx.input_names}
        for record in ctx.inputs:
            order.append(record["i"])
            per[record["src"]].append(record["i"])
        return {"count": len(order), "per": per}
    seen = [record["i"] for record in ctx.inputs]
    return {"count": len(seen), "seen": seen}


def consume_sizes(ctx: ModuleContext) -> dict[str, Any]:
    return {"seen": [[r["i"], len(r["pad"])] for r in ctx.inputs]}


def consume_per_input(ctx: ModuleContext) -> dict[str, Any]:
    """Read each input in turn with ctx.input(name)."""
    return {name: [r["i"] for r in ctx.input(name)] for name in ctx.input_names}


def consume_after_signal(ctx: ModuleContext, fifo: str) -> dict[str, Any]:
    """Wait until the producer opened ``fifo`` (it has emitted everything), then read."""
    with open(fifo) as handle:
        handle.read()
    seen = [record["i"] for record in ctx.inputs]
    return {"count": len(seen), "seen": seen}


def consume_some_then_fail(ctx: ModuleContext, after: int = 1, how: str = "raise") -> None:
    """Read ``after`` records, then raise or die by SIGKILL (the producer keeps writing)."""
    for n, _ in enumerate(ctx.inputs, 1):
        if n >= after:
            break
    if how == "raise":
        raise RuntimeError("consumer broke mid-stream")
    os.kill(os.getpid(), signal.SIGKILL)


def never_read(ctx: ModuleContext) -> dict[str, Any]:
    """Return at once without reading the inputs."""
    return {"read": 0}


def read_first(ctx: ModuleContext, n: int) -> dict[str, Any]:
    """Read ``n`` records and return: gxo drains the rest."""
    first = []
    for record in ctx.inputs:
        first.append(record["i"])
        if len(first) == n:
            break
    return {"first": first}


def read_then_close(ctx: ModuleContext, n: int) -> dict[str, Any]:
    """Read ``n`` records, then close the inputs (the producer is stopped, not drained)."""
    first = read_first(ctx, n)["first"]
    ctx.close_inputs()
    return {"first": first, "after_close": sum(1 for _ in ctx.inputs)}


def close_wait_then_fail(ctx: ModuleContext, fifo: str) -> None:
    """Read one record, close the inputs, wait until the producer saw that, then fail."""
    next(iter(ctx.inputs))
    ctx.close_inputs()
    with open(fifo) as handle:
        handle.read()
    raise RuntimeError("consumer failed after closing its input")


def swallow_errors(ctx: ModuleContext) -> dict[str, Any]:
    """Catch the stream error and claim success: the task must still fail."""
    seen = 0
    try:
        for _ in ctx.inputs:
            seen += 1
    except Exception:  # noqa: BLE001 - the point of the test
        return {"seen": seen, "pretending": True}
    return {"seen": seen}


def tag(ctx: ModuleContext, name: str, count: int) -> dict[str, Any]:
    for n in range(count):
        ctx.emit({"i": n, "src": name})
    return {"emitted": count}


def collect(ctx: ModuleContext) -> list[Any]:
    """Every record, as received."""
    return list(ctx.inputs)


def emit_value(ctx: ModuleContext, value: str) -> None:
    """Emit one record holding ``value`` (a secret, in the redaction test)."""
    ctx.emit({"v": value, "text": f"token={value};"})


def consume_tagged(ctx: ModuleContext) -> dict[str, list[Any]]:
    """Records of several producers through one input, split by their ``src`` tag."""
    per: dict[str, list[Any]] = {}
    for record in ctx.inputs:
        per.setdefault(record["src"], []).append(record["i"])
    return per


class Opaque:
    """Not plain data: no stream record may hold one."""


def produce_bad_record(
    ctx: ModuleContext, good: int, bad: str = "object", swallow: bool = False
) -> dict[str, Any]:
    """Emit ``good`` records, then one that cannot be encoded (or, ``large``, one of 2 MB),
    then more good ones."""
    values: dict[str, Any] = {
        "object": Opaque(),
        "bigint": 2**70,
        "complex": 1j,
        "large": "x" * 2_000_000,
    }
    try:
        for n in range(good):
            ctx.emit({"i": n})
        if bad == "deep":
            deep: list[Any] = []
            for _ in range(100_000):
                deep = [deep]
            ctx.emit({"i": good, "v": deep})
        else:
            ctx.emit({"i": good, "v": values[bad]})
        for n in range(good + 1, good + 10):
            ctx.emit({"i": n})
    except Exception:  # a module that hides the error still fails
        if not swallow:
            raise
    return {"emitted": good}


def check_value(ctx: ModuleContext, digest: str) -> dict[str, Any]:
    """Whether every record's ``v`` is the real value (its sha256 is ``digest``); prints it."""
    import hashlib

    matches = []
    for record in ctx.inputs:
        print(f"got {record['v']}")
        matches.append(hashlib.sha256(record["v"].encode()).hexdigest() == digest)
    return {"matches": matches}


def consume_all_then_fail(ctx: ModuleContext) -> None:
    """Read every record (so the producer has ended its stream), then fail."""
    seen = sum(1 for _ in ctx.inputs)
    raise KeyError(f"failed after {seen} records")
