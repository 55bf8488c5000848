"""``file:read`` and ``file:write``: records from and to files (JSON lines or CSV).

``file:read`` streams a file's records to its consumers; ``file:write`` writes the records of
its stream inputs to a file. Relative paths start at the playbook's directory (like the
``python`` module's ``file.py:function``), so a playbook and its data files move together.
"""

from __future__ import annotations

import contextlib
import csv
import os
from typing import Any, ClassVar, Literal

import msgspec

from gxo.modules.base import Module, ModuleContext, ModuleError

__all__ = ["FileReadModule", "FileReadParams", "FileWriteModule", "FileWriteParams"]

Format = Literal["jsonl", "csv"]
_BATCH = 512


class FileReadParams(msgspec.Struct, forbid_unknown_fields=True):
    """Parameters of ``file:read``; see :class:`FileReadModule`."""

    path: str
    format: Format = "jsonl"
    delimiter: str = ","
    encoding: str = "utf-8"

    def __post_init__(self) -> None:
        if len(self.delimiter) != 1:
            raise ValueError("parameter 'delimiter' must be one character")


class FileReadModule(Module[FileReadParams]):
    """Read records from a file and send each to every stream output.

    Params:
        path (str, required): the file to read (relative: from the playbook's directory).
        format (``jsonl`` | ``csv``, default ``jsonl``): JSON lines (one JSON value per
            line; blank lines are skipped; a value that is not an object becomes
            ``{"item": value}``) or CSV with a header row (each row a mapping of strings).
        delimiter (str, default ``,``): the CSV field separator.
        encoding (str, default ``utf-8``).

    Summary: ``{records_read: N, path}``. A missing file fails with reason
    ``file_not_found``; a line that is not JSON fails with ``bad_record`` and names the line.
    Dry-run reads and counts the records without sending them.
    """

    name: ClassVar[str] = "file:read"
    Params: ClassVar[type[msgspec.Struct]] = FileReadParams
    supports_dry_run: ClassVar[bool] = True

    def run(self, params: FileReadParams, ctx: ModuleContext) -> dict[str, Any]:
        emit_many = ctx.emit_many
        count = 0
        batch: list[Any] = []
        try:
            with open(_resolve(params.path, ctx), encoding=params.encoding, newline="") as handle:
                if params.format == "csv":
                    rows: Any = csv.DictReader(handle, delimiter=params.delimiter)
                else:
                    rows = _json_lines(handle, params.path)
                for record in rows:
                    batch.append(record)
                    if len(batch) >= _BATCH:
                        count += len(batch)
                        if not ctx.dry_run:
                            emit_many(batch)
                        batch = []
        except FileNotFoundError:
            raise ModuleError(f"file not found: {params.path!r}", reason="file_not_found") from None
        except (UnicodeDecodeError, csv.Error) as exc:
            raise ModuleError(f"cannot read {params.path!r}: {exc}", reason="bad_record") from None
        count += len(batch)
        if batch and not ctx.dry_run:
            emit_many(batch)
        return {"records_read": count, "path": params.path}


def _resolve(path: str, ctx: ModuleContext) -> str:
    """``path``, relative ones taken from the playbook's directory."""
    if os.path.isabs(path) or not ctx.playbook_dir:
        return path
    return os.path.join(ctx.playbook_dir, path)


def _json_lines(handle: Any, path: str) -> Any:
    decode = msgspec.json.Decoder().decode
    for number, line in enumerate(handle, 1):
        if not line.strip():
            continue
        try:
            value = decode(line)
        except msgspec.DecodeError as exc:
            raise ModuleError(
                f"{path}:{number}: not a JSON value ({exc})", reason="bad_record"
            ) from None
        yield value if isinstance(value, dict) else {"item": value}


class FileWriteParams(msgspec.Struct, forbid_unknown_fields=True):
    """Parameters of ``file:write``; see :class:`FileWriteModule`."""

    path: str
    format: Format = "jsonl"
    fields: list[str] | None = None
    delimiter: str = ","
    append: bool = False
    encoding: str = "utf-8"

    def __post_init__(self) -> None:
        if len(self.delimiter) != 1:
            raise ValueError("parameter 'delimiter' must be one character")


class FileWriteModule(Module[FileWriteParams]):
    """Write every record of the stream inputs to a file.

    Params:
        path (str, required): the file to write (created or truncated; see ``append``;
            relative: from the playbook's directory).
        format (``jsonl`` | ``csv``, default ``jsonl``): JSON lines, or CSV with a header row.
        fields (list[str]): CSV columns, in order; default: the keys of the first record.
            Keys a record has beyond them are an error (reason ``bad_record``).
        delimiter (str, default ``,``): the CSV field separator.
        append (bool, default false): append instead of replacing the file (no CSV header
            is written when the file already has content).
        encoding (str, default ``utf-8``).

    The file is written to a temporary name next to it and renamed at the end (unless
    ``append``), so a failed run never leaves a half-written file under ``path``.
    Summary: ``{records_written: N, path}``. Dry-run consumes the records and writes nothing.
    """

    name: ClassVar[str] = "file:write"
    Params: ClassVar[type[msgspec.Struct]] = FileWriteParams
    supports_dry_run: ClassVar[bool] = True

    def run(self, params: FileWriteParams, ctx: ModuleContext) -> dict[str, Any]:
        if ctx.dry_run:
            count = sum(len(batch) for batch in ctx.input_batches())
            return {"records_written": 0, "would_write": count, "path": params.path}
        target = _resolve(params.path, ctx)
        temp = target if params.append else f"{target}.gxo-tmp-{os.getpid()}"
        mode = "a" if params.append else "w"
        try:
            with open(temp, mode, encoding=params.encoding, newline="") as handle:
                if params.format == "csv":
                    count = _write_csv(handle, params, ctx)
                else:
                    count = _write_jsonl(handle, ctx)
            if temp != target:
                os.replace(temp, target)
        except BaseException:
            if temp != target:
                with contextlib.suppress(OSError):
                    os.unlink(temp)
            raise
        return {"records_written": count, "path": params.path}


def _write_jsonl(handle: Any, ctx: ModuleContext) -> int:
    encoder = msgspec.json.Encoder()
    count = 0
    buffer = bytearray()
    for batch in ctx.input_batches():
        for record in batch:
            encoder.encode_into(record, buffer, len(buffer))
            buffer += b"\n"
        count += len(batch)
        handle.write(buffer.decode("utf-8"))
        buffer.clear()
    return count


def _write_csv(handle: Any, params: FileWriteParams, ctx: ModuleContext) -> int:
    writer: csv.DictWriter[str] | None = None
    count = 0
    for batch in ctx.input_batches():
        for item in batch:
            record = item if isinstance(item, dict) else {"item": item}
            if writer is None:
                fields = params.fields if params.fields is not None else list(record)
                writer = csv.DictWriter(handle, fields, delimiter=params.delimiter)
                if not (params.append and handle.tell() > 0):
                    writer.writeheader()
            try:
                writer.writerow(record)
            except ValueError as exc:
                raise ModuleError(
                    # The record's 0-based index, as the stream errors name records.
                    f"record {count} does not fit the CSV columns: {exc}",
                    reason="bad_record",
                ) from None
            count += 1
    return count
