"""The state directory through the real ``gxo`` command: run directories and their lock,
``gxo clean``, and outputs that cannot be written (DESIGN §15, "The run directory")."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
from itest_support import wait_for_file

# A task that says it started, then waits (bounded) until the test releases it.
WAITING = """\
schemaVersion: v1.0.0
name: waiting
tasks:
  - name: hold
    type: exec
    params:
      command:
        - sh
        - -c
        - >-
          echo attempt-log-line; : > @TMP@/started; i=0;
          while [ ! -e @TMP@/release ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done
"""


def test_clean_keeps_the_directory_of_a_run_still_going(
    gxo, start_gxo, playbook_file, tmp_path: Path
) -> None:
    playbook = playbook_file(WAITING)
    state = tmp_path / ".gxo"
    old = state / "runs" / "finished-long-ago"
    old.mkdir(parents=True)
    run = start_gxo(playbook)
    wait_for_file(tmp_path / "started")
    (going,) = [p for p in (state / "runs").iterdir() if p != old]

    cleaned = gxo("clean", "--keep", "0")

    assert cleaned.returncode == 0, cleaned.stderr
    assert f"{going}: kept, its run is still going" in cleaned.stdout
    assert "removed 1 run(s), kept 1" in cleaned.stdout
    assert not old.exists()
    (tmp_path / "release").touch()
    assert run.wait(timeout=60) == 0, (tmp_path / "gxo.err").read_text()
    # The run wrote its attempt log where it always was, and its lock went with it.
    assert (going / "hold" / "attempt1.stdout").read_text() == "attempt-log-line\n"
    again = gxo("clean", "--keep", "0")
    assert "removed 1 run(s), kept 0" in again.stdout, again.stdout + again.stderr
    assert not going.exists()


LIBRARY_TWICE = """\
import pathlib, sys
import gxo
from gxo.scheduler.partial import PartialRun
for _ in range(2):
    result = gxo.run(pathlib.Path(sys.argv[1]), workers=1, state_dir=sys.argv[2],
                     partial=PartialRun(journal_enabled=True))
    print("exit", result.exit_code, flush=True)
"""


def _with_own_mounts(setup: str, argv: list[str]) -> list[str]:
    """``argv`` run after the shell commands ``setup``, in a mount namespace of its own (so
    ``setup`` may mount a tmpfs; it goes with the namespace); skips where namespaces are not
    allowed."""
    import shutil
    import subprocess

    unshare = shutil.which("unshare")
    if unshare is None:
        pytest.skip("no unshare(1)")
    probe = [unshare, "--map-root-user", "--mount", "true"]
    if subprocess.run(probe, capture_output=True, timeout=30, check=False).returncode != 0:
        pytest.skip("mount namespaces are not allowed here")
    script = f"{setup} || exit 99; exec {shlex.join(argv)}"
    return [unshare, "--map-root-user", "--mount", "sh", "-c", script]


def _in_a_full_filesystem(directory: Path, argv: list[str]) -> list[str]:
    """``argv`` run where ``directory`` is a small tmpfs filled up (files can be made, no
    byte written)."""
    directory.mkdir()
    where = shlex.quote(str(directory))
    return _with_own_mounts(
        f"mount -t tmpfs -o size=64k tmpfs {where} && "
        f"{{ head -c 1048576 /dev/zero > {where}/fill 2>/dev/null; true; }}",
        argv,
    )


def test_a_journal_on_a_full_disk_does_not_keep_its_lock(tmp_path: Path) -> None:
    """On a full filesystem the journal's lock file is made and locked, but the note of who
    holds it cannot be written: the run goes on without a journal (a warning), and the lock
    is released, so the same process's next run of the playbook is not refused by its own
    leaked lock ("another gxo run is using the journal")."""
    import subprocess
    import sys

    playbook = tmp_path / "one.yaml"
    playbook.write_text(
        "schemaVersion: v1.0.0\nname: one\ntasks:\n"
        "  - {name: a, type: exec, params: {command: [echo, hi]}}\n"
    )
    full = tmp_path / "full"
    argv = [sys.executable, "-c", LIBRARY_TWICE, str(playbook), str(full / "state")]
    result = subprocess.run(
        _in_a_full_filesystem(full, argv),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "exit 0\nexit 0\n", result.stderr
    assert "another gxo run" not in result.stderr
    assert "No space left on device" in result.stderr


def test_clean_says_which_runs_it_cannot_remove_and_exits_1(tmp_path: Path) -> None:
    """Run directories that cannot be removed (a read-only filesystem) are named, and the
    exit code is 1; no traceback, no "internal error" (exit 3 is for gxo bugs, never a bad
    path)."""
    import subprocess
    import sys

    state = tmp_path / "state"
    state.mkdir()
    where = shlex.quote(str(state))
    setup = (
        f"mount -t tmpfs -o size=64k tmpfs {where} && mkdir -p {where}/runs/a {where}/runs/b "
        f"&& echo x > {where}/runs/a/attempt1.stdout && mount -o remount,ro {where}"
    )
    argv = [sys.executable, "-m", "gxo", "clean", "--keep", "0", "--state-dir", str(state)]
    result = subprocess.run(
        _with_own_mounts(setup, argv),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    for name in ("a", "b"):
        assert f"gxo clean: cannot remove {state}/runs/{name}: Read-only file system" in (
            result.stderr
        )
    assert "Traceback" not in result.stderr
    assert "removed 0 run(s), kept 2 (2 could not be removed)" in result.stdout
