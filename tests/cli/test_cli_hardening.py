"""Bad input through the real ``gxo`` command (issue 11): misspelt commands, bad float flags,
module parameters checked at load, input limits, misreadable numbers, durations, cycles."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

Gxo = Callable[..., subprocess.CompletedProcess[str]]

HEAD = "schemaVersion: v1.0.0\nname: t\n"


def write(tmp_path: Path, body: str, name: str = "p.yaml") -> Path:
    path = tmp_path / name
    path.write_text(HEAD + body)
    return path


# -- the command line ----------------------------------------------------------------------------


@pytest.mark.parametrize(("typed", "meant"), [("valdate", "validate"), ("exeucte", "execute")])
def test_a_misspelt_command_is_named(gxo: Gxo, tmp_path: Path, typed: str, meant: str) -> None:
    write(tmp_path, "tasks:\n  - {type: exec, params: {command: 'true'}}\n", "x.yaml")
    done = gxo(typed, "x.yaml")
    assert done.returncode == 2
    assert f"gxo: unknown command '{typed}' (did you mean '{meant}'?)" in done.stderr
    assert "unrecognized arguments" not in done.stderr


def test_a_playbook_file_named_like_a_command_still_runs(gxo: Gxo, tmp_path: Path) -> None:
    write(tmp_path, "tasks:\n  - {type: exec, params: {command: 'true'}}\n", "valdate")
    done = gxo("valdate", "--no-progress")
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--progress-interval", "0", "must be at least 0.01 seconds"),
        ("--progress-interval", "nan", "expected a finite number of seconds"),
        ("--progress-interval", "inf", "expected a finite number of seconds"),
        ("--grace", "nan", "expected a finite number of seconds"),
        ("--grace", "inf", "expected a finite number of seconds"),
        ("--grace", "-1.5", "must not be negative"),
        ("--max-tasks", "0", "must be at least 1"),
        ("--max-scalar-size", "lots", "expected a size in bytes"),
    ],
)
def test_bad_numeric_flags_exit_2(
    gxo: Gxo, tmp_path: Path, flag: str, value: str, message: str
) -> None:
    write(tmp_path, "tasks:\n  - {type: exec, params: {command: 'true'}}\n")
    done = gxo("execute", f"{flag}={value}", "p.yaml")
    assert done.returncode == 2
    assert f"argument {flag}: {message}" in done.stderr


# -- module parameters at load ---------------------------------------------------------------

PARAMS = """tasks:
  - {name: missing, type: exec, params: {args: [x]}}
  - {name: misspelt, type: exec, params: {comand: 'true'}}
  - {name: args, type: exec, params: {command: ls, args: {x: 1}}}
  - {name: shell, type: exec, params: {command: ls, shell: "yes"}}
"""


@pytest.mark.parametrize("command", ["validate", "execute", "plan"])
def test_wrong_params_are_caught_before_anything_runs(
    gxo: Gxo, tmp_path: Path, command: str
) -> None:
    write(
        tmp_path, PARAMS + "  - {name: marker, type: exec, params: {command: touch, args: [ran]}}\n"
    )
    done = gxo(command, "p.yaml")
    assert done.returncode == 2, done.stderr
    assert "p.yaml:4:41: $.tasks[0].params: missing required parameter 'command'" in done.stderr
    assert "p.yaml:5:42: $.tasks[1].params: missing required parameter 'command'" in done.stderr
    assert "'comand' is given: did you mean 'command'?" in done.stderr
    assert (
        "p.yaml:6:58: $.tasks[2].params.args: parameter 'args' must be a list, got mapping"
    ) in done.stderr
    assert (
        "p.yaml:7:60: $.tasks[3].params.shell: parameter 'shell' must be a boolean, got str"
    ) in done.stderr
    assert not (tmp_path / "ran").exists()


def test_an_unknown_param_warns_and_the_task_still_runs(gxo: Gxo, tmp_path: Path) -> None:
    """GXO playbooks pass e.g. ``conn:`` to passthrough: they run, with a warning."""
    write(
        tmp_path,
        "tasks:\n"
        "  - {name: p, type: passthrough, register: r, params: {value: '7', conn: local}}\n"
        "  - {name: e, type: exec, params: {command: touch, args: ['{{ r.value }}']}}\n",
    )
    done = gxo("execute", "--no-progress", "p.yaml")
    assert done.returncode == 0, done.stderr
    assert (
        "warning: p.yaml:4:68: $.tasks[0].params.conn: unknown parameter 'conn' for passthrough"
    ) in done.stderr
    assert "--strict makes this an error" in done.stderr
    assert (tmp_path / "7").exists()
    done = gxo("validate", "p.yaml")
    assert done.returncode == 0
    assert "unknown parameter 'conn' for passthrough" in done.stderr


def test_a_register_named_like_a_var_is_a_warning(gxo: Gxo, tmp_path: Path) -> None:
    # The var can never be read: `{{ .out }}` waited for the register's task and printed its
    # result (as in GXO's flat state), with nothing said.
    write(
        tmp_path,
        "vars: {out: from-vars}\n"
        "tasks:\n"
        "  - {name: a, type: exec, params: {command: echo, args: ['{{ .out }}']}}\n"
        "  - {name: b, type: exec, register: out, params: {command: echo, args: [new]}}\n",
    )
    done = gxo("validate", "p.yaml")
    assert done.returncode == 0, done.stderr
    assert (
        "warning: p.yaml:6:37: $.tasks[1].register: register 'out' has the name of a var: "
        "templates that read 'out' get this task's result (after waiting for it), never the var"
    ) in done.stderr


@pytest.mark.parametrize("command", ["validate", "execute", "plan"])
def test_strict_makes_an_unknown_param_an_error(gxo: Gxo, tmp_path: Path, command: str) -> None:
    write(tmp_path, "tasks:\n  - {type: passthrough, params: {value: 7, conn: local}}\n")
    done = gxo(command, "--strict", "p.yaml")
    assert done.returncode == 2, done.stderr
    assert (
        "p.yaml:4:44: $.tasks[0].params.conn: unknown parameter 'conn' for passthrough"
    ) in done.stderr
    assert "warning:" not in done.stderr


# -- input limits, numbers, durations --------------------------------------------------------------


def test_too_many_tasks_and_the_flag_that_raises_the_limit(gxo: Gxo, tmp_path: Path) -> None:
    tasks = "".join(f"  - {{name: t{i}, type: passthrough}}\n" for i in range(5))
    write(tmp_path, f"tasks:\n{tasks}")
    done = gxo("validate", "--max-tasks", "4", "p.yaml")
    assert done.returncode == 2
    assert "p.yaml:3:1: $.tasks: the playbook has 5 tasks, more than the limit (4)" in done.stderr
    assert "--max-tasks N" in done.stderr
    assert gxo("validate", "--max-tasks", "5", "p.yaml").returncode == 0


def test_a_huge_scalar_and_the_flag_that_raises_the_limit(gxo: Gxo, tmp_path: Path) -> None:
    big = "x" * (1024 * 1024 + 10)
    write(tmp_path, f"vars:\n  blob: {big}\ntasks:\n  - type: passthrough\n")
    done = gxo("validate", "p.yaml")
    assert done.returncode == 2
    assert "p.yaml:4:9: $.vars.blob: this value is 1.0 MiB, larger than the limit" in done.stderr
    assert "--max-scalar-size BYTES" in done.stderr
    assert gxo("validate", "--max-scalar-size", "2M", "p.yaml").returncode == 0


def test_misreadable_numbers_and_huge_durations_are_refused(gxo: Gxo, tmp_path: Path) -> None:
    write(
        tmp_path,
        "tasks:\n"
        "  - type: exec\n"
        "    params: {command: chmod, args: ['0755', x]}\n"
        "    timeout: 1e12\n"
        "  - type: exec\n"
        "    params: {command: chmod}\n"
        "    loop: [0755]\n",
    )
    done = gxo("validate", "p.yaml")
    assert done.returncode == 2
    assert "p.yaml:6:14: $.tasks[0].timeout: 'timeout' is 1000000000000.0, longer than the " in (
        done.stderr
    )
    assert "maximum duration (720h0m0s, 30 days)" in done.stderr
    assert "p.yaml:9:12: $.tasks[1].loop[0]: the number 0755 has a leading zero" in done.stderr
    assert "write 0o755 for octal, 755 for decimal, or quote it ('0755') for text" in done.stderr


def test_secret_in_a_literal_loop_and_a_cycle_with_other_problems(gxo: Gxo, tmp_path: Path) -> None:
    write(
        tmp_path,
        "tasks:\n"
        "  - {name: a, type: exec, params: {command: echo}, depends_on: [b]}\n"
        "  - {name: b, type: exec, params: {command: echo}, depends_on: [a]}\n"
        "  - {name: b, type: exec, params: {command: echo, args: ['{{ item }}']},\n"
        "     loop: [\"{{ secret('TOKEN') }}\"]}\n",
    )
    done = gxo("validate", "p.yaml")
    assert done.returncode == 2
    assert "$.tasks[0]: dependency cycle: a -> b -> a" in done.stderr
    assert "$.tasks[2].name: duplicate task name 'b'" in done.stderr
    assert "$.tasks[2].loop[0]: secret() cannot be used in 'loop'" in done.stderr


def test_a_leading_zero_var_on_the_command_line_is_refused(gxo: Gxo, tmp_path: Path) -> None:
    write(tmp_path, "tasks:\n  - {type: exec, params: {command: 'true'}}\n")
    done = gxo("validate", "--var", "mode=0755", "p.yaml")
    assert done.returncode == 2
    assert "--var mode=0755: the number 0755 has a leading zero" in done.stderr
    assert "write 493 for octal 0755, 755 for decimal" in done.stderr
    assert gxo("validate", "--var", 'mode="0755"', "p.yaml").returncode == 0


def test_the_help_states_the_real_defaults() -> None:
    """The parser does not import gxo.config or gxo.template (to start quickly), so the
    defaults in its help texts are written out: they must stay equal to the real ones."""
    from gxo.cli.parser import build_parser
    from gxo.config.limits import DEFAULT_LIMITS
    from gxo.template.budget import DEFAULT_RENDER_BUDGET

    parser = build_parser()
    execute = parser._subparsers._group_actions[0].choices["execute"]  # type: ignore[union-attr]
    helps = {a.option_strings[0]: a.help or "" for a in execute._actions if a.option_strings}
    assert DEFAULT_LIMITS.max_scalar_bytes == 1024 * 1024
    assert "(default: 1M)" in helps["--max-scalar-size"]
    assert f"(default: {DEFAULT_LIMITS.max_tasks})" in helps["--max-tasks"]
    assert f"(default: {DEFAULT_RENDER_BUDGET.seconds:g})" in helps["--render-timeout"]
    assert DEFAULT_RENDER_BUDGET.max_size == 1024 * 1024
    assert "(default: 1M)" in helps["--render-max-size"]
