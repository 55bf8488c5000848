"""The caps on what one attempt sends back, and its output logs, as the pool sees them.

The worker side: each attempt's :class:`~gxo.modules.capture.CaptureSettings` (where its
logs go, the ``output_capture`` cap, ``limits.output``), the result size cap
(``result_too_large``: the encoded result is measured before it is sent, so no result can
grow the parent or overflow a frame), and the cap on the error and traceback texts.

The parent side: when a worker died or was killed before sending its result, what the
command printed before the kill is still in its log files: :func:`outputs_from_files` reads
their tails (already redacted by the worker, which writes only redacted text).
"""

from __future__ import annotations

import logging
import os
from typing import Final

from gxo.modules.capture import CaptureSettings
from gxo.outputs import CapturedOutput, attempt_log, read_tail, tail_lines
from gxo.reasons import format_reason
from gxo.secrets.redact import Redactor
from gxo.wire import Done, Run, WorkerConfig

__all__ = ["TEXT_LIMIT", "cap_text", "capture_settings", "outputs_from_files", "too_large"]

#: The longest error or traceback text a result carries (its start and its end are kept).
TEXT_LIMIT: Final = 64 * 1024

_log = logging.getLogger("gxo.worker")


class _WarnOnce:
    """Log the first failure to write a log file in this worker, and only that one."""

    def __init__(self) -> None:
        self.warned = False

    def __call__(self, message: str) -> None:
        if not self.warned:
            self.warned = True
            _log.warning("%s; this worker keeps no more output logs", message)


_warn_once = _WarnOnce()


def capture_settings(run: Run, config: WorkerConfig, redactor: Redactor) -> CaptureSettings:
    """How this attempt's command output is kept."""
    prefix = ""
    if config.run_dir and not _warn_once.warned:
        prefix = attempt_log(config.run_dir, run.task_name, run.loop_index, run.attempt)
    return CaptureSettings(
        log_prefix=prefix,
        capture_limit=config.output_capture,
        output_limit=run.output_limit,
        redactor=redactor,
        on_log_error=_warn_once,
        live=run.output == "stream" or (config.live_output and run.output != "quiet"),
    )


def too_large(done: Done, size: int, limit: int) -> Done:
    """The result that replaces one whose encoding is ``size`` bytes, over ``limit``."""
    return Done(
        instance_id=done.instance_id,
        ok=False,
        reason=format_reason("result_too_large"),
        error=f"the task's result is {size} bytes encoded, over the limit of {limit} bytes "
        "(--result-limit): it was dropped",
        duration=done.duration,
        max_rss_kib=done.max_rss_kib,
        started_at=done.started_at,
        streams=done.streams,
        secrets_accessed=done.secrets_accessed,
        outputs=done.outputs,
        leftovers_killed=done.leftovers_killed,
    )


def cap_text(text: str, limit: int = TEXT_LIMIT) -> str:
    """``text``, or its start and end with the count of characters left out between them."""
    if len(text) <= limit:
        return text
    half = limit // 2
    left_out = len(text) - 2 * half
    return f"{text[:half]}\n[... {left_out} characters left out ...]\n{text[-half:]}"


def outputs_from_files(run_dir: str, run: Run) -> list[CapturedOutput]:
    """What the attempt's command printed before its worker died, read from its log files."""
    if not run_dir:
        return []
    prefix = attempt_log(run_dir, run.task_name, run.loop_index, run.attempt)
    outputs = []
    for name in ("stdout", "stderr"):
        path = f"{prefix}.{name}"
        if not os.path.exists(path):
            continue
        size, data = read_tail(path)
        outputs.append(
            CapturedOutput(name=name, bytes=size, kept=size, tail=tail_lines(data), path=path)
        )
    return outputs
