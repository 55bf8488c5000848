"""Logging setup: plain text for people, one JSON object per line for machines.

Every record gets the run id, and the task or instance when it has one (``extra`` keys
``gxo_task``, ``gxo_status``, ``gxo_reason``). The parent never holds a secret value, and the
lines it relays from workers were redacted there, so no filter runs on the hot path here.
"""

from __future__ import annotations

import datetime as dt
import logging
import sys
from collections.abc import Callable
from typing import Any, TextIO

import msgspec

from gxo.observability import LOG_FORMATS, LOG_LEVELS

__all__ = [
    "LOG_FORMATS",
    "LOG_LEVELS",
    "RunIdFilter",
    "TextFormatter",
    "TraceLogFilter",
    "setup_logging",
]

_EXTRA_KEYS = ("gxo_task", "gxo_status", "gxo_reason", "gxo_ignored", "gxo_duration")


class TraceLogFilter(logging.Filter):
    """With tracing on, gives each record ``trace_id`` and ``span_id``: the span of the
    instance it is about (``gxo_task`` names it), else the run's span."""

    def __init__(self, ids: Callable[[str | None], tuple[str, str] | None]) -> None:
        super().__init__()
        self.ids = ids

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "trace_id", None) is None:
            found = self.ids(getattr(record, "gxo_task", None))
            if found is not None:
                record.trace_id, record.span_id = found
        return True


class RunIdFilter(logging.Filter):
    def __init__(self, run_id: str) -> None:
        super().__init__()
        self.run_id = run_id

    def filter(self, record: logging.LogRecord) -> bool:
        record.gxo_run_id = self.run_id
        return True


class JsonFormatter(logging.Formatter):
    """``{"time", "level", "logger", "message", "run_id", "task", ...}`` on one line."""

    _encoder = msgspec.json.Encoder()

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "run_id": getattr(record, "gxo_run_id", ""),
        }
        trace_id = getattr(record, "trace_id", None)
        if trace_id is not None:
            data["trace_id"] = trace_id
            data["span_id"] = getattr(record, "span_id", "")
        for key in _EXTRA_KEYS:
            value = getattr(record, key, None)
            if value is not None:
                data[key.removeprefix("gxo_")] = value
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        return self._encoder.encode(data).decode()


class TextFormatter(logging.Formatter):
    """The message alone for INFO; ``level: message`` otherwise."""

    def format(self, record: logging.LogRecord) -> str:
        text = record.getMessage()
        if record.levelno != logging.INFO:
            text = f"{record.levelname.lower()}: {text}"
        trace_id = getattr(record, "trace_id", None)
        if trace_id is not None:
            text += f" [trace_id={trace_id} span_id={getattr(record, 'span_id', '')}]"
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


def setup_logging(
    level: str = "info", fmt: str = "text", run_id: str = "", stream: TextIO | None = None
) -> logging.Handler:
    """Send gxo's records to ``stream`` (stderr by default); return the handler installed."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(RunIdFilter(run_id))
    logger = logging.getLogger("gxo")
    for old in list(logger.handlers):
        if getattr(old, "_gxo_handler", False):
            logger.removeHandler(old)
    handler._gxo_handler = True  # type: ignore[attr-defined]
    logger.addHandler(handler)
    logger.setLevel(level.upper())
    logger.propagate = False
    return handler
