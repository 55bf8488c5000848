"""exec's read loop (gxo.modules.capture.pump): its outcome, and the leftovers check that lets
it skip the full search only when nothing is left."""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import psutil
import pytest

from gxo.modules import ModuleContext, convert_params
from gxo.modules import capture as capture_module
from gxo.modules.builtin.exec import ExecModule
from gxo.modules.capture import CaptureSettings, CommandOutcome, StreamCapture, pump
from gxo.outputs import TAIL_BYTES

PY = sys.executable
_PR_SET_CHILD_SUBREAPER = 36
_PR_GET_CHILD_SUBREAPER = 37


def unique_sleep_arg() -> str:
    """A ``sleep`` argument no other process uses, to find the sleeps a test started."""
    return f"{2000 + os.getpid() % 1000}.{time.time_ns() % 10**9:09d}"


def survivors(arg: str) -> list[int]:
    """Live processes with ``arg`` on their command line (killed ones may still be exiting)."""
    procs = [p for p in psutil.process_iter(["cmdline"]) if arg in (p.info["cmdline"] or [])]
    _, alive = psutil.wait_procs(procs, timeout=5)
    return [p.pid for p in alive if p.status() != psutil.STATUS_ZOMBIE]


@pytest.fixture(autouse=True)
def _close_children_files() -> Iterator[None]:
    """A worker keeps its threads' children files (and its task directory) open for its
    life; a test closes them."""
    yield
    capture_module._close_proc_files()


def _children_now() -> frozenset[int]:
    """This process's children before the test: not the test's, so spared."""
    return frozenset(p.pid for p in psutil.Process().children())


def _popen(argv: list[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        process_group=0,
    )


def _pump(argv: list[str]) -> tuple[CommandOutcome, StreamCapture, StreamCapture]:
    """Run ``argv`` through :func:`pump`, both streams captured; the outcome and captures."""
    proc = _popen(argv)
    assert proc.stdout is not None
    assert proc.stderr is not None
    out, err = StreamCapture("stdout"), StreamCapture("stderr")
    try:
        outcome = pump(proc, {proc.stdout.fileno(): out, proc.stderr.fileno(): err})
    finally:
        proc.stdout.close()
        proc.stderr.close()
    return outcome, out, err


def test_a_silent_command_is_collected_without_a_read_and_nothing_is_left() -> None:
    outcome, out, err = _pump(["true"])
    assert (outcome.exit_code, outcome.leftovers_killed, outcome.limit_exceeded) == (0, 0, False)
    assert (out.total, err.total) == (0, 0)


def test_output_written_just_before_the_exit_is_all_read() -> None:
    argv = [PY, "-c", "import sys; sys.stdout.write('x' * 200000); sys.stderr.write('e')"]
    outcome, out, err = _pump(argv)
    assert (outcome.exit_code, out.total, err.text()) == (0, 200000, "e")


def test_command_running_is_true_only_while_collecting() -> None:
    seen: list[bool] = []
    proc = _popen([PY, "-c", "print('a')"])
    assert proc.stdout is not None
    assert proc.stderr is not None
    try:
        pump(
            proc,
            {
                proc.stdout.fileno(): StreamCapture("stdout"),
                proc.stderr.fileno(): StreamCapture("stderr"),
            },
            on_stdout=lambda data: seen.append(capture_module.command_running()),
            stdout_fd=proc.stdout.fileno(),
        )
    finally:
        proc.stdout.close()
        proc.stderr.close()
    assert seen
    assert all(seen)
    assert not capture_module.command_running()


def test_nothing_left_sees_a_child_of_this_thread_and_ignores_spare_ones() -> None:
    before = _children_now()
    gone = _popen(["true"])
    gone.communicate()  # its group is gone, and it is reaped
    assert capture_module._nothing_left(gone.pid, True, before)
    child = subprocess.Popen(
        [PY, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE, process_group=0
    )
    try:
        assert not capture_module._nothing_left(gone.pid, True, before)
        assert capture_module._nothing_left(gone.pid, True, before | {child.pid})
        assert capture_module._nothing_left(gone.pid, False, before)  # not a worker: not searched
        assert not capture_module._nothing_left(child.pid, False, before)  # its group is alive
    finally:
        assert child.stdin is not None
        child.stdin.close()
        child.wait()


def test_nothing_left_sees_a_child_of_another_thread() -> None:
    before = _children_now()
    gone = _popen(["true"])
    gone.communicate()
    started = threading.Event()
    release = threading.Event()
    holder: list[subprocess.Popen[bytes]] = []

    def other_thread() -> None:
        holder.append(
            subprocess.Popen([PY, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
        )
        started.set()
        release.wait()
        assert holder[0].stdin is not None
        holder[0].stdin.close()
        holder[0].wait()

    thread = threading.Thread(target=other_thread)
    thread.start()
    try:
        started.wait()
        assert not capture_module._nothing_left(gone.pid, True, before)
    finally:
        release.set()
        thread.join()
    assert capture_module._nothing_left(gone.pid, True, before)  # the thread's file is dropped


def test_a_forked_child_forgets_its_parents_children_files() -> None:
    capture_module._children_of(str(threading.get_native_id()))
    assert capture_module._children_files
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the forked child
        os.close(read_fd)
        os.write(write_fd, b"%d" % len(capture_module._children_files))
        os._exit(0)
    os.close(write_fd)
    try:
        assert os.read(read_fd, 16) == b"0"
    finally:
        os.close(read_fd)
        os.waitpid(pid, 0)


def test_exec_in_a_worker_kills_a_leftover_that_left_the_process_group() -> None:
    # setsid: the leftover is in neither the command's group nor its session; it is found as
    # a child of this process (re-parented to it: a worker is the subreaper below it).
    arg = unique_sleep_arg()
    before = _children_now()
    libc = ctypes.CDLL(None)
    was = ctypes.c_int()
    libc.prctl(_PR_GET_CHILD_SUBREAPER, ctypes.byref(was), 0, 0, 0)
    libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)  # as a worker is
    try:
        ctx = ModuleContext(
            task_name="t",
            instance_id=1,
            capture=CaptureSettings(owns_descendants=True, spare=before),
        )
        raw: dict[str, Any] = {"command": f"setsid sleep {arg} & echo hi", "shell": True}
        summary = ExecModule().run(convert_params(ExecModule, raw), ctx)
    finally:
        libc.prctl(_PR_SET_CHILD_SUBREAPER, was.value, 0, 0, 0)
    assert (summary["stdout"], summary["leftovers_killed"]) == ("hi\n", 1)
    assert survivors(arg) == []


def test_the_summary_says_truncated_only_past_the_tail() -> None:
    def run(size: int) -> dict[str, Any]:
        raw = {"command": [PY, "-c", f"import sys; sys.stdout.write('x' * {size})"]}
        ctx = ModuleContext(task_name="t", instance_id=1)
        summary: dict[str, Any] = ExecModule().run(convert_params(ExecModule, raw), ctx)
        return summary

    whole = run(TAIL_BYTES)
    assert len(whole["stdout"]) == TAIL_BYTES
    assert "stdout_truncated" not in whole
    assert "stdout_bytes" not in whole
    cut = run(TAIL_BYTES + 1)
    assert (cut["stdout_bytes"], cut["stdout_truncated"]) == (TAIL_BYTES + 1, True)
    assert len(cut["stdout"]) == TAIL_BYTES


@pytest.mark.parametrize("pidfd", [True, False], ids=["pidfd", "old-kernel"])
@pytest.mark.parametrize("before", ["", "sleep 0.1; "], ids=["at-once", "after-the-watch"])
def test_a_leftover_holding_the_pipes_does_not_hold_the_command(
    pidfd: bool, before: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The command's exit is watched only after a few milliseconds (a pidfd, or
    ``proc.poll`` on a kernel without pidfds): a command that exits at once, or later, while
    a process it left keeps its pipes open still ends after the drain, its leftover killed."""

    def no_pidfd(pid: int, flags: int = 0) -> int:
        raise OSError(38, "Function not implemented")

    arg = unique_sleep_arg()
    with monkeypatch.context() as patch:  # psutil (below) uses pidfds too
        if not pidfd:
            patch.setattr(capture_module.os, "pidfd_open", no_pidfd)
        outcome, out, err = _pump(["sh", "-c", f"{before}sleep {arg} & echo started; exit 3"])
    assert (outcome.exit_code, outcome.leftovers_killed, outcome.limit_exceeded) == (3, 1, False)
    assert (out.text(), err.text()) == ("started\n", "")
    assert survivors(arg) == []
