"""The argparse definition of the ``gxo`` command: the single source of ``--help`` and man/gxo.1."""

from __future__ import annotations

import argparse
from typing import NoReturn

from gxo._version import __version__
from gxo.errors import UsageError
from gxo.observability.logging import LOG_FORMATS, LOG_LEVELS

__all__ = ["GxoArgumentParser", "build_parser"]


class GxoArgumentParser(argparse.ArgumentParser):
    """An ArgumentParser that raises :class:`UsageError` instead of exiting."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message}\n(run '{self.prog} --help' for usage)")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative, got {value}")
    return value


def _size(text: str) -> int:
    from gxo.config.size import parse_size

    try:
        return parse_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _result_limit(text: str) -> int:
    from gxo.outputs import MAX_RESULT_LIMIT

    value = _size(text)
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
        "--state-dir",
        metavar="DIR",
        default=None,
        help="where gxo keeps run directories (attempt logs in DIR/runs/RUN_ID/); "
        "default: $GXO_STATE_DIR, else .gxo in the current directory",
    )
    group.add_argument(
        "--output-capture",
        type=_size,
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
        type=_size,
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


def _playbook_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("playbook", metavar="PLAYBOOK", help="the playbook file (YAML)")
    parser.add_argument(
        "--var",
        "-e",
        dest="variables",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="set a playbook variable (the value is read as YAML: 3, true, [a, b]); repeatable",
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
        type=_seconds,
        default=10.0,
        metavar="SECONDS",
        help="seconds between progress lines when stderr is not a terminal (default: 10)",
    )
    group.add_argument(
        "--otel",
        action="store_true",
        help="trace the run with OpenTelemetry: a span per run and per task instance, the "
        "workers' spans as their children; exported over OTLP/HTTP as the OTEL_* variables "
        "say (OTEL_TRACES_EXPORTER or OTEL_EXPORTER_OTLP_ENDPOINT alone also turn it on; "
        "OTEL_SDK_DISABLED=true turns it off)",
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
        help="colour the ok/FAILED/skipped/retry words: auto (default) on a terminal unless "
        "NO_COLOR is set (FORCE_COLOR forces it), always, or never",
    )


def build_parser() -> argparse.ArgumentParser:
    """The whole command line of ``gxo``."""
    parser = GxoArgumentParser(
        prog="gxo",
        description=(
            "Run YAML playbooks as a DAG of tasks, each task instance in its own worker "
            "process. 'gxo PLAYBOOK' is short for 'gxo execute PLAYBOOK'."
        ),
        epilog=(
            "exit codes: 0 every task completed, was skipped, or failed with ignore_errors; "
            "1 a task failed; 2 bad command line or invalid playbook (nothing ran); "
            "3 internal error (a gxo bug); 130 interrupted (SIGINT); 143 terminated (SIGTERM)"
        ),
    )
    parser.add_argument("--version", action="version", version=f"gxo {__version__}")
    _common(parser)
    commands = parser.add_subparsers(
        dest="command", metavar="COMMAND", parser_class=GxoArgumentParser
    )

    run = commands.add_parser("execute", help="run a playbook", description="Run a playbook.")
    _playbook_args(run)
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
        help="time between SIGTERM and SIGKILL when a task is stopped (default: 5)",
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
        "--quiet", "-q", action="store_true", help="print only failures and the summary"
    )
    _limits_args(run)
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
    _common(modules)
    return parser
