"""The files ``gxo execute`` writes at the end of a run: checked before it, written atomically,
and a write that still fails after it costs the file, never the run's exit code.

Every case runs the real ``gxo`` command. The playbook's first task touches a marker, so a
test can tell whether anything ran.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import stat
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

Gxo = Callable[..., subprocess.CompletedProcess[str]]

PLAYBOOK = """\
schemaVersion: v1.0.0
name: outputs
tasks:
  - name: mark
    type: exec
    params: {command: touch, args: ["@MARKER@"]}
  - name: broken
    type: exec
    depends_on: [mark]
    params: {command: "false"}
"""

#: Every output flag, and a file name for it.
OUTPUTS = {
    "--report": "run.json",
    "--html-report": "run.html",
    "--metrics-file": "gxo.prom",
    "--junit": "junit.xml",
    "--state-out": "state.json",
}
#: What the error line of each output calls it.
WHAT = {
    "--report": "report",
    "--html-report": "HTML report",
    "--metrics-file": "metrics",
    "--junit": "JUnit XML",
    "--state-out": "state",
}


@pytest.fixture
def playbook(tmp_path: Path) -> Path:
    path = tmp_path / "playbook.yaml"
    path.write_text(PLAYBOOK.replace("@MARKER@", str(tmp_path / "ran")))
    return path


@pytest.fixture
def gxo_env(tmp_path: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    """``gxo ARGS...`` with extra environment variables."""

    def run(env: dict[str, str], *args: object) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "gxo", *map(str, args)],
            cwd=tmp_path,
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    return run


def _all_outputs(directory: Path) -> list[str]:
    return [arg for flag, name in OUTPUTS.items() for arg in (flag, str(directory / name))]


def _assert_nothing_ran(tmp_path: Path, proc: subprocess.CompletedProcess[str]) -> None:
    assert proc.returncode == 2, proc.stderr
    assert "cannot write the run's output files (nothing was run)" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert "internal error" not in proc.stderr
    assert not (tmp_path / "ran").exists(), "a task ran although the outputs were refused"


@pytest.mark.parametrize("flag", OUTPUTS)
def test_an_output_in_a_missing_directory_is_refused_before_the_run(
    gxo: Gxo, playbook: Path, tmp_path: Path, flag: str
) -> None:
    proc = gxo(playbook, flag, "missing-dir/out")
    _assert_nothing_ran(tmp_path, proc)
    assert f"{flag} missing-dir/out: directory {tmp_path}/missing-dir does not exist" in (
        proc.stderr
    )
    assert not (tmp_path / "missing-dir").exists()


@pytest.mark.parametrize("flag", OUTPUTS)
def test_an_output_that_is_a_directory_is_refused_before_the_run(
    gxo: Gxo, playbook: Path, tmp_path: Path, flag: str
) -> None:
    (tmp_path / "out").mkdir()
    proc = gxo(playbook, flag, "out")
    _assert_nothing_ran(tmp_path, proc)
    assert f"{flag} out: is a directory; give the path of a file" in proc.stderr
    assert os.listdir(tmp_path / "out") == [], "a temporary file was left in the directory"


def test_an_output_under_a_regular_file_is_refused(
    gxo: Gxo, playbook: Path, tmp_path: Path
) -> None:
    (tmp_path / "afile").write_text("x")
    proc = gxo(playbook, "--report", "afile/run.json")
    _assert_nothing_ran(tmp_path, proc)
    assert f"--report afile/run.json: {tmp_path}/afile is not a directory" in proc.stderr


def test_a_traces_file_that_is_a_directory_is_refused(
    gxo_env: Callable[..., subprocess.CompletedProcess[str]], playbook: Path, tmp_path: Path
) -> None:
    (tmp_path / "traces").mkdir()
    proc = gxo_env({"GXO_TRACES_FILE": str(tmp_path / "traces")}, playbook)
    _assert_nothing_ran(tmp_path, proc)
    assert f"GXO_TRACES_FILE={tmp_path}/traces: is a directory" in proc.stderr


def test_every_bad_output_is_listed_at_once(gxo: Gxo, playbook: Path, tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    proc = gxo(playbook, "--report", "out", "--html-report", "nope/r.html", "--metrics-file", "out")
    _assert_nothing_ran(tmp_path, proc)
    problems = proc.stderr.splitlines()[1:]
    assert [line.split(":")[0].strip() for line in problems] == [
        "--report out",
        "--html-report nope/r.html",
        "--metrics-file out",
    ]


def test_two_outputs_to_one_file_are_refused(gxo: Gxo, playbook: Path, tmp_path: Path) -> None:
    proc = gxo(playbook, "--report", "run.json", "--html-report", "./run.json")
    _assert_nothing_ran(tmp_path, proc)
    assert "--html-report ./run.json: the same file as --report" in proc.stderr


def test_outputs_are_written_atomically_with_the_usual_mode(
    gxo: Gxo, playbook: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "run.json").write_text("an older report")
    link = tmp_path / "latest.html"
    link.symlink_to(out / "run.html")

    proc = gxo(
        playbook,
        "--report",
        out / "run.json",
        "--metrics-file",
        out / "gxo.prom",
        "--html-report",
        link,
        "--junit",
        out / "junit.xml",
        "--state-out",
        out / "state.json",
    )

    assert proc.returncode == 1, proc.stderr
    assert sorted(os.listdir(out)) == [
        "gxo.prom",
        "junit.xml",
        "run.html",
        "run.json",
        "state.json",
    ]
    assert json.loads((out / "run.json").read_text())["exit_code"] == 1
    assert link.is_symlink(), "the symbolic link was replaced instead of the file it names"
    assert "<html" in (out / "run.html").read_text()
    assert "gxo_tasks" in (out / "gxo.prom").read_text()
    for name in os.listdir(out):
        assert stat.S_IMODE((out / name).stat().st_mode) == 0o666 & ~_umask()


def test_a_report_to_stdout_is_written_in_place(gxo: Gxo, playbook: Path) -> None:
    """stdout is a pipe here: there is no file to rename a temporary file over."""
    proc = gxo(playbook, "--report", "/dev/stdout")
    assert proc.returncode == 1, proc.stderr
    assert json.loads(proc.stdout)["exit_code"] == 1


def test_a_full_device_keeps_the_exit_code_and_says_so(
    gxo: Gxo, playbook: Path, tmp_path: Path
) -> None:
    """A copy of ``/dev/full`` (every write fails with ENOSPC; a private node, so that a
    regression replaces it and not the system's): the run's result survives."""
    full = tmp_path / "full"
    try:
        os.mknod(full, 0o666 | stat.S_IFCHR, os.makedev(1, 7))
    except PermissionError:
        pytest.skip("creating a device node needs CAP_MKNOD")
    proc = gxo(playbook, *[arg for flag in OUTPUTS for arg in (flag, full)])
    assert proc.returncode == 1, proc.stderr
    for what in WHAT.values():
        assert f"error: could not write the {what} to {full}: No space left on device" in (
            proc.stderr
        )
    assert "Traceback" not in proc.stderr
    assert "1 failed" in proc.stderr  # the summary is still shown
    assert full.is_char_device(), "the device was replaced"
    left = sorted(set(os.listdir(tmp_path)) - {".gxo"})  # .gxo: the run directory (conftest)
    assert left == ["full", "playbook.yaml", "ran"]


def test_writes_that_fail_after_the_run_leave_no_partial_file(
    playbook: Path, tmp_path: Path
) -> None:
    """Files past ``RLIMIT_FSIZE`` fail half-written (EFBIG): no temporary file stays, an
    existing report keeps its content, and the exit code is the run's."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "run.json").write_text("old")

    def small_files() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (64, 64))

    proc = subprocess.run(
        [sys.executable, "-m", "gxo", playbook, *_all_outputs(out)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        preexec_fn=small_files,  # sets one limit: no lock involved
    )

    assert proc.returncode == 1, proc.stderr
    for flag, name in OUTPUTS.items():
        assert f"could not write the {WHAT[flag]} to {out / name}: File too large" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert os.listdir(out) == ["run.json"], "a partial or temporary file was left behind"
    assert (out / "run.json").read_text() == "old"


@pytest.fixture
def full_tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A real filesystem with no space left: a 64 KiB tmpfs, filled up (needs root)."""
    mount = tmp_path / "full"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        fd = os.open(mount / "filler", os.O_WRONLY | os.O_CREAT)
        try:
            with contextlib.suppress(OSError):
                while os.write(fd, b"x" * 4096):
                    pass
        finally:
            os.close(fd)
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def test_a_full_filesystem_keeps_the_exit_code_and_leaves_no_temp_file(
    gxo: Gxo, playbook: Path, full_tmpfs: Path
) -> None:
    proc = gxo(playbook, *_all_outputs(full_tmpfs))
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.count("No space left on device") == len(OUTPUTS), proc.stderr
    assert "Traceback" not in proc.stderr
    assert os.listdir(full_tmpfs) == ["filler"]


def test_an_output_directory_removed_during_the_run(
    gxo: Gxo, tmp_path: Path, playbook_file: Callable[..., Path]
) -> None:
    """The directory passed the check, then a task removed it: one error per file, the run's
    exit code, the summary."""
    out = tmp_path / "out"
    out.mkdir()
    path = playbook_file(
        """
        schemaVersion: v1.0.0
        name: removes-its-output-directory
        tasks:
          - name: rm
            type: exec
            params: {command: rmdir, args: ["@TMP@/out"]}
        """
    )
    proc = gxo(path, *_all_outputs(out))
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.count("error: could not write the") == len(OUTPUTS)
    assert "No such file or directory (the run's exit code is unchanged)" in proc.stderr
    assert "Completed" in proc.stderr
    assert not out.exists()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_an_output_on_a_read_only_filesystem_is_refused_before_the_run(
    gxo: Gxo, playbook: Path, tmp_path: Path
) -> None:
    """A read-only mount refuses even root (who may write any directory otherwise)."""
    mount = tmp_path / "ro"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "ro,size=16k", "tmpfs", str(mount)],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        proc = gxo(playbook, "--report", mount / "run.json")
    finally:
        subprocess.run(["umount", str(mount)], check=True)
    _assert_nothing_ran(tmp_path, proc)
    assert f"--report {mount}/run.json: directory {mount} is not writable" in proc.stderr


@pytest.mark.parametrize("valid", [True, False], ids=["valid", "invalid"])
@pytest.mark.parametrize("flag", OUTPUTS)
def test_an_output_over_the_playbook_itself_is_refused(
    gxo: Gxo, playbook: Path, tmp_path: Path, flag: str, valid: bool
) -> None:
    """``gxo site.yaml --report site.yaml`` would replace the playbook with its report; for an
    invalid playbook, the file whose problems are being listed."""
    if not valid:
        playbook.write_text(playbook.read_text() + "  - name: typo\n    type: exce\n")
    before = playbook.read_text()
    proc = gxo(playbook, flag, f"./{playbook.name}")
    assert proc.returncode == 2, proc.stderr
    assert playbook.read_text() == before, "the playbook was overwritten"
    if not valid and flag not in ("--report", "--junit"):
        return  # only those two are written for an invalid playbook
    assert f"{flag} ./{playbook.name}: is the playbook itself; give it a file of its own" in (
        proc.stderr
    )
    assert not (tmp_path / "ran").exists()
    assert "Traceback" not in proc.stderr
