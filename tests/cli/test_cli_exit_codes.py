"""The real ``gxo`` command: exit codes, error messages, report, logs and the examples."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent.parent
EXAMPLES = REPO / "examples"

Gxo = Callable[..., subprocess.CompletedProcess[str]]
PlaybookFile = Callable[..., Path]

OK = """
schemaVersion: v1.0.0
name: ok
vars: {who: world, count: 1}
tasks:
  - name: greet
    type: exec
    params: {command: echo, args: ["hello, {{ who }}"]}
    register: greeting
  - name: dump
    type: python
    params:
      function: "@FUNCS@/behave.py:dump"
      kwargs:
        path: "@TMP@/dump.json"
        value: {who: "{{ who }}", count: "{{ count }}", greeting: "{{ greeting.stdout }}"}
"""

FAILING = """
schemaVersion: v1.0.0
name: failing
tasks:
  - name: fine
    type: exec
    params: {command: "true"}
  - name: broken
    type: exec
    params: {command: sh, args: ["-c", "echo 'the disk is full' >&2; exit 3"]}
"""


def test_valid_run_exits_0(gxo: Gxo, playbook_file: PlaybookFile, tmp_path: Path) -> None:
    result = gxo(playbook_file(OK))

    assert result.returncode == 0, result.stderr
    assert json.loads((tmp_path / "dump.json").read_text()) == {
        "who": "world",
        "count": 1,
        "greeting": "hello, world\n",
    }
    assert "Completed" in result.stderr


def test_execute_subcommand_is_the_same(gxo: Gxo, playbook_file: PlaybookFile) -> None:
    result = gxo("execute", "--workers", "1", playbook_file(OK))

    assert result.returncode == 0, result.stderr


def test_var_overrides_a_var(gxo: Gxo, playbook_file: PlaybookFile, tmp_path: Path) -> None:
    result = gxo(playbook_file(OK), "--var", "who=gxo", "-e", "count=3")

    assert result.returncode == 0, result.stderr
    dumped = json.loads((tmp_path / "dump.json").read_text())
    assert dumped == {"who": "gxo", "count": 3, "greeting": "hello, gxo\n"}


def test_failed_task_exits_1(gxo: Gxo, playbook_file: PlaybookFile) -> None:
    result = gxo(playbook_file(FAILING))

    assert result.returncode == 1
    assert "broken" in result.stderr
    assert "nonzero_exit(3)" in result.stderr
    assert "the disk is full" in result.stderr


def test_report_has_gxo_fields_and_attempts(
    gxo: Gxo, playbook_file: PlaybookFile, tmp_path: Path
) -> None:
    report_path = tmp_path / "run.json"
    result = gxo(playbook_file(FAILING), "--report", report_path)

    assert result.returncode == 1
    report = json.loads(report_path.read_text())
    for key in (
        "playbook_name",
        "overall_status",
        "start_time",
        "end_time",
        "duration",
        "total_tasks",
        "completed_tasks",
        "failed_tasks",
        "skipped_tasks",
        "task_results",
    ):
        assert key in report, key
    assert report["playbook_name"] == "failing"
    assert report["overall_status"] == "Failed"
    assert (report["total_tasks"], report["completed_tasks"], report["failed_tasks"]) == (2, 1, 1)
    assert report["skipped_tasks"] == 0
    assert report["exit_code"] == 1
    for name, status in (("fine", "Completed"), ("broken", "Failed")):
        task = report["task_results"][name]
        for key in ("status", "error", "start_time", "end_time", "duration"):
            assert key in task, (name, key)
        assert task["status"] == status
        assert task["duration"] >= 0
        (instance,) = task["instances"]
        (attempt,) = instance["attempts"]
        assert attempt["number"] == 1
        assert attempt["start_time"]
        assert attempt["end_time"]
        assert isinstance(attempt["worker_pid"], int)
    broken = report["task_results"]["broken"]
    assert broken["reason"] == "nonzero_exit(3)"
    assert "the disk is full" in broken["error"]
    assert broken["instances"][0]["attempts"][0]["reason"] == "nonzero_exit(3)"


def test_json_logs_one_object_per_line(gxo: Gxo, playbook_file: PlaybookFile) -> None:
    result = gxo(playbook_file(FAILING), "--log-format", "json")

    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert lines
    records = [json.loads(line) for line in lines]
    run_ids = {record["run_id"] for record in records}
    assert len(run_ids) == 1
    assert run_ids != {""}
    by_task = {r.get("task"): r for r in records if r.get("status")}
    assert by_task["broken"]["status"] == "Failed"
    assert by_task["broken"]["reason"] == "nonzero_exit(3)"
    assert by_task["fine"]["status"] == "Completed"


def test_json_task_lines_say_whether_a_failure_was_ignored(
    gxo: Gxo, playbook_file: PlaybookFile
) -> None:
    """A failure ``ignore_errors`` absorbed was a JSON task line with ``status: Failed`` like a
    real one (only its level told them apart): a collector counting failures counted it."""
    playbook = (
        FAILING
        + """  - name: tolerated
    type: exec
    ignore_errors: true
    params: {command: sh, args: ["-c", "exit 4"]}
"""
    )
    result = gxo(playbook_file(playbook), "--log-format", "json")

    assert result.returncode == 1
    records = [json.loads(line) for line in result.stderr.splitlines()]
    by_task = {r["task"]: r for r in records if r.get("status")}
    assert by_task["tolerated"]["status"] == "Failed"
    assert by_task["tolerated"]["ignored"] is True
    assert by_task["broken"]["ignored"] is False
    assert by_task["fine"]["ignored"] is False


def test_the_closing_line_says_how_many_failures_were_ignored(
    gxo: Gxo, playbook_file: PlaybookFile
) -> None:
    """A run whose only failure was ignored closed with "Completed ...: 1 completed, 1
    failed", which reads as a contradiction; the count of ignored ones explains it."""
    playbook = """
schemaVersion: v1.0.0
name: tolerant
tasks:
  - name: fine
    type: exec
    params: {command: "true"}
  - name: tolerated
    type: exec
    ignore_errors: true
    params: {command: sh, args: ["-c", "exit 4"]}
"""
    result = gxo(playbook_file(playbook))

    assert result.returncode == 0, result.stderr
    last = result.stderr.rstrip().splitlines()[-1]
    assert re.fullmatch(
        r"playbook 'tolerant' Completed in \d+\.\d\ds: 2 tasks, 1 completed, "
        r"1 failed \(1 ignored\), 0 skipped",
        last,
    ), last


@pytest.mark.parametrize("command", ["execute", "validate"])
def test_json_logs_stay_json_for_errors_before_the_run(
    gxo: Gxo, playbook_file: PlaybookFile, command: str
) -> None:
    """An invalid playbook, and output files that cannot be written, are one JSON record each
    with ``--log-format json``: stderr stays one object per line for a log collector."""
    bad = playbook_file(
        FAILING.replace(
            "type: exec\n    params: {command: sh", "type: exce\n    params: {command: sh"
        )
    )
    extra = ["--report", "missing/run.json"] if command == "execute" else []
    result = gxo("--log-format", "json", command, bad, *extra)
    assert result.returncode == 2, result.stderr
    records = [json.loads(line) for line in result.stderr.splitlines()]
    errors = [r["message"] for r in records if r["level"] == "ERROR"]
    assert any(m.startswith("playbook is invalid (1 problem):") for m in errors), records
    assert any("unknown module type 'exce'" in m for m in errors)
    if command == "execute":
        assert any(m.startswith("cannot write the run's output files") for m in errors)
    good = gxo("--log-format", "json", playbook_file(FAILING), "--report", "missing/run.json")
    assert good.returncode == 2, good.stderr
    (record,) = [json.loads(line) for line in good.stderr.splitlines()]
    assert record["level"] == "ERROR"
    assert "--report missing/run.json: directory" in record["message"]


def test_unknown_key_exits_2_with_location_and_nothing_runs(
    gxo: Gxo, playbook_file: PlaybookFile, tmp_path: Path
) -> None:
    path = playbook_file(
        """
        schemaVersion: v1.0.0
        name: invalid
        tasks:
          - name: would-run
            type: exec
            params: {command: touch, args: ["@TMP@/ran"]}
          - name: bad
            type: exec
            bogus: 1
            params: {command: "true"}
        """
    )
    result = gxo(path)

    assert result.returncode == 2
    assert f"{path}:9:5:" in result.stderr
    assert "$.tasks[1].bogus" in result.stderr
    assert "bogus" in result.stderr
    assert not (tmp_path / "ran").exists()


def test_every_problem_is_reported(gxo: Gxo, playbook_file: PlaybookFile) -> None:
    path = playbook_file(
        """
        schemaVersion: v1.0.0
        name: invalid
        tasks:
          - name: one
            type: exec
            bogus: 1
            params: {command: "true"}
          - name: two
            type: exec
            timeout: "soon"
            params: {command: "true"}
        """
    )
    result = gxo("validate", path)

    assert result.returncode == 2
    assert "$.tasks[0].bogus" in result.stderr
    assert "$.tasks[1].timeout" in result.stderr


def test_bad_yaml_exits_2_with_location(
    gxo: Gxo, playbook_file: PlaybookFile, tmp_path: Path
) -> None:
    path = playbook_file(
        """
        schemaVersion: v1.0.0
        name: bad-yaml
        tasks:
          - name: would-run
            type: exec
            params: {command: touch, args: ["@TMP@/ran", oops
        """
    )
    result = gxo(path)

    assert result.returncode == 2
    assert f"{path}:" in result.stderr
    assert "$" in result.stderr
    assert "YAML" in result.stderr
    assert not (tmp_path / "ran").exists()


def test_unknown_module_type_exits_2(gxo: Gxo, playbook_file: PlaybookFile, tmp_path: Path) -> None:
    path = playbook_file(
        """
        schemaVersion: v1.0.0
        name: unknown-type
        tasks:
          - name: would-run
            type: exec
            params: {command: touch, args: ["@TMP@/ran"]}
          - name: mystery
            type: no_such_module
            params: {}
        """
    )
    result = gxo(path)

    assert result.returncode == 2
    assert f"{path}:8:11:" in result.stderr
    assert "$.tasks[1].type" in result.stderr
    assert "no_such_module" in result.stderr
    assert not (tmp_path / "ran").exists()


def test_validate_reports_a_cycle_with_its_path(gxo: Gxo, playbook_file: PlaybookFile) -> None:
    path = playbook_file(
        """
        schemaVersion: v1.0.0
        name: cyclic
        tasks:
          - {name: a, type: exec, depends_on: [c], params: {command: "true"}}
          - {name: b, type: exec, depends_on: [a], params: {command: "true"}}
          - {name: c, type: exec, depends_on: [b], params: {command: "true"}}
        """
    )
    result = gxo("validate", path)

    assert result.returncode == 2
    assert "cycle" in result.stderr
    assert "a -> b -> c -> a" in result.stderr


def test_validate_valid_playbook_exits_0_and_runs_nothing(
    gxo: Gxo, playbook_file: PlaybookFile, tmp_path: Path
) -> None:
    result = gxo("validate", playbook_file(OK))

    assert result.returncode == 0, result.stderr
    assert "valid" in result.stdout
    assert not (tmp_path / "dump.json").exists()


def test_version_exits_0(gxo: Gxo) -> None:
    from gxo._version import __version__

    result = gxo("--version")

    assert result.returncode == 0
    assert result.stdout.splitlines()[0] == f"gxo version {__version__}"


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["--no-such-flag"], id="unknown-flag"),
        pytest.param(["execute", "--workers", "0", "x.yaml"], id="bad-workers"),
        pytest.param(["execute", "--var", "not a pair", "x.yaml"], id="bad-var"),
        pytest.param([], id="no-command"),
    ],
)
def test_bad_command_line_exits_2(gxo: Gxo, args: list[str]) -> None:
    result = gxo(*args)

    assert result.returncode == 2
    assert result.stderr.strip()


@pytest.mark.parametrize("command", ["execute", "journal"])
def test_a_missing_playbook_names_only_what_is_required(gxo: Gxo, command: str) -> None:
    """TASK... is optional: the usage error asks for the playbook alone."""
    result = gxo(command)

    assert result.returncode == 2
    assert f"gxo {command}: the following arguments are required: PLAYBOOK\n" in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_playbook_file_exits_2(gxo: Gxo, tmp_path: Path) -> None:
    result = gxo(tmp_path / "absent.yaml")

    assert result.returncode == 2
    assert "absent.yaml" in result.stderr
    assert "Traceback" not in result.stderr


def test_modules_lists_builtin_modules(gxo: Gxo) -> None:
    text = gxo("modules")
    listed = gxo("modules", "--json")

    assert text.returncode == 0
    assert listed.returncode == 0
    for name in ("exec", "python", "passthrough", "generate:from_list"):
        assert f"{name}:" in text.stdout
    names = {module["name"] for module in json.loads(listed.stdout)}
    assert {"exec", "python", "passthrough", "generate:from_list"} <= names


def test_dry_run_creates_nothing(gxo: Gxo, playbook_file: PlaybookFile, tmp_path: Path) -> None:
    path = playbook_file(
        """
        schemaVersion: v1.0.0
        name: dry
        tasks:
          - name: touch
            type: exec
            params: {command: touch, args: ["@TMP@/created"]}
        """
    )
    report_path = tmp_path / "run.json"
    result = gxo(path, "--dry-run", "--report", report_path)

    assert result.returncode == 0, result.stderr
    assert not (tmp_path / "created").exists()
    report = json.loads(report_path.read_text())
    assert report["dry_run"] is True
    assert report["task_results"]["touch"]["status"] == "Completed"


@pytest.mark.parametrize(
    ("example", "variables"),
    [
        ("quickstart.yaml", {}),
        ("build-pipeline.yaml", {"workdir": "{tmp}/build"}),
        ("crash-isolation.yaml", {}),
        ("fanout-loop.yaml", {"marker_dir": "{tmp}/markers"}),
        ("state-and-when.yaml", {}),
        ("state-and-when.yaml", {"environment": "production"}),
    ],
)
def test_example_runs(gxo: Gxo, tmp_path: Path, example: str, variables: dict[str, str]) -> None:
    args: list[str] = []
    for key, value in variables.items():
        args += ["--var", f"{key}={value.format(tmp=tmp_path)}"]
    report_path = tmp_path / "run.json"
    result = gxo(EXAMPLES / example, *args, "--report", report_path)

    assert result.returncode == 0, result.stderr
    report = json.loads(report_path.read_text())
    assert report["overall_status"] == "Completed"
    assert report["exit_code"] == 0
    if example == "crash-isolation.yaml":
        reasons = {n: r["reason"] for n, r in report["task_results"].items()}
        assert reasons["segfault"] == "worker_signaled(SIGSEGV)"
        assert reasons["hard-exit"] == "worker_exited(3)"
        assert reasons["hang"] == "timed_out"
        assert reasons["raise"] == "module_raised(RuntimeError)"
        assert report["task_results"]["healthy"]["status"] == "Completed"
    if example == "build-pipeline.yaml":
        assert (tmp_path / "build" / "dist" / "calc.tar.gz").exists()
    if example == "fanout-loop.yaml":
        deploy = report["task_results"]["deploy"]
        assert deploy["attempts"] == 16  # every region fails once on purpose


def test_examples_are_all_covered() -> None:
    tested = {
        "quickstart.yaml",
        "build-pipeline.yaml",
        "crash-isolation.yaml",
        "fanout-loop.yaml",
        "state-and-when.yaml",
    }
    assert {p.name for p in EXAMPLES.glob("*.yaml")} == tested


@pytest.mark.parametrize("command", [["modules"], ["--version"]])
def test_stdout_closed_early_is_not_an_internal_error(tmp_path: Path, command: list[str]) -> None:
    """``gxo modules | head -1``: a reader that leaves early is not a gxo bug (``--version``
    prints before the rest of the CLI is imported: it needs the same care)."""
    import os
    import sys

    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before gxo writes a byte
    try:
        result = subprocess.run(
            [sys.executable, "-m", "gxo", *command],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        os.close(write_end)

    assert "Traceback" not in result.stderr
    assert "internal error" not in result.stderr
    assert result.returncode == 141  # as if killed by SIGPIPE, like other filters


@pytest.mark.parametrize(
    "command",
    [["modules"], ["--version"], ["list", "PLAYBOOK"], ["validate", "PLAYBOOK"]],
)
def test_stdout_on_a_full_device_is_an_error_not_a_bug(
    tmp_path: Path, playbook_file: PlaybookFile, command: list[str]
) -> None:
    """``gxo list site.yaml > /dev/full``: one line saying what failed, exit 2 (as for an output
    file that cannot be written), no traceback and no "internal error" (a private copy of
    ``/dev/full``: every write fails with ENOSPC)."""
    import os
    import stat
    import sys

    full = tmp_path / "full"
    try:
        os.mknod(full, 0o666 | stat.S_IFCHR, os.makedev(1, 7))
    except PermissionError:
        pytest.skip("creating a device node needs CAP_MKNOD")
    playbook = playbook_file(FAILING)
    argv = [str(playbook) if arg == "PLAYBOOK" else arg for arg in command]
    with open(full, "wb") as out:
        result = subprocess.run(
            [sys.executable, "-m", "gxo", *argv],
            stdout=out,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
            check=False,
        )

    assert "Traceback" not in result.stderr
    assert "internal error" not in result.stderr
    assert result.stderr == "gxo: cannot write to stdout: No space left on device\n"
    assert result.returncode == 2


def test_file_size_limit_of_zero_is_a_usage_error_with_nothing_run(tmp_path: Path) -> None:
    # `ulimit -f 0`: each worker's 8-byte shared-memory slot (a memfd) cannot be sized. That
    # used to be a traceback and "internal error" (exit 3); it is the environment, not a bug.
    # (The gxo interpreter ignores SIGXFSZ, as every Python does, so the write fails EFBIG.)
    import resource

    marker = tmp_path / "ran"
    book = tmp_path / "one.yaml"
    book.write_text(
        'schemaVersion: "v1.0.0"\nname: one\ntasks:\n'
        f"  - name: a\n    type: exec\n    params: {{command: [touch, {str(marker)!r}]}}\n"
    )

    def no_file_size() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))

    done = subprocess.run(
        [sys.executable, "-m", "gxo", str(book)],
        check=False,
        cwd=tmp_path,
        preexec_fn=no_file_size,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert "internal error" not in done.stderr
    assert "file-size limit (ulimit -f 0)" in done.stderr
    assert "raise it" in done.stderr
    assert not marker.exists()
    assert done.stdout == ""
