"""The files gxo writes when a run ends (JSON report, HTML report, metrics textfile).

Two rules keep a run's result from being lost:

- **Check before the run.** :func:`check_output_path` refuses a path whose directory is
  missing or read-only, or that names a directory, while nothing has run yet (exit 2), instead
  of finding out after an hour of work.
- **Write atomically, never fail the run.** :func:`write_atomic` writes a temporary file in
  the target's directory and renames it over the target, so a reader sees the old file or the
  new one, never half of one; on any error the temporary file is removed. :func:`save_output`
  turns a failure that still happens after the run (a full disk, a directory removed or
  made read-only meanwhile) into one logged error: the run's exit code stays what the run
  decided.

A path that exists and is not a regular file (``/dev/stdout``, a named pipe, ``/dev/full``)
is written in place: renaming over it would replace the device or pipe itself.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from gxo.errors import UsageError

__all__ = ["check_output_path", "check_output_paths", "save_output", "write_atomic"]

log = logging.getLogger("gxo")


def _umask() -> int:
    """The process umask, read without changing it (``os.umask`` would race other threads)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    return 0o022


def _in_place(path: str) -> bool:
    """An existing target that is not a regular file: write into it, do not rename over it."""
    try:
        return not stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False


def write_atomic(path: str | os.PathLike[str], data: bytes | Iterable[bytes]) -> None:
    """Replace ``path`` with ``data`` in one step; raises :class:`OSError`, leaves no temp file.

    ``data`` may come in pieces (the report of a huge loop, written as a stream: only one
    piece is in memory at a time).

    A symbolic link is followed (the file it points to is replaced, as ``open`` would write
    it). The new file gets the mode a plain ``open`` would give it (0666 less the umask).
    """
    raw = os.fspath(path)
    if _in_place(raw):
        with open(raw, "wb") as out:
            _write(out, data)
        return
    directory, name = os.path.split(os.path.realpath(raw))
    import tempfile  # only when a file is written (random, shutil: off a run's start-up)

    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as out:
            _write(out, data)
            out.flush()
            os.fsync(out.fileno())
            os.fchmod(out.fileno(), 0o666 & ~_umask())
        os.replace(tmp, os.path.join(directory, name))
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def check_output_path(flag: str, path: str | os.PathLike[str]) -> str | None:
    """What is wrong with writing ``path`` at the end of the run, or None if it looks fine.

    ``flag`` names the option in the message (``--report``). The checks are those a write
    would fail on: an empty name, a directory, a missing or non-directory parent, a parent
    (or an existing non-regular target) this process may not write.
    """
    raw = os.fspath(path)
    given = f"{flag} {raw}" if flag.startswith("-") else f"{flag}={raw}"
    if not raw:
        return f"{flag}: the file name is empty"
    if os.path.isdir(raw):
        return f"{given}: is a directory; give the path of a file"
    if _in_place(raw):
        return None if os.access(raw, os.W_OK) else f"{given}: not writable"
    directory = os.path.dirname(os.path.realpath(raw))
    if not os.path.exists(directory):
        return f"{given}: directory {directory} does not exist; create it first"
    if not os.path.isdir(directory):
        return f"{given}: {directory} is not a directory"
    if not os.access(directory, os.W_OK | os.X_OK):
        return (
            f"{given}: directory {directory} is not writable "
            "(the file is written there and renamed into place)"
        )
    return None


def check_output_paths(outputs: Sequence[tuple[str, str | os.PathLike[str] | None]]) -> None:
    """Check every ``(flag, path)`` given (None: not asked for); raise one :class:`UsageError`
    listing every problem, including two outputs sent to the same file."""
    problems: list[str] = []
    seen: dict[str, str] = {}
    for flag, path in outputs:
        if path is None:
            continue
        problem = check_output_path(flag, path)
        if problem is not None:
            problems.append(problem)
            continue
        if _in_place(os.fspath(path)):
            continue
        target = os.path.realpath(os.fspath(path))
        if target in seen:
            problems.append(
                f"{flag} {os.fspath(path)}: the same file as {seen[target]}; give each its own"
            )
        seen.setdefault(target, flag)
    if problems:
        raise UsageError(
            "cannot write the run's output files (nothing was run):\n  " + "\n  ".join(problems)
        )


def save_output(what: str, path: str | os.PathLike[str], write: Callable[[], None]) -> bool:
    """Call ``write()``; if it fails with :class:`OSError`, log one error and return False.

    Used after a run: a file that cannot be written must not turn the run's exit code into
    an internal error, nor hide the result that the summary and the exit code still give.
    """
    try:
        write()
    except OSError as exc:
        log.error(
            "could not write the %s to %s: %s (the run's exit code is unchanged)",
            what,
            os.fspath(path),
            exc.strerror or exc,
        )
        return False
    return True


def _write(out: Any, data: bytes | Iterable[bytes]) -> None:
    if isinstance(data, bytes):
        out.write(data)
        return
    for piece in data:
        out.write(piece)
