"""The ``gxo`` command. ``main(argv) -> int`` is testable in-process; it never calls sys.exit.

Exit codes:
    0: every task Completed or Skipped, or failed with ``ignore_errors``
    1: one or more tasks failed (or the playbook timeout expired)
    2: bad command line, or an invalid playbook (nothing ran); a command other than execute
       whose stdout cannot be written (a full disk)
    3: internal error (a gxo bug: the message says so; never a bad path or a missing extra)
    75: work remains (drained by SIGUSR1/SIGUSR2, or --deadline): rerun with --resume
    129: SIGHUP (terminal closed); 130: interrupted by SIGINT; 143: terminated by SIGTERM
    141: stdout was closed by its reader (as if killed by SIGPIPE), reported silently
"""

from __future__ import annotations

import gc
import io
import os
import stat
import sys

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without the import (gxo --version stays fast)
if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["EXIT_INTERNAL", "EXIT_USAGE", "console_main", "main"]

#: The subcommands; anything else first on the line is a playbook for ``execute``.
COMMANDS = (
    "execute",
    "validate",
    "plan",
    "graph",
    "modules",
    "bench",
    "list",
    "journal",
    "clean",
    "completion",
)
#: The options of ``gxo`` itself (before a command); every other option is a command's.
_TOP_LEVEL_OPTIONS = frozenset({"-h", "--help", "--version", "--log-level", "--log-format"})
EXIT_USAGE = 2
EXIT_INTERNAL = 3
#: Like a process killed by SIGPIPE: the reader of stdout went away (``gxo modules | head``).
EXIT_BROKEN_PIPE = 128 + 13


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``gxo`` command line and return its exit code."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    if sys.stderr is None:
        # fd 2 was closed at start-up (`2>&-`): print(..., file=sys.stderr) would fall back
        # to stdout and mix gxo's errors into what the command prints there.
        sys.stderr = open(os.devnull, "w")  # noqa: SIM115 - for the life of the process
    global _json_errors  # noqa: PLW0603 - one command line per call
    _json_errors = _asks_json(args_list)
    # Start-up imports only what the command needs (a test pins the set per command): the
    # engine, the pool and even the error classes (msgspec) are imported by the commands that
    # use them, never before argparse has read the line.
    if any(arg[:1] == "-" for arg in args_list):
        from gxo.cli.gxo_flags import translate_gxo_argv

        try:
            args_list = translate_gxo_argv(args_list)  # GXO's -playbook, -worker-pool-size...
        except Exception as exc:  # noqa: BLE001 - a UsageError, or a bug: _failed says which
            return _failed(exc)
    if args_list[:1] == ["--version"]:
        from gxo._version import version_text

        try:
            print(version_text(), flush=True)  # before any other import: as fast as Python starts
        except OSError as exc:
            return _stdout_failed(exc, 0)
        return 0
    command = _command_first(args_list)
    if isinstance(command, int):
        return command
    if sys.stdout is None and command != "execute":
        # fd 1 was closed when Python started (`gxo list x >&-`): print() would write nowhere
        # and sys.stdout.write() raise AttributeError; this command's output cannot be written.
        sys.stdout = _ClosedStdout()
    if command == "execute" and not _execute_starts():
        _say(
            "gxo: the current directory no longer exists (it was removed): a run needs one "
            "for its run directory and commands; cd to an existing directory and run again"
        )
        return EXIT_USAGE
    if command == "execute" and "--otel" in args_list:
        # Workers configure tracing from their environment, inherited when they start.
        os.environ.setdefault("OTEL_TRACES_EXPORTER", "otlp")
    try:  # a Ctrl-C from here on is exit 130, without a traceback
        if command == "execute" and not {"--start-method", "--executor"} & set(args_list):
            _prestart(args_list)  # the forkserver starts up while we import and load
        from gxo.cli.parser import build_parser

        parser = build_parser(command)  # only the parser of the subcommand on the line
        args = parser.parse_command_line(args_list)
        if args.command is None:
            parser.print_help(sys.stderr)
            return EXIT_USAGE
        from gxo.cli.commands import run_command

        code = run_command(args)
    except SystemExit as exc:  # argparse's --help and --version
        code = exc.code if isinstance(exc.code, int) else 0
    except KeyboardInterrupt:
        return 130
    except OSError as exc:
        if isinstance(exc, BrokenPipeError) or (command != "execute" and _is_write_error(exc)):
            return _stdout_failed(exc, 0)  # a run writes files, each through save_output
        return _failed(exc)
    except Exception as exc:  # noqa: BLE001 - _failed tells our errors from our bugs
        return _failed(exc)
    finally:
        if "logging" in sys.modules:  # a command that never logged set up no handler
            sys.modules["logging"].getLogger("gxo").handlers.clear()
    # What is still buffered is written now, so that a full disk or a reader gone early is
    # seen here, not lost in the interpreter's last flush (which ended with exit code 0).
    try:
        if sys.stdout is not None:
            sys.stdout.flush()
    except OSError as exc:
        return _stdout_failed(exc, code if command == "execute" else 0)
    return code


def _command_first(args_list: list[str]) -> str | int | None:
    """The subcommand of the line, moved to its front (``gxo PLAYBOOK`` and ``gxo -w 2 ...``
    are ``gxo execute ...``; ``gxo -v execute PLAYBOOK`` puts ``execute`` first, as every
    option is the subcommand's); an exit code for a mistyped one, said on stderr."""
    command = _first_positional(args_list)
    if command is None and any(
        arg[:1] == "-" and arg.partition("=")[0] not in _TOP_LEVEL_OPTIONS for arg in args_list
    ):
        # `gxo -w 2`: options of `gxo [OPTIONS] PLAYBOOK`, the playbook forgotten; execute's
        # parser names what is missing (the top-level one took `2` for a command).
        args_list.insert(0, "execute")
        command = "execute"
    if command is not None and command not in COMMANDS:
        mistyped = _mistyped_command(command)
        if mistyped is not None:
            _say(mistyped)
            return EXIT_USAGE
        args_list.insert(0, "execute")  # `gxo [OPTIONS] PLAYBOOK` is `gxo execute ...`
        command = "execute"
    elif command is not None and args_list[0] != command:
        # `gxo -v execute PLAYBOOK`: every option is the subcommand's, so it goes first.
        args_list.insert(0, args_list.pop(_first_positional_index(args_list) or 0))
    return command


def _execute_starts() -> bool:
    """``gxo execute``'s first acts: catch the drain signals (a SIGUSR1 from here on drains
    the run, exit 75, instead of killing gxo: :mod:`gxo._util.early_signals`), then say
    whether the current directory exists."""
    from gxo._util.early_signals import catch_early

    catch_early()
    return _has_cwd()


def _has_cwd() -> bool:
    try:
        os.getcwd()
    except FileNotFoundError:
        return False
    return True


def _prestart(args: list[str]) -> None:
    """Start the forkserver before anything else of ``gxo execute`` (what :func:`gxo.run`
    does first, done here before the command line is even parsed): its start-up overlaps
    this process's imports and the loading of the playbook. Its preload leaves Jinja2 out
    when the playbook's text holds no template, the ``exec`` module when it never says
    ``exec``, and the limits of fresh processes when it says neither ``isolation`` nor
    ``limits``. Only the standard library and msgspec are
    imported: what the forkserver, a fork of this process, would import too."""
    # What this process imports next (gxo.cli.commands) and the forkserver too: imported
    # once for both, before the fork (see gxo.pool.helpers._fork_forkserver). Not
    # multiprocessing: the forkserver imports it, this process only if its pool starts a
    # worker through multiprocessing (gxo.pool.entry asks the forkserver without it).
    import logging  # noqa: F401
    import pathlib  # noqa: F401

    import msgspec  # noqa: F401

    from gxo._util.sniff import may_hold_templates, may_isolate, may_use_exec
    from gxo.pool.helpers import prestart

    templates = exec_tasks = isolation = True
    after = args[args.index("execute") + 1 :] if "execute" in args else args
    playbook = _first_positional(after)
    if playbook is None:
        return  # no run: the parser says the playbook is missing (or prints --help)
    try:
        # Only a regular file: a pipe (`gxo <(make-playbook)`, /dev/stdin) can be read once,
        # by the load.
        if stat.S_ISREG(os.stat(playbook).st_mode):
            with open(playbook, "rb") as source:
                text = source.read()
            templates = may_hold_templates(text)
            exec_tasks, isolation = may_use_exec(text), may_isolate(text)
    except OSError:
        pass  # the load says what is wrong with it
    _import_shared()
    # Only the console script stops the helpers when the command ends (stop_helpers): there
    # the forkserver serves the one run, and is told to exit as soon as its pool closes. It
    # is a fork of this process (no thread runs yet): no second interpreter starts up, and
    # what both import (msgspec, multiprocessing) is imported once.
    prestart(
        templates=templates,
        exec_tasks=exec_tasks,
        isolation=isolation,
        single_pool=_console,
        fork=_console,
    )


def _import_shared() -> None:
    """Import, before the forkserver is forked, what this process imports later in every
    run and what the forkserver imports for its workers too (the loader checks parameters
    with the ``python`` module's classes; the pool's channels, the wire messages, secrets,
    templates' compiled form): once for both processes instead of once in each (~8 ms of
    CPU on two CPUs that other work may share). It delays the fork by as much as the
    forkserver then has less to import."""
    # Imported for their side effect: being in sys.modules before the fork.
    import fcntl  # noqa: F401
    import locale  # noqa: F401
    import socket  # noqa: F401

    import gxo.modules.builtin.python
    import gxo.otel
    import gxo.outputs
    import gxo.pool.capture
    import gxo.pool.entry
    import gxo.pool.relay
    import gxo.pool.session
    import gxo.pool.slot
    import gxo.reasons
    import gxo.secrets.config
    import gxo.secrets.redact
    import gxo.secrets.resolver
    import gxo.template.compiled
    import gxo.wire  # noqa: F401


def _failed(exc: Exception) -> int:
    """Report ``exc`` and return the exit code: a gxo error says what to fix (exit 2, or 3
    for an :class:`InternalError`); anything else is the last line of defence, our bug.

    The error classes are looked up in ``sys.modules``: a command that never imported
    :mod:`gxo.errors` cannot have raised one, and ``--help`` need not import msgspec.
    """
    errors = sys.modules.get("gxo.errors")
    if errors is not None:
        if isinstance(exc, (errors.UsageError, errors.PlaybookError)):
            _say(str(exc))
            return EXIT_USAGE
        if isinstance(exc, errors.InternalError):
            _say(f"gxo: {exc}")
            return EXIT_INTERNAL
        if isinstance(exc, errors.GxoError):
            _say(f"gxo: {exc}")
            return EXIT_USAGE
    import traceback

    traceback.print_exception(exc)
    print(
        "gxo: internal error (this is a gxo bug; please report it with the traceback above)",
        file=sys.stderr,
    )
    return EXIT_INTERNAL


def _say(message: str) -> None:
    """Print an error on stderr; with ``--log-format json`` in effect, as one JSON record of
    the ``gxo`` logger, so that stderr stays one object per line (an invalid playbook too)."""
    logging = sys.modules.get("logging")
    if logging is not None:
        logger = logging.getLogger("gxo")
        if any(type(h.formatter).__name__ == "JsonFormatter" for h in logger.handlers):
            logger.error(message)
            return
    if _json_errors:  # refused before the command set its logging up (a bad option value)
        from gxo.observability.logging import setup_logging

        setup_logging("info", "json")
        sys.modules["logging"].getLogger("gxo").error(message)
        return
    print(message, file=sys.stderr)


#: Commands that other documents name, and gxo's command for them: GXO's specification and
#: docs run a playbook with `gxo run -playbook F` (its binary has no such command).
_MEANT = {"run": "execute"}


#: Whether the command line asks for ``--log-format json`` (errors are then JSON records).
_json_errors = False


def _asks_json(args: list[str]) -> bool:
    """``--log-format json`` (or ``--log-format=json``) before any ``--``."""
    for index, arg in enumerate(args):
        if arg == "--":
            break
        if arg == "--log-format=json" or (
            arg == "--log-format" and args[index + 1 : index + 2] == ["json"]
        ):
            return True
    return False


def _mistyped_command(word: str) -> str | None:
    """The message for a first word that looks like a misspelt command, not a playbook.

    ``gxo PLAYBOOK`` runs the playbook, so a word is taken for a command only when no file of
    that name exists, it has no path separator or YAML suffix, and it is close to a command
    (``valdate``): then gxo says which command was meant instead of reading it as a playbook.
    """
    if os.sep in word or word.endswith((".yaml", ".yml", ".json")) or os.path.exists(word):
        return None
    import difflib

    close = difflib.get_close_matches(word, COMMANDS, n=1, cutoff=0.6)
    if word in _MEANT:
        close = [_MEANT[word]]
    if not close:
        return None
    return (
        f"gxo: unknown command {word!r} (did you mean {close[0]!r}?)\n"
        f"(a playbook file named {word!r} does not exist either; run 'gxo --help' for usage)"
    )


#: errno values of a write that failed for want of room or of a device (not of a path).
_WRITE_ERRNOS = frozenset({5, 27, 28, 122})  # EIO, EFBIG, ENOSPC, EDQUOT


def _is_write_error(exc: OSError) -> bool:
    """A failed write to stdout: a closed pipe, or no room left where it goes. An error of a
    named file carries its name (and the output files are written through ``save_output``)."""
    return isinstance(exc, (BrokenPipeError, _StdoutClosedError)) or (
        exc.filename is None and exc.errno in _WRITE_ERRNOS
    )


class _StdoutClosedError(OSError):
    """A write to :class:`_ClosedStdout`."""


class _ClosedStdout(io.TextIOBase):
    """``sys.stdout`` when file descriptor 1 was closed at start-up: writing fails (EBADF)."""

    def write(self, text: str) -> int:
        raise _StdoutClosedError(9, os.strerror(9))  # EBADF

    def fileno(self) -> int:
        raise _StdoutClosedError(9, os.strerror(9))


def _stdout_failed(exc: OSError, code: int) -> int:
    """The exit code when writing stdout failed: 141 for a reader gone early (silently, as a
    filter killed by SIGPIPE), else one line saying so and 2, as for an output file that
    cannot be written. A run's own exit code (``code``, non-zero) is kept: the summary on
    stderr still told how it went."""
    if not _is_write_error(exc):
        return _failed(exc)
    _silence_stdout()
    if not isinstance(exc, BrokenPipeError):
        print(f"gxo: cannot write to stdout: {exc.strerror}", file=sys.stderr)
    if code:
        return code
    return EXIT_BROKEN_PIPE if isinstance(exc, BrokenPipeError) else EXIT_USAGE


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush does not fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


#: Options that take a value (``--workers 4``), so the value is not read as the playbook.
#: A test keeps this in step with the parser.
VALUE_OPTIONS = frozenset(
    {
        "--log-level",
        "--log-format",
        "--workers",
        "-w",
        "--var",
        "-e",
        "--report",
        "--html-report",
        "--start-method",
        "--grace",
        "--secrets-dir",
        "--state-dir",
        "--output-capture",
        "--result-limit",
        "--log-rate",
        "--record-limit",
        "--secrets-prefix",
        "--format",
        "--metrics-file",
        "--metrics-port",
        "--metrics-addr",
        "--progress-interval",
        "--channel-buffer-size",
        "--max-scalar-size",
        "--max-tasks",
        "--render-timeout",
        "--render-max-size",
        # partial runs, resume and batch systems (issue 16)
        "--tags",
        "--skip",
        "--skip-tags",
        "--force",
        "--journal",
        "--deadline",
        "--resource",
        "--keep",
        "--junit",
        "--state-out",
        "--color",
        # the executor (issue 17)
        "--executor",
        "--dask-scheduler",
        "--dask-cluster",
        "--dask-workers",
        "--dask-slots",
        "--dask-jobs",
        # the library surface (issue 15)
        "--module",
        "--secrets-provider",
        "--secrets-option",
        "--redact-keyword",
        # gxo bench (issue 18)
        "--tasks",
        "--commands",
        "--repeats",
    }
)


def _first_positional(args: list[str]) -> str | None:
    """The first argument that is neither an option nor an option's value."""
    index = _first_positional_index(args)
    return None if index is None else args[index]


def _first_positional_index(args: list[str]) -> int | None:
    """Where :func:`_first_positional` is in ``args``."""
    skip = False
    for index, arg in enumerate(args):
        if skip:
            skip = False
        elif arg == "--":
            return None
        elif arg.startswith("-"):
            skip = arg in VALUE_OPTIONS
        else:
            return index
    return None


def console_main() -> None:
    """The ``gxo`` console script (and ``python -m gxo``).

    The command's last act is to stop and reap the process pool's helpers (the forkserver,
    multiprocessing's resource tracker): ``gxo`` never exits while a process it started is
    still alive.

    Python's cyclic garbage collector is off during the start-up: the imports, the parser and
    the playbook's load allocate some 25,000 objects that live as long as the process (modules,
    classes, the plan) and leave next to no cyclic garbage, yet the collector ran about 50
    times over them, some 8 % of a one-task run's CPU in the parent. ``gxo execute`` turns it
    back on when the run starts (:func:`start_run_gc`); ``validate``, ``plan`` and ``graph``
    (a load, then a print) run without it; every other command turns it on at once.
    """
    gc.disable()
    global _gc_deferred, _console  # noqa: PLW0603 - one process, one collector
    _gc_deferred = _console = True
    try:
        code = main()
    finally:
        # Only a command that imported gxo's or multiprocessing's helpers can have started
        # them (a forked forkserver and its worker without multiprocessing, for one).
        if any(
            name in sys.modules
            for name in (
                "gxo.pool.helpers",
                "multiprocessing.forkserver",
                "multiprocessing.resource_tracker",
            )
        ):
            from gxo.pool.helpers import stop_helpers

            stop_helpers()
    _exit(code)


#: Whether :func:`console_main` turned the cyclic garbage collector off for the start-up.
_gc_deferred = False
#: Whether this is the console script, which stops the helpers it started when it ends.
_console = False


def start_run_gc() -> None:
    """Turn the cyclic garbage collector back on for the run, if the start-up turned it off.

    What the start-up built is frozen first (``gc.freeze``): it is never garbage, so the run's
    collections do not traverse it again. Called by ``gxo execute`` just before ``gxo.run``
    (and by the commands that load nothing, first); a no-op when ``main`` is called
    in-process.
    """
    global _gc_deferred  # noqa: PLW0603 - see console_main
    if _gc_deferred:
        _gc_deferred = False
        gc.freeze()
        gc.enable()


def _exit(code: int) -> None:
    """End the process with ``code``, skipping the interpreter's teardown of every module.

    Tearing down the 250-odd modules a run imports is pure cost (about a fifth of the
    parent's CPU for a one-task run) and the command has nothing left that needs it: the
    exit handlers still run (logging's flush, multiprocessing's temporary directory, any
    exporter's), then stdout and stderr are flushed. Only when this thread is the last one;
    otherwise, and if a flush fails (a closed pipe), the usual ``sys.exit``.
    """
    threading = sys.modules.get("threading")
    if threading is not None and threading.active_count() > 1:
        sys.exit(code)
    import atexit

    atexit._run_exitfuncs()
    try:
        for stream in (sys.stdout, sys.stderr):
            if stream is not None:
                stream.flush()
    except (OSError, ValueError):
        sys.exit(code)
    os._exit(code)
