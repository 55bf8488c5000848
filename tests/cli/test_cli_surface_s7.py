"""The command line as a user meets it (session 7 QA): flags, values and messages, through
the real ``gxo`` in a child process."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

Gxo = Callable[..., subprocess.CompletedProcess[str]]
PlaybookFile = Callable[..., Path]

VARS_PLAYBOOK = """
schemaVersion: "v1.0.0"
name: vars
vars:
  clock: 1:30
  count: 1_000
  ratio: 1e3
  day: 2026-01-01
  flag: yes
tasks:
  - {name: show, type: passthrough}
"""


def test_var_values_are_read_as_the_playbooks_values_are(
    gxo: Gxo, playbook_file: PlaybookFile, tmp_path: Path
) -> None:
    # `--var clock=1:30` was the integer 90 (YAML 1.1's base 60), `--var ratio=1e3` the
    # string '1e3': the same text in the playbook's vars is '1:30' and 1000.0 (YAML 1.2), as
    # README says --var values are read; `1_000` is 1000 in both (GXO's yaml.v3 reads it so).
    playbook_file(VARS_PLAYBOOK)
    assert gxo("playbook.yaml", "-q", "--state-out", "file.json").returncode == 0
    from_file = json.loads((tmp_path / "file.json").read_text())["vars"]
    assert from_file == {
        "clock": "1:30",
        "count": 1000,
        "ratio": 1000.0,
        "day": "2026-01-01",
        "flag": "yes",
    }
    pairs = ["clock=1:30", "count=1_000", "ratio=1e3", "day=2026-01-01", "flag=yes"]
    args = [arg for pair in pairs for arg in ("--var", pair)]
    result = gxo("playbook.yaml", "-q", "--state-out", "cli.json", *args)
    assert result.returncode == 0, result.stderr
    assert json.loads((tmp_path / "cli.json").read_text())["vars"] == from_file
    # A list or mapping is read the same way, item by item.
    result = gxo("playbook.yaml", "-q", "--state-out", "list.json", "-e", "clock=[1:30, 1_0, x]")
    assert result.returncode == 0, result.stderr
    assert json.loads((tmp_path / "list.json").read_text())["vars"]["clock"] == ["1:30", 10, "x"]


def test_var_value_a_playbook_could_not_hold_is_a_usage_error(
    gxo: Gxo, playbook_file: PlaybookFile, tmp_path: Path
) -> None:
    # `[0755]` was read as [493] (octal) and `{a: 1, a: 2}` as {a: 2}, silently; in a playbook
    # both are refused with a hint.
    playbook_file(VARS_PLAYBOOK)
    result = gxo("playbook.yaml", "--var", "clock=[0755]")
    assert result.returncode == 2
    assert "--var clock=[0755]: the number 0755 has a leading zero" in result.stderr
    assert "hint: write 0o755 for octal, 755 for decimal" in result.stderr
    result = gxo("validate", "playbook.yaml", "-e", "clock={a: 1, a: 2}")
    assert result.returncode == 2
    assert "--var clock={a: 1, a: 2}: duplicate key 'a'" in result.stderr
    # Text that is not YAML at all is still taken as it is.
    result = gxo("playbook.yaml", "-q", "--state-out", "s.json", "-e", "clock=[unclosed")
    assert result.returncode == 0, result.stderr
    assert json.loads((tmp_path / "s.json").read_text())["vars"]["clock"] == "[unclosed"


OK_PLAYBOOK = """
schemaVersion: "v1.0.0"
name: ok
tasks:
  - {name: a, type: exec, params: {command: "true"}}
"""


def test_an_unknown_option_is_refused_by_its_command_with_what_to_do(
    gxo: Gxo, playbook_file: PlaybookFile, tmp_path: Path
) -> None:
    # It was `gxo: unrecognized arguments: --workers 2` + `(run 'gxo --help' for usage)`:
    # the top-level help, which lists no option of validate, and no word of what was meant.
    playbook_file(OK_PLAYBOOK)
    result = gxo("validate", "playbook.yaml", "--workers", "2")
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "gxo validate: unrecognized arguments: --workers 2",
        "(--workers is an option of gxo execute and gxo bench, not of gxo validate)",
        "(run 'gxo validate --help' for usage)",
    ]
    # A misspelt option of the command: the one meant, with what it takes.
    for word, meant in [
        ("--dryrun", "--dry-run"),
        ("--wokers=2", "--workers N"),
        ("--no-color", "--color {auto,always,never}"),
    ]:
        result = gxo("playbook.yaml", word, "--report", "r.json")
        assert result.returncode == 2
        assert result.stderr.splitlines() == [
            f"gxo execute: unrecognized arguments: {word}",
            f"(did you mean {meant}?)",
            "(run 'gxo execute --help' for usage)",
        ]
    assert not (tmp_path / ".gxo" / "runs").exists()  # nothing ran
    # A stray word that is no option is named by its command, without a guess.
    result = gxo("modules", "--json", "extra")
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "gxo modules: unrecognized arguments: extra",
        "(run 'gxo modules --help' for usage)",
    ]


def test_a_refused_command_line_under_log_format_json_is_one_json_record(
    gxo: Gxo, playbook_file: PlaybookFile
) -> None:
    # `gxo --log-format json p.yaml --workers 0` printed argparse's text lines on a stderr
    # that is otherwise one JSON object per line (an invalid playbook already was one).
    playbook_file(OK_PLAYBOOK)
    for args in [
        ("--log-format", "json", "playbook.yaml", "--workers", "0"),
        ("validate", "playbook.yaml", "--log-format=json", "--bogus"),
        ("--log-format", "json", "valdate", "playbook.yaml"),
    ]:
        result = gxo(*args)
        assert result.returncode == 2
        lines = result.stderr.splitlines()
        assert len(lines) == 1, result.stderr
        record = json.loads(lines[0])
        assert record["level"] == "ERROR"
        assert record["message"].startswith("gxo"), record
    record = json.loads(gxo("--log-format", "json", "playbook.yaml", "-w", "0").stderr)
    assert record["message"] == (
        "gxo execute: argument --workers/-w: must be at least 1, got 0\n"
        "(run 'gxo execute --help' for usage)"
    )
    # Text stays text.
    result = gxo("playbook.yaml", "--workers", "0")
    assert result.stderr.startswith("gxo execute: argument --workers/-w: must be at least 1")


def _with_stdout_closed(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``gxo ARGS >&-``: gxo started with file descriptor 1 closed."""
    import sys

    return subprocess.run(
        ["sh", "-c", 'exec "$0" -m gxo "$@" >&-', sys.executable, *args],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_command_started_with_stdout_closed_says_it_cannot_write(
    gxo: Gxo, playbook_file: PlaybookFile, tmp_path: Path
) -> None:
    # `gxo list p.yaml >&-` and `gxo completion bash >&-` ended in a traceback and exit 3
    # ("a gxo bug": sys.stdout is None), `gxo validate p.yaml >&-` in exit 0 with its verdict
    # written nowhere. README: a command whose stdout cannot be written exits 2, saying so.
    playbook_file(OK_PLAYBOOK)
    for args in [
        ("list", "playbook.yaml"),
        ("completion", "bash"),
        ("modules", "--json"),
        ("validate", "playbook.yaml"),
    ]:
        result = _with_stdout_closed(tmp_path, *args)
        assert result.returncode == 2, (args, result.stderr)
        assert result.stderr == "gxo: cannot write to stdout: Bad file descriptor\n", args
    # A run writes nothing to stdout: its exit code is the run's.
    result = _with_stdout_closed(tmp_path, "playbook.yaml", "--no-progress")
    assert result.returncode == 0, result.stderr
    assert "playbook 'ok' Completed" in result.stderr


def test_a_dask_option_without_executor_dask_is_refused(
    gxo: Gxo, playbook_file: PlaybookFile, tmp_path: Path
) -> None:
    # `gxo --dask-scheduler tcp://head:8786 p.yaml` ran every task in local worker processes,
    # saying nothing: the cluster the user named was never used.
    playbook_file(OK_PLAYBOOK)
    for args in [
        ("playbook.yaml", "--dask-scheduler", "tcp://head:8786"),
        ("playbook.yaml", "--executor", "local", "--dask-workers", "4"),
        ("plan", "playbook.yaml", "--dask-cluster", "slurm"),
    ]:
        result = gxo(*args)
        flag = next(arg for arg in args if arg.startswith("--dask-"))
        assert result.returncode == 2, result.stderr
        assert result.stderr == (
            f"{flag} needs --executor dask (without it, tasks run in local worker processes): "
            f"add --executor dask, or leave {flag} out\n"
        )
        assert result.stdout == ""
    assert not (tmp_path / ".gxo" / "runs").exists()  # nothing ran


def test_a_zero_result_or_record_limit_is_refused(
    gxo: Gxo, playbook_file: PlaybookFile, tmp_path: Path
) -> None:
    # `--result-limit 0` failed every task with result_too_large ("over the limit of 0
    # bytes"); `--record-limit 0` was taken as "the default" (16MiB), silently.
    playbook_file(OK_PLAYBOOK)
    for flag, value in [("--result-limit", "0"), ("--record-limit", "0"), ("--record-limit", "0B")]:
        result = gxo("playbook.yaml", flag, value)
        assert result.returncode == 2
        assert result.stderr.splitlines() == [
            f"gxo execute: argument {flag}: must be at least 1 byte, got '{value}'",
            "(run 'gxo execute --help' for usage)",
        ]
    assert not (tmp_path / ".gxo" / "runs").exists()  # nothing ran


def test_a_playbook_path_that_cannot_be_read_says_what_to_do(
    gxo: Gxo, playbook_file: PlaybookFile, tmp_path: Path
) -> None:
    # Each said "cannot read the playbook: <strerror>" and nothing more.
    playbook_file(OK_PLAYBOOK, name="site.yaml")
    (tmp_path / "plays").mkdir()
    (tmp_path / "plays" / "deploy.yaml").write_text(OK_PLAYBOOK)
    (tmp_path / "empty").mkdir()
    for path, first, hint in [
        ("site.yml", "No such file or directory", "did you mean 'site.yaml'?"),
        (
            "other.yaml",
            "No such file or directory",
            f"check the path: there is no 'other.yaml' in {tmp_path}",
        ),
        (
            "nodir/site.yaml",
            "No such file or directory",
            "check the path: there is no directory 'nodir'",
        ),
        ("plays", "Is a directory", "give a playbook file, not a directory: plays/deploy.yaml"),
        ("empty", "Is a directory", "give a playbook file, not a directory"),
        (
            "-",
            "No such file or directory",
            "'-' is not read as standard input: give /dev/stdin for that",
        ),
    ]:
        result = gxo("validate", path)
        assert result.returncode == 2
        assert result.stderr.splitlines() == [
            "playbook is invalid (1 problem):",
            f"{path}: $: cannot read the playbook: {first}",
            f"    hint: {hint}",
        ]


def test_gxo_help_names_every_exit_code_readme_lists(gxo: Gxo) -> None:
    # `gxo --help`'s list of exit codes left out 141 (stdout closed by its reader).
    import re

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    table = readme.split("Exit codes:\n", 1)[1].split("\n\n", 1)[0]
    codes = re.findall(r"^\| (\d+) \|", table, re.M)
    assert len(codes) >= 9, table
    help_text = " ".join(gxo("--help").stdout.split())
    epilog = help_text.split("exit codes:", 1)[1].strip()
    for code in codes:
        assert re.search(rf"(?:^|; ){code} ", epilog), (code, epilog)


def test_a_single_value_where_a_list_is_expected_says_how_to_write_the_list(
    gxo: Gxo, playbook_file: PlaybookFile
) -> None:
    # `depends_on: build` said "'depends_on' must be a list, got 'build'" and no more.
    playbook_file(
        """
        schemaVersion: "v1.0.0"
        name: lists
        tasks:
          - {name: build, type: exec, params: {command: "true"}}
          - {name: test, type: exec, depends_on: build, params: {command: "true"}}
        """
    )
    result = gxo("playbook.yaml")
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "playbook is invalid (1 problem):",
        "playbook.yaml:5:42: $.tasks[1].depends_on: 'depends_on' must be a list, got 'build'",
        "    hint: write a list, even of one item: depends_on: ['build']",
    ]


def test_with_stderr_closed_errors_stay_out_of_stdout(
    gxo: Gxo, playbook_file: PlaybookFile, tmp_path: Path
) -> None:
    # `gxo validate bad.yaml 2>&-` printed "playbook is invalid ..." on stdout (print() falls
    # back to stdout when sys.stderr is None), and `gxo list p.yaml >&- 2>&-` exited 1 with
    # an uncaught error instead of 2.
    import sys

    playbook_file(OK_PLAYBOOK)
    (tmp_path / "bad.yaml").write_text("name: [unclosed\n")

    def run(redirect: str, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["sh", "-c", f'exec "$0" -m gxo "$@" {redirect}', sys.executable, *args],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    for args in [("validate", "bad.yaml"), ("bad.yaml",), ("playbook.yaml", "--workers", "0")]:
        result = run("2>&-", *args)
        assert (result.returncode, result.stdout) == (2, ""), args
    result = run("2>&-", "list", "playbook.yaml")
    assert (result.returncode, result.stdout) == (0, "a\n")
    assert run(">&- 2>&-", "list", "playbook.yaml").returncode == 2


def test_graph_dot_escapes_a_backslash_in_the_playbook_name(
    gxo: Gxo, playbook_file: PlaybookFile
) -> None:
    # `name: 'C:\builds\'` gave `digraph "C:\builds\" {`: the last backslash escaped the
    # closing quote and the DOT did not parse.
    playbook_file(
        """
        schemaVersion: "v1.0.0"
        name: 'C:\\builds\\ "nightly"'
        tasks:
          - {name: a, type: passthrough}
        """
    )
    result = gxo("graph", "playbook.yaml")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[:4] == [
        'digraph "C:\\\\builds\\\\ \\"nightly\\"" {',
        "  rankdir=LR;",
        "  node [shape=box];",
        '  "a" [label="a\\npassthrough"];',
    ]


def test_a_run_from_a_removed_directory_is_a_usage_error(
    playbook_file: PlaybookFile, tmp_path: Path
) -> None:
    # `gxo /abs/p.yaml` from a directory removed under the shell ended in a traceback and
    # "internal error (this is a gxo bug)", exit 3 (the run directory could not be resolved).
    import sys

    path = playbook_file(OK_PLAYBOOK)
    (tmp_path / "gone").mkdir()

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        (tmp_path / "gone").mkdir(exist_ok=True)
        return subprocess.run(
            [
                "sh",
                "-c",
                'cd gone && rmdir ../gone && exec "$0" -m gxo "$@"',
                sys.executable,
                *args,
            ],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    result = run(str(path))
    assert result.returncode == 2, result.stderr
    assert result.stderr == (
        "gxo: the current directory no longer exists (it was removed): a run needs one for "
        "its run directory and commands; cd to an existing directory and run again\n"
    )
    # A relative playbook path there is a plain "cannot read", with a hint that says why.
    result = run("list", "playbook.yaml")
    assert result.returncode == 2, result.stderr
    assert "hint: check the path: the current directory no longer exists" in result.stderr
    # Commands that need no directory still work.
    assert run("validate", str(path)).returncode == 0


def test_an_integer_past_64_bits_is_read_as_gxo_reads_it_not_an_internal_error(
    gxo: Gxo, playbook_file: PlaybookFile, tmp_path: Path
) -> None:
    # `vars: {big: 99999999999999999999999}` (or --var big=...) ended in "OverflowError:
    # can't serialize ints" and "internal error (this is a gxo bug)", exit 3, when the run
    # sent it to a worker. GXO's YAML library reads such a number as a float (1e+23).
    playbook_file(
        """
        schemaVersion: "v1.0.0"
        name: bigint
        vars: {big: 99999999999999999999999}
        tasks:
          - {name: a, type: passthrough, register: r, params: {value: "{{ big }}"}}
        """
    )
    result = gxo("playbook.yaml", "--state-out", "s.json")
    assert result.returncode == 0, result.stderr
    state = json.loads((tmp_path / "s.json").read_text())
    assert state["vars"]["big"] == 1e23
    assert state["registered"]["r"]["value"] == 1e23
    result = gxo(
        "playbook.yaml", "-q", "--state-out", "v.json", "--var", "big=-99999999999999999999999"
    )
    assert result.returncode == 0, result.stderr
    assert json.loads((tmp_path / "v.json").read_text())["vars"]["big"] == -1e23
    # A whole-number option past 64 bits is refused as the bad value it is.
    result = gxo("playbook.yaml", "--channel-buffer-size", "99999999999999999999999")
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "gxo execute: argument --channel-buffer-size: must be at most 9223372036854775807, "
        "got 99999999999999999999999",
        "(run 'gxo execute --help' for usage)",
    ]
