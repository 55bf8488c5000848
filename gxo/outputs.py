"""Captured command output: where it is kept (the run directory) and what travels with a result.

Every attempt's stdout and stderr are written whole (up to the ``output_capture`` cap, redacted)
to the run directory; the worker keeps only the last :data:`TAIL_BYTES` of each in memory, and
its result carries a :class:`CapturedOutput` per stream: the last :data:`TAIL_LINES` lines for
display, the sizes, whether the file was cut at the cap, and the file's path. Layout::

    <state dir>/                    .gxo in the current directory, or --state-dir / GXO_STATE_DIR
      runs/<run_id>/                one directory per run
        .lock                       held (flock) by the run while it runs: `gxo clean` skips it
        <task>/attempt<N>.stdout    a task without a loop, attempt N (1, 2, ... with retries)
        <task>/attempt<N>.stderr
        <task>/item<I>.attempt<N>.stdout   loop item I (0-based)
        <task>/attempt<N>.output    what the worker printed (a python function, module logs)

Task names are letters, digits, ``_`` and ``-``, so every path is safe to type in a shell.

Level 0: imports nothing from gxo.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import msgspec

__all__ = [
    "CUT_MARK",
    "DEFAULT_OUTPUT_CAPTURE",
    "DEFAULT_RESULT_LIMIT",
    "MAX_RESULT_LIMIT",
    "RUN_LOCK",
    "STATE_DIR_ENV",
    "TAIL_BYTES",
    "TAIL_LINES",
    "TAIL_TEXT_BYTES",
    "CapturedOutput",
    "attempt_log",
    "command_facts",
    "command_file",
    "hold_run_dir",
    "read_command",
    "read_tail",
    "run_dir",
    "run_dir_in_use",
    "state_dir",
    "tail_lines",
]

#: How much of each stream a worker keeps in memory (the summary's ``stdout``/``stderr``).
TAIL_BYTES: Final = 64 * 1024
#: How many lines of each stream a result carries for display.
TAIL_LINES: Final = 20
#: What starts a tail line that lost its start (a line longer than the tail's bytes).
CUT_MARK: Final = "[...]"
#: ... and at most this many bytes of them: the parent keeps every attempt's display tail
#: until the report is written, so one line of megabytes must not cost 64 KiB per attempt
#: (on top of the summary's own 64 KiB). A longer last line keeps its end.
TAIL_TEXT_BYTES: Final = 4 * 1024
#: Default ``output_capture``: bytes of each stream written to its log file, per attempt.
DEFAULT_OUTPUT_CAPTURE: Final = 1 << 30
#: Default ``--result-limit``: the largest encoded result (summary) a task may return.
DEFAULT_RESULT_LIMIT: Final = 64 << 20
#: The largest ``--result-limit``: a worker's message must stay under the 1 GiB frame limit.
MAX_RESULT_LIMIT: Final = (1 << 30) - (1 << 20)
#: The file in a run directory its run holds locked (``flock``) for its whole life.
RUN_LOCK: Final = ".lock"
#: The environment variable that moves the state directory (like ``--state-dir``).
STATE_DIR_ENV: Final = "GXO_STATE_DIR"


class CapturedOutput(msgspec.Struct, frozen=True, kw_only=True):
    """One output stream of one attempt, as the result and the report carry it.

    ``bytes`` counts everything the command wrote; ``kept`` what was written to ``path``
    (less when ``truncated``: the ``output_capture`` cap was reached, and the command was
    still drained). ``tail`` is the last :data:`TAIL_LINES` lines, redacted. ``path`` is empty
    when no log file was written (the run directory could not be written).
    """

    name: str
    bytes: int = 0
    kept: int = 0
    truncated: bool = False
    tail: list[str] = []
    path: str = ""


def state_dir(
    explicit: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Path:
    """The state directory: ``explicit``, else ``$GXO_STATE_DIR``, else ``./.gxo``.

    The one resolver of ``--state-dir``: the attempt logs (``runs/<run_id>/``) and the run
    journal (``journal/``, :mod:`gxo.journal`) both live under it (DESIGN §15).
    """
    if explicit is not None and str(explicit):
        return Path(explicit)
    env = (os.environ if environ is None else environ).get(STATE_DIR_ENV, "")
    return Path(env) if env else Path(".gxo")


def run_dir(state: Path, run_id: str) -> Path:
    """The directory of one run's attempt logs."""
    return state / "runs" / run_id


def hold_run_dir(path: Path) -> int:
    """Create the run directory ``path`` and lock its :data:`RUN_LOCK` file; the descriptor.

    The run keeps the descriptor open until it ends (closing it releases the lock, and the
    kernel drops it when the process dies, so a crashed run leaves no stale lock): while it
    is held, ``gxo clean`` leaves the directory alone. Creating the lock file also proves the
    directory can be written. Raises ``OSError`` when it cannot be (or another process
    holds the lock: ``BlockingIOError``).
    """
    import fcntl  # a run only

    path.mkdir(parents=True, exist_ok=True)
    fd = os.open(path / RUN_LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BaseException:
        os.close(fd)
        raise
    return fd


def run_dir_in_use(path: str | os.PathLike[str]) -> bool:
    """Whether a running run holds the lock of the run directory ``path``."""
    import fcntl  # `gxo clean` only

    try:
        fd = os.open(os.path.join(path, RUN_LOCK), os.O_RDONLY | os.O_CLOEXEC)
    except OSError:  # no lock file: a run of an older gxo, or none
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # releases the shared lock taken to test it
    return False


def attempt_log(directory: str, task: str, loop_index: int | None, attempt: int) -> str:
    """The log files of one attempt, without the ``.stdout``/``.stderr`` suffix."""
    item = "" if loop_index is None else f"item{loop_index}."
    return os.path.join(directory, task, f"{item}attempt{attempt}")


def tail_lines(data: bytes, count: int = TAIL_LINES, limit: int = TAIL_TEXT_BYTES) -> list[str]:
    """The last ``count`` lines of ``data`` (decoded, without line ends; a last empty line
    after the final newline is not a line), within the last ``limit`` bytes: a line cut at
    that bound starts with ``[...]``."""
    cut = False  # whether the first line kept lost its start
    if len(data) > limit:
        cut = data[-limit - 1 : -limit] != b"\n"
        data = data[-limit:]
    text = data.decode("utf-8", errors="replace")
    lines = text.splitlines()
    if not count:
        return []
    if cut and len(lines) > count:
        cut = False  # the cut line is not among the last ``count``
    lines = lines[-count:]
    if cut and lines:
        lines[0] = CUT_MARK + lines[0].lstrip("\ufffd")  # a character split by the cut
    return lines


def read_tail(path: str, limit: int = TAIL_BYTES) -> tuple[int, bytes]:
    """The size of the file at ``path`` and its last ``limit`` bytes ((0, b"") if absent).

    Used by the parent when a worker died before sending its result: what the command printed
    before the kill is still in its log file (already redacted by the worker).
    """
    try:
        with open(path, "rb") as file:
            size = os.fstat(file.fileno()).st_size
            file.seek(max(0, size - limit))
            data = file.read(limit)
    except OSError:
        return 0, b""
    if size > limit:
        cut = data.find(b"\n")
        if 0 <= cut < len(data) - 1:
            data = data[cut + 1 :]  # start at a whole line
    return size, data


def command_facts(summary: Any) -> tuple[list[str] | None, str | None, int | None]:
    """``(command, cwd, exit_code)`` from an attempt's summary (``exec`` returns them, on
    failure too); each None when absent or not of its type. A dry run has no exit code."""
    if not isinstance(summary, dict):
        return None, None, None
    command = summary.get("command")
    if not (isinstance(command, list) and all(isinstance(x, str) for x in command)):
        command = None
    cwd = summary.get("cwd")
    code = summary.get("exit_code")
    if not isinstance(code, int) or isinstance(code, bool) or summary.get("dry_run"):
        code = None
    return command, cwd if isinstance(cwd, str) else None, code


def command_file(directory: str, pid: int) -> str:
    """The file in which the worker ``pid`` records the command it started last.

    One file per worker, overwritten by each command, not one per attempt: creating a file
    (and its task's directory) for every command cost more than the command's own start on a
    busy ext4 (two inode allocations per ``exec``)."""
    return os.path.join(directory, f"worker{pid}.command")


def read_command(path: str, prefix: str) -> tuple[list[str] | None, str | None]:
    """The command the attempt whose logs are ``prefix`` started and its directory, from the
    worker's command file ``path`` (written, redacted, by
    :func:`gxo.modules.capture.record_command` when it started): how a killed attempt, which
    returned no summary, still says what it ran. ``(None, None)`` if absent, or when the
    file names another attempt (the worker had not started a command for this one)."""
    try:
        with open(path, "rb") as file:
            data = msgspec.json.decode(file.read(64 * 1024))
    except (OSError, msgspec.DecodeError):
        return None, None
    if not isinstance(data, dict) or data.get("attempt") != prefix:
        return None, None
    command, cwd, _ = command_facts(data)
    return command, cwd
