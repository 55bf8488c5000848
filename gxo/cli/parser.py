"""The argparse definition of the ``gxo`` command: the single source of ``--help`` and man/gxo.1."""

from __future__ import annotations

import argparse
import math
from collections.abc import Mapping
from typing import Any, NoReturn

from gxo._version import version_text
from gxo.observability import LOG_FORMATS, LOG_LEVELS

__all__ = ["GxoArgumentParser", "build_parser"]


class GxoArgumentParser(argparse.ArgumentParser):
    """An ArgumentParser that raises :class:`UsageError` instead of exiting."""

    def error(self, message: str) -> NoReturn:
        from gxo.errors import UsageError  # msgspec: only a bad command line pays for it

        raise UsageError(f"{self.prog}: {message}\n(run '{self.prog} --help' for usage)")

    def parse_command_line(self, argv: list[str]) -> argparse.Namespace:
        """``parse_args``, but words the subcommand does not know are refused by the
        subcommand's parser (``gxo validate: ...``, pointing at ``gxo validate --help``, not at
        ``gxo --help``, which does not list its options), with a hint: the command that has
        the option, or the option the word is close to.

        Also, TASK targets may come after options (``gxo execute site.yaml --resume
        package``): argparse takes the positionals of one stretch between options only, and
        would refuse the later ones."""
        args, extras = self.parse_known_args(argv)
        targets = getattr(args, "targets", None)
        if extras and isinstance(targets, list) and not any(e[:1] == "-" for e in extras):
            args.targets = [*targets, *extras]
        elif extras:
            command = _command_parser(self, getattr(args, "command", None))
            command.error(f"unrecognized arguments: {' '.join(extras)}{_hint(command, extras)}")
        return args

    def _get_formatter(self) -> argparse.HelpFormatter:
        # argparse builds one per add_argument (to check its metavar): its width, asked of
        # shutil.get_terminal_size, would import shutil (with bz2, lzma) into every run.
        return self.formatter_class(prog=self.prog, width=_terminal_columns() - 2)  # type: ignore[call-arg]


def _commands(parser: argparse.ArgumentParser) -> dict[str, GxoArgumentParser]:
    """The subcommands' parsers that ``parser`` has built, by name."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _command_parser(parser: GxoArgumentParser, name: str | None) -> GxoArgumentParser:
    """The parser of subcommand ``name`` (``parser`` itself when there is none)."""
    return _commands(parser).get(name or "", parser)


def _hint(command: argparse.ArgumentParser, extras: list[str]) -> str:
    """What to do about the first unknown option of ``extras`` ("" for none)."""
    option = next((word.partition("=")[0] for word in extras if word[:1] == "-"), None)
    if option is None:
        return ""
    elsewhere = [
        f"gxo {name}"
        for name, other in _commands(build_parser()).items()
        if option in other._option_string_actions
    ]
    if elsewhere:
        names = ", ".join(elsewhere[:-1]) + " and " if len(elsewhere) > 1 else ""
        return f"\n({option} is an option of {names}{elsewhere[-1]}, not of {command.prog})"
    import difflib

    known = [name for name in command._option_string_actions if name[:2] == "--"]
    close = difflib.get_close_matches(option, known, n=1, cutoff=0.75)
    if not close:
        return ""
    action = command._option_string_actions[close[0]]
    shown = close[0]
    if action.choices:
        shown += " {" + ",".join(map(str, action.choices)) + "}"
    elif action.nargs != 0:
        shown += f" {action.metavar or action.dest.upper()}"
    return f"\n(did you mean {shown}?)"


def _terminal_columns() -> int:
    """``shutil.get_terminal_size().columns``, without importing shutil: ``COLUMNS`` when
    it is a positive number, else the terminal's width on stdout, else 80."""
    import os
    import sys

    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns or 80


class _VersionAction(argparse.Action):
    """``--version``: GXO's lines, printed as they are (argparse's own action reflows text)."""

    def __init__(self, option_strings: list[str], dest: str, **kwargs: Any) -> None:
        kwargs.setdefault("default", argparse.SUPPRESS)
        super().__init__(option_strings, dest, nargs=0, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> None:
        print(version_text())
        parser.exit()


def _whole_number(text: str, minimum: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < minimum:
        bound = "not be negative" if minimum == 0 else f"be at least {minimum}"
        raise argparse.ArgumentTypeError(f"must {bound}, got {value}")
    if value > _WHOLE_NUMBER_MAX:  # a 64-bit integer: what gxo's messages carry
        raise argparse.ArgumentTypeError(f"must be at most {_WHOLE_NUMBER_MAX}, got {value}")
    return value


_WHOLE_NUMBER_MAX = 2**63 - 1


def _positive_int(text: str) -> int:
    return _whole_number(text, 1)


def _non_negative_int(text: str) -> int:
    return _whole_number(text, 0)


def _seconds(text: str) -> float:
    """A finite number of seconds, at least 0 (``nan`` and ``inf`` are refused)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number of seconds, got {text!r}")
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative, got {value}")
    return value


def _positive_seconds(text: str) -> float:
    """A finite number of seconds, more than 0."""
    value = _seconds(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, got {text}")
    return value


#: The shortest --progress-interval: shorter would flood the log (0 was a busy loop).
MIN_PROGRESS_INTERVAL = 0.01


def _interval(text: str) -> float:
    """Seconds between progress lines: finite and at least :data:`MIN_PROGRESS_INTERVAL`."""
    value = _seconds(text)
    if value < MIN_PROGRESS_INTERVAL:
        raise argparse.ArgumentTypeError(
            f"must be at least {MIN_PROGRESS_INTERVAL} seconds, got {text}"
            " (use --no-progress for no progress lines)"
        )
    return value


def _size(text: str) -> int:
    """A size in bytes: a whole number, with an optional K, M or G suffix (powers of 1024)."""
    raw = text.strip()
    scale = 1
    suffix = raw[-1:].upper()
    if suffix in _SIZE_SUFFIXES:
        scale = _SIZE_SUFFIXES[suffix]
        raw = raw[:-1]
    try:
        value = int(raw) * scale
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a size in bytes (like 1048576, 512K, 4M or 1G), got {text!r}"
        ) from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1 byte, got {text!r}")
    return value


_SIZE_SUFFIXES = {"K": 1024, "M": 1024**2, "G": 1024**3}


def _byte_size(text: str) -> int:
    """A size in bytes as ``gxo.config.size`` reads it (``1GiB``, ``512MiB``, ``64KB``, ``4M``)."""
    from gxo.config.size import parse_size

    try:
        return parse_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _limit_size(text: str) -> int:
    """A limit in bytes: 0 would fail every task (a result, a record is never empty)."""
    value = _byte_size(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1 byte, got {text!r}")
    return value


def _result_limit(text: str) -> int:
    from gxo.outputs import MAX_RESULT_LIMIT

    value = _limit_size(text)
    if value > MAX_RESULT_LIMIT:
        raise argparse.ArgumentTypeError(
            f"must be at most {MAX_RESULT_LIMIT} bytes (1GiB less 1MiB: the largest message "
            f"a worker may send), got {value}"
        )
    return value


def _rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected lines a second, got {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number >= 0, got {text!r}")
    return value


def _limits_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("output and limits")
    group.add_argument(
        "--output-capture",
        type=_byte_size,
        default=None,
        metavar="SIZE",
        help="bytes of each stream (stdout, stderr) of each attempt kept in its log file; "
        "past it the file is cut and the command still drained (default: the playbook's "
        "output_capture, else 1GiB)",
    )
    group.add_argument(
        "--result-limit",
        type=_result_limit,
        default=None,
        metavar="SIZE",
        help="the largest result (summary, encoded) a task may return; a larger one fails "
        "the task with result_too_large (default: 64MiB)",
    )
    group.add_argument(
        "--record-limit",
        type=_limit_size,
        default=None,
        metavar="SIZE",
        help="the largest stream record (encoded) a producer may send; a larger one fails "
        "the producer with record_too_large (default: 16MiB)",
    )
    group.add_argument(
        "--log-rate",
        type=_rate,
        default=None,
        metavar="LINES",
        help="lines a second of module logs and output relayed from each worker; the rest "
        "are counted and dropped (default: 1000; 0: no limit)",
    )


def _common(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("logging")
    group.add_argument(
        "--log-level",
        choices=LOG_LEVELS,
        default=argparse.SUPPRESS,
        help="how much gxo tells (default: info)",
    )
    group.add_argument(
        "--log-format",
        choices=LOG_FORMATS,
        default=argparse.SUPPRESS,
        help="text for people, json for one object per line (default: text)",
    )


# The defaults of --max-scalar-size and --max-tasks are gxo.config.limits' (a test keeps the
# help texts equal to them): the parser does not import gxo.config, so `gxo --version` and
# `gxo modules` stay quick.


def _playbook_args(parser: argparse.ArgumentParser) -> None:
    _playbook_arg(parser)
    parser.add_argument(
        "--var",
        "-e",
        dest="variables",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="set a playbook variable (the value is read as YAML: 3, true, [a, b]); repeatable",
    )
    parser.add_argument(
        "--strict",
        action="store_true",
        help="an unknown module parameter is an error (exit 2), not a warning",
    )
    limits = parser.add_argument_group("input limits")
    limits.add_argument(
        "--max-scalar-size",
        type=_size,
        default=None,
        metavar="BYTES",
        help="largest single value (string) in the playbook, in bytes; K, M and G suffixes "
        "accepted (default: 1M)",
    )
    limits.add_argument(
        "--max-tasks",
        type=_positive_int,
        default=None,
        metavar="N",
        help="most tasks in the playbook (default: 10000)",
    )
    _module_arg(parser)


def _module_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--module",
        dest="modules",
        action="append",
        default=[],
        metavar="NAME=PKG.MOD:CLASS",
        help="make module type NAME the class PKG.MOD:CLASS (importable on the Python path), "
        "as gxo.run(modules=...) does; repeatable",
    )


def _library_surface_args(run: argparse.ArgumentParser) -> None:
    """Options of the library surface (issue 15): secrets providers and keyword redaction."""
    run.add_argument(
        "--secrets-provider",
        metavar="PKG.MOD:CLASS",
        default=None,
        help="read secret('NAME') through this gxo.secrets.SecretProvider class, built in "
        "each worker with the --secrets-option values (sent in the clear: configuration, "
        "never credentials)",
    )
    run.add_argument(
        "--secrets-option",
        dest="secrets_options",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a keyword argument (a string) of the --secrets-provider class; repeatable",
    )
    run.add_argument(
        "--redact-keywords",
        action="store_true",
        help='also mask the value in key=value, key: value and "key": "value" forms whose '
        "key contains password, passwd, secret, token, apikey, api_key, auth, bearer, "
        "credential, private_key or privatekey, in errors, output and logs",
    )
    run.add_argument(
        "--redact-keyword",
        dest="redact_keyword",
        action="append",
        default=[],
        metavar="WORD",
        help="add WORD to those keywords (turns --redact-keywords on); repeatable",
    )


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be 0 to 65535, got {value}")
    return value


def _observability_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("observability")
    group.add_argument(
        "--metrics-file",
        metavar="FILE",
        default=None,
        help="write Prometheus metrics to FILE when the run ends (node-exporter textfile "
        "style: written to a temporary file, then renamed)",
    )
    group.add_argument(
        "--metrics-port",
        type=_port,
        default=None,
        metavar="PORT",
        help="serve Prometheus metrics on http://ADDR:PORT/metrics while the run lasts "
        "(0: a free port, logged at start)",
    )
    group.add_argument(
        "--metrics-addr",
        metavar="ADDR",
        default="127.0.0.1",
        help="the address --metrics-port listens on (default: 127.0.0.1)",
    )
    group.add_argument(
        "--no-progress",
        action="store_true",
        help="no progress display (by default: a live display when stderr is a terminal, "
        "else a progress line every --progress-interval seconds; --quiet turns it off too)",
    )
    group.add_argument(
        "--progress-interval",
        type=_interval,
        default=10.0,
        metavar="SECONDS",
        help="seconds between progress lines when stderr is not a terminal (default: 10; "
        f"at least {MIN_PROGRESS_INTERVAL})",
    )
    group.add_argument(
        "--otel",
        action="store_true",
        help="trace the run with OpenTelemetry: a span per run and per task instance, the "
        "workers' spans as their children; exported over OTLP/HTTP as the OTEL_* variables "
        "say (OTEL_TRACES_EXPORTER or OTEL_EXPORTER_OTLP_ENDPOINT alone also turn it on; "
        "OTEL_SDK_DISABLED=true turns it off)",
    )


def _executor_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "executor",
        "where instances run: the local process pool, or a Dask cluster (pip install "
        "'gxo[dask]'; 'gxo[jobqueue]' for SLURM, PBS, LSF and SGE). Dask settings (TLS, "
        "job queue options) come from Dask's own config files and DASK_* variables",
    )
    group.add_argument(
        "--executor",
        choices=("local", "dask"),
        default="local",
        help="local: worker processes on this machine (default); dask: a Dask cluster",
    )
    group.add_argument(
        "--dask-scheduler",
        metavar="ADDRESS",
        default="",
        help="connect to a running Dask scheduler (tcp://host:8786; default: "
        "DASK_SCHEDULER_ADDRESS)",
    )
    group.add_argument(
        "--dask-cluster",
        choices=("local", "slurm", "pbs", "lsf", "sge"),
        default="",
        help="start a cluster: a LocalCluster of processes, or jobs through dask-jobqueue "
        "configured by ~/.config/dask/jobqueue.yaml (default: local)",
    )
    group.add_argument(
        "--dask-workers",
        type=_positive_int,
        default=None,
        metavar="N",
        help="Dask worker processes of a local cluster (default: 2)",
    )
    group.add_argument(
        "--dask-slots",
        type=_positive_int,
        default=None,
        metavar="N",
        help="gxo worker processes (threads) per Dask worker of a local cluster (default: 1)",
    )
    group.add_argument(
        "--dask-jobs",
        type=_positive_int,
        default=None,
        metavar="N",
        help="batch jobs a jobqueue cluster submits (default: 1)",
    )


# -- partial runs, resume and batch systems (issue 16) ------------------------------------

#: Shell completion (shtab): the values these arguments take. Plain dicts, so building the
#: parser never imports shtab; ``gxo completion`` does.
_FILE_COMPLETION = {
    "bash": "_shtab_compgen_files",
    "zsh": "_files",
    "fish": "(__fish_complete_path (commandline -ct))",
}
_TASK_COMPLETION = {
    "bash": "_gxo_task_names",
    "zsh": "_gxo_task_names",
    "fish": "(__gxo_task_names)",
    "preamble": {
        "bash": (
            # The playbook is the first *.yaml word; the --var/-e values on the line go to
            # `gxo list` too (a playbook may need one to load).
            "_gxo_task_names() {\n"
            '  local word previous="" playbook="" vars=()\n'
            '  for word in "${COMP_WORDS[@]:1}"; do\n'
            '    case "$previous" in\n'
            '      --var|-e) vars+=(--var "$word");;\n'
            '      *) case "$word" in\n'
            '           --var=*) vars+=("$word");;\n'
            '           *.yaml|*.yml) [ -n "$playbook" ] || playbook=$word;;\n'
            "         esac;;\n"
            "    esac\n"
            "    previous=$word\n"
            "  done\n"
            '  [ -n "$playbook" ] || return 0\n'
            '  compgen -W "$(gxo list "$playbook" ${vars[@]+"${vars[@]}"} 2>/dev/null)" -- "$1"\n'
            "}\n"
        ),
        "zsh": (
            "_gxo_task_names() {\n"
            "  local playbook=${${(M)words:#*.(yaml|yml)}[1]}\n"
            '  [[ -n $playbook ]] && compadd -- ${(f)"$(gxo list $playbook 2>/dev/null)"}\n'
            "}\n"
        ),
        "fish": (
            "function __gxo_task_names\n"
            "  for word in (commandline -opc)\n"
            "    if string match -qr '\\.ya?ml$' -- $word\n"
            "      gxo list $word 2>/dev/null\n"
            "      return\n"
            "    end\n"
            "  end\n"
            "end\n"
        ),
    },
}


def _complete(action: argparse.Action, how: Mapping[str, object]) -> argparse.Action:
    action.complete = how  # type: ignore[attr-defined]  # read by shtab
    return action


def _playbook_arg(parser: argparse.ArgumentParser) -> None:
    _complete(
        parser.add_argument("playbook", metavar="PLAYBOOK", help="the playbook file (YAML)"),
        _FILE_COMPLETION,
    )


def _state_dir_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--state-dir",
        metavar="DIR",
        default=None,
        help="the run directory: attempt logs in DIR/runs/RUN_ID/, journals in DIR/journal/ "
        "(default: $GXO_STATE_DIR, else .gxo in the current directory)",
    )


def _journal_args(parser: argparse.ArgumentParser) -> None:
    _state_dir_arg(parser)
    parser.add_argument(
        "--journal",
        metavar="FILE",
        default=None,
        help="the run journal (default: DIR/journal/<playbook stem>-<hash of its path>.jsonl "
        "in the run directory)",
    )
    parser.add_argument(
        "--checksum",
        action="store_true",
        help="fingerprint the files in a task's inputs/outputs by their content (SHA-256) "
        "instead of their size and modification time",
    )
    _complete(
        parser.add_argument(
            "--force",
            action="append",
            default=[],
            metavar="TASK",
            help="run TASK (and what depends on it) again even when the journal says it is "
            "done; repeatable",
        ),
        _TASK_COMPLETION,
    )


def _selection_args(parser: argparse.ArgumentParser) -> None:
    """Positional TASK targets and the options that choose tasks."""
    _complete(
        parser.add_argument(
            "targets",
            nargs="*",
            default=[],  # or argparse names TASK among the required arguments when none is given
            metavar="TASK",
            help="run only these tasks and what they need (a glob such as 'build_*' "
            "names every task it matches)",
        ),
        _TASK_COMPLETION,
    )
    group = parser.add_argument_group("partial runs")
    group.add_argument(
        "--tags",
        action="append",
        default=[],
        metavar="TAG",
        help="run the tasks carrying TAG (their tags: key) and what they need; repeatable",
    )
    _complete(
        group.add_argument(
            "--skip",
            action="append",
            default=[],
            metavar="GLOB",
            help="leave out the tasks whose name matches GLOB (Skipped, reason not_selected); "
            "repeatable",
        ),
        _TASK_COMPLETION,
    )
    group.add_argument(
        "--skip-tags",
        action="append",
        default=[],
        metavar="TAG",
        help="leave out the tasks carrying TAG; repeatable",
    )


def _resource(text: str) -> tuple[str, float]:
    name, sep, amount = text.partition("=")
    if not sep or not name.isidentifier():
        raise argparse.ArgumentTypeError(f"expected NAME=AMOUNT, got {text!r}")
    try:
        value = float(amount)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number after '=', got {amount!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"the amount must be more than 0, got {amount!r}")
    return name, value


def _partial_run_args(parser: argparse.ArgumentParser) -> None:
    """``execute``: targets, fail-fast, the journal and resume, walltime, signals, sizing."""
    _selection_args(parser)
    group = parser.add_argument_group("failures, resume and batch systems")
    group.add_argument(
        "--fail-fast",
        "-x",
        action="store_true",
        help="after the first failure that is not ignored, start nothing new; running tasks "
        "finish; the rest are Cancelled (fail_fast). Default: keep going",
    )
    group.add_argument(
        "--fail-fast-kill",
        action="store_true",
        help="like --fail-fast, but stop the running tasks too (TERM, grace, KILL)",
    )
    group.add_argument(
        "--resume",
        action="store_true",
        help="skip every task instance the journal records as completed with the same "
        "fingerprint (shown as cached; its register is restored); run the rest",
    )
    _journal_args(group)  # type: ignore[arg-type]
    group.add_argument("--no-journal", action="store_true", help="do not write the run journal")
    group.add_argument(
        "--deadline",
        metavar="DURATION",
        default=None,
        help="stop starting tasks that would not finish within DURATION (2h, 90m, 3600) from "
        "now, as recorded in the journal; exit 75 so the job can be resubmitted with --resume "
        "(default: $GXO_DEADLINE)",
    )
    group.add_argument(
        "--oversubscribe",
        action="store_true",
        help="allow a stream group larger than --workers (it starts extra processes); "
        "without it such a playbook is refused",
    )
    group.add_argument(
        "--resource",
        action="append",
        type=_resource,
        default=[],
        metavar="NAME=N",
        help="declare N of a consumable resource that tasks ask for with resources: "
        "{NAME: amount}; repeatable",
    )


def _visibility_args(parser: argparse.ArgumentParser) -> None:
    """What a run shows and writes about itself (issue 12)."""
    group = parser.add_argument_group("results")
    group.add_argument(
        "--junit",
        metavar="FILE",
        default=None,
        help="write a JUnit XML file for CI systems: one <testsuite> per playbook, one "
        "<testcase> per task instance; failures carry their message and output",
    )
    group.add_argument(
        "--state-out",
        metavar="FILE",
        default=None,
        help="write the final state as JSON to FILE: the playbook's vars and every "
        "registered result (redacted, as tasks saw them)",
    )
    group.add_argument(
        "--verbose",
        "-v",
        action="count",
        default=0,
        help="-v: show every line a command prints, as 'task | line', while it runs (redacted; "
        "no --log-rate limit unless given); -vv: also each task's rendered params (redacted)",
    )
    group.add_argument(
        "--color",
        choices=("auto", "always", "never"),
        default="auto",
        help="colour the ok/FAILED/skipped/retry words and the live display: auto (default) "
        "on a terminal unless NO_COLOR is set (FORCE_COLOR forces it), always, or never",
    )


class _Unbuilt:
    """Stands in for a subcommand's parser that this command line does not use: every call
    (``add_argument``, ``add_argument_group``...) is accepted and does nothing."""

    def __getattr__(self, name: str) -> Any:
        return self._nothing

    def _nothing(self, *args: Any, **kwargs: Any) -> _Unbuilt:
        return self


class _OnlyCommand:
    """``add_subparsers()``'s action, building only the subcommand ``name``'s parser."""

    def __init__(self, commands: Any, name: str) -> None:
        self._commands, self._name = commands, name

    def add_parser(self, name: str, **kwargs: Any) -> Any:
        if name != self._name:
            return _Unbuilt()
        return self._commands.add_parser(name, **kwargs)


def build_parser(command: str | None = None) -> GxoArgumentParser:
    """The whole command line of ``gxo``; with ``command``, a parser for that subcommand's
    lines only (the others are not built: about 140 ``add_argument`` calls, a few ms of
    ``gxo execute``'s start-up). ``gxo --help`` and the tools that read the parser (man
    page, completion) get the whole of it."""
    parser = GxoArgumentParser(
        prog="gxo",
        description=(
            "Run YAML playbooks as a DAG of tasks, each task instance in its own worker "
            "process. 'gxo PLAYBOOK' is short for 'gxo execute PLAYBOOK'."
        ),
        epilog=(
            "exit codes: 0 every task completed, was skipped, or failed with ignore_errors; "
            "1 a task failed; 2 bad command line or invalid playbook (nothing ran); "
            "3 internal error (a gxo bug); 75 work remains (drained by SIGUSR1/SIGUSR2 or "
            "--deadline reached): run again with --resume; 129 SIGHUP; 130 interrupted "
            "(SIGINT); 141 stdout closed by its reader; 143 terminated (SIGTERM)"
        ),
    )
    parser.add_argument(
        "--version",
        action=_VersionAction,
        help="print the version, the commit it was built from, Python and OS, and exit",
    )
    _common(parser)
    commands: Any = parser.add_subparsers(
        dest="command", metavar="COMMAND", parser_class=GxoArgumentParser
    )
    if command is not None:
        commands = _OnlyCommand(commands, command)

    run = commands.add_parser("execute", help="run a playbook", description="Run a playbook.")
    _playbook_args(run)
    _partial_run_args(run)
    run.add_argument(
        "--workers",
        "-w",
        type=_positive_int,
        default=None,
        metavar="N",
        help="worker processes (default: the CPUs this process may use)",
    )
    run.add_argument("--report", metavar="FILE", help="write the JSON run report to FILE")
    run.add_argument(
        "--html-report",
        metavar="FILE",
        default=None,
        help="write a self-contained HTML page of the run to FILE: a timeline of every "
        "attempt per worker, tasks and instances with status, reason and duration",
    )
    run.add_argument(
        "--dry-run",
        action="store_true",
        help="run the DAG without side effects: modules report what they would do",
    )
    run.add_argument(
        "--channel-buffer-size",
        type=_non_negative_int,
        default=None,
        metavar="N",
        help="the playbook's default channel_policy.buffer_size (records buffered per stream "
        "edge); a task's own channel_policy still wins (GXO's -channel-buffer-size)",
    )
    run.add_argument(
        "--start-method",
        choices=("forkserver", "spawn", "fork"),
        default="forkserver",
        help="how worker processes are started (default: forkserver)",
    )
    run.add_argument(
        "--grace",
        type=_seconds,
        default=5.0,
        metavar="SECONDS",
        help="seconds between SIGTERM and SIGKILL when a task is stopped, a finite number "
        "(default: 5)",
    )
    run.add_argument(
        "--render-timeout",
        type=_positive_seconds,
        default=None,
        metavar="SECONDS",
        help="longest time one rendering of a task's `when` or `loop` template may take in "
        "the scheduler; past it the task fails with template_error (default: 2)",
    )
    run.add_argument(
        "--render-max-size",
        type=_size,
        default=None,
        metavar="SIZE",
        help="largest string (characters) or list (items) one rendering of a `when` or "
        "`loop` template may build; K, M and G suffixes accepted (default: 1M)",
    )
    run.add_argument(
        "--secrets-dir",
        metavar="DIR",
        default=None,
        help="read secret('NAME') from the file DIR/NAME (as Docker and Kubernetes mount "
        "secrets) instead of the environment variable NAME",
    )
    run.add_argument(
        "--secrets-prefix",
        metavar="PREFIX",
        default="",
        help="prepend PREFIX to every secret name before it is looked up "
        "(secret('DB') reads PREFIXDB)",
    )
    run.add_argument(
        "--core-dumps",
        action="store_true",
        help="let a crashing worker or command write a core file (by default their core "
        "size limit is 0: a core file can hold secrets)",
    )
    run.add_argument(
        "--quiet",
        "-q",
        action="store_true",
        help="print only failures, and the summary if the run fails (warnings still show)",
    )
    _executor_args(run)
    _limits_args(run)
    _library_surface_args(run)
    _observability_args(run)
    _visibility_args(run)
    _common(run)

    validate = commands.add_parser(
        "validate",
        help="check a playbook without running anything",
        description="Check a playbook: YAML, schema, references, templates, modules, cycles. "
        "Exits 0 when valid, 2 when not. Nothing runs.",
    )
    _playbook_args(validate)
    _common(validate)

    plan = commands.add_parser(
        "plan",
        help="show the DAG gxo would run",
        description="Show tasks in dependency order with their edges, loops, retry and timeout.",
    )
    _playbook_args(plan)
    plan.add_argument("--format", choices=("text", "json"), default="text", help="output format")
    _executor_args(plan)
    _common(plan)

    graph = commands.add_parser(
        "graph", help="print the DAG as DOT or Mermaid", description="Print the task graph."
    )
    _playbook_args(graph)
    graph.add_argument(
        "--format", choices=("dot", "mermaid"), default="dot", help="output format (default: dot)"
    )
    _common(graph)

    modules = commands.add_parser(
        "modules",
        help="list installed modules and their parameters",
        description="List the module types this installation can run.",
    )
    modules.add_argument("--json", action="store_true", help="machine-readable output")
    _module_arg(modules)
    _common(modules)
    _bench_command(commands)
    _partial_run_commands(commands)
    return parser


def _bench_command(commands: argparse._SubParsersAction[GxoArgumentParser]) -> None:
    """``gxo bench`` (DESIGN §8): the built-in micro-benchmark (gxo/cli/bench.py)."""
    bench = commands.add_parser(
        "bench",
        help="measure tasks/s and per-task overhead on this machine against the raw pool",
        description="Run independent no-op python tasks (and exec tasks running 'true') "
        "through gxo.run, and the same no-op through multiprocessing.Pool.imap_unordered "
        "(and threads calling subprocess.run), interleaved; print each side's time per task, "
        "tasks/s, gxo's overhead per task and the ratio (gxo's target for python tasks: at "
        "most 3x). A few seconds; the run directory it uses is temporary and removed.",
    )
    bench.add_argument(
        "--workers",
        "-w",
        type=_positive_int,
        default=2,
        metavar="N",
        help="worker processes of gxo and of the floor's pool (default: 2, the setting gxo's "
        "performance targets are stated for)",
    )
    bench.add_argument(
        "--tasks",
        type=_at_least_two,
        default=1000,
        metavar="N",
        help="python no-op tasks per run (default: 1000)",
    )
    bench.add_argument(
        "--commands",
        type=_exec_count,
        default=200,
        metavar="N",
        help="exec tasks running 'true' per run (default: 200; 0: no exec row)",
    )
    bench.add_argument(
        "--repeats",
        type=_positive_int,
        default=3,
        metavar="N",
        help="interleaved repeats of each row; the median is shown (default: 3)",
    )
    bench.add_argument("--json", action="store_true", help="machine-readable output")
    _common(bench)


def _at_least_two(text: str) -> int:
    """A task count for ``(T(N) - T(1)) / (N - 1)``: N must be 2 or more."""
    return _whole_number(text, 2)


def _exec_count(text: str) -> int:
    """0 (no exec row) or a count of at least 2."""
    value = _non_negative_int(text)
    if value == 1:
        raise argparse.ArgumentTypeError("must be 0 (no exec row) or at least 2, got 1")
    return value


def _partial_run_commands(commands: argparse._SubParsersAction[GxoArgumentParser]) -> None:
    """``gxo list``, ``gxo journal``, ``gxo clean``, ``gxo completion`` (issue 16)."""
    listing = commands.add_parser(
        "list",
        help="print the playbook's task names, one per line",
        description="Print the task names of a playbook, one per line, in playbook order "
        "(for scripts and shell completion).",
    )
    _playbook_args(listing)  # --var: a playbook may need one to load (`undefined variable`)
    listing.add_argument(
        "--tags", action="store_true", help="print each name, a tab, and its tags (comma-separated)"
    )
    _common(listing)

    journal = commands.add_parser(
        "journal",
        help="show what 'gxo execute --resume' would skip, and why the rest would run",
        description="Read the playbook's run journal and say, task by task, what a resumed "
        "run would restore from it and why each other task would run. Nothing runs.",
    )
    _playbook_args(journal)
    _selection_args(journal)
    _journal_args(journal)
    _common(journal)

    clean = commands.add_parser(
        "clean",
        help="delete old run directories",
        description="Delete all but the newest N run directories (DIR/runs/<run id>), but not "
        "those of runs still going. Journals are kept.",
    )
    clean.add_argument(
        "--keep",
        type=_non_negative_int,
        default=10,
        metavar="N",
        help="how many of the newest runs to keep (default: 10)",
    )
    _state_dir_arg(clean)
    _common(clean)

    completion = commands.add_parser(
        "completion",
        help="print a shell completion script",
        description="Print a completion script for bash, zsh or fish: subcommands, options, "
        "playbook files and task names. bash: 'source <(gxo completion bash)'; zsh: "
        "'gxo completion zsh > ~/.zfunc/_gxo'; fish: "
        "'gxo completion fish > ~/.config/fish/completions/gxo.fish'.",
    )
    completion.add_argument("shell", choices=("bash", "zsh", "fish"), help="the shell")
