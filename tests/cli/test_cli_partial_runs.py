"""Partial runs, fail-fast, resume, drain, deadline, sizing and resources: the real ``gxo``.

Every test runs the ``gxo`` command in a child process with real worker processes. What ran
is counted through marker files the tasks' commands append to; what gxo decided is read from
its report. Nothing sleeps to synchronise: a test waits for a marker file or for a line gxo
logged (a task's end line is logged after the scheduler has acted on it).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from itest_support import substitute, wait_for_file

StartGxo = Callable[..., subprocess.Popen[bytes]]
PlaybookFile = Callable[..., Path]
RunGxo = Callable[..., subprocess.CompletedProcess[str]]
GXO_CMD = [sys.executable, "-m", "gxo"]


def report(tmp_path: Path, name: str = "run.json") -> dict[str, Any]:
    return json.loads((tmp_path / name).read_text())  # type: ignore[no-any-return]


def outcome(data: dict[str, Any], task: str) -> tuple[str, str]:
    result = data["task_results"][task]
    return result["status"], result["reason"]


def runs(tmp_path: Path, task: str) -> int:
    """How many times ``task``'s command ran (one line per run in ``count-<task>``)."""
    path = tmp_path / f"count-{task}"
    return len(path.read_text().splitlines()) if path.exists() else 0


def wait_for_log(tmp_path: Path, text: str, proc: subprocess.Popen[bytes]) -> None:
    """Until gxo's stderr (``gxo.err``) holds ``text``; fail if gxo ends first."""
    log = tmp_path / "gxo.err"
    deadline = time.monotonic() + 30
    while text not in (log.read_text() if log.exists() else ""):
        if proc.poll() is not None:
            pytest.fail(
                f"gxo ended ({proc.returncode}) before logging {text!r}:\n{log.read_text()}"
            )
        if time.monotonic() > deadline:
            pytest.fail(f"gxo did not log {text!r}:\n{log.read_text()}")
        time.sleep(0.01)


# -- targets --------------------------------------------------------------------------------

TARGETS = """
schemaVersion: v1.0.0
name: targets
tasks:
  - {name: setup, type: exec, register: s, params: {command: touch, args: ["@TMP@/ran-setup"]}}
  - name: check
    type: exec
    when: "{{ _gxo.tasks.setup.status == 'Completed' }}"
    params: {command: touch, args: ["@TMP@/ran-check"]}
  - name: produce
    type: generate:from_list
    params: {items: [{n: 1}, {n: 2}]}
  - name: consume
    type: file:write
    stream_inputs: [produce]
    depends_on: [check]
    params: {path: "@TMP@/ran-consume"}
  - name: docs
    type: exec
    tags: [docs]
    params: {command: touch, args: ["@TMP@/ran-docs"]}
  - name: lint
    type: exec
    tags: [docs, slow]
    params: {command: touch, args: ["@TMP@/ran-lint"]}
"""


def ran(tmp_path: Path) -> set[str]:
    return {p.name.removeprefix("ran-") for p in tmp_path.glob("ran-*")}


def test_target_runs_what_it_needs_over_stream_status_and_depends_on_edges(
    gxo: RunGxo, playbook_file: PlaybookFile, tmp_path: Path
) -> None:
    path = playbook_file(TARGETS)
    result = gxo("execute", path, "consume", "--report", "run.json", "--no-journal")
    assert result.returncode == 0, result.stderr
    assert ran(tmp_path) == {"setup", "check", "consume"}
    data = report(tmp_path)
    assert outcome(data, "produce") == ("Completed", "")  # the stream group runs whole
    assert outcome(data, "docs") == ("Skipped", "not_selected")
    assert json.loads((tmp_path / "ran-consume").read_text().splitlines()[0]) == {"n": 1}


@pytest.mark.parametrize(
    "line",
    [
        ["PLAYBOOK", "--no-journal", "docs", "--report", "run.json", "lint"],
        ["PLAYBOOK", "docs", "--no-journal", "lint", "--report", "run.json"],
        ["--no-journal", "PLAYBOOK", "--report", "run.json", "docs", "lint"],
    ],
    ids=["after-options", "between-options", "all-after"],
)
@pytest.mark.parametrize("command", [["execute"], []], ids=["execute", "shortcut"])
def test_targets_may_come_before_between_or_after_options(
    gxo: RunGxo,
    playbook_file: PlaybookFile,
    tmp_path: Path,
    command: list[str],
    line: list[str],
) -> None:
    """`gxo execute site.yaml --resume package`: a target after an option is a target, not
    an "unrecognized argument"."""
    path = playbook_file(TARGETS)
    result = gxo(*command, *(str(path) if word == "PLAYBOOK" else word for word in line))
    assert result.returncode == 0, result.stderr
    assert ran(tmp_path) == {"docs", "lint"}
    assert outcome(report(tmp_path), "setup") == ("Skipped", "not_selected")


def test_an_unknown_option_among_targets_is_still_refused(
    gxo: RunGxo, playbook_file: PlaybookFile, tmp_path: Path
) -> None:
    path = playbook_file(TARGETS)
    result = gxo("execute", path, "docs", "--bogus", "lint")
    assert result.returncode == 2
    assert "unrecognized arguments: --bogus lint" in result.stderr
    assert ran(tmp_path) == set()


def test_tags_and_skip_tags(gxo: RunGxo, playbook_file: PlaybookFile, tmp_path: Path) -> None:
    path = playbook_file(TARGETS)
    result = gxo("execute", path, "--tags", "docs", "--skip-tags", "slow", "--no-journal")
    assert result.returncode == 0, result.stderr
    assert ran(tmp_path) == {"docs"}
    assert "skipped  lint: not_selected" in result.stderr


def test_skip_glob_and_a_status_read_of_a_skipped_task(
    gxo: RunGxo, playbook_file: PlaybookFile, tmp_path: Path
) -> None:
    path = playbook_file(TARGETS)
    result = gxo("execute", path, "--skip", "set*", "--report", "run.json", "--no-journal")
    assert result.returncode == 0, result.stderr
    data = report(tmp_path)
    assert outcome(data, "setup") == ("Skipped", "not_selected")
    assert outcome(data, "check") == ("Skipped", "when_false")  # it saw setup as Skipped
    assert "setup" not in ran(tmp_path)
    assert {"docs", "lint", "consume"} <= ran(tmp_path)


def test_a_register_reader_of_a_skipped_task_is_upstream_not_selected(
    gxo: RunGxo, playbook_file: PlaybookFile, tmp_path: Path
) -> None:
    use = '  - {name: use, type: exec, params: {command: echo, args: ["x{{ s.exit_code }}"]}}\n'
    text = TARGETS + use
    path = playbook_file(text)
    result = gxo("execute", path, "use", "--skip", "setup", "--report", "run.json")
    assert result.returncode == 0, result.stderr
    assert outcome(report(tmp_path), "use") == ("Skipped", "upstream_not_selected")
    # Once setup has run, the journal can restore its register for a later partial run.
    assert gxo("execute", path, "setup").returncode == 0
    result = gxo("execute", path, "use", "--skip", "setup", "--resume", "--report", "run.json")
    assert result.returncode == 0, result.stderr
    data = report(tmp_path)
    assert outcome(data, "use") == ("Completed", "")
    assert outcome(data, "setup") == ("Skipped", "not_selected")


def test_unknown_target_exits_2_and_runs_nothing(
    gxo: RunGxo, playbook_file: PlaybookFile, tmp_path: Path
) -> None:
    result = gxo("execute", playbook_file(TARGETS), "consme")
    assert result.returncode == 2
    assert "no task named 'consme' in the playbook; did you mean consume?" in result.stderr
    assert ran(tmp_path) == set()


# -- fail-fast ------------------------------------------------------------------------------

FAIL_FAST = """
schemaVersion: v1.0.0
name: failfast
tasks:
  - name: slow
    type: exec
    params:
      shell: true
      command: >-
        touch @TMP@/slow-started;
        while [ ! -e @TMP@/release ]; do sleep 0.01; done;
        touch @TMP@/slow-done
  - name: bad
    type: exec
    params: {shell: true, command: "while [ ! -e @TMP@/slow-started ]; do sleep 0.01; done; exit 3"}
  - name: after_slow
    type: exec
    depends_on: [slow]
    params: {command: touch, args: ["@TMP@/ran-after"]}
  - {name: third, type: exec, depends_on: [bad], params: {command: touch, args: ["@TMP@/r3"]}}
  - {name: fourth, type: exec, params: {command: touch, args: ["@TMP@/ran-fourth"]}}
"""


def test_fail_fast_lets_running_tasks_finish_and_starts_nothing_new(
    start_gxo: StartGxo, playbook_file: PlaybookFile, tmp_path: Path
) -> None:
    proc = start_gxo(
        playbook_file(FAIL_FAST), "-x", "-w", "2", "--report", "run.json", "--no-journal"
    )
    wait_for_log(tmp_path, "FAILED   bad", proc)
    (tmp_path / "release").touch()
    assert proc.wait(timeout=60) == 1
    data = report(tmp_path)
    assert outcome(data, "slow") == ("Completed", "")
    assert (tmp_path / "slow-done").exists()
    assert outcome(data, "bad") == ("Failed", "nonzero_exit(3)")
    for task in ("after_slow", "fourth"):
        assert outcome(data, task) == ("Cancelled", "fail_fast")
    assert not (tmp_path / "ran-after").exists()
    assert not (tmp_path / "ran-fourth").exists()
    assert "--fail-fast" in data["error"]


def test_fail_fast_kill_stops_the_running_tasks(
    start_gxo: StartGxo, playbook_file: PlaybookFile, tmp_path: Path
) -> None:
    proc = start_gxo(
        playbook_file(FAIL_FAST),
        "--fail-fast-kill",
        "-w",
        "2",
        "--grace",
        "0.5",
        "--report",
        "run.json",
        "--no-journal",
    )
    assert proc.wait(timeout=60) == 1
    data = report(tmp_path)
    assert outcome(data, "slow") == ("Cancelled", "fail_fast")
    assert not (tmp_path / "slow-done").exists()
    assert outcome(data, "fourth") == ("Cancelled", "fail_fast")


def test_default_keeps_going(gxo: RunGxo, playbook_file: PlaybookFile, tmp_path: Path) -> None:
    (tmp_path / "release").touch()
    result = gxo("execute", playbook_file(FAIL_FAST), "-w", "2", "--no-journal")
    assert result.returncode == 1
    assert {p.name for p in tmp_path.glob("ran-*")} == {"ran-after", "ran-fourth"}


# -- resume ---------------------------------------------------------------------------------

RESUME = """
schemaVersion: v1.0.0
name: resume
vars: {v: 1}
tasks:
  - name: a
    type: exec
    register: ra
    params: {shell: true, command: "echo a >> @TMP@/count-a; echo a-{{ v }}"}
  - name: b
    type: exec
    register: rb
    params: {shell: true, command: "echo b >> @TMP@/count-b; echo b-from-{{ ra.stdout | trim }}"}
  - name: other
    type: exec
    params: {shell: true, command: "echo other >> @TMP@/count-other"}
  - name: long
    type: exec
    depends_on: [other]
    params:
      shell: true
      command: >-
        echo long >> @TMP@/count-long; touch @TMP@/long-started;
        while [ ! -e @TMP@/release ]; do sleep 0.01; done
  - name: c
    type: exec
    depends_on: [long]
    params:
      shell: true
      command: "echo c >> @TMP@/count-c; echo '{{ rb.stdout | trim }}' > @TMP@/c-saw"
"""


def test_sigterm_then_resume_runs_only_what_did_not_complete(
    start_gxo: StartGxo, gxo: RunGxo, playbook_file: PlaybookFile, tmp_path: Path
) -> None:
    path = playbook_file(RESUME)
    proc = start_gxo(path, "-w", "3", "--report", "first.json")
    wait_for_file(tmp_path / "long-started")
    wait_for_log(tmp_path, "ok       b", proc)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 143
    first = report(tmp_path, "first.json")
    assert outcome(first, "long") == ("Cancelled", "interrupted")
    assert outcome(first, "c") == ("Cancelled", "interrupted")
    assert [runs(tmp_path, t) for t in ("a", "b", "other", "long", "c")] == [1, 1, 1, 1, 0]

    (tmp_path / "release").touch()
    result = gxo("execute", path, "--resume", "-w", "3", "--report", "second.json")
    assert result.returncode == 0, result.stderr
    # Only what did not complete ran again; a, b and other came from the journal.
    assert [runs(tmp_path, t) for t in ("a", "b", "other", "long", "c")] == [1, 1, 1, 2, 1]
    second = report(tmp_path, "second.json")
    assert outcome(second, "a") == ("Completed", "resumed")
    assert second["cached_tasks"] == 3
    assert "cached   b (restored from the journal)" in result.stderr
    # c read b's register, restored from the journal.
    assert (tmp_path / "c-saw").read_text() == "b-from-a-1\n"

    # A changed var reruns the task that reads it, and everything downstream of it.
    result = gxo("execute", path, "--resume", "-w", "3", "--var", "v=2")
    assert result.returncode == 0, result.stderr
    assert [runs(tmp_path, t) for t in ("a", "b", "other", "long", "c")] == [2, 2, 1, 2, 2]
    assert (tmp_path / "c-saw").read_text() == "b-from-a-2\n"

    # --force reruns a task and what depends on it, even when the journal says done.
    result = gxo("execute", path, "--resume", "-w", "3", "--var", "v=2", "--force", "long")
    assert result.returncode == 0, result.stderr
    assert [runs(tmp_path, t) for t in ("a", "b", "other", "long", "c")] == [2, 2, 1, 3, 3]


def test_kill_9_then_resume_restores_what_the_journal_recorded(
    start_gxo: StartGxo, gxo: RunGxo, playbook_file: PlaybookFile, tmp_path: Path
) -> None:
    """No chance to flush: what completed more than a batch time (1 s) before the kill is
    on disk, even though the run went quiet (``long`` runs on and no record follows)."""
    path = playbook_file(RESUME)
    proc = start_gxo(path, "-w", "3")
    wait_for_file(tmp_path / "long-started")
    wait_for_log(tmp_path, "ok       b", proc)
    journal = tmp_path / ".gxo" / "journal"
    deadline = time.monotonic() + 30
    while True:  # a, b and other's records reach the file by themselves
        files = list(journal.glob("playbook-*.jsonl"))
        text = files[0].read_text() if files else ""
        if all(f'"task":"{t}"' in text for t in ("a", "b", "other")):
            break
        assert proc.poll() is None, (tmp_path / "gxo.err").read_text()
        assert time.monotonic() < deadline, f"the records did not reach the journal: {text}"
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait(timeout=30) == -signal.SIGKILL

    (tmp_path / "release").touch()
    result = gxo("execute", path, "--resume", "-w", "3", "--report", "second.json")
    assert result.returncode == 0, result.stderr
    assert [runs(tmp_path, t) for t in ("a", "b", "other", "long", "c")] == [1, 1, 1, 2, 1]
    second = report(tmp_path, "second.json")
    assert second["cached_tasks"] == 3
    assert (tmp_path / "c-saw").read_text() == "b-from-a-1\n"


def test_resume_with_a_torn_last_journal_line(
    gxo: RunGxo, playbook_file: PlaybookFile, tmp_path: Path
) -> None:
    (tmp_path / "release").touch()
    path = playbook_file(RESUME)
    assert gxo("execute", path).returncode == 0
    (journal,) = (tmp_path / ".gxo" / "journal").glob("playbook-*.jsonl")
    whole = journal.read_bytes()
    journal.write_bytes(whole + b'{"type":"instance","run":"x","task":"a","finger')
    result = gxo("execute", path, "--resume", "--report", "run.json")
    assert result.returncode == 0, result.stderr
    assert report(tmp_path)["cached_tasks"] == 5
    assert [runs(tmp_path, t) for t in ("a", "b", "other", "long", "c")] == [1, 1, 1, 1, 1]
    listing = gxo("journal", path)
    assert listing.returncode == 0, listing.stderr
    assert listing.stdout.count("cached ") == 5


def test_dry_run_resume_lists_instances_and_runs_nothing(
    gxo: RunGxo, playbook_file: PlaybookFile, tmp_path: Path
) -> None:
    (tmp_path / "release").touch()
    path = playbook_file(RESUME)
    assert gxo("execute", path).returncode == 0
    result = gxo("execute", path, "--dry-run", "--resume", "--var", "v=5")
    assert result.returncode == 0, result.stderr
    lines = {line.split()[1]: line.split(None, 2)[::2] for line in result.stdout.splitlines()[1:]}
    assert lines["a"][0] == "run"
    assert "changed since run" in lines["a"][1]
    assert lines["b"] == ["run", "upstream task 'a' runs"]
    assert lines["other"][0] == "cached"
    assert runs(tmp_path, "a") == 1


def test_a_second_run_of_the_same_playbook_is_refused(
    start_gxo: StartGxo, gxo: RunGxo, playbook_file: PlaybookFile, tmp_path: Path
) -> None:
    path = playbook_file(RESUME)
    proc = start_gxo(path)
    wait_for_file(tmp_path / "long-started")
    second = gxo("execute", path)
    assert second.returncode == 2
    assert "another gxo run is using the journal" in second.stderr
    assert f"pid {proc.pid}" in second.stderr
    assert runs(tmp_path, "a") == 1  # the second run ran nothing
    (tmp_path / "release").touch()
    assert proc.wait(timeout=60) == 0


def test_redacted_register_always_reruns(
    gxo: RunGxo, playbook_file: PlaybookFile, tmp_path: Path
) -> None:
    text = """
schemaVersion: v1.0.0
name: secret
tasks:
  - name: s
    type: exec
    register: rs
    params: {shell: true, command: "echo s >> @TMP@/count-s; echo {{ secret('GXO_T_PW') }}"}
  - name: p
    type: exec
    register: rp
    params: {shell: true, command: "echo p >> @TMP@/count-p; echo plain"}
"""
    path = playbook_file(text)
    env = {**os.environ, "GXO_T_PW": "hunter22", "GXO_STATE_DIR": str(tmp_path / ".gxo")}
    for _ in range(2):
        result = subprocess.run(
            [*GXO_CMD, "execute", str(path), "--resume"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stderr
    assert (runs(tmp_path, "s"), runs(tmp_path, "p")) == (2, 1)
    (journal,) = (tmp_path / ".gxo" / "journal").glob("playbook-*.jsonl")
    assert "hunter22" not in journal.read_text()


# -- drain ----------------------------------------------------------------------------------

DRAIN = """
schemaVersion: v1.0.0
name: drain
tasks:
  - name: long
    type: exec
    params:
      shell: true
      command: >-
        echo long >> @TMP@/count-long; touch @TMP@/long-started;
        while [ ! -e @TMP@/release ]; do sleep 0.01; done; exit @STATUS@
  - name: after
    type: exec
    depends_on: [long]
    params: {command: touch, args: ["@TMP@/ran-after"]}
"""


@pytest.mark.parametrize("signum", [signal.SIGUSR1, signal.SIGUSR2], ids=["USR1", "USR2"])
def test_drain_lets_running_tasks_finish_and_exits_75(
    start_gxo: StartGxo, gxo: RunGxo, playbook_file: PlaybookFile, tmp_path: Path, signum: int
) -> None:
    path = playbook_file(DRAIN, STATUS=0)
    proc = start_gxo(path, "--report", "run.json")
    wait_for_file(tmp_path / "long-started")
    proc.send_signal(signum)
    wait_for_log(tmp_path, "draining", proc)
    (tmp_path / "release").touch()
    assert proc.wait(timeout=60) == 75
    data = report(tmp_path)
    assert outcome(data, "long") == ("Completed", "")
    assert outcome(data, "after") == ("Cancelled", "drained")
    assert not (tmp_path / "ran-after").exists()
    assert data["exit_code"] == 75
    assert data["overall_status"] == "Cancelled"  # neither Completed nor Failed: work remains
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    (row,) = [line for line in readme.splitlines() if line.startswith("| `playbook_name`")]
    assert "`Cancelled`" in row, "README's report table does not name overall_status Cancelled"
    man = (Path(__file__).resolve().parents[2] / "man" / "gxo-playbook.5").read_text()
    assert "\\fBoverall_status\\fR (Completed, Failed, or Cancelled" in man
    # The next job resumes: long is cached, after runs.
    result = gxo("execute", path, "--resume")
    assert result.returncode == 0, result.stderr
    assert runs(tmp_path, "long") == 1
    assert (tmp_path / "ran-after").exists()


@pytest.mark.parametrize("signum", [signal.SIGUSR1, signal.SIGUSR2], ids=["USR1", "USR2"])
def test_a_drain_signal_to_the_whole_process_group_drains(
    start_gxo: StartGxo, playbook_file: PlaybookFile, tmp_path: Path, signum: int
) -> None:
    """``kill -USR1 -PGID`` (a batch system's warning sent to every process of the job)
    reached the forkserver too, which died of it, and its workers with it: the running task
    failed, and starting a worker for it again ended gxo with an internal error (exit 3)."""
    path = playbook_file(DRAIN, STATUS=0)
    proc = start_gxo(path, "--report", "run.json")
    wait_for_file(tmp_path / "long-started")
    os.killpg(proc.pid, signum)
    wait_for_log(tmp_path, "draining", proc)
    (tmp_path / "release").touch()
    assert proc.wait(timeout=60) == 75, (tmp_path / "gxo.err").read_text()
    data = report(tmp_path)
    assert outcome(data, "long") == ("Completed", "")
    assert outcome(data, "after") == ("Cancelled", "drained")
    assert data["worker_restarts"] == 0


@pytest.mark.parametrize("signum", [signal.SIGUSR1, signal.SIGUSR2], ids=["USR1", "USR2"])
def test_a_drain_signal_before_the_run_starts_drains_it(
    start_gxo: StartGxo, tmp_path: Path, signum: int
) -> None:
    """A SIGUSR1 while gxo still loads the playbook (before the run's handlers) killed it
    (status -SIGUSR1, 138 in a shell: no report, and a job script did not requeue). The
    playbook comes through a named pipe, so gxo is held in its load, and the signal is sent
    then: gxo has opened the pipe (our non-blocking open for writing succeeds only then)."""
    fifo = tmp_path / "playbook.yaml"
    os.mkfifo(fifo)
    proc = start_gxo(fifo, "--report", "run.json")
    deadline = time.monotonic() + 30
    while True:
        try:
            fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
            break
        except OSError:  # ENXIO: gxo has not opened it for reading yet
            assert proc.poll() is None, (tmp_path / "gxo.err").read_text()
            assert time.monotonic() < deadline, "gxo never opened the playbook"
            time.sleep(0.01)
    os.kill(proc.pid, signum)
    os.set_blocking(fd, True)
    os.write(fd, substitute(DRAIN, tmp_path, STATUS=0).encode())
    os.close(fd)
    assert proc.wait(timeout=60) == 75, (tmp_path / "gxo.err").read_text()
    data = report(tmp_path)
    assert outcome(data, "long") == ("Cancelled", "drained")
    assert not (tmp_path / "long-started").exists()


def test_drain_with_nothing_left_exits_0(
    start_gxo: StartGxo, playbook_file: PlaybookFile, tmp_path: Path
) -> None:
    text = DRAIN.split("  - name: after", maxsplit=1)[0]
    proc = start_gxo(playbook_file(text, STATUS=0), "--no-journal", "--report", "run.json")
    wait_for_file(tmp_path / "long-started")
    proc.send_signal(signal.SIGUSR1)
    wait_for_log(tmp_path, "draining", proc)
    (tmp_path / "release").touch()
    assert proc.wait(timeout=60) == 0
    # Nothing was interrupted: the summary and the report said "the run was interrupted".
    data = report(tmp_path)
    assert (data["overall_status"], data["error"]) == ("Completed", "")
    summary = (tmp_path / "gxo.err").read_text().splitlines()[-1]
    assert summary.startswith("playbook 'drain' Completed in ")
    assert summary.endswith(": 1 task, 1 completed, 0 failed, 0 skipped"), summary


def test_drain_when_a_task_fails_on_its_own_exits_1(
    start_gxo: StartGxo, playbook_file: PlaybookFile, tmp_path: Path
) -> None:
    proc = start_gxo(playbook_file(DRAIN, STATUS=4), "--no-journal", "--report", "run.json")
    wait_for_file(tmp_path / "long-started")
    proc.send_signal(signal.SIGUSR1)
    wait_for_log(tmp_path, "draining", proc)
    (tmp_path / "release").touch()
    assert proc.wait(timeout=60) == 1
    # The run failed because `long` did, not because it was interrupted: the error says so.
    data = report(tmp_path)
    assert data["error"] == "1 task(s) failed: long; then drained (SIGUSR1/SIGUSR2)"
    assert data["overall_status"] == "Failed"


def test_sighup_stops_like_sigterm(
    start_gxo: StartGxo, playbook_file: PlaybookFile, tmp_path: Path
) -> None:
    proc = start_gxo(playbook_file(DRAIN, STATUS=0), "--grace", "0.5", "--report", "run.json")
    wait_for_file(tmp_path / "long-started")
    proc.send_signal(signal.SIGHUP)
    assert proc.wait(timeout=60) == 129
    assert outcome(report(tmp_path), "long") == ("Cancelled", "interrupted")


@pytest.mark.parametrize(
    ("signum", "exit_code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)], ids=["TERM", "INT"]
)
def test_a_stop_signal_after_a_drain_still_stops_the_running_tasks(
    start_gxo: StartGxo, playbook_file: PlaybookFile, tmp_path: Path, signum: int, exit_code: int
) -> None:
    """A drain lets running tasks finish; one that never finishes is still stopped by
    SIGTERM or Ctrl-C. Once drained, gxo ignored them (a second one too) and ran on."""
    proc = start_gxo(playbook_file(DRAIN, STATUS=0), "--grace", "0.5", "--report", "run.json")
    wait_for_file(tmp_path / "long-started")
    proc.send_signal(signal.SIGUSR1)
    wait_for_log(tmp_path, "draining", proc)
    proc.send_signal(signum)
    assert proc.wait(timeout=60) == exit_code
    data = report(tmp_path)
    assert outcome(data, "long") == ("Cancelled", "interrupted")
    assert outcome(data, "after") == ("Cancelled", "drained")
    assert (data["exit_code"], data["overall_status"]) == (exit_code, "Failed")
    assert data["error"] == "the run was interrupted"


def test_the_run_timeout_still_applies_after_a_drain(
    start_gxo: StartGxo, playbook_file: PlaybookFile, tmp_path: Path
) -> None:
    """The playbook's ``timeout`` bounds the run, drained or not (exit 1, as without the
    drain): it used to be ignored once the run drained, and gxo waited for ever."""
    text = DRAIN.replace("name: drain\n", "name: drain\ntimeout: 2s\n")
    proc = start_gxo(playbook_file(text, STATUS=0), "--grace", "0.5", "--report", "run.json")
    wait_for_file(tmp_path / "long-started")
    proc.send_signal(signal.SIGUSR1)
    wait_for_log(tmp_path, "draining", proc)
    assert proc.wait(timeout=60) == 1
    data = report(tmp_path)
    assert outcome(data, "long") == ("Cancelled", "run_timed_out")
    assert (data["exit_code"], data["error"]) == (1, "the playbook timeout expired")


# -- deadline -------------------------------------------------------------------------------

DEADLINE = """
schemaVersion: v1.0.0
name: deadline
tasks:
  - {name: heavy, type: exec, params: {shell: true, command: "echo heavy >> @TMP@/count-heavy"}}
  - {name: light, type: exec, params: {shell: true, command: "echo light >> @TMP@/count-light"}}
"""


def test_deadline_does_not_start_what_the_journal_says_would_not_fit(
    gxo: RunGxo, playbook_file: PlaybookFile, tmp_path: Path
) -> None:
    path = playbook_file(DEADLINE)
    assert gxo("execute", path).returncode == 0
    # Make the journal say that heavy took an hour (rather than running for an hour).
    (journal,) = (tmp_path / ".gxo" / "journal").glob("playbook-*.jsonl")
    records = [json.loads(line) for line in journal.read_text().splitlines()]
    for record in records:
        if record.get("task") == "heavy":
            record["duration"] = 3600.0
    journal.write_text("".join(json.dumps(r) + "\n" for r in records))

    result = gxo(
        "execute", path, "--deadline", "10m", "--force", "heavy", "--force", "light",
        "--resume", "--grace", "1", "--report", "run.json",
    )  # fmt: skip
    assert result.returncode == 75, result.stderr
    data = report(tmp_path)
    assert outcome(data, "heavy") == ("Cancelled", "deadline")
    assert outcome(data, "light") == ("Completed", "")
    assert (runs(tmp_path, "heavy"), runs(tmp_path, "light")) == (1, 2)


def test_deadline_reached_drains_and_exits_75(
    gxo: RunGxo, playbook_file: PlaybookFile, tmp_path: Path
) -> None:
    env_deadline = {"GXO_DEADLINE": "1s"}
    result = subprocess.run(
        [*GXO_CMD, "execute", str(playbook_file(DEADLINE)), "--grace", "5", "--report", "run.json"],
        cwd=tmp_path,
        env={**os.environ, **env_deadline, "GXO_STATE_DIR": str(tmp_path / ".gxo")},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 75, result.stderr
    data = report(tmp_path)
    assert outcome(data, "heavy") == ("Cancelled", "deadline")
    assert (runs(tmp_path, "heavy"), runs(tmp_path, "light")) == (0, 0)


def test_a_deadline_already_reached_still_restores_what_the_journal_holds(
    gxo: RunGxo, playbook_file: PlaybookFile, tmp_path: Path
) -> None:
    """The deadline (or a drain) cancelled every instance not started yet, those the journal
    restores included: a resumed job started too late exited 75 for work already done, and
    the job script requeued it for nothing."""
    text = DEADLINE + (
        "  - {name: after, type: exec, depends_on: [light], params: {shell: true,"
        ' command: "echo after >> @TMP@/count-after"}}\n'
    )
    path = playbook_file(text)
    assert gxo("execute", path).returncode == 0
    result = gxo("execute", path, "--resume", "--deadline", "0", "--report", "run.json")
    assert result.returncode == 0, result.stderr
    assert report(tmp_path)["cached_tasks"] == 3
    # What must run is still not started, and the run says work remains.
    result = gxo(
        "execute", path, "--resume", "--deadline", "0", "--force", "light", "--report", "run.json"
    )
    assert result.returncode == 75, result.stderr
    data = report(tmp_path)
    assert outcome(data, "heavy") == ("Completed", "resumed")
    assert outcome(data, "light") == ("Cancelled", "deadline")
    assert outcome(data, "after") == ("Cancelled", "deadline")
    assert [runs(tmp_path, t) for t in ("heavy", "light", "after")] == [1, 1, 1]


def test_bad_deadline_exits_2(gxo: RunGxo, playbook_file: PlaybookFile) -> None:
    result = gxo("execute", playbook_file(DEADLINE), "--deadline", "soon")
    assert result.returncode == 2
    assert "--deadline: 'soon' is not a duration like 30s" in result.stderr


# -- sizing and resources -------------------------------------------------------------------

WIDE = """
schemaVersion: v1.0.0
name: wide
tasks:
  - {name: t1, type: passthrough}
  - {name: t2, type: passthrough}
  - {name: t3, type: passthrough}
  - {name: t4, type: passthrough}
"""


def _run_env(path: Path, tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*GXO_CMD, "execute", str(path), "--no-journal"],
        cwd=tmp_path,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_workers_default_from_slurm_cpus_per_task(
    playbook_file: PlaybookFile, tmp_path: Path
) -> None:
    result = _run_env(playbook_file(WIDE), tmp_path, SLURM_CPUS_PER_TASK="1")
    assert result.returncode == 0, result.stderr
    assert "on 1 worker process (--workers default: SLURM_CPUS_PER_TASK=1)" in result.stderr


def test_workers_default_from_a_cgroup_cpu_quota(
    playbook_file: PlaybookFile, tmp_path: Path
) -> None:
    root = tmp_path / "cgroup"
    for directory in (root, root / "cpu", root / "cpu,cpuacct"):
        directory.mkdir(parents=True, exist_ok=True)
    (root / "cpu.max").write_text("50000 100000\n")
    for directory in (root / "cpu", root / "cpu,cpuacct"):
        (directory / "cpu.cfs_quota_us").write_text("50000\n")
        (directory / "cpu.cfs_period_us").write_text("100000\n")
    result = _run_env(playbook_file(WIDE), tmp_path, GXO_CGROUP_ROOT=str(root))
    assert result.returncode == 0, result.stderr
    assert "on 1 worker process (--workers default: cgroup CPU quota 0.5)" in result.stderr


SLOTS = """
schemaVersion: v1.0.0
name: slots
tasks:
"""


def _overlap(data: dict[str, Any], weights: dict[str, int]) -> int:
    """The largest total weight of attempts running at the same moment."""
    events = []
    for name, weight in weights.items():
        for inst in data["task_results"][name]["instances"]:
            for attempt in inst["attempts"]:
                start = datetime.fromisoformat(attempt["start_time"])
                end = datetime.fromisoformat(attempt["end_time"])
                events += [(end, -weight), (start, weight)]
    events.sort()
    level = peak = 0
    for _, delta in events:
        level += delta
        peak = max(peak, level)
    return peak


def test_resources_cpus_never_run_more_slots_than_workers(
    gxo: RunGxo, playbook_file: PlaybookFile, tmp_path: Path
) -> None:
    weights = {f"big{i}": 2 for i in range(3)} | {f"small{i}": 1 for i in range(4)}
    body = "".join(
        f"  - {{name: {name}, type: python, resources: {{cpus: {w}}}, "
        f"params: {{function: '@FUNCS@/behave.py:timed', kwargs: {{item: 1, seconds: 0.2}}}}}}\n"
        for name, w in weights.items()
    )
    result = gxo("execute", playbook_file(SLOTS + body), "-w", "3", "--report", "run.json")
    assert result.returncode == 0, result.stderr
    data = report(tmp_path)
    assert 2 <= _overlap(data, weights) <= 3


def test_cpus_above_workers_and_oversized_stream_groups_are_refused(
    gxo: RunGxo, playbook_file: PlaybookFile, tmp_path: Path
) -> None:
    body = "  - {name: huge, type: passthrough, resources: {cpus: 4}}\n"
    result = gxo("execute", playbook_file(SLOTS + body), "-w", "3")
    assert result.returncode == 2
    assert "needs 4 worker slots but --workers is 3" in result.stderr
    group = """
  - {name: p, type: generate:from_list, params: {items: [1]}}
  - {name: q, type: passthrough, stream_inputs: [p]}
  - {name: r, type: file:write, stream_inputs: [q], params: {path: "@TMP@/out.jsonl"}}
"""
    path = playbook_file(SLOTS + group, name="group.yaml")
    result = gxo("execute", path, "-w", "2")
    assert result.returncode == 2
    assert "stream group p, q, r runs 3 tasks at once" in result.stderr
    assert "--oversubscribe" in result.stderr
    result = gxo("execute", path, "-w", "2", "--oversubscribe")
    assert result.returncode == 0, result.stderr


def test_consumable_resource(gxo: RunGxo, playbook_file: PlaybookFile, tmp_path: Path) -> None:
    weights = {f"g{i}": 1 for i in range(3)}
    body = "".join(
        f"  - {{name: {name}, type: python, resources: {{gpu: 1}}, "
        f"params: {{function: '@FUNCS@/behave.py:timed', kwargs: {{item: 1, seconds: 0.1}}}}}}\n"
        for name in weights
    )
    path = playbook_file(SLOTS + body)
    result = gxo("execute", path, "-w", "3")
    assert result.returncode == 2
    assert "needs the resource 'gpu', which no --resource declares" in result.stderr
    result = gxo("execute", path, "-w", "3", "--resource", "gpu=1", "--report", "run.json")
    assert result.returncode == 0, result.stderr
    assert _overlap(report(tmp_path), weights) == 1


def test_unwritable_run_directory_warns_unless_the_journal_was_asked_for(
    gxo: RunGxo, playbook_file: PlaybookFile, tmp_path: Path
) -> None:
    path = playbook_file(DEADLINE)
    (tmp_path / "not-a-dir").write_text("a file where the run directory should be")
    result = gxo("execute", path, "--state-dir", tmp_path / "not-a-dir")
    assert result.returncode == 0, result.stderr
    # One warning for the journal and the run directory (DESIGN §15: "warns once").
    assert result.stderr.count("warning: cannot write") == 1, result.stderr
    assert f"cannot write the state directory {tmp_path / 'not-a-dir'} (Not a directory)" in (
        result.stderr
    )
    assert "running without a journal (so --resume cannot reuse this run's work)" in (result.stderr)
    assert "and without output logs; choose another place with --state-dir" in result.stderr
    assert runs(tmp_path, "light") == 1
    result = gxo("execute", path, "--state-dir", tmp_path / "not-a-dir", "--resume")
    assert result.returncode == 2
    assert "cannot write the journal" in result.stderr
    assert runs(tmp_path, "light") == 1  # nothing ran


def test_workers_ignore_sigusr1(
    start_gxo: StartGxo, playbook_file: PlaybookFile, tmp_path: Path
) -> None:
    text = DRAIN.replace("touch @TMP@/long-started", "echo $PPID > @TMP@/long-started")
    proc = start_gxo(playbook_file(text, STATUS=0), "--no-journal", "--report", "run.json")
    wait_for_file(tmp_path / "long-started")
    while not (tmp_path / "long-started").read_text().strip():
        time.sleep(0.01)  # the marker is written in two steps: wait for its content
    worker = int((tmp_path / "long-started").read_text())
    os.kill(worker, signal.SIGUSR1)  # a signal meant for gxo that reached a worker
    (tmp_path / "release").touch()
    assert proc.wait(timeout=60) == 0
    assert outcome(report(tmp_path), "long") == ("Completed", "")
    assert outcome(report(tmp_path), "after") == ("Completed", "")


def test_gxo_journal_names_only_the_part_that_changed(
    gxo: RunGxo, playbook_file: PlaybookFile, tmp_path: Path
) -> None:
    """A task whose params read no state: editing its command changes its definition, not
    "the state it reads" (its params and state digests stand in for the definition's)."""
    text = """
    schemaVersion: v1.0.0
    name: edited
    vars: {v: 1}
    tasks:
      - {name: fixed, type: exec, params: {command: [echo, "@WORD@"]}}
      - {name: reads, type: exec, params: {command: [echo, "{{ v }}"]}}
    """
    path = playbook_file(text, WORD="one")
    assert gxo("execute", path).returncode == 0
    playbook_file(text, WORD="two")
    listing = gxo("journal", path, "--var", "v=2")
    assert listing.returncode == 0, listing.stderr
    lines = {line.split()[1]: line.split(None, 2)[2] for line in listing.stdout.splitlines()[1:]}
    assert lines["fixed"].endswith(": the task's definition in the playbook"), lines
    assert lines["reads"].endswith(
        ": its rendered params, the state it reads (vars, registers, statuses or its loop item)"
    ), lines


@pytest.mark.parametrize(
    ("options", "named"),
    [
        (["--resume"], "--resume"),
        (["--journal", "j.jsonl"], "--journal"),
        (["--resume", "--journal", "j.jsonl"], "--resume and --journal"),
    ],
)
def test_no_journal_names_the_option_it_contradicts(
    gxo: RunGxo, playbook_file: PlaybookFile, tmp_path: Path, options: list[str], named: str
) -> None:
    result = gxo("execute", playbook_file(TARGETS), "--no-journal", *options)
    assert result.returncode == 2
    assert f"--no-journal contradicts {named}\n" in result.stderr
    assert ran(tmp_path) == set()


def test_a_restored_loop_register_is_the_first_runs_so_its_readers_are_reused(
    gxo: RunGxo, playbook_file: PlaybookFile, tmp_path: Path
) -> None:
    """A resumed loop's register held ``reason: resumed`` in each item (the first run's said
    ``""``), so the task reading it had a changed fingerprint and ran again on the first
    ``--resume``; ``gxo journal`` built the list without the items' fields and predicted
    a rerun on every later one."""
    path = playbook_file("""
    schemaVersion: v1.0.0
    name: loops
    tasks:
      - {name: fan, type: exec, loop: [a, b], register: fans, params: {command: [echo, "x"]}}
      - name: use
        type: exec
        params:
          shell: true
          command: >-
            echo use >> @TMP@/count-use;
            echo "reasons:{{ fans | map(attribute='reason') | join('+') }}."
    """)
    assert gxo("execute", path).returncode == 0
    for _ in range(2):
        listing = gxo("journal", path)
        assert listing.returncode == 0, listing.stderr
        assert [line.split()[:2] for line in listing.stdout.splitlines()[1:]] == [
            ["cached", "fan"],
            ["cached", "use"],
        ], listing.stdout
        result = gxo("execute", path, "--resume", "--report", "run.json")
        assert result.returncode == 0, result.stderr
        assert report(tmp_path)["cached_tasks"] == 2
        assert runs(tmp_path, "use") == 1
    result = gxo("execute", path, "--resume", "--force", "use", "-v")
    assert result.returncode == 0, result.stderr
    assert "use | reasons:+." in result.stderr  # the register as the first run gave it


def test_a_partly_restored_loop_says_how_many_items_were_cached(
    gxo: RunGxo, playbook_file: PlaybookFile, tmp_path: Path
) -> None:
    """A resumed loop that ran some of its items said only ``[3 iterations]``: nothing told
    that the others came from the journal (a loop restored whole says ``cached``)."""
    path = playbook_file("""
    schemaVersion: v1.0.0
    name: partly
    tasks:
      - name: fan
        type: exec
        loop: [a, b, c]
        params:
          shell: true
          command: "echo {{ item }} >> @TMP@/count-fan; [ {{ item }} != b ] || [ -e @TMP@/fixed ]"
    """)
    assert gxo("execute", path).returncode == 1
    (tmp_path / "fixed").touch()
    result = gxo("execute", path, "--resume")
    assert result.returncode == 0, result.stderr
    assert runs(tmp_path, "fan") == 4  # a, b, c, then b again
    assert "ok       fan (" in result.stderr
    assert ") [3 iterations, 2 cached]\n" in result.stderr
