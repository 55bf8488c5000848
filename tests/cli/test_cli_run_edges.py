"""The real ``gxo`` command as an outside user meets it: what the QA of its run semantics found."""

from __future__ import annotations

import contextlib
import json
import os
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

GXO = [sys.executable, "-m", "gxo"]
Gxo = Callable[..., subprocess.CompletedProcess[str]]


@pytest.mark.parametrize("command", ["execute", "journal"])
def test_a_missing_playbook_names_only_what_is_required(gxo: Gxo, command: str) -> None:
    # TASK... is optional (`PLAYBOOK [TASK ...]` in the usage): argparse named it as required.
    result = gxo(command)

    assert result.returncode == 2
    assert "the following arguments are required: PLAYBOOK\n" in result.stderr
    assert "TASK" not in result.stderr.splitlines()[0]


PIPED = """\
schemaVersion: v1.0.0
name: piped
tasks:
  - {name: hello, type: exec, params: {command: [echo, "{{ 'from a pipe' }}"]}}
"""


@pytest.mark.parametrize("command", [[], ["execute"], ["validate"]])
def test_a_playbook_read_from_a_pipe(tmp_path: Path, command: list[str]) -> None:
    # `gxo <(generate-playbook)`: the path is /dev/fd/N, a pipe that can be read only once.
    # The start-up's look for templates read it first, and the load found it empty.
    read_fd, write_fd = os.pipe()
    try:
        os.write(write_fd, PIPED.encode())
        os.close(write_fd)
        result = subprocess.run(
            [*GXO, *command, f"/dev/fd/{read_fd}"],
            cwd=tmp_path,
            pass_fds=(read_fd,),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        os.close(read_fd)

    assert result.returncode == 0, result.stderr
    assert "empty" not in result.stderr


INTERRUPT_AT_START = """\
import os, signal, sys


class _InterruptOnImport:
    # Ctrl-C while the gxo command starts its forkserver (_prestart imports this module first).
    def find_spec(self, name, path=None, target=None):
        if name == "gxo._util.sniff":
            os.kill(os.getpid(), signal.SIGINT)
        return None


sys.meta_path.insert(0, _InterruptOnImport())
"""


def test_ctrl_c_while_the_command_starts_up(tmp_path: Path) -> None:
    # A Ctrl-C before the run's handlers are in place printed a Python traceback.
    (tmp_path / "hook").mkdir()
    (tmp_path / "hook" / "sitecustomize.py").write_text(INTERRUPT_AT_START)
    (tmp_path / "pb.yaml").write_text(PIPED)
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "hook")}
    result = subprocess.run(
        [*GXO, "pb.yaml"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 130, result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / ".gxo").exists()  # nothing ran


WHEN_AND_LOOP_ERRORS = """\
schemaVersion: v1.0.0
name: hints
vars: {m: {x: 1}}
tasks:
  - {name: by-when, type: exec, when: "{{ m.nokey }}", params: {command: [echo]}}
  - {name: by-loop, type: exec, loop: "{{ m.nokey }}", params: {command: [echo]}}
  - {name: by-params, type: exec, params: {command: [echo, "{{ m.nokey }}"]}}
"""


def test_a_template_error_hints_at_the_template_that_failed(gxo: Gxo, tmp_path: Path) -> None:
    # A failed `when` was told to "fix the template in the task's params".
    (tmp_path / "pb.yaml").write_text(WHEN_AND_LOOP_ERRORS)
    result = gxo("pb.yaml")

    assert result.returncode == 1
    lines = result.stderr.splitlines()
    hints = {  # task name -> the line two below its FAILED line (after its `where:` line)
        line.split(":", 2)[1].split()[-1]: lines[number + 2].strip()
        for number, line in enumerate(lines)
        if "FAILED" in line
    }
    assert hints["by-when"].startswith("hint: fix the task's `when` template"), result.stderr
    assert hints["by-loop"].startswith("hint: fix the task's `loop` template"), result.stderr
    assert hints["by-params"].startswith("hint: fix the template in the task's params")


DIES_TWICE = """
schemaVersion: v1.0.0
name: dies
tasks:
  - name: dies
    type: python
    retry: {attempts: 2, delay: 0s}
    params: {function: "@FUNCS@/crash.py:os_exit"}
"""


def test_a_dead_workers_last_output_reads_as_output(
    gxo: Gxo, playbook_file: Callable[..., Path]
) -> None:
    # The retry line ended in "its last output:;" and the FAILED line put "(after 2 attempts)"
    # after the last line the module printed, as if the module had printed it.
    result = gxo(playbook_file(DIES_TWICE))

    assert result.returncode == 1
    lines = result.stderr.splitlines()
    retry = next(line for line in lines if line.startswith("retry dies:"))
    assert retry.endswith(
        "exited with status 3; its last output: stderr: last words before os._exit; "
        "attempt 2/2 in 0.00s"
    ), retry
    failed = lines.index(next(line for line in lines if "FAILED   dies" in line))
    assert lines[failed].endswith("exited with status 3; its last output: (after 2 attempts)")
    assert lines[failed + 1 : failed + 3] == [
        "stdout: about to leave without cleanup",
        "stderr: last words before os._exit",
    ], result.stderr


REPO = Path(__file__).resolve().parent.parent.parent

TWO_STEPS = """
schemaVersion: v1.0.0
name: steps
tasks:
  - {name: first, type: exec, params: {command: ["true"]}}
  - {name: second, type: exec, depends_on: [first], params: {command: ["true"]}}
"""


def test_the_overall_status_of_a_run_with_work_left_is_documented(
    gxo: Gxo, playbook_file: Callable[..., Path], tmp_path: Path
) -> None:
    # README and gxo-playbook(5) said `Completed` or `Failed`; a run stopped by --deadline (or
    # drained) with work left writes `Cancelled`, with exit code 75.
    result = gxo("--deadline", "1s", "--report", "run.json", playbook_file(TWO_STEPS))

    assert result.returncode == 75, result.stderr
    status = json.loads((tmp_path / "run.json").read_text())["overall_status"]
    assert status == "Cancelled"
    readme_row = next(
        line
        for line in (REPO / "README.md").read_text().splitlines()
        if line.startswith("| `playbook_name`, `overall_status` |")
    )
    assert f"`{status}`" in readme_row
    man = (REPO / "man" / "gxo-playbook.5").read_text()
    assert f"\\fBoverall_status\\fR (Completed, Failed, or {status}" in man


@pytest.mark.parametrize("command", [["execute", "--resume"], ["journal"]])
def test_force_of_a_task_that_does_not_exist_is_refused(
    gxo: Gxo, playbook_file: Callable[..., Path], command: list[str]
) -> None:
    # A typo in --force silently restored everything from the journal: the task the user
    # meant to run again did not run. Targets, tags and --skip globs refuse a typo already.
    playbook = playbook_file(TWO_STEPS)
    assert gxo("-q", playbook).returncode == 0  # the journal holds both tasks

    result = gxo(*command, "--force", "secnod", playbook)

    assert result.returncode == 2, result.stderr
    assert "--force: no task named 'secnod' in the playbook; did you mean second?" in result.stderr
    assert "cached" not in result.stderr + result.stdout


def test_quiet_does_what_its_help_says(gxo: Gxo, playbook_file: Callable[..., Path]) -> None:
    # --help said "print only failures and the summary", yet a run that succeeds prints no
    # summary under -q (README: "a successful run prints nothing").
    usage = " ".join(gxo("execute", "--help").stdout.split())
    assert (
        "--quiet, -q print only failures, and the summary if the run fails (warnings still show)"
        in usage
    )

    result = gxo("-q", playbook_file(TWO_STEPS))

    assert result.returncode == 0
    assert result.stdout == result.stderr == ""


@pytest.mark.parametrize("argv", [["-w", "2"], ["-v"], ["--workers=2", "-q"]])
def test_execute_options_without_a_playbook_ask_for_the_playbook(gxo: Gxo, argv: list[str]) -> None:
    # `gxo -w 2` said "argument COMMAND: invalid choice: '2'", and `gxo -v` "unrecognized
    # arguments: -v": the playbook was forgotten, and execute (what `gxo [options] PLAYBOOK`
    # runs) says so.
    result = gxo(*argv)

    assert result.returncode == 2
    assert result.stderr.startswith(
        "gxo execute: the following arguments are required: PLAYBOOK\n"
    ), result.stderr


@pytest.mark.parametrize("journal", ["", ".", "adir"])
def test_a_journal_that_is_a_directory_is_a_usage_error(
    gxo: Gxo, playbook_file: Callable[..., Path], tmp_path: Path, journal: str
) -> None:
    # `--journal .` and `--journal ''` were an internal error (exit 3, a traceback: "PosixPath('.')
    # has an empty name"); `--journal adir` left a stray adir.lock behind.
    (tmp_path / "adir").mkdir()
    playbook = playbook_file(TWO_STEPS)
    before = sorted(p.name for p in tmp_path.iterdir())

    result = gxo("--journal", journal, playbook)

    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert "cannot write the journal" in result.stderr
    assert "Is a directory" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing ran, nothing left


@pytest.mark.parametrize(
    "argv",
    [
        ["journal", "--journal", "adir", "pb.yaml"],
        ["execute", "--resume", "--journal", "adir", "pb.yaml"],
        ["clean", "--state-dir", "pb.yaml"],
    ],
    ids=["journal-of-a-directory", "resume-from-a-directory", "clean-under-a-file"],
)
def test_a_directory_or_file_in_the_wrong_place_is_not_an_internal_error(
    gxo: Gxo, tmp_path: Path, argv: list[str]
) -> None:
    # Each was exit 3, "internal error (this is a gxo bug...)", with a traceback.
    (tmp_path / "adir").mkdir()
    (tmp_path / "pb.yaml").write_text(TWO_STEPS)

    result = gxo(*argv)

    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert "internal error" not in result.stderr
    assert result.stderr.startswith(("cannot read the journal adir", "cannot read the run dir"))


@pytest.mark.parametrize("flag", ["--junit", "--state-out", "--report", "--html-report"])
def test_an_output_file_that_is_a_pipe_is_written_into(
    gxo: Gxo, playbook_file: Callable[..., Path], tmp_path: Path, flag: str
) -> None:
    # README: "A path that exists and is not a regular file (/dev/stdout, a named pipe) is
    # written in place." --junit and --state-out renamed a regular file over it: run as root,
    # `gxo --junit /dev/null` replaced /dev/null itself.
    playbook = playbook_file(TWO_STEPS)
    fifo = tmp_path / "out.fifo"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # gxo's open for writing then succeeds
    try:
        result = gxo("-q", flag, fifo, playbook)
        received = b""
        with contextlib.suppress(BlockingIOError):
            while chunk := os.read(reader, 1 << 20):
                received += chunk
    finally:
        os.close(reader)

    assert result.returncode == 0, result.stderr
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)  # still the pipe, not a file renamed over it
    assert b"steps" in received  # the playbook's name, in whatever the file holds
    assert sorted(p.name for p in tmp_path.iterdir() if "tmp" in p.name) == []


@pytest.mark.parametrize("flag", ["--report", "--junit", "--state-out", "--journal"])
@pytest.mark.parametrize("text", [TWO_STEPS, "name: [unclosed\n"], ids=["valid", "invalid"])
def test_an_output_file_is_never_the_playbook(
    gxo: Gxo, tmp_path: Path, flag: str, text: str
) -> None:
    # `gxo --report site.yaml site.yaml` (a slip of the fingers) replaced the playbook with the
    # report; --journal appended records to it; an invalid one was replaced by its --junit.
    playbook = tmp_path / "pb.yaml"
    playbook.write_text(text)

    result = gxo(flag, "pb.yaml", "pb.yaml")

    assert result.returncode == 2, result.stderr
    assert f"{flag} pb.yaml: is the playbook itself" in result.stderr
    assert playbook.read_text() == text


SIBLING_IMPORTS = """
schemaVersion: v1.0.0
name: sib
tasks:
  - name: a
    type: python
    params: {function: "lib/tasks.py:at_import", args: [21]}
    register: a
  - name: b
    type: python
    loop: [1, 2, 3]
    params: {function: "lib/tasks.py:at_call", args: ["{{ item }}"]}
    register: b
  - name: c
    type: exec
    params: {command: echo, args: ["{{ a.value }} {{ b | map(attribute='value') | list }}"]}
    register: c
"""


def test_a_function_file_imports_the_modules_beside_it(gxo: Gxo, tmp_path: Path) -> None:
    # `lib/tasks.py` doing `import helpers` (lib/helpers.py) failed with import_failed: No
    # module named 'helpers', where `python lib/tasks.py` finds it. Its directory now comes
    # first on sys.path while it loads and while its function runs (a lazy import too),
    # on every instance of a pooled worker (-w 1: the same worker runs all five).
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "helpers.py").write_text("def twice(x):\n    return 2 * x\n")
    (tmp_path / "lib" / "tasks.py").write_text(
        "import helpers\n\n"
        "def at_import(x):\n    return {'value': helpers.twice(x)}\n\n"
        "def at_call(x):\n    import helpers as h\n    return {'value': h.twice(x)}\n"
    )
    (tmp_path / "pb.yaml").write_text(SIBLING_IMPORTS)
    result = gxo("pb.yaml", "-w", "1", "--state-out", "state.json")

    assert result.returncode == 0, result.stderr
    state = json.loads((tmp_path / "state.json").read_text())
    assert state["registered"]["c"]["stdout"].strip() == "42 [2, 4, 6]"
