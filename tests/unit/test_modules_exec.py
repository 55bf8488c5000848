"""The exec module against real commands."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

from gxo.modules import ModuleContext, ModuleError, ParamsError, convert_params
from gxo.modules.builtin.exec import ExecModule

PY = sys.executable
ENV = shutil.which("env") or "/usr/bin/env"


def run(raw: dict[str, Any], *, dry_run: bool = False) -> dict[str, Any]:
    ctx = ModuleContext(task_name="t", instance_id=1, dry_run=dry_run)
    result: dict[str, Any] = ExecModule().run(convert_params(ExecModule, raw), ctx)
    return result


def fail(raw: dict[str, Any]) -> ModuleError:
    with pytest.raises(ModuleError) as info:
        run(raw)
    return info.value


def env_of(summary: dict[str, Any]) -> dict[str, str]:
    return dict(line.split("=", 1) for line in summary["stdout"].splitlines())


def test_command_and_args_run_without_shell() -> None:
    summary = run({"command": "echo", "args": ["a b", "$HOME", "*"]})
    assert summary == {
        "stdout": "a b $HOME *\n",
        "stderr": "",
        "exit_code": 0,
        "command": ["echo", "a b", "$HOME", "*"],
        "cwd": os.getcwd(),
    }


def test_command_as_argv_list_plus_args() -> None:
    summary = run({"command": [PY, "-c", "import sys; print(sys.argv[1:])"], "args": ["x"]})
    assert summary["stdout"] == "['x']\n"
    assert summary["command"] == [PY, "-c", "import sys; print(sys.argv[1:])", "x"]


def test_shell_runs_through_sh() -> None:
    summary = run({"command": "echo $((1 + 2)) | tr 3 4", "shell": True})
    assert summary["stdout"] == "4\n"
    assert summary["command"] == ["/bin/sh", "-c", "echo $((1 + 2)) | tr 3 4"]


def test_shell_args_are_positional_parameters() -> None:
    summary = run({"command": 'printf "%s|" "$0" "$@"', "shell": True, "args": ["a b", ";x"]})
    assert summary["stdout"] == "sh|a b|;x|"


def test_shell_needs_a_string_command() -> None:
    with pytest.raises(ParamsError, match="'command' must be a string when 'shell' is true"):
        convert_params(ExecModule, {"command": ["ls"], "shell": True})


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"command": []}, "parameter 'command' must not be an empty list"),
        ({"command": ""}, "parameter 'command' must not be empty"),
        (
            {"command": "pwd", "cwd": "/", "working_dir": "/"},
            "parameters 'working_dir' and 'cwd' are mutually exclusive",
        ),
        ({"command": "env", "environment": ["NOEQUALS"]}, "must look like KEY=VALUE"),
        ({"command": "env", "environment": ["=x"]}, "must look like KEY=VALUE"),
        ({"command": "env", "env": {"A=B": "x"}}, "invalid variable name 'A=B'"),
        ({"command": "sleep", "timeout": 5}, "unknown parameter 'timeout'"),
        ({"command": "x", "success_codes": [0, "1"]}, "'success_codes[1]' must be an integer"),
    ],
)
def test_bad_params(raw: dict[str, Any], expected: str) -> None:
    with pytest.raises(ParamsError, match=expected.replace("[", r"\[").replace("]", r"\]")):
        convert_params(ExecModule, raw)


@pytest.mark.parametrize("key", ["cwd", "working_dir"])
def test_working_directory(key: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path)
    assert run({"command": "pwd", key: "sub"})["stdout"] == f"{tmp_path / 'sub'}\n"
    assert run({"command": "pwd", key: str(tmp_path)})["stdout"] == f"{tmp_path}\n"


def test_missing_working_directory(tmp_path: Path) -> None:
    error = fail({"command": "pwd", "cwd": str(tmp_path / "nope")})
    assert error.reason == "working_dir_not_found"
    assert error.message == f"working directory not found: {str(tmp_path / 'nope')!r}"


def test_env_adds_to_the_inherited_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GXO_INHERITED", "yes")
    monkeypatch.setenv("GXO_OVERRIDDEN", "old")
    env = env_of(run({"command": ENV, "env": {"GXO_ADDED": "1", "GXO_OVERRIDDEN": "new"}}))
    assert env["GXO_INHERITED"] == "yes"
    assert env["GXO_ADDED"] == "1"
    assert env["GXO_OVERRIDDEN"] == "new"


def test_environment_replaces_the_whole_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GXO_INHERITED", "yes")
    assert env_of(run({"command": ENV, "environment": ["A=1", "B=x=y"]})) == {"A": "1", "B": "x=y"}


def test_env_applies_on_top_of_environment() -> None:
    env = env_of(run({"command": ENV, "environment": ["A=1", "B=2"], "env": {"B": "3", "C": "4"}}))
    assert env == {"A": "1", "B": "3", "C": "4"}


def test_stdin_is_fed_to_the_command() -> None:
    assert run({"command": "cat", "stdin": "hello\nworld"})["stdout"] == "hello\nworld"


def test_default_stdin_is_dev_null() -> None:
    summary = run({"command": "sh", "args": ["-c", "readlink /proc/self/fd/0; cat"]})
    assert summary["stdout"] == "/dev/null\n"


def test_no_descriptor_is_inherited() -> None:
    read_fd, write_fd = os.pipe()
    try:
        os.set_inheritable(write_fd, True)
        code = "import os; print(' '.join(sorted(os.listdir('/proc/self/fd'), key=int)))"
        fds = run({"command": [PY, "-c", code]})["stdout"].split()
    finally:
        os.close(read_fd)
        os.close(write_fd)
    assert str(write_fd) not in fds
    assert fds[:3] == ["0", "1", "2"]
    assert len(fds) <= 4  # 0-2 and the descriptor listdir itself opened


def test_child_leads_its_own_process_group_inside_the_callers_session() -> None:
    # The engine finds everything a worker started by session id, so commands stay in the
    # worker's session; their own process group keeps terminal job control away from them.
    code = "import os; print(os.getpid(), os.getsid(0), os.getpgid(0))"
    pid, sid, pgid = map(int, run({"command": [PY, "-c", code]})["stdout"].split())
    assert pgid == pid
    assert pgid != os.getpgid(0)
    assert sid == os.getsid(0)


def test_success_codes() -> None:
    summary = run({"command": "sh", "args": ["-c", "exit 3"], "success_codes": [0, 3]})
    assert summary["exit_code"] == 3
    error = fail({"command": "sh", "args": ["-c", "exit 0"], "success_codes": [1]})
    assert error.reason == "nonzero_exit(0)"


def test_nonzero_exit_fails_with_reason_and_keeps_the_summary() -> None:
    script = "echo out; echo first >&2; echo 'last line' >&2; echo >&2; exit 2"
    error = fail({"command": "sh", "args": ["-c", script]})
    assert error.message == "command exited with status 2: last line"
    assert error.reason == "nonzero_exit(2)"
    assert error.summary == {
        "stdout": "out\n",
        "stderr": "first\nlast line\n\n",
        "exit_code": 2,
        "command": ["sh", "-c", script],
        "cwd": os.getcwd(),
    }


def test_nonzero_exit_without_stderr() -> None:
    error = fail({"command": "false"})
    assert error.message == "command exited with status 1"


def test_death_by_signal() -> None:
    error = fail({"command": "sh", "args": ["-c", "kill -9 $$"]})
    assert error.reason == "command_signaled(SIGKILL)"
    assert error.message == "command killed by signal SIGKILL"
    assert error.summary["exit_code"] == -9


def test_command_not_found_on_path() -> None:
    error = fail({"command": "gxo-no-such-command-xyz", "args": ["a"]})
    assert error.reason == "command_not_found"
    assert error.message == "command not found: 'gxo-no-such-command-xyz' (searched PATH)"
    assert error.summary is None


def test_command_line_given_as_program_name_gets_a_hint() -> None:
    error = fail({"command": "gxo-no-such-command-xyz --flag"})
    assert error.message.endswith("give 'command' as a list or set 'shell: true'")


def test_command_path_not_found(tmp_path: Path) -> None:
    error = fail({"command": str(tmp_path / "nope")})
    assert error.message == f"command not found: {str(tmp_path / 'nope')!r}"


def test_command_not_executable(tmp_path: Path) -> None:
    script = tmp_path / "script.sh"
    script.write_text("#!/bin/sh\necho hi\n")
    script.chmod(0o644)
    error = fail({"command": str(script)})
    assert error.reason == "command_not_found"
    assert error.message == f"command not executable: {str(script)!r} (permission denied)"


def test_nul_byte_in_an_argument_is_a_params_error() -> None:
    with pytest.raises(ParamsError, match="cannot run command: embedded null byte"):
        run({"command": "echo", "args": ["a\0b"]})


def test_large_output_on_both_streams_does_not_deadlock() -> None:
    code = (
        "import sys\n"
        "sys.stderr.write('e' * (1 << 20)); sys.stderr.flush()\n"
        "sys.stdout.write('o' * (2 << 20) + '\\n')\n"
        "sys.stderr.write('\\nlast\\n')\n"
    )
    summary = run({"command": [PY, "-c", code]})
    # Memory keeps the last 64 KiB of each stream; the sizes say how much there was.
    assert summary["stdout"] == "o" * (64 * 1024 - 1) + "\n"
    assert summary["stdout_bytes"] == (2 << 20) + 1
    assert summary["stdout_truncated"] is True
    assert summary["stderr"] == "last\n"  # the tail starts at a whole line
    assert summary["stderr_bytes"] == (1 << 20) + 6


def test_output_is_decoded_with_replacement() -> None:
    code = "import sys; sys.stdout.buffer.write(b'ok \\xff\\xfe end')"
    assert run({"command": [PY, "-c", code]})["stdout"] == "ok \ufffd\ufffd end"


def test_dry_run_runs_nothing(tmp_path: Path) -> None:
    marker = tmp_path / "created"
    summary = run({"command": "touch", "args": [str(marker)], "cwd": str(tmp_path)}, dry_run=True)
    assert not marker.exists()
    assert summary == {
        "dry_run": True,
        "command": ["touch", str(marker)],
        "cwd": str(tmp_path),
        "would_run": True,
        "stdout": "",
        "stderr": "",
        "exit_code": 0,
    }
    run({"command": "touch", "args": [str(marker)]})
    assert marker.exists()


def test_exec_supports_dry_run_flag() -> None:
    assert ExecModule.supports_dry_run is True
    assert ExecModule.name == "exec"
