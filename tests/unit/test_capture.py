"""Output capture and its caps, piece by piece: the stream capture, the read loop, sizes, rates."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from gxo.config.size import format_size, parse_size
from gxo.modules import ModuleContext, ModuleError, convert_params
from gxo.modules import capture as capture_module
from gxo.modules.builtin.exec import ExecModule
from gxo.modules.capture import CaptureSettings, StreamCapture, pump, record_command
from gxo.outputs import TAIL_BYTES, TAIL_TEXT_BYTES, attempt_log, read_tail, tail_lines
from gxo.pool.capture import (
    TEXT_LIMIT,
    cap_text,
    command_from_files,
    outputs_from_files,
    too_large,
)
from gxo.pool.relay import RateLimit
from gxo.secrets.redact import REDACTED, Redactor
from gxo.wire import Done, Run

PY = sys.executable
_count = itertools.count()


def unique_sleep_arg() -> str:
    """A ``sleep`` argument no other process uses, to find the sleeps a test started."""
    return f"{1000 + os.getpid() % 1000}.{time.time_ns() % 10**9:09d}{next(_count)}"


def survivors(arg: str) -> list[int]:
    """Live processes with ``arg`` on their command line (killed ones may still be exiting)."""
    procs = [p for p in psutil.process_iter(["cmdline"]) if arg in (p.info["cmdline"] or [])]
    _, alive = psutil.wait_procs(procs, timeout=5)
    return [p.pid for p in alive if p.status() != psutil.STATUS_ZOMBIE]


def settings(tmp_path: Path, **kw: Any) -> CaptureSettings:
    return CaptureSettings(log_prefix=str(tmp_path / "task" / "attempt1"), **kw)


def test_stream_is_written_whole_and_only_its_tail_is_kept(tmp_path: Path) -> None:
    capture = StreamCapture("stdout", settings(tmp_path))
    chunks = [f"line {i}\n".encode() for i in range(50_000)]
    for chunk in chunks:
        capture.feed(chunk)
    whole = b"".join(chunks)
    assert len(capture.tail()) <= TAIL_BYTES
    assert capture.tail().startswith(b"line ")  # cut at a line start
    assert whole.endswith(capture.tail())
    out = capture.close()
    assert (out.bytes, out.kept, out.truncated) == (len(whole), len(whole), False)
    assert out.tail == [f"line {i}" for i in range(49_980, 50_000)]
    assert Path(out.path).read_bytes() == whole
    assert out.path == str(tmp_path / "task" / "attempt1.stdout")


def test_a_stream_that_prints_nothing_has_no_file(tmp_path: Path) -> None:
    out = StreamCapture("stderr", settings(tmp_path)).close()
    assert (out.bytes, out.path, out.tail) == (0, "", [])
    assert not (tmp_path / "task").exists()


def test_capture_cap_cuts_the_file_with_a_note_and_keeps_counting(tmp_path: Path) -> None:
    capture = StreamCapture("stdout", settings(tmp_path, capture_limit=10))
    capture.feed(b"0123456789abc")
    capture.feed(b"def\n")
    out = capture.close()
    assert (out.bytes, out.kept, out.truncated) == (17, 10, True)
    assert out.tail == ["0123456789abcdef"]  # memory still has the end
    assert Path(out.path).read_bytes() == (
        b"0123456789\n[gxo: output_capture limit of 10 bytes reached: "
        b"the last 7 of 17 bytes were not kept]\n"
    )


def test_secret_split_across_chunks_is_redacted_in_the_file(tmp_path: Path) -> None:
    secret = "s3cr3t-value-here"
    redactor = Redactor([secret])
    capture = StreamCapture("stdout", settings(tmp_path, redactor=redactor))
    data = f"before {secret} middle {secret}".encode()
    for i in range(len(data)):  # one byte at a time: every cut
        capture.feed(data[i : i + 1])
    out = capture.close()
    text = Path(out.path).read_text()
    assert secret not in text
    assert text == f"before {REDACTED} middle {REDACTED}"


def test_unwritable_log_is_reported_once_and_the_stream_still_captured(tmp_path: Path) -> None:
    (tmp_path / "task").write_text("a file where the task's directory should be")
    errors: list[str] = []
    capture = StreamCapture("stdout", settings(tmp_path, on_log_error=errors.append))
    capture.feed(b"one\n")
    capture.feed(b"two\n")
    out = capture.close()
    assert len(errors) == 1
    assert "cannot write" in errors[0]
    assert (out.path, out.bytes, out.tail) == ("", 8, ["one", "two"])


def _popen(script: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        ["/bin/sh", "-c", script],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        process_group=0,
    )


def test_pump_stops_at_the_childs_exit_and_kills_its_leftovers() -> None:
    arg = unique_sleep_arg()
    proc = _popen(f"sleep {arg} & echo started; echo err >&2")
    assert proc.stdout is not None
    assert proc.stderr is not None
    out, err = StreamCapture("stdout"), StreamCapture("stderr")
    outcome = pump(proc, {proc.stdout.fileno(): out, proc.stderr.fileno(): err})
    proc.stdout.close()
    proc.stderr.close()
    assert (outcome.exit_code, outcome.leftovers_killed, outcome.limit_exceeded) == (0, 1, False)
    assert (out.text(), err.text()) == ("started\n", "err\n")
    assert survivors(arg) == []


def test_pump_kills_a_command_past_the_output_limit() -> None:
    proc = _popen("yes")
    assert proc.stdout is not None
    assert proc.stderr is not None
    out = StreamCapture("stdout")
    outcome = pump(
        proc,
        {proc.stdout.fileno(): out, proc.stderr.fileno(): StreamCapture("stderr")},
        output_limit=100_000,
    )
    proc.stdout.close()
    proc.stderr.close()
    assert outcome.limit_exceeded
    assert outcome.exit_code == -9
    assert out.total > 100_000


def run_exec(raw: dict[str, Any], capture: CaptureSettings | None = None) -> dict[str, Any]:
    ctx = ModuleContext(task_name="t", instance_id=1, capture=capture)
    result: dict[str, Any] = ExecModule().run(convert_params(ExecModule, raw), ctx)
    return result


def test_exec_output_limit_fails_with_limit_exceeded(tmp_path: Path) -> None:
    with pytest.raises(ModuleError) as info:
        run_exec({"command": "yes"}, settings(tmp_path, output_limit=1 << 20))
    assert info.value.reason == "limit_exceeded(output)"
    assert info.value.summary["stdout_truncated"] is True


def test_exec_reports_leftovers_in_its_summary() -> None:
    arg = unique_sleep_arg()
    summary = run_exec({"command": f"sleep {arg} & echo hi", "shell": True})
    assert (summary["stdout"], summary["leftovers_killed"]) == ("hi\n", 1)
    assert "leftovers_killed" not in run_exec({"command": "true"})


def test_exec_gives_dev_null_as_stdin_unless_told_otherwise() -> None:
    assert run_exec({"command": "cat"})["stdout"] == ""
    assert run_exec({"command": "cat", "stdin": "fed"})["stdout"] == "fed"


def test_exec_summary_of_a_short_output_is_unchanged() -> None:
    assert run_exec({"command": [PY, "-c", "print('x')"]}) == {
        "stdout": "x\n",
        "stderr": "",
        "exit_code": 0,
        "command": [PY, "-c", "print('x')"],
        "cwd": os.getcwd(),
    }


def test_read_tail_starts_at_a_whole_line(tmp_path: Path) -> None:
    path = tmp_path / "log"
    path.write_bytes(b"x" * 100 + b"\nkept 1\nkept 2\n")
    size, data = read_tail(str(path), limit=20)
    assert (size, data) == (115, b"kept 1\nkept 2\n")
    assert read_tail(str(tmp_path / "missing")) == (0, b"")
    assert tail_lines(b"a\nb\nc\n", 2) == ["b", "c"]


def test_outputs_of_a_killed_worker_are_read_from_its_files(tmp_path: Path) -> None:
    run = Run(
        instance_id=1,
        task_index=0,
        task_name="t",
        module="exec",
        params={},
        namespace={},
        attempt=2,
        loop_index=3,
    )
    prefix = attempt_log(str(tmp_path), "t", 3, 2)
    assert prefix == str(tmp_path / "t" / "item3.attempt2")
    Path(prefix).parent.mkdir()
    Path(prefix + ".stdout").write_text("".join(f"{i}\n" for i in range(30)))
    [out] = outputs_from_files(str(tmp_path), run)
    assert (out.name, out.bytes, out.tail) == ("stdout", 80, [str(i) for i in range(10, 30)])
    assert outputs_from_files("", run) == []


@pytest.mark.parametrize("kept_open", [False, True])
def test_a_killed_attempts_command_comes_from_its_workers_file(
    tmp_path: Path, kept_open: bool
) -> None:
    """One file per worker, overwritten by each command: it names the attempt of the last
    command; a shorter record after a longer one still reads back; no file per attempt."""

    def run(task: str) -> Run:
        return Run(
            instance_id=1, task_index=0, task_name=task, module="exec", params={}, namespace={}
        )

    def record(task: str, argv: list[str]) -> None:
        settings = CaptureSettings(
            log_prefix=attempt_log(str(tmp_path), task, None, 1),
            command_file=str(tmp_path / "worker42.command"),
            redactor=Redactor({"s3cret"}),
            owns_descendants=kept_open,
        )
        record_command(settings, argv, "/somewhere")

    try:
        record("long", ["echo", "a much longer command line", "s3cret"])
        assert command_from_files(str(tmp_path), run("long"), 42) == (
            ["echo", "a much longer command line", REDACTED],
            "/somewhere",
        )
        record("short", ["true"])
        assert command_from_files(str(tmp_path), run("short"), 42) == (["true"], "/somewhere")
        # The earlier attempt's command is no longer this worker's: not claimed for it.
        assert command_from_files(str(tmp_path), run("long"), 42) == (None, None)
        assert command_from_files(str(tmp_path), run("short"), 43) == (None, None)
        assert sorted(p.name for p in tmp_path.iterdir()) == ["worker42.command"]
        # A record longer than a page, then a short one written over it (padded).
        long_argv = ["echo", "x" * 6000]
        record("huge", long_argv)
        assert command_from_files(str(tmp_path), run("huge"), 42) == (long_argv, "/somewhere")
        record("after", ["true", "again"])
        assert command_from_files(str(tmp_path), run("after"), 42) == (
            ["true", "again"],
            "/somewhere",
        )
    finally:  # a worker keeps its file open until it exits; this test process closes it
        for fd, _ in capture_module._command_fds.values():
            os.close(fd)
        capture_module._command_fds.clear()


def test_too_large_result_keeps_the_bookkeeping_and_drops_the_summary() -> None:
    done = Done(instance_id=7, ok=True, summary={"x": "y" * 100}, duration=1.5, started_at=3.0)
    replaced = too_large(done, 5000, 1000)
    assert (replaced.ok, replaced.reason, replaced.summary) == (False, "result_too_large", None)
    assert (replaced.instance_id, replaced.duration, replaced.started_at) == (7, 1.5, 3.0)
    assert "5000 bytes encoded, over the limit of 1000 bytes" in replaced.error


def test_long_error_text_keeps_its_start_and_end() -> None:
    text = "start" + "x" * (2 * TEXT_LIMIT) + "end"
    capped = cap_text(text)
    assert capped.startswith("start")
    assert capped.endswith("end")
    assert len(capped) < TEXT_LIMIT + 100
    assert f"[... {len(text) - TEXT_LIMIT} characters left out ...]" in capped
    assert cap_text("short") == "short"


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("0", 0),
        ("1024", 1024),
        ("1KiB", 1024),
        ("1kb", 1000),
        ("10M", 10 << 20),
        ("1.5GiB", 3 << 29),
        ("2 MB", 2_000_000),
        ("7b", 7),
    ],
)
def test_sizes(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("bad", ["", "1x", "-1", "MiB", "1 GiBs", "1e6"])
def test_bad_sizes(bad: str) -> None:
    with pytest.raises(ValueError, match="size"):
        parse_size(bad)


def test_format_size() -> None:
    assert [format_size(n) for n in (1 << 30, 3 << 20, 1000, 0)] == ["1GiB", "3MiB", "1000B", "0B"]


def test_rate_limit_is_a_token_bucket() -> None:
    now = [0.0]
    limit = RateLimit(10, clock=lambda: now[0])
    assert sum(limit.allow() for _ in range(25)) == 10  # the burst
    assert limit.take_dropped() == 15
    now[0] = 0.5
    assert sum(limit.allow() for _ in range(25)) == 5  # refilled at 10 a second
    assert limit.take_dropped() == 20
    assert all(RateLimit(0).allow() for _ in range(1000))


def test_a_record_over_the_limit_is_refused_by_name() -> None:
    from gxo.streams.channel import StreamWriter, make_pipe
    from gxo.streams.errors import RecordTooLarge

    read_fd, write_fd = make_pipe()
    writer = StreamWriter(write_fd, "p", "c")
    writer.record_limit = 1000
    try:
        writer.write({"small": 1})
        writer.write({"big": "x" * 5000})
        with pytest.raises(RecordTooLarge, match=r"record 1 written to the stream to 'c' is 50"):
            writer.flush()
        with pytest.raises(RecordTooLarge):
            writer.end()  # the producer cannot end as if nothing happened
    finally:
        writer.close()
        os.close(read_fd)


def test_a_batch_over_the_limit_of_small_records_is_fine() -> None:
    from gxo.streams.channel import StreamReader, StreamWriter, make_pipe

    read_fd, write_fd = make_pipe()
    writer = StreamWriter(write_fd, "p", "c")
    writer.record_limit = 1000
    reader = StreamReader(read_fd, "p", "c")
    try:
        writer.write_many([{"i": n, "pad": "y" * 90} for n in range(60)])  # 6 KB, one batch
        writer.end()
        records = [r for batch in reader.read_once() for r in batch]
        assert len(records) == 60
    finally:
        writer.close()
        reader.close()


def test_in_process_attempts_leave_the_callers_other_children_alone(tmp_path: Path) -> None:
    # A worker owns every process below it and kills a command's leftovers among them; an
    # attempt run in the caller's process (the inline executor) must not treat the caller's
    # other children as leftovers.
    from gxo.pool.worker import in_process

    bystander = subprocess.Popen([PY, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    try:
        run = Run(
            instance_id=1,
            task_index=0,
            task_name="t",
            module="exec",
            params={"command": ["sh", "-c", "sleep 30 & echo started"]},
            namespace={},
        )
        done = in_process()(run)
        assert done.ok, done.error
        assert done.leftovers_killed == 1  # the backgrounded sleep, in the command's group
        assert bystander.poll() is None
    finally:
        assert bystander.stdin is not None
        bystander.stdin.close()
        bystander.wait()


def test_tail_lines_are_bounded_in_bytes_too() -> None:
    """One line of megabytes keeps only its end (marked), not the whole 64 KiB tail: the
    parent holds every attempt's display tail until the report is written."""
    assert tail_lines(b"x" * 100_000, limit=10) == ["[...]" + "x" * 10]
    assert tail_lines(b"a" * 50 + b"\nend\n", limit=10) == ["[...]" + "a" * 5, "end"]
    # Cut exactly at a line end: nothing is marked.
    assert tail_lines(b"aaaa\nbbbbbbbb\n", limit=9) == ["bbbbbbbb"]
    # The cut line is older than the last ``count`` lines: not shown, nothing marked.
    assert tail_lines(b"z" * 40 + b"\n1\n2\n", 2, limit=6) == ["1", "2"]
    # A multi-byte character split by the cut does not show as a replacement character.
    assert tail_lines("é".encode() * 10, limit=5) == ["[...]éé"]
    assert sum(len(line) for line in tail_lines(b"y" * (1 << 20))) <= TAIL_TEXT_BYTES + 5
