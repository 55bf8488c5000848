"""Functions the canary playbooks call (``python`` tasks): every way a module may leak a value.

Encodings are computed here with the standard library, independently of gxo's redactor.
"""

from __future__ import annotations

import base64
import html
import json
import logging
import os
import shlex
import subprocess
import sys
from typing import Any
from urllib.parse import quote, quote_plus


def encoded(value: str) -> dict[str, str]:
    """The value in every form a command or a library commonly prints it."""
    raw = value.encode()
    forms = {
        "literal": value,
        "repr": repr(value),
        "ascii": ascii(value),
        "json": json.dumps(value),
        "json_utf8": json.dumps(value, ensure_ascii=False),
        "quote": quote(value, safe=""),
        "quote_path": quote(value),
        "quote_plus": quote_plus(value),
        "html": html.escape(value),
        "shlex": shlex.quote(value),
    }
    for before in range(3):
        data = b"\x01" * before + raw
        forms[f"b64_{before}"] = base64.b64encode(data).decode()
        forms[f"b64url_{before}"] = base64.urlsafe_b64encode(data).decode().rstrip("=")
    for i, line in enumerate(value.splitlines()):
        forms[f"line_{i}"] = f"line: {line}"
    return forms


def shout(value: str, name: str) -> dict[str, Any]:
    """Print, write, log and return the value through every channel a worker has."""
    log = logging.getLogger(f"canary.{name}")
    for key, form in encoded(value).items():
        print(f"print {key}: {form}")
        print(f"stderr {key}: {form}", file=sys.stderr)
        log.warning("log %s: %s", key, form)
    print(f"repr in a container: {[value]!r} { ({'k': value}) }")
    # split across writes, with flushes in between
    half = len(value) // 2
    sys.stdout.write("split: " + value[:half])
    sys.stdout.flush()
    sys.stdout.write(value[half:] + " :end\n")
    sys.stdout.buffer.write(f"buffer: {value}\n".encode())
    sys.stdout.buffer.flush()
    os.write(1, f"os.write fd1: {value}\n".encode())
    os.write(2, f"os.write fd2: {value}\n".encode())
    # a child process that inherits file descriptors 1 and 2
    subprocess.run(
        [sys.executable, "-c", "import os, sys; print('child:', os.environ['V']); "
         "print('child err:', os.environ['V'], file=sys.stderr)"],
        env={**os.environ, "V": value},
        check=True,
    )  # fmt: skip
    os.environ["V"] = value
    os.system('printf "system: %s\\n" "$V"')
    del os.environ["V"]
    try:
        raise ValueError(f"handled {value!r}")
    except ValueError:
        log.exception("logged exception with %s", value)
    log.debug("debug %s", value)
    log.info("info %s", value)
    log.error("error %s", value)
    ctx_log = logging.getLogger(f"gxo.task.{name}")
    ctx_log.warning("task logger %s", value)
    return {
        "forms": encoded(value),
        value: "as a key",
        "nested": [{"deep": [value, f"x{value}y"]}],
        "exit_code": 0,
        "status": "ok",
        "count": 3,
    }


def raise_plain(value: str) -> None:
    raise ValueError(f"bad value {value!r} / {value}")


def raise_chained(value: str) -> None:
    try:
        raise KeyError(value)
    except KeyError as exc:
        raise RuntimeError("outer error without the value") from exc


def raise_implicit(value: str) -> None:
    try:
        raise LookupError(f"first {value}")
    except LookupError:
        raise RuntimeError("while handling it")  # noqa: B904 - the implicit __context__


def crash(value: str) -> None:
    print(f"about to crash with {value}")
    sys.stdout.flush()
    sys.stderr.write(f"stderr before crash {value}\n")
    sys.stderr.flush()
    os._exit(3)


def keep(received: Any, path: str) -> Any:
    """Write what this task received from the state (module output is not redacted)."""
    with open(path, "w", encoding="utf-8") as f:
        json.dump(received, f, ensure_ascii=False)
    print("received from state:", received)
    return received


def from_environment(name: str) -> dict[str, str]:
    """Read a secret's value without secret(): only the run-wide registry masks it here."""
    value = os.environ[name]
    print(f"read from the environment: {value}")
    return {"value": value, "forms": encoded(value)["b64_1"]}


def leak_transformed(value: str) -> dict[str, str]:
    """Transformations the redactor does not know (documented limitations)."""
    wrapped = base64.encodebytes(b"\x01\x02" + value.encode() * 3).decode()
    print(f"hex: {value.encode().hex()}")
    print(f"upper: {value.upper()}")
    print(f"wrapped base64:\n{wrapped}")
    return {"hex": value.encode().hex()}


def print_value(value: str) -> None:
    print(f"value: [{value}] and x{value}x")


def two_keys(first: str, second: str) -> dict[str, Any]:
    """Two secrets as keys of one mapping: once redacted they collide."""
    return {first: "first", second: "second", "plain": "kept"}


def as_numbers(value: str) -> dict[str, Any]:
    """A numeric secret returned as numbers (and a smaller number that is not a secret)."""
    number = int(value)
    print(f"number {number}")
    return {"int": number, "float": float(number), "list": [number, 7], "other": 1234}


def emit_secret(ctx: Any, value: str) -> dict[str, int]:
    """Stream the value to the consumers in several forms (records are data: real values)."""
    forms = encoded(value)
    ctx.emit({"value": value, "forms": forms})
    ctx.emit({"nested": [{"deep": value}], value: "as a key"})
    return {"emitted": 2}


def consume_secret(ctx: Any, name: str) -> dict[str, Any]:
    """Check the records carry the real value, then leak them through every channel: the
    consumer's worker must mask them though it never called secret() itself."""
    real = os.environ[name]
    records = list(ctx.inputs)
    intact = records[0]["value"] == real and records[1]["nested"][0]["deep"] == real
    for record in records:
        print(f"record: {record}")
        logging.getLogger("canary.stream").warning("record %s", record)
        os.write(2, f"fd2 record: {record}\n".encode())
    shout(real, "stream")
    return {"intact": intact, "records": records}
