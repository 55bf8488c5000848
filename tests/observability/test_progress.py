"""Progress: plain lines from a real non-terminal run, and the rich display rendered in-process."""

from __future__ import annotations

import io
import logging
import os
import re
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from obs_support import GXO, child_env
from rich.console import Console

from gxo.cli.observers import ObservabilityOptions, Observers
from gxo.events import (
    EventBus,
    InstanceFinished,
    InstanceStarted,
    RunFinished,
    RunStarted,
    TaskStatusChanged,
    WorkersBusy,
    WorkerSlots,
)
from gxo.observability.progress import LiveProgress, PlainProgress, ProgressState


def wait_for(predicate: Callable[[], object], what: str, timeout: float = 30.0) -> object:
    """Poll ``predicate`` until it is true (a condition, not a fixed sleep)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def test_plain_progress_lines_in_a_real_run(
    tmp_path: Path, write_playbook: Callable, started_procs: list
) -> None:
    go = tmp_path / "go"
    playbook = write_playbook(
        f"""\
        schemaVersion: v1.0.0
        name: progress_demo
        tasks:
          - name: quick
            type: exec
            params: {{command: "true"}}
          - name: waits
            type: exec
            depends_on: [quick]
            params:
              shell: true
              command: "while [ ! -e '{go}' ]; do sleep 0.02; done"
          - name: last
            type: exec
            depends_on: [waits]
            params: {{command: "true"}}
        """
    )
    err = tmp_path / "gxo.err"
    with open(err, "wb") as errf:
        proc = subprocess.Popen(
            [*GXO, str(playbook), "--progress-interval", "0.05"],
            cwd=tmp_path,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=errf,
            start_new_session=True,
            env=child_env(),
        )
    started_procs.append(proc)
    line = wait_for(
        lambda: re.search(
            r"^progress: 1/3 tasks done, 1 running \(waits\), \d+s$", err.read_text(), re.M
        ),
        "a progress line while 'waits' runs",
    )
    assert line
    assert proc.poll() is None
    go.touch()
    assert proc.wait(timeout=60) == 0, err.read_text()
    text = err.read_text()
    assert "\x1b[" not in text  # not a terminal: no escape codes
    assert text.rstrip().splitlines()[-1].startswith("playbook 'progress_demo' Completed")


def test_quiet_and_no_progress_show_none() -> None:
    for opts in (ObservabilityOptions(progress=False), ObservabilityOptions()):
        observers = Observers(opts)
        bus = EventBus()
        observers.start(bus)
        assert observers.progress is None
        assert not bus.active  # nothing subscribed
        assert observers.registry is None
        observers.finish(None)


def _events() -> list:
    common = {"run_id": "r1", "time": 0.0}
    return [
        RunStarted(playbook="demo", tasks=4, workers=2, **common),
        TaskStatusChanged(task="build", status="Running", **common),
        InstanceStarted(task="build", instance_id=0, label="build", attempt=1, **common),
        InstanceFinished(
            task="build", instance_id=0, label="build", attempt=1, status="Completed", **common
        ),
        TaskStatusChanged(task="build", status="Completed", **common),
        TaskStatusChanged(task="test", status="Running", **common),
        InstanceStarted(task="test", instance_id=1, label="test[0]", attempt=1, **common),
        InstanceStarted(task="test", instance_id=2, label="test[1]", attempt=1, **common),
        TaskStatusChanged(task="lint", status="Failed", reason="nonzero_exit(1)", **common),
    ]


def test_rich_display_renders_counts_and_running_instances() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=100, color_system="standard")
    live = LiveProgress(console=console)
    for event in _events():
        live(event)
    console.print(live.render())
    text = re.sub(r"\x1b\[[0-9;]*m", "", out.getvalue())
    assert "demo 2/4 tasks done" in text
    assert "1 ok" in text
    assert "2 running" in text
    assert "1 failed" in text
    assert "test[0]" in text
    assert "test[1]" in text
    assert "build" not in text.split("\n", 1)[1]  # finished: not among the running rows
    assert "\x1b[" in out.getvalue()  # a terminal: styled


def test_rich_display_keeps_log_lines_above_it() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=100)
    logger = logging.getLogger("gxo")
    import sys

    handler = logging.StreamHandler(sys.stderr)
    logger.addHandler(handler)
    try:
        live = LiveProgress(console=console, refresh_per_second=20)
        live.start()
        for event in _events():
            live(event)
        logger.warning("a line logged while the display is shown")
        live(RunFinished(run_id="r1", time=0.0, status="Completed", exit_code=0, duration=1.0))
        live.close()
    finally:
        logger.removeHandler(handler)
    assert handler.stream is sys.stderr  # given back
    assert "a line logged while the display is shown" in out.getvalue()


def test_plain_progress_line_text() -> None:
    state = ProgressState()
    for event in _events():
        state.apply(event)
    assert re.fullmatch(
        r"2/4 tasks done, 2 running \(test\[0\], test\[1\]\), 1 failed, \d+s", state.line()
    )


def test_plain_progress_stops_with_close() -> None:
    records: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record.getMessage())

    logger = logging.getLogger("gxo.test.progress")
    logger.addHandler(Keep())
    logger.propagate = False
    logger.setLevel(logging.INFO)
    progress = PlainProgress(interval=0.01, logger=logger)
    for event in _events():
        progress(event)
    wait_for(lambda: records, "a progress line")
    progress.close()
    assert progress._thread is None
    assert records[0].startswith("progress: 2/4 tasks done")


def _busy() -> WorkersBusy:
    return WorkersBusy(
        run_id="r1",
        time=0.0,
        workers=(
            WorkerSlots(address="tcp://10.0.0.7:40123", host="n7", slots=4, busy=1),
            WorkerSlots(address="tcp://10.0.0.8:40991", host="n8", slots=4, busy=3),
        ),
    )


def test_plain_progress_line_shows_each_workers_occupancy_busiest_first() -> None:
    state = ProgressState()
    for event in [*_events(), _busy()]:
        state.apply(event)
    assert re.fullmatch(
        r"2/4 tasks done, 2 running \(test\[0\], test\[1\]\), 1 failed, "
        r"slots 4/8 busy \(10\.0\.0\.8:40991 3/4, 10\.0\.0\.7:40123 1/4\), \d+s",
        state.line(),
    )


def test_rich_display_shows_a_row_per_worker_with_its_busy_slots() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=100, color_system="standard")
    live = LiveProgress(console=console)
    for event in [*_events(), _busy()]:
        live(event)
    console.print(live.render())
    text = re.sub(r"\x1b\[[0-9;]*m", "", out.getvalue())
    rows = [" ".join(line.split()) for line in text.splitlines()]
    assert "10.0.0.8:40991 ###. 3/4" in rows
    assert "10.0.0.7:40123 #... 1/4" in rows
    assert rows.index("10.0.0.8:40991 ###. 3/4") < rows.index("10.0.0.7:40123 #... 1/4")
    assert "test[0]" in text  # the running instances are still shown


def test_rich_display_keeps_the_elapsed_time_of_a_long_label_on_a_narrow_terminal() -> None:
    """A task name wider than the terminal is cut with an ellipsis; every row still shows its
    elapsed time (rich squeezed the time column out of sight instead)."""
    common = {"run_id": "r1", "time": 0.0}
    long = "a-very-long-task-name-that-goes-on-and-on-and-on-forever-and-ever"
    for width in (50, 80):
        out = io.StringIO()
        console = Console(file=out, force_terminal=False, width=width)
        live = LiveProgress(console=console)
        for event in [
            RunStarted(playbook="demo", tasks=2, workers=2, **common),
            InstanceStarted(task=long, instance_id=0, label=long, attempt=1, **common),
            InstanceStarted(task="b", instance_id=1, label="b", attempt=1, **common),
        ]:
            live(event)
        console.print(live.render())
        rows = out.getvalue().splitlines()[1:]
        assert len(rows) == 2, out.getvalue()
        assert all(re.search(r"\d+\.\ds$", row.rstrip()) for row in rows), out.getvalue()
        assert all(len(row.rstrip()) <= width for row in rows)
        assert rows[0].lstrip().startswith("a-very-long-task-name")
        assert "…" in rows[0]


def _on_a_terminal(
    argv: list[str], cwd: Path, started_procs: list, **env: str
) -> tuple[subprocess.Popen[bytes], int]:
    """Start ``argv`` on a new 100x30 terminal; return it and the terminal's controller."""
    import fcntl
    import pty
    import struct
    import termios

    controller, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
    try:
        proc = subprocess.Popen(
            argv,
            cwd=cwd,
            stdin=terminal,
            stdout=terminal,
            stderr=terminal,
            start_new_session=True,
            env=child_env(TERM="xterm-256color", **env),
        )
    finally:
        os.close(terminal)
    started_procs.append(proc)
    return proc, controller


def _read_terminal(
    controller: int, proc: subprocess.Popen[bytes], pattern: str, seen: bytearray
) -> str:
    """Read what gxo writes to its terminal into ``seen`` until the text (escape codes
    removed) matches ``pattern`` or the terminal closes; return that text."""
    import select

    deadline = time.monotonic() + 60
    while True:
        text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", seen.decode(errors="replace"))
        if re.search(pattern, text, re.S):
            return text
        assert time.monotonic() < deadline, f"no {pattern!r} on the terminal: {text!r}"
        ready, _, _ = select.select([controller], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # EIO: the terminal's last process closed it
                chunk = b""
            if not chunk:
                return text
            seen += chunk


def test_live_display_under_a_task_line_shows_that_task_done(
    tmp_path: Path, write_playbook: Callable, started_procs: list
) -> None:
    """On a terminal, the display drawn again under each task line counts that task: it once
    showed the counts of its last refresh (a quarter of a second old), so the first task lines
    were followed by "gxo: starting the workers" and the last one by "1 running"."""
    go = tmp_path / "go"
    playbook = write_playbook(
        f"""\
        schemaVersion: v1.0.0
        name: lag
        tasks:
          - name: first
            type: exec
            params: {{command: "true"}}
          - name: second
            type: exec
            depends_on: [first]
            params:
              shell: true
              command: "while [ ! -e '{go}' ]; do sleep 0.02; done"
        """
    )
    proc, controller = _on_a_terminal([*GXO, str(playbook)], tmp_path, started_procs)
    seen = bytearray()
    try:
        # The display is drawn again in the same write as the line above it.
        text = _read_terminal(controller, proc, r"ok       first \(.*\n.*running", seen)
        after_first = text.split("ok       first (", 1)[1].split("\n", 1)[1]
        assert after_first.startswith("lag 1/2 tasks done  1 ok  1 running"), text
        go.touch()
        text = _read_terminal(controller, proc, r"playbook 'lag' Completed", seen)
    finally:
        os.close(controller)
    assert proc.wait(timeout=60) == 0, text
    after_second = text.split("ok       second (", 1)[1].split("\n", 1)[1]
    assert after_second.startswith("lag 2/2 tasks done  2 ok  0 running"), text


def test_color_never_and_no_color_leave_the_live_display_uncoloured(
    tmp_path: Path, write_playbook: Callable, started_procs: list
) -> None:
    """``--color never`` (and ``NO_COLOR``) once left the task lines plain but the display
    under them green and cyan; ``--color always`` colours it even with ``NO_COLOR`` set."""
    go = tmp_path / "go"
    playbook = write_playbook(
        f"""\
        schemaVersion: v1.0.0
        name: plain
        tasks:
          - name: first
            type: exec
            params: {{command: "true"}}
          - name: second
            type: exec
            depends_on: [first]
            params:
              shell: true
              command: "while [ ! -e '{go}' ]; do sleep 0.02; done"
        """
    )
    sgr = re.compile(rb"\x1b\[[0-9;]*m")
    for args, env, coloured in (
        (["--color", "never"], {}, False),
        ([], {"NO_COLOR": "1"}, False),
        (["--color", "always"], {"NO_COLOR": "1"}, True),
    ):
        go.unlink(missing_ok=True)
        proc, controller = _on_a_terminal(
            [*GXO, str(playbook), *args], tmp_path, started_procs, **env
        )
        seen = bytearray()
        try:
            _read_terminal(controller, proc, r"ok\s+first \(.*\n.*1 running", seen)
            go.touch()
            text = _read_terminal(controller, proc, r"playbook 'plain' Completed", seen)
        finally:
            os.close(controller)
        assert proc.wait(timeout=60) == 0, text
        assert bool(sgr.search(bytes(seen))) is coloured, (args, env, bytes(seen))


def test_progress_counts_the_iterations_of_a_running_loop(
    tmp_path: Path, write_playbook: Callable, started_procs: list
) -> None:
    """A loop of many items is one task: the counts said "0/1 tasks done, 1 running" for the
    whole loop. The progress line and the live display say how many iterations ended."""
    go = tmp_path / "go"
    playbook = write_playbook(
        f"""\
        schemaVersion: v1.0.0
        name: loops
        tasks:
          - name: many
            type: exec
            loop: [0, 1, 2, 3]
            params:
              shell: true
              command: "[ {{{{ item }}}} -lt 3 ] || while [ ! -e '{go}' ]; do sleep 0.02; done"
        """
    )
    err = tmp_path / "gxo.err"
    with open(err, "wb") as errf:
        proc = subprocess.Popen(
            [*GXO, str(playbook), "--progress-interval", "0.05"],
            cwd=tmp_path,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=errf,
            start_new_session=True,
            env=child_env(),
        )
    started_procs.append(proc)
    wait_for(
        lambda: re.search(
            r"^progress: 0/1 tasks done, 1 running \(many\[3\]\), many: 3/4 iterations, \d+s$",
            err.read_text(),
            re.M,
        ),
        "a progress line counting the loop's iterations",
    )
    go.touch()
    assert proc.wait(timeout=60) == 0, err.read_text()

    go.unlink()
    proc, controller = _on_a_terminal([*GXO, str(playbook)], tmp_path, started_procs)
    seen = bytearray()
    try:
        text = _read_terminal(controller, proc, r"many: 3/4 iterations\s+many\[3\]", seen)
        go.touch()
        text = _read_terminal(controller, proc, r"playbook 'loops' Completed", seen)
    finally:
        os.close(controller)
    assert proc.wait(timeout=60) == 0, text


def test_progress_line_counts_cancelled_tasks(
    tmp_path: Path, write_playbook: Callable, started_procs: list
) -> None:
    """Cancelled tasks were counted as done and nowhere else: after a --fail-fast failure the
    line read "2/3 tasks done, 1 running (waits), 1 failed" with one task unaccounted for."""
    go = tmp_path / "go"
    playbook = write_playbook(
        f"""\
        schemaVersion: v1.0.0
        name: cancels
        tasks:
          - name: waits
            type: exec
            params:
              shell: true
              command: "while [ ! -e '{go}' ]; do sleep 0.02; done"
          - name: breaks
            type: exec
            params: {{command: "false"}}
          - name: later
            type: exec
            depends_on: [waits]
            params: {{command: "true"}}
        """
    )
    err = tmp_path / "gxo.err"
    with open(err, "wb") as errf:
        proc = subprocess.Popen(
            [*GXO, str(playbook), "-w", "2", "--fail-fast", "--progress-interval", "0.05"],
            cwd=tmp_path,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=errf,
            start_new_session=True,
            env=child_env(),
        )
    started_procs.append(proc)
    wait_for(
        lambda: re.search(
            r"^progress: 2/3 tasks done, 1 running \(waits\), 1 failed, 1 cancelled, \d+s$",
            err.read_text(),
            re.M,
        ),
        "a progress line counting the cancelled task",
    )
    go.touch()
    assert proc.wait(timeout=60) == 1, err.read_text()
