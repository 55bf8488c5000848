"""Signals to a real ``gxo`` process: clean interruption, exit codes, no orphans.

Each playbook's long task publishes the pids it involves in a marker file (written to a
temporary name and renamed, so it is complete when it appears): the worker (``$PPID`` of the
shell ``exec`` starts), the shell, and the shell's ``sleep`` child.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest
from itest_support import alive_with_arg, still_alive, unique_sleep_arg, wait_for_file

StartGxo = Callable[..., subprocess.Popen[bytes]]
PlaybookFile = Callable[..., Path]

LONG_TASK = """
schemaVersion: v1.0.0
name: long
tasks:
  - name: long
    type: exec
    params:
      shell: true
      command: >-
        @TRAP@
        sleep @S@ & echo "$PPID $$ $!" > @TMP@/marker.tmp && mv @TMP@/marker.tmp @TMP@/marker;
        wait
  - name: after
    type: exec
    depends_on: [long]
    params: {command: touch, args: ["@TMP@/after-ran"]}
"""


def _start_long_task(
    start_gxo: StartGxo, playbook_file: PlaybookFile, tmp_path: Path, *args: str, trap: str = ""
) -> tuple[subprocess.Popen[bytes], list[int], str]:
    sleep_arg = unique_sleep_arg()
    path = playbook_file(LONG_TASK, TRAP=trap, S=sleep_arg)
    proc = start_gxo(path, "--report", tmp_path / "run.json", *args)
    worker, shell, sleeper = map(int, wait_for_file(tmp_path / "marker").split())
    helpers = [c.pid for c in psutil.Process(proc.pid).children(recursive=True)]
    pids = sorted({worker, shell, sleeper, *helpers})
    assert proc.poll() is None, "gxo ended before it was signalled"
    return proc, pids, sleep_arg


STOP_SIGNALS = pytest.mark.parametrize(
    ("signum", "exit_code"),
    [(signal.SIGINT, 130), (signal.SIGTERM, 143), (signal.SIGHUP, 129)],
    ids=["INT", "TERM", "HUP"],
)


@STOP_SIGNALS
def test_signal_stops_the_run_and_writes_the_report(
    start_gxo: StartGxo,
    playbook_file: PlaybookFile,
    tmp_path: Path,
    signum: signal.Signals,
    exit_code: int,
) -> None:
    proc, pids, sleep_arg = _start_long_task(start_gxo, playbook_file, tmp_path, "--grace", "0.5")

    signalled = time.monotonic()
    os.kill(proc.pid, signum)
    assert proc.wait(timeout=20) == exit_code
    assert time.monotonic() - signalled < 5.0

    report = json.loads((tmp_path / "run.json").read_text())
    assert report["exit_code"] == exit_code
    assert report["overall_status"] == "Failed"
    long = report["task_results"]["long"]
    assert (long["status"], long["reason"]) == ("Cancelled", "interrupted")
    after = report["task_results"]["after"]
    assert (after["status"], after["reason"]) == ("Cancelled", "interrupted")
    assert not (tmp_path / "after-ran").exists()
    assert still_alive(pids) == []
    assert alive_with_arg(sleep_arg) == []


@STOP_SIGNALS
def test_signal_to_the_process_group(
    start_gxo: StartGxo,
    playbook_file: PlaybookFile,
    tmp_path: Path,
    signum: signal.Signals,
    exit_code: int,
) -> None:
    """Ctrl-C on a terminal, a batch system's SIGTERM, or the SIGHUP of a closed terminal,
    reaches gxo's whole process group (multiprocessing's helper processes too), not only gxo.
    The helpers survive it (no worker looks dead, the resource tracker is not relaunched)."""
    proc, pids, sleep_arg = _start_long_task(start_gxo, playbook_file, tmp_path, "--grace", "0.5")

    os.killpg(proc.pid, signum)
    assert proc.wait(timeout=20) == exit_code

    report = json.loads((tmp_path / "run.json").read_text())
    assert report["task_results"]["long"]["reason"] == "interrupted"
    assert report["worker_restarts"] == 0
    assert "relaunching" not in (tmp_path / "gxo.err").read_text()
    assert still_alive(pids) == []
    assert alive_with_arg(sleep_arg) == []


def test_second_interrupt_skips_the_grace_period(
    start_gxo: StartGxo, playbook_file: PlaybookFile, tmp_path: Path
) -> None:
    proc, pids, sleep_arg = _start_long_task(
        start_gxo, playbook_file, tmp_path, "--grace", "30", trap="trap '' TERM;"
    )

    os.kill(proc.pid, signal.SIGINT)
    # The command ignores SIGTERM: gxo gives it the 30 s grace period...
    with pytest.raises(subprocess.TimeoutExpired):
        proc.wait(timeout=1.0)
    assert alive_with_arg(sleep_arg), "the TERM-ignoring command was killed at once"
    # ...unless interrupted again, which kills it at once.
    again = time.monotonic()
    os.kill(proc.pid, signal.SIGINT)
    assert proc.wait(timeout=20) == 130
    assert time.monotonic() - again < 5.0

    report = json.loads((tmp_path / "run.json").read_text())
    assert report["task_results"]["long"]["status"] == "Cancelled"
    assert still_alive(pids) == []
    assert alive_with_arg(sleep_arg) == []


@pytest.mark.parametrize("isolation", ["pooled", "process"])
@pytest.mark.parametrize("kind", ["exec", "python", "daemon"])
def test_sigkilled_gxo_leaves_no_orphans(
    start_gxo: StartGxo, playbook_file: PlaybookFile, tmp_path: Path, kind: str, isolation: str
) -> None:
    sleep_arg = unique_sleep_arg()
    if kind == "exec":
        text = LONG_TASK.replace(
            "    type: exec\n    params:\n      shell",
            (f"    type: exec\n    isolation: {isolation}\n    params:\n      shell"),
        )
        assert f"isolation: {isolation}" in text
        path = playbook_file(text, TRAP="", S=sleep_arg)
    else:
        # daemon: a double-forked, setsid grandchild, out of the worker's session and group,
        # re-parented to init when the worker dies: the worker's guard must still kill it.
        path = playbook_file(
            """
            schemaVersion: v1.0.0
            name: long-python
            tasks:
              - name: long
                type: python
                isolation: @ISO@
                params:
                  function: "@FUNCS@/behave.py:@FN@"
                  kwargs: {marker: "@TMP@/marker", sleep_arg: "@S@"}
            """,
            S=sleep_arg,
            ISO=isolation,
            FN="with_child" if kind == "python" else "with_daemon",
        )
    proc = start_gxo(path, "--workers", "2")
    task_pids = [int(pid) for pid in wait_for_file(tmp_path / "marker").split()]
    helpers = [c.pid for c in psutil.Process(proc.pid).children(recursive=True)]
    pids = sorted({*task_pids, *helpers})

    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait(timeout=10) == -signal.SIGKILL

    assert still_alive(pids, timeout=10) == []
    assert alive_with_arg(sleep_arg) == []


def test_forkserver_outlives_a_stray_sigterm(
    start_gxo: StartGxo, playbook_file: PlaybookFile, tmp_path: Path
) -> None:
    """A job-wide SIGTERM also reaches multiprocessing's forkserver; if it died, every worker
    would look dead (exit status 255) and running tasks would fail instead of being stopped."""
    proc, pids, sleep_arg = _start_long_task(start_gxo, playbook_file, tmp_path, "--grace", "0.5")
    worker = int(wait_for_file(tmp_path / "marker").split()[0])
    server = psutil.Process(worker).parent()  # the forkserver: the workers' parent, gxo's child
    assert server is not None
    assert server.ppid() == proc.pid

    server.send_signal(signal.SIGTERM)
    with pytest.raises(psutil.TimeoutExpired):
        server.wait(timeout=1.0)
    assert proc.poll() is None, "the run ended: its task was lost with the forkserver"

    os.kill(proc.pid, signal.SIGINT)
    assert proc.wait(timeout=20) == 130
    report = json.loads((tmp_path / "run.json").read_text())
    assert report["task_results"]["long"]["reason"] == "interrupted"
    assert report["worker_restarts"] == 0
    assert still_alive(pids) == []
    assert alive_with_arg(sleep_arg) == []


@pytest.mark.parametrize(
    ("signum", "says", "never"),
    [
        (signal.SIGINT, "(interrupted)", ""),
        (signal.SIGTERM, "(asked to terminate)", "Ctrl-C"),
        (signal.SIGHUP, "(the terminal or connection was closed)", "Ctrl-C"),
    ],
    ids=["INT", "TERM", "HUP"],
)
def test_each_signal_is_announced_in_words_true_for_it(
    start_gxo: StartGxo,
    playbook_file: PlaybookFile,
    tmp_path: Path,
    signum: signal.Signals,
    says: str,
    never: str,
) -> None:
    """A batch job has no Ctrl-C to press: only SIGINT's message mentions it."""
    proc, pids, sleep_arg = _start_long_task(start_gxo, playbook_file, tmp_path, "--grace", "7")

    os.kill(proc.pid, signum)
    proc.wait(timeout=30)

    (line,) = [x for x in (tmp_path / "gxo.err").read_text().splitlines() if "received" in x]
    assert line.startswith(f"warning: received {signum.name} {says}: stopping: ")
    assert "running tasks get SIGTERM, then SIGKILL after 7s" in line
    if never:
        assert never not in line
    else:
        assert line.endswith("press Ctrl-C again to kill them at once")
    assert still_alive(pids) == []
    assert alive_with_arg(sleep_arg) == []


def test_a_closed_terminal_still_gives_the_report_and_exit_129(
    playbook_file: PlaybookFile, tmp_path: Path
) -> None:
    """gxo on a terminal (live progress display) when the terminal goes away: its writes fail
    with EIO from then on, and SIGHUP arrives. The run still stops cleanly with its report."""
    import pty

    sleep_arg = unique_sleep_arg()
    path = playbook_file(LONG_TASK, TRAP="", S=sleep_arg)
    controller, terminal = pty.openpty()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gxo", str(path), "--report", str(tmp_path / "run.json")],
            cwd=tmp_path,
            stdin=terminal,
            stdout=terminal,
            stderr=terminal,
            start_new_session=True,
        )
    finally:
        os.close(terminal)
    try:
        worker, shell, sleeper = map(int, wait_for_file(tmp_path / "marker").split())
        os.close(controller)  # the terminal window closes
        controller = -1
        os.kill(proc.pid, signal.SIGHUP)
        assert proc.wait(timeout=20) == 129
    finally:
        if controller >= 0:
            os.close(controller)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)

    report = json.loads((tmp_path / "run.json").read_text())
    assert report["exit_code"] == 129
    assert report["task_results"]["long"]["reason"] == "interrupted"
    assert still_alive([worker, shell, sleeper]) == []
    assert alive_with_arg(sleep_arg) == []


WAITING_TASKS = """
schemaVersion: v1.0.0
name: waiting
tasks:
  - name: flaky
    type: exec
    retry: {attempts: 2, delay: 1h}
    params: {command: sh, args: ["-c", "echo flaky failed >&2; exit 4"]}
  - name: items
    type: exec
    loop: [0, 1, 2]
    params: {shell: true, command: "touch @TMP@/item-{{ item }}; exec sleep @S@"}
"""


def test_an_interrupt_says_why_each_task_that_was_not_running_did_not_run(
    start_gxo: StartGxo, playbook_file: PlaybookFile, tmp_path: Path
) -> None:
    """Tasks waiting for their turn or for a retry are Cancelled with words, not an empty
    error; one waiting to be retried keeps its last failure, shown nowhere else."""
    sleep_arg = unique_sleep_arg()
    path = playbook_file(WAITING_TASKS, S=sleep_arg)
    proc = start_gxo(path, "-w", "2", "--grace", "0.5", "--report", tmp_path / "run.json")
    wait_for_file(tmp_path / "item-0")
    log = tmp_path / "gxo.err"
    deadline = time.monotonic() + 30
    while "retry flaky" not in log.read_text():
        assert proc.poll() is None, log.read_text()
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.01)

    os.kill(proc.pid, signal.SIGINT)
    assert proc.wait(timeout=20) == 130

    tasks = json.loads((tmp_path / "run.json").read_text())["task_results"]
    flaky = tasks["flaky"]
    assert (flaky["status"], flaky["reason"]) == ("Cancelled", "interrupted")
    assert flaky["error"] == (
        "not retried: the run was interrupted "
        "(attempt 1 failed: nonzero_exit(4): command exited with status 4: flaky failed)"
    )
    errors = [(i["label"], i["reason"], i["error"]) for i in tasks["items"]["instances"]]
    assert errors[1:] == [
        ("items[1]", "interrupted", "not started: the run was interrupted"),
        ("items[2]", "interrupted", "not started: the run was interrupted"),
    ]
    # The loop task says which iteration, and how far it got, as a failed loop does.
    error = tasks["items"]["error"]
    assert error.startswith("items[0]: stopped because the run was interrupted"), error
    assert error.endswith(" (0 of 3 iterations completed)"), error
    assert f"cancelled flaky: interrupted: {flaky['error']}" in log.read_text()
    assert not (tmp_path / "item-1").exists()
    assert alive_with_arg(sleep_arg) == []


@pytest.mark.parametrize("isolation", ["pooled", "process"])
def test_a_daemon_of_a_worker_that_died_does_not_outlive_the_run(
    start_gxo: StartGxo, playbook_file: PlaybookFile, tmp_path: Path, isolation: str
) -> None:
    """A task daemonises a grandchild (double fork, setsid) and then its worker is SIGKILLed
    (as the OOM killer does): the task fails, the run goes on, and once the worker is dead
    nothing finds the daemon by its session or its parent any more; the guard that watched
    the worker's tree kills it."""
    sleep_arg = unique_sleep_arg()
    path = playbook_file(
        """
        schemaVersion: v1.0.0
        name: daemon-then-die
        tasks:
          - name: dies
            type: python
            isolation: @ISO@
            params:
              function: "@FUNCS@/behave.py:with_daemon"
              kwargs: {marker: "@TMP@/marker", sleep_arg: "@S@", die: true}
          - name: after
            type: exec
            params: {command: "true"}
        """,
        S=sleep_arg,
        ISO=isolation,
    )
    proc = start_gxo(path, "--workers", "1", "--report", "run.json")
    daemon = int(wait_for_file(tmp_path / "marker").split()[1])
    assert proc.wait(timeout=20) == 1
    report = json.loads((tmp_path / "run.json").read_text())
    assert report["task_results"]["dies"]["reason"] == "worker_signaled(SIGKILL)"
    assert report["task_results"]["after"]["status"] == "Completed"
    assert still_alive([daemon]) == []
    assert alive_with_arg(sleep_arg) == []


@pytest.mark.parametrize("signum", [signal.SIGHUP, signal.SIGINT], ids=["HUP", "INT"])
def test_a_signal_ignored_when_gxo_starts_stays_ignored(
    playbook_file: PlaybookFile, tmp_path: Path, signum: signal.Signals
) -> None:
    """``nohup gxo execute ...`` (SIGHUP ignored) must outlive the terminal, and a script's
    background job (SIGINT ignored by the shell) a Ctrl-C meant for the foreground: as make
    does, a stop signal ignored on entry stays ignored. The run completes, exit 0."""
    path = playbook_file(
        """
schemaVersion: v1.0.0
name: ignored
tasks:
  - name: wait
    type: exec
    params:
      shell: true
      command: touch @TMP@/started; while [ ! -e @TMP@/go ]; do sleep 0.01; done
"""
    )
    with open(tmp_path / "gxo.err", "wb") as err:
        # As nohup (or the shell) does: the signal ignored, then gxo exec'd in its place.
        ignore_then_run = f'trap "" {signum.name[3:]}; exec "$@"'
        command = ["sh", "-c", ignore_then_run, "sh", sys.executable, "-m", "gxo", "execute"]
        proc = subprocess.Popen(
            [*command, str(path), "--report", "run.json"],
            cwd=tmp_path,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=err,
            start_new_session=True,
        )
    try:
        wait_for_file(tmp_path / "started")
        os.kill(proc.pid, signum)  # discarded at once: the process ignores it
        (tmp_path / "go").touch()
        assert proc.wait(timeout=30) == 0, (tmp_path / "gxo.err").read_text()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    report = json.loads((tmp_path / "run.json").read_text())
    assert report["task_results"]["wait"]["status"] == "Completed"
