"""``exec``: run one command, directly or through ``/bin/sh -c``, and capture its output.

Kept lean because it is on the hot path of every command a playbook runs: one
``subprocess.run`` with no ``preexec_fn`` and no per-call PATH lookup, so CPython forks with
vfork and searches PATH itself. The child gets its own process group inside the worker's
session (the engine kills the whole tree by session on timeout), stdin from ``/dev/null``
unless ``stdin`` is given, and no inherited descriptors besides 0-2.
"""

from __future__ import annotations

import os
import signal
import subprocess
from typing import Any, ClassVar

import msgspec

from gxo.modules.base import Module, ModuleContext, ModuleError, ParamsError

__all__ = ["ExecModule", "ExecParams"]

_SHELL = "/bin/sh"
_MAX_ERROR_LINE = 500


class ExecParams(msgspec.Struct, forbid_unknown_fields=True):
    """Parameters of ``exec``; see :class:`ExecModule`."""

    command: str | list[str]
    args: list[str] = []
    shell: bool = False
    working_dir: str | None = None
    cwd: str | None = None
    environment: list[str] = []
    env: dict[str, str] = {}
    stdin: str | None = None
    success_codes: list[int] = msgspec.field(default_factory=lambda: [0])

    def __post_init__(self) -> None:
        if self.working_dir is not None and self.cwd is not None:
            raise ValueError("parameters 'working_dir' and 'cwd' are mutually exclusive")
        if isinstance(self.command, list):
            if self.shell:
                raise ValueError("parameter 'command' must be a string when 'shell' is true")
            if not self.command:
                raise ValueError("parameter 'command' must not be an empty list")
        elif not self.command:
            raise ValueError("parameter 'command' must not be empty")
        for i, item in enumerate(self.environment):
            if item.partition("=")[0] == "" or "=" not in item:
                raise ValueError(f"parameter 'environment[{i}]' must look like KEY=VALUE")
        for key in self.env:
            if not key or "=" in key:
                raise ValueError(f"parameter 'env' has an invalid variable name {key!r}")


class ExecModule(Module[ExecParams]):
    """Run a command and capture its stdout, stderr and exit code.

    Params:
        command (str | list[str], required): the program, or a whole argv list. Run directly,
            without a shell; a string is the program name or path, not split on spaces.
        args (list[str]): arguments appended to ``command``. With ``shell: true`` they are the
            script's positional parameters ``$1``, ``$2``... (``$0`` is ``sh``).
        shell (bool, default false): run ``command`` (a string) with ``/bin/sh -c``.
        working_dir (str): the directory to run in, relative to gxo's own working directory.
        cwd (str): another name for ``working_dir``; give one of the two.
        environment (list[str]): ``KEY=VALUE`` items; when not empty they replace the whole
            environment (GXO).
        env (dict[str, str]): variables added to, or overriding, the environment (the
            inherited one, or ``environment``).
        stdin (str): text written to the command's stdin; without it stdin is ``/dev/null``.
        success_codes (list[int], default [0]): exit codes that count as success.

    Summary: ``{stdout, stderr, exit_code, command}`` where ``command`` is the argv that ran.
    An exit code outside ``success_codes`` fails the task with reason ``nonzero_exit(N)`` (the
    summary is kept); death by a signal gives ``exit_code`` ``-signum`` and reason
    ``command_signaled(SIGKILL)``; a program that cannot be started gives
    ``command_not_found``. Timeouts belong to the task, not to this module. Dry-run returns
    ``{dry_run: true, command, cwd, would_run: true, stdout: "", stderr: "", exit_code: 0}``
    and runs nothing.
    """

    name: ClassVar[str] = "exec"
    Params: ClassVar[type[msgspec.Struct]] = ExecParams
    supports_dry_run: ClassVar[bool] = True

    def run(self, params: ExecParams, ctx: ModuleContext) -> dict[str, Any]:
        argv = _argv(params)
        cwd = params.working_dir if params.working_dir is not None else params.cwd
        if ctx.dry_run:
            return {
                "dry_run": True,
                "command": argv,
                "cwd": cwd,
                "would_run": True,
                "stdout": "",
                "stderr": "",
                "exit_code": 0,
            }
        try:
            done = subprocess.run(
                argv,
                input=None if params.stdin is None else params.stdin.encode(),
                stdin=subprocess.DEVNULL if params.stdin is None else None,
                capture_output=True,
                cwd=cwd,
                env=_environment(params),
                close_fds=True,
                # Its own process group, inside the worker's session: the engine stops a
                # timed-out task by signalling every process of that session, which still
                # finds grandchildren whose parent already exited.
                process_group=0,
                check=False,
            )
        except OSError as exc:
            raise _start_error(exc, argv, cwd) from None
        except ValueError as exc:  # e.g. an embedded NUL byte
            raise ParamsError(f"cannot run command: {exc}") from None
        stderr = done.stderr.decode("utf-8", errors="replace")
        code = done.returncode
        summary: dict[str, Any] = {
            "stdout": done.stdout.decode("utf-8", errors="replace"),
            "stderr": stderr,
            "exit_code": code,
            "command": argv,
        }
        if code in params.success_codes:
            return summary
        if code < 0:
            signame = _signal_name(-code)
            message, reason = f"command killed by signal {signame}", f"command_signaled({signame})"
        else:
            message, reason = f"command exited with status {code}", f"nonzero_exit({code})"
        last = _last_line(stderr)
        if last:
            message += f": {last}"
        raise ModuleError(message, reason=reason, summary=summary)


def _argv(params: ExecParams) -> list[str]:
    if params.shell:
        # ``sh -c SCRIPT sh ARGS...``: args become $1.., never part of the script text.
        assert isinstance(params.command, str)  # checked in ExecParams.__post_init__
        argv = [_SHELL, "-c", params.command]
        return [*argv, "sh", *params.args] if params.args else argv
    if isinstance(params.command, list):
        return [*params.command, *params.args]
    return [params.command, *params.args]


def _environment(params: ExecParams) -> dict[str, str] | None:
    """None (inherit, the fast case) unless ``environment`` or ``env`` is given."""
    if not params.environment and not params.env:
        return None
    if params.environment:
        base = dict(item.split("=", 1) for item in params.environment)
    else:
        base = dict(os.environ)
    base.update(params.env)
    return base


def _start_error(exc: OSError, argv: list[str], cwd: str | None) -> ModuleError:
    program = argv[0]
    if cwd is not None and exc.filename == cwd and not os.path.isdir(cwd):
        return ModuleError(f"working directory not found: {cwd!r}", reason="working_dir_not_found")
    if isinstance(exc, FileNotFoundError):
        where = "" if "/" in program else " (searched PATH)"
        hint = ""
        if " " in program and len(argv) == 1:
            hint = "; to run a command line, give 'command' as a list or set 'shell: true'"
        return ModuleError(
            f"command not found: {program!r}{where}{hint}", reason="command_not_found"
        )
    if isinstance(exc, PermissionError):
        return ModuleError(
            f"command not executable: {program!r} (permission denied)", reason="command_not_found"
        )
    return ModuleError(
        f"cannot start command {program!r}: {exc.strerror or exc}", reason="command_start_failed"
    )


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"SIG{number}"


def _last_line(text: str) -> str:
    """The last non-blank line of ``text``, stripped and cut to a readable length."""
    for raw in reversed(text.splitlines()):
        line = raw.strip()
        if line:
            return line if len(line) <= _MAX_ERROR_LINE else line[:_MAX_ERROR_LINE] + "..."
    return ""
