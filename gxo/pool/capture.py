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

import dataclasses
import logging
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Final

import msgspec

from gxo.outputs import (
    CapturedOutput,
    attempt_log,
    command_file,
    read_command,
    read_tail,
    tail_lines,
)
from gxo.reasons import format_reason
from gxo.secrets.redact import Redactor
from gxo.wire import Done, Run, WorkerConfig

if TYPE_CHECKING:
    # The worker side's; the parent imports this module for the tails of a dead worker's
    # logs only (a worker has them from the forkserver's preload).
    from gxo.modules.capture import CaptureSettings, StreamCapture

__all__ = [
    "TEXT_LIMIT",
    "AttemptOutput",
    "cap_text",
    "capture_settings",
    "command_from_files",
    "outputs_from_files",
    "too_large",
]

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


#: This process's command file, by run directory: its name holds the process id (a system
#: call to read per attempt otherwise). A forked child starts over.
_command_files: dict[str, str] = {}
os.register_at_fork(after_in_child=_command_files.clear)


def capture_settings(
    run: Run,
    config: WorkerConfig,
    redactor: Redactor,
    *,
    owns_descendants: bool = True,
    spare: frozenset[int] = frozenset(),
    relay: Callable[[bytes], object] | None = None,
) -> CaptureSettings:
    """How this attempt's command output is kept.

    ``owns_descendants``: True in a gxo worker, which runs one attempt and is the subreaper
    below it; False when the attempt runs in the caller's process (``worker.in_process``),
    whose other children are not the command's. ``spare``: the worker's own helpers below it
    (its guard), never killed as leftovers. ``relay``: where the command's live lines go
    (the worker's console, without the attempt log's tee).
    """
    from gxo.modules.capture import CaptureSettings

    prefix = commands = ""
    if config.run_dir and not _warn_once.warned:
        prefix = attempt_log(config.run_dir, run.task_name, run.loop_index, run.attempt)
        commands = _command_files.get(config.run_dir, "")
        if not commands:
            commands = command_file(config.run_dir, os.getpid())
            _command_files[config.run_dir] = commands
    return CaptureSettings(
        log_prefix=prefix,
        command_file=commands,
        capture_limit=config.output_capture,
        output_limit=run.output_limit,
        redactor=redactor,
        on_log_error=_warn_once,
        live=run.output == "stream" or (config.live_output and run.output != "quiet"),
        owns_descendants=owns_descendants,
        spare=spare,
        relay=relay,
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


def command_from_files(
    run_dir: str, run: Run, worker_pid: int
) -> tuple[list[str] | None, str | None]:
    """The command the attempt started and its directory, from the command file of the
    worker that ran it (a killed attempt sent no summary); ``(None, None)`` when it started
    none or kept no logs."""
    if not run_dir:
        return None, None
    prefix = attempt_log(run_dir, run.task_name, run.loop_index, run.attempt)
    return read_command(command_file(run_dir, worker_pid), prefix)


def outputs_from_files(run_dir: str, run: Run) -> list[CapturedOutput]:
    """What the attempt's command printed before its worker died, read from its log files."""
    if not run_dir:
        return []
    prefix = attempt_log(run_dir, run.task_name, run.loop_index, run.attempt)
    outputs = []
    for name in ("stdout", "stderr", "output"):
        path = f"{prefix}.{name}"
        if not os.path.exists(path):
            continue
        size, data = read_tail(path)
        outputs.append(
            CapturedOutput(name=name, bytes=size, kept=size, tail=tail_lines(data), path=path)
        )
    return outputs


class AttemptOutput:
    """What the worker itself prints during an attempt (a ``python`` function's ``print``,
    module logs, its children's output on fds 1 and 2), teed from the console into the
    attempt's ``.output`` log (stdout and stderr together: they share one pipe).

    Called with every piece written to the console, already redacted, under the console's
    lock; it never raises (a log that cannot be written is given up, with one warning).
    """

    def __init__(self) -> None:
        self._capture: StreamCapture | None = None
        #: The attempt now running, its capture made at its first output (most print nothing).
        self._attempt: tuple[Run, WorkerConfig] | None = None
        #: Log write failures, warned about in ``finish``: warning from inside the console's
        #: lock would write to the console again and deadlock.
        self._errors: list[str] = []

    def __call__(self, data: bytes) -> None:
        capture = self._capture
        if capture is None:
            if self._attempt is None:
                return
            capture = self._capture = self._open(*self._attempt)
        capture.feed(data)

    def start(self, run: Run, config: WorkerConfig) -> None:
        self._attempt = (run, config)

    def _open(self, run: Run, config: WorkerConfig) -> StreamCapture:
        from gxo.modules.capture import StreamCapture

        settings = dataclasses.replace(
            capture_settings(run, config, Redactor()),
            redactor=None,  # what reaches the console is already redacted
            on_log_error=self._errors.append,
            live=False,  # it is the console: teeing it back there would loop
        )
        return StreamCapture("output", settings)

    def finish(self, done: Done) -> Done:
        """``done`` with this attempt's output added when the worker printed anything."""
        capture, self._capture = self._capture, None
        self._attempt = None
        if capture is None:
            return done
        output = capture.close()
        for error in self._errors:
            _warn_once(error)
        self._errors.clear()
        if not output.bytes:
            return done
        return msgspec.structs.replace(done, outputs=[*done.outputs, output])
