"""``exec``: run one command, directly or through ``/bin/sh -c``, and capture its output.

Kept lean because it is on the hot path of every command a playbook runs: one
``subprocess.Popen`` with no ``preexec_fn`` and no per-call PATH lookup, so CPython forks with
vfork and searches PATH itself; output is read by :func:`gxo.modules.capture.pump`
and capped by :mod:`gxo.modules.capture`. The child gets its own process group inside the
worker's session (the engine kills the whole tree by session on timeout), stdin from
``/dev/null`` unless ``stdin`` is given, and no inherited descriptors besides 0-2.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import msgspec

from gxo.modules._params import exclusive
from gxo.modules.base import Module, ModuleContext, ModuleError, ParamsError
from gxo.modules.capture import StreamCapture, pump, record_command
from gxo.outputs import TAIL_BYTES
from gxo.reasons import format_reason

if TYPE_CHECKING:
    from gxo.secrets.redact import Redactor

__all__ = ["ExecModule", "ExecParams", "stringify_arguments"]

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
    stdout_records: bool = False
    stdout_format: Literal["lines", "json"] = "lines"
    stdin_records: bool = False

    def __post_init__(self) -> None:
        # ``exclusive`` words the error; called only when both are given (the common case,
        # neither, costs no call: this runs for every command).
        if self.stdin is not None and self.stdin_records:
            exclusive(self, "stdin", "stdin_records")
        if self.working_dir is not None and self.cwd is not None:
            exclusive(self, "working_dir", "cwd")
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
        stdout_records (bool, default false): send each line the command prints on stdout
            to the stream outputs as a record, as it is printed: ``{"line": text}`` (no
            newline), or the parsed value with ``stdout_format: json`` (one JSON value per
            line; a value that is not an object becomes ``{"item": value}``; blank lines are
            skipped; a line that is not JSON fails the task with reason ``bad_record``).
            The summary's ``stdout`` is then empty and ``records_emitted`` counts them. A
            line longer than ``--record-limit`` fails the task with ``record_too_large`` as
            soon as that much of it is read.
        stdout_format (``lines`` | ``json``, default ``lines``).
        stdin_records (bool, default false): write every record of the stream inputs to the
            command's stdin as one JSON line each, then close it; ``records_written`` counts
            them. A command that exits without reading them all is not an error.

    Values that are not strings in ``args``, an argv-list ``command``, ``environment`` and
    the values of ``env`` (a template such as ``"{{ port }}"`` rendering an int, a list or a
    map) are printed as text the way GXO's Go templates print them: ``8080``, ``true`` /
    ``false``, floats in Go's shortest form (``0.5``, ``1e+06``), lists as ``[a b c]``, maps
    as ``map[k1:v1 k2:v2]`` (keys sorted); see :func:`stringify_arguments`. A null value is
    an error (``bad_params``).

    Output: stdout and stderr are written whole to the attempt's log files in the run
    directory (up to ``output_capture`` each); the summary's ``stdout`` and ``stderr`` hold the
    last 64 KiB of each (all of it when shorter). When a stream was longer, the summary also
    has ``stdout_bytes``/``stderr_bytes`` (its whole size) and ``stdout_truncated``/
    ``stderr_truncated: true``. ``limits.output`` (stdout and stderr together) kills the
    command and fails the task with ``limit_exceeded(output)``.

    Leftovers: the task ends when the command's own process exits; output is still read for
    a short drain, then processes it left running (``sleep 1000 &``) are killed and counted
    in the summary's ``leftovers_killed`` (absent when none).

    Summary: ``{stdout, stderr, exit_code, command, cwd}`` where ``command`` is the argv that
    ran and ``cwd`` the absolute directory it ran in.
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

    @classmethod
    def prepare_params(cls, raw: dict[str, Any]) -> dict[str, Any]:
        return stringify_arguments(raw)

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
        return _check(_run(params, ctx, argv, cwd), params, ctx.capture.redactor)


def _check(
    summary: dict[str, Any], params: ExecParams, redactor: Redactor | None = None
) -> dict[str, Any]:
    """The summary when the exit code is a success; otherwise the failure, summary kept.
    ``redactor``: the last line of stderr the error quotes is masked before it is cut, so
    the cut cannot leave the beginning of a value that no later match finds."""
    code = summary["exit_code"]
    stderr = summary["stderr"]
    if code in params.success_codes:
        return summary
    if code < 0:
        signame = _signal_name(-code)
        message, reason = f"command killed by signal {signame}", f"command_signaled({signame})"
    else:
        message, reason = f"command exited with status {code}", f"nonzero_exit({code})"
    if redactor is not None and redactor.active:
        stderr = redactor.redact_lines(stderr)
    last = _last_line(stderr)
    if last:
        message += f": {last}"
    raise ModuleError(message, reason=reason, summary=summary)


def _run(
    params: ExecParams, ctx: ModuleContext, argv: list[str], cwd: str | None
) -> dict[str, Any]:
    """Run the command; stdin is fed by a thread, stdout and stderr read here (see
    :func:`gxo.modules.capture.pump`), each line of stdout a record with
    ``stdout_records``.
    """
    feeding = params.stdin_records or params.stdin is not None
    proc, out_read, err_read = _spawn(params, argv, cwd, feeding)
    try:
        return _collect(params, ctx, argv, cwd, proc, (out_read, err_read), feeding)
    finally:
        _close(out_read, err_read)


def _collect(
    params: ExecParams,
    ctx: ModuleContext,
    argv: list[str],
    cwd: str | None,
    proc: subprocess.Popen[bytes],
    pipes: tuple[int, int],
    feeding: bool,
) -> dict[str, Any]:
    """Read the command's output until it ends; its summary (or its failure)."""
    out_read, err_read = pipes
    settings = ctx.capture
    # Where it runs, absolute (a relative working_dir is the worker's, i.e. gxo's, cwd's).
    where = os.path.abspath(cwd) if cwd else os.getcwd()
    record_command(settings, argv, where)
    out, err = StreamCapture("stdout", settings), StreamCapture("stderr", settings)
    io = _StreamingIO(proc, params, ctx)
    feeder = None
    if feeding:
        feeder = threading.Thread(target=io.feed, daemon=True)
        feeder.start()
    outcome = None
    try:
        outcome = pump(
            proc,
            {out_read: out, err_read: err},
            output_limit=settings.output_limit,
            on_stdout=io.records if params.stdout_records else None,
            owns_descendants=settings.owns_descendants,
            spare=settings.spare,
            stdout_fd=out_read,
        )
        if params.stdout_records:
            io.records(b"", final=True)
    finally:
        if feeder is not None:
            feeder.join()
        captures = (err,) if params.stdout_records else (out, err)
        ctx.outputs.extend(capture.close() for capture in captures)
        if outcome is not None:
            ctx.leftovers_killed += outcome.leftovers_killed
    if io.errors:
        raise io.errors[0]
    summary: dict[str, Any] = {
        "stdout": "" if params.stdout_records else out.text(),
        "stderr": err.text(),
        "exit_code": outcome.exit_code,
        "command": argv,
        "cwd": where,
    }
    for capture in (out, err):
        # The tail is the whole stream up to TAIL_BYTES (no copy of it to find that out).
        if capture.total > TAIL_BYTES and not params.stdout_records:
            summary[f"{capture.name}_bytes"] = capture.total
            summary[f"{capture.name}_truncated"] = True
    if params.stdout_records:
        summary["records_emitted"] = io.emitted
    if params.stdin_records:
        summary["records_written"] = io.written
    if outcome.leftovers_killed:
        summary["leftovers_killed"] = outcome.leftovers_killed
    if outcome.limit_exceeded:
        limit = settings.output_limit
        raise ModuleError(
            f"the command wrote more than limits.output ({limit} bytes) to stdout and stderr "
            f"together: it was killed",
            reason=format_reason("limit_exceeded", "output"),
            summary=summary,
        )
    return summary


def _spawn(
    params: ExecParams, argv: list[str], cwd: str | None, feeding: bool
) -> tuple[subprocess.Popen[bytes], int, int]:
    """Start the command; return it and the read ends of its stdout and stderr pipes.

    The pipes are made here and handed to Popen as plain descriptors: Popen would wrap its
    own in buffered file objects (an ``fstat``, ``ioctl`` and ``lseek`` each) that nothing
    reads through.
    """
    out_read, out_write = os.pipe()
    err_read, err_write = os.pipe()
    try:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE if feeding else subprocess.DEVNULL,
            stdout=out_write,
            stderr=err_write,
            cwd=cwd,
            env=_environment(params),
            close_fds=True,
            # Its own process group, inside the worker's session: the engine stops a
            # timed-out task by signalling every process of that session, which still
            # finds grandchildren whose parent already exited.
            process_group=0,
        )
    except OSError as exc:
        _close(out_read, err_read)
        raise _start_error(exc, argv, cwd) from None
    except ValueError as exc:  # e.g. an embedded NUL byte
        _close(out_read, err_read)
        raise ParamsError(f"cannot run command: {exc}") from None
    finally:
        _close(out_write, err_write)  # the command has its copies: EOF when it closes them
    return proc, out_read, err_read


class _StreamingIO:
    """Feeds the command's stdin; turns its stdout into records."""

    def __init__(self, proc: subprocess.Popen[bytes], params: ExecParams, ctx: ModuleContext):
        self.proc = proc
        self.params = params
        self.ctx = ctx
        self.errors: list[BaseException] = []
        self.written = 0
        self.emitted = 0
        #: The chunks of the line not yet ended, joined only once its newline arrives.
        self._partial: list[bytes] = []
        self._partial_bytes = 0
        #: A line longer than this cannot be sent (``--record-limit``): stop there.
        self._line_limit = ctx.record_limit if params.stdout_records else 0
        self._decoder: msgspec.json.Decoder[Any] | None = None

    def feed(self) -> None:
        """Write the stdin text, or every input record as a JSON line; then close stdin."""
        stdin = self.proc.stdin
        assert stdin is not None
        try:
            if self.params.stdin is not None:
                stdin.write(self.params.stdin.encode())
            else:
                encode = msgspec.json.Encoder().encode
                for batch in self.ctx.input_batches():
                    stdin.write(b"".join(encode(record) + b"\n" for record in batch))
                    self.written += len(batch)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the command stopped reading: not an error
        except BaseException as exc:  # noqa: BLE001 - re-raised in the module's thread
            self.errors.append(exc)
        finally:
            with contextlib.suppress(OSError):
                stdin.close()

    def records(self, data: bytes, *, final: bool = False) -> None:
        """Emit each complete stdout line as a record (the last one too when ``final``).

        A chunk without a newline is only kept: joining the line so far with every chunk
        made a long line cost its length times its number of chunks (a 50 MB line took 18 s).
        """
        partial = self._partial
        if not final and b"\n" not in data:
            if data:
                partial.append(data)
                self._partial_bytes += len(data)
                self._check_line_size()
            return
        if partial:
            partial.append(data)
            data = b"".join(partial)
            partial.clear()
            self._partial_bytes = 0
        lines = data.split(b"\n")
        last = lines.pop()
        if not final:
            if last:
                partial.append(last)
                self._partial_bytes = len(last)
        elif last:
            lines.append(last)
        for raw in lines:
            self._emit(raw.decode("utf-8", errors="replace").rstrip("\r"))
        self._check_line_size()

    def _check_line_size(self) -> None:
        """Fail as soon as the line being read is over the record limit: it could never be
        sent, and a command that prints without newlines would otherwise fill the memory."""
        limit = self._line_limit
        if limit and self._partial_bytes > limit:
            raise ModuleError(
                f"record {self.emitted} (stdout line {self.emitted + 1}) is over the limit of "
                f"{limit} bytes (--record-limit): {self._partial_bytes} bytes read and no "
                f"newline yet",
                reason="record_too_large",
            )

    def _emit(self, line: str) -> None:
        if self.params.stdout_format == "json":
            if not line.strip():
                return
            if self._decoder is None:
                self._decoder = msgspec.json.Decoder()
            try:
                value = self._decoder.decode(line)
            except msgspec.DecodeError as exc:
                raise ModuleError(
                    f"stdout line {self.emitted + 1} is not JSON ({exc}): {line[:200]!r}",
                    reason="bad_record",
                ) from None
            self.ctx.emit(value if isinstance(value, dict) else {"item": value})
        else:
            self.ctx.emit({"line": line})
        self.emitted += 1


def _close(*fds: int) -> None:
    for fd in fds:
        # Not contextlib.suppress: an object and two calls per descriptor, every command.
        try:  # noqa: SIM105
            os.close(fd)
        except OSError:
            pass


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


# --- parameter conversion (GXO compatibility, issue 14) -----------------------------------


def stringify_arguments(raw: dict[str, Any]) -> dict[str, Any]:
    """``raw`` with the non-string items of ``args``, an argv-list ``command`` and
    ``environment``, and the non-string values of ``env``, printed as text.

    GXO printed every template as text, so ``args: ["{{ port }}"]`` with an int ``port`` ran
    ``8080``; gxo renders a lone template to its native value, which is printed here the same
    way (Go's ``fmt`` ``%v``): ``true``/``false``, ``8080``, ``0.5``, ``1e+06``, ``[a b]``,
    ``map[k:v]``. Anything that is not a list (or a mapping, for ``env``) is left for the
    ``Params`` check to report. Returns ``raw`` itself when nothing needed printing.

    Raises:
        ParamsError: for a null value (a template that rendered nothing).
    """
    changed: dict[str, Any] = {}
    for name in ("args", "command", "environment"):
        items = raw.get(name)
        if isinstance(items, list) and not all(type(item) is str for item in items):
            changed[name] = [_as_text(item, f"{name}[{i}]") for i, item in enumerate(items)]
    env = raw.get("env")
    if isinstance(env, dict) and not all(type(value) is str for value in env.values()):
        changed["env"] = {key: _as_text(value, f"env.{key}") for key, value in env.items()}
    return {**raw, **changed} if changed else raw


def _as_text(value: Any, where: str) -> str:
    if isinstance(value, str):
        return value
    if value is None:
        raise ParamsError(
            f"parameter {where!r} is null (did a template render nothing?); "
            "give it a value, or leave the item out"
        )
    from gxo.template.gofuncs import value_text

    return value_text(value)
