"""Captured output and the caps on what a task produces, through the real ``gxo`` command.

Every attempt's stdout and stderr go whole to the run directory, the parent and the worker
keep only tails, and no cap (``output_capture``, ``limits.output``, ``--result-limit``,
``--log-rate``) can crash or grow the engine. Each test ends with the autouse no-leftover check.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import psutil
from itest_support import substitute, survivors, unique_sleep_arg

GXO = [sys.executable, "-m", "gxo"]


class Run:
    """A finished ``gxo execute``: exit code, output, JSON report, state directory."""

    def __init__(self, proc: subprocess.CompletedProcess[str], report: Path, state: Path):
        self.code = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr
        self.report: dict[str, Any] = json.loads(report.read_text()) if report.exists() else {}
        self.state = state

    def task(self, name: str) -> dict[str, Any]:
        result: dict[str, Any] = self.report["task_results"][name]
        return result

    def attempt(self, name: str, instance: int = 0, number: int = 1) -> dict[str, Any]:
        attempt: dict[str, Any] = self.task(name)["instances"][instance]["attempts"][number - 1]
        return attempt

    def output(self, name: str, stream: str, **where: int) -> dict[str, Any]:
        outputs = {o["name"]: o for o in self.attempt(name, **where)["outputs"]}
        return outputs[stream]

    @property
    def run_dir(self) -> Path:
        return self.state / "runs" / self.report["run_id"]


def gxo(
    tmp_path: Path,
    playbook: str,
    *args: str,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    **subs: object,
) -> Run:
    path = tmp_path / "playbook.yaml"
    path.write_text(substitute(textwrap.dedent(playbook).lstrip(), tmp_path, **subs))
    report = tmp_path / "report.json"
    state = tmp_path / "state"
    proc = subprocess.run(
        [*GXO, "execute", str(path), "--report", str(report), "--grace", "0.5", *args],
        cwd=cwd or tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "GXO_STATE_DIR": str(state), **(env or {})},
    )
    return Run(proc, report, state)


def test_output_goes_whole_to_the_run_directory_and_tails_to_the_report(tmp_path: Path) -> None:
    run = gxo(
        tmp_path,
        """
        schemaVersion: v1.0.0
        name: capture
        tasks:
          - name: talk
            type: exec
            register: r
            params:
              command: "seq 1 100000; echo oops >&2"
              shell: true
          - name: sizes
            type: exec
            params: {command: "echo {{ r.stdout_bytes }} {{ r.stdout_truncated }} {{ r.stderr }}",
                     shell: true}
        """,
    )
    assert run.code == 0, run.stderr
    stdout = run.output("talk", "stdout")
    expected = "".join(f"{i}\n" for i in range(1, 100001)).encode()
    assert stdout["bytes"] == stdout["kept"] == len(expected)
    assert stdout["truncated"] is False
    assert stdout["tail"] == [str(i) for i in range(99981, 100001)]
    log = Path(stdout["path"])
    assert log == run.run_dir / "talk" / "attempt1.stdout"
    assert log.read_bytes() == expected  # whole, although memory kept only 64 KiB
    stderr = run.output("talk", "stderr")
    assert (stderr["bytes"], stderr["tail"]) == (5, ["oops"])
    assert Path(stderr["path"]).read_text() == "oops\n"
    # The register holds the last 64 KiB and says how much there was.
    assert run.output("sizes", "stdout")["tail"] == [f"{len(expected)} True oops"]


def test_run_directory_defaults_to_dot_gxo_in_the_current_directory(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "GXO_STATE_DIR"}
    path = tmp_path / "p.yaml"
    path.write_text(
        "schemaVersion: v1.0.0\nname: d\ntasks:\n"
        "  - {name: hello, type: exec, params: {command: echo, args: [hi]}}\n"
    )
    report = tmp_path / "r.json"
    subprocess.run(
        [*GXO, "execute", str(path), "--report", str(report)],
        cwd=tmp_path,
        env=env,
        check=True,
        capture_output=True,
        timeout=60,
    )
    run_id = json.loads(report.read_text())["run_id"]
    assert (tmp_path / ".gxo" / "runs" / run_id / "hello" / "attempt1.stdout").read_text() == "hi\n"


def test_state_dir_flag_wins_over_the_environment(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    run = gxo(
        tmp_path,
        """
        schemaVersion: v1.0.0
        name: d
        tasks:
          - {name: hello, type: exec, params: {command: echo, args: [hi]}}
        """,
        "--state-dir",
        str(elsewhere),
    )
    assert run.code == 0, run.stderr
    path = Path(run.output("hello", "stdout")["path"])
    assert path == elsewhere / "runs" / run.report["run_id"] / "hello" / "attempt1.stdout"
    assert not run.state.exists()


def test_unwritable_run_directory_warns_once_and_runs_without_logs(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the state directory should be")
    run = gxo(
        tmp_path,
        """
        schemaVersion: v1.0.0
        name: nolog
        tasks:
          - name: hello
            type: exec
            loop: [1, 2, 3]
            params: {command: echo, args: ["hi {{ item }}"]}
        """,
        "--state-dir",
        str(blocker),
    )
    assert run.code == 0, run.stderr
    assert run.stderr.count("cannot write the") == 1, run.stderr  # the journal's, for both
    assert "cannot write the state directory" in run.stderr
    assert "without output logs" in run.stderr
    out = run.output("hello", "stdout", instance=2)
    assert (out["path"], out["tail"]) == ("", ["hi 3"])


def test_loop_items_and_retries_get_their_own_log_files(tmp_path: Path) -> None:
    run = gxo(
        tmp_path,
        """
        schemaVersion: v1.0.0
        name: files
        tasks:
          - name: each
            type: exec
            loop: [a, b]
            params: {command: echo, args: ["{{ item }}"]}
          - name: flaky
            type: exec
            retry: {attempts: 2, delay: 0s}
            params:
              command: "echo try; test -e @TMP@/once || { touch @TMP@/once; exit 1; }"
              shell: true
        """,
    )
    assert run.code == 0, run.stderr
    assert (run.run_dir / "each" / "item0.attempt1.stdout").read_text() == "a\n"
    assert (run.run_dir / "each" / "item1.attempt1.stdout").read_text() == "b\n"
    assert (run.run_dir / "flaky" / "attempt1.stdout").read_text() == "try\n"
    assert (run.run_dir / "flaky" / "attempt2.stdout").read_text() == "try\n"
    assert run.output("flaky", "stdout", number=1)["path"].endswith("flaky/attempt1.stdout")


def test_output_capture_cuts_the_file_and_still_drains_the_command(tmp_path: Path) -> None:
    playbook = """
        schemaVersion: v1.0.0
        name: capped
        output_capture: 1MiB
        tasks:
          - name: flood
            type: exec
            params:
              command: "head -c 5000000 /dev/zero | tr '\\\\0' x; echo; echo end"
              shell: true
        """
    run = gxo(tmp_path, playbook)
    assert run.code == 0, run.stderr
    out = run.output("flood", "stdout")
    assert (out["bytes"], out["kept"], out["truncated"]) == (5000005, 1 << 20, True)
    assert out["tail"][-1] == "end"  # the whole output was read: its end is in memory
    text = Path(out["path"]).read_bytes()
    assert text.startswith(b"x" * (1 << 20) + b"\n[gxo: output_capture limit of 1048576 bytes")
    assert b"the last 3951429 of 5000005 bytes were not kept" in text
    # The flag overrides the playbook.
    run = gxo(tmp_path, playbook, "--output-capture", "100KiB")
    assert run.output("flood", "stdout")["kept"] == 100 * 1024


def test_flood_is_capped_and_the_parent_stays_small(tmp_path: Path) -> None:
    path = tmp_path / "flood.yaml"
    path.write_text(
        textwrap.dedent(
            """
            schemaVersion: v1.0.0
            name: flood
            tasks:
              - name: out
                type: exec
                params: {command: "head -c 200000000 /dev/zero", shell: true}
              - name: err
                type: exec
                params: {command: "head -c 200000000 /dev/zero >&2", shell: true}
            """
        )
    )
    report = tmp_path / "r.json"
    proc = subprocess.Popen(
        [*GXO, "execute", str(path), "--report", str(report), "--output-capture", "8MiB"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "GXO_STATE_DIR": str(tmp_path / "state")},
    )
    parent = psutil.Process(proc.pid)
    peak = 0
    while True:
        try:
            proc.wait(timeout=0.05)  # sample the parent's RSS until it exits
            break
        except subprocess.TimeoutExpired:
            try:
                peak = max(peak, parent.memory_info().rss)
            except psutil.NoSuchProcess:
                break
    proc.wait()
    assert proc.returncode == 0
    assert peak < 200 * 1024 * 1024, f"parent RSS peaked at {peak / 2**20:.0f} MiB"
    data = json.loads(report.read_text())
    for task, stream in (("out", "stdout"), ("err", "stderr")):
        attempt = data["task_results"][task]["instances"][0]["attempts"][0]
        out = {o["name"]: o for o in attempt["outputs"]}[stream]
        assert (out["bytes"], out["kept"], out["truncated"]) == (200_000_000, 8 << 20, True)
        assert attempt["max_rss_kib"] < 100 * 1024  # the worker kept tails only


def test_limits_output_fails_the_task_and_nothing_else(tmp_path: Path) -> None:
    run = gxo(
        tmp_path,
        """
        schemaVersion: v1.0.0
        name: limited
        limits: {output: 10M}
        tasks:
          - name: endless
            type: exec
            limits: {output: 1MiB}
            params: {command: "yes"}
          - name: fine
            type: exec
            params: {command: [head, -c, "2000000", /dev/zero]}
        """,
    )
    assert run.code == 1
    endless = run.task("endless")
    assert (endless["status"], endless["reason"]) == ("Failed", "limit_exceeded(output)")
    assert "limits.output (1048576 bytes)" in endless["error"]
    assert run.output("endless", "stdout")["bytes"] > 1 << 20
    assert run.task("fine")["status"] == "Completed"  # 2 MB is under the playbook's 10M


def test_timed_out_command_keeps_what_it_printed(tmp_path: Path) -> None:
    run = gxo(
        tmp_path,
        """
        schemaVersion: v1.0.0
        name: slow
        tasks:
          - name: polite
            type: exec
            timeout: 1s
            params: {command: "echo started; echo warming up >&2; sleep @S@", shell: true}
          - name: stubborn
            type: exec
            timeout: 1s
            params: {command: "trap '' TERM; echo stubborn; sleep @S@ & wait", shell: true}
        """,
        S=unique_sleep_arg(),
    )
    assert run.code == 1
    for name, line in (("polite", "started"), ("stubborn", "stubborn")):
        task = run.task(name)
        assert (task["status"], task["reason"]) == ("Failed", "timed_out")
        assert run.output(name, "stdout")["tail"] == [line]
        attempt = run.attempt(name)
        # The shell and its sleep (a shell may exec the last command: then the sleep alone);
        # gxo's own guard process, stopped with the worker, is not counted.
        killed = attempt["processes_killed"]
        assert killed == 2 if name == "stubborn" else killed in (1, 2)
        assert f"{killed} process(es) it started were killed" in attempt["error"]
    # (the shell may add "Terminated" when its sleep dies of the SIGTERM first)
    assert run.output("polite", "stderr")["tail"][0] == "warming up"


def test_background_process_holding_stdout_does_not_hold_the_task(tmp_path: Path) -> None:
    sleep_arg = unique_sleep_arg()
    started = time.monotonic()
    run = gxo(
        tmp_path,
        """
        schemaVersion: v1.0.0
        name: leftover
        tasks:
          - name: bg
            type: exec
            register: r
            timeout: 60s
            params: {command: "sleep @S@ & sleep @S@ & echo started", shell: true}
          - name: count
            type: exec
            params: {command: "echo {{ r.leftovers_killed }}", shell: true}
        """,
        S=sleep_arg,
    )
    assert time.monotonic() - started < 30
    assert run.code == 0, run.stderr
    assert run.output("bg", "stdout")["tail"] == ["started"]
    assert run.attempt("bg")["processes_killed"] == 2
    assert run.output("count", "stdout")["tail"] == ["2"]
    assert survivors(sleep_arg) == []


def test_stream_producer_ends_when_its_command_does(tmp_path: Path) -> None:
    sleep_arg = unique_sleep_arg()
    started = time.monotonic()
    run = gxo(
        tmp_path,
        """
        schemaVersion: v1.0.0
        name: stream
        tasks:
          - name: produce
            type: exec
            timeout: 60s
            params:
              command: "sleep @S@ & printf 'a\\\\nb\\\\n'"
              shell: true
              stdout_records: true
          - name: consume
            type: exec
            stream_inputs: [produce]
            timeout: 60s
            params: {command: cat, stdin_records: true}
        """,
        S=sleep_arg,
    )
    assert time.monotonic() - started < 30
    assert run.code == 0, run.stderr
    assert run.output("consume", "stdout")["tail"] == ['{"line":"a"}', '{"line":"b"}']
    assert survivors(sleep_arg) == []


def test_commands_read_dev_null_as_stdin(tmp_path: Path) -> None:
    run = gxo(
        tmp_path,
        """
        schemaVersion: v1.0.0
        name: stdin
        tasks:
          - {name: cat, type: exec, timeout: 30s, params: {command: cat}}
          - name: readlink
            type: exec
            params: {command: readlink, args: [/proc/self/fd/0]}
        """,
    )
    assert run.code == 0, run.stderr
    assert run.output("cat", "stdout")["bytes"] == 0
    assert run.output("readlink", "stdout")["tail"] == ["/dev/null"]


def test_result_over_the_limit_fails_the_task_not_the_engine(tmp_path: Path) -> None:
    run = gxo(
        tmp_path,
        """
        schemaVersion: v1.0.0
        name: big
        tasks:
          - name: huge
            type: python
            params: {function: "@FUNCS@/outputs.py:big_result", kwargs: {size: 3000000}}
          - name: small
            type: python
            params: {function: "@FUNCS@/outputs.py:small_result"}
        """,
        "--result-limit",
        "1MiB",
    )
    assert run.code == 1
    huge = run.task("huge")
    assert (huge["status"], huge["reason"]) == ("Failed", "result_too_large")
    assert "over the limit of 1048576 bytes" in huge["error"]
    assert run.task("small")["status"] == "Completed"


def test_worker_killed_from_outside_names_its_pid_and_the_oom_killer(tmp_path: Path) -> None:
    run = gxo(
        tmp_path,
        """
        schemaVersion: v1.0.0
        name: killed
        tasks:
          - name: victim
            type: python
            params: {function: "@FUNCS@/outputs.py:kill_own_worker"}
        """,
    )
    assert run.code == 1
    victim = run.task("victim")
    assert victim["reason"] == "worker_signaled(SIGKILL)"
    pid = run.attempt("victim")["worker_pid"]
    assert f"(pid {pid}) was killed by SIGKILL" in victim["error"]
    assert "OOM killer" in victim["error"]


def test_module_logs_are_relayed_at_a_bounded_rate(tmp_path: Path) -> None:
    run = gxo(
        tmp_path,
        """
        schemaVersion: v1.0.0
        name: chatty
        tasks:
          - name: talk
            type: python
            params: {function: "@FUNCS@/outputs.py:log_lines", kwargs: {count: 50000}}
        """,
        "--log-rate",
        "100",
    )
    assert run.code == 0, run.stderr[-2000:]
    relayed = run.stderr.count("log line ")
    assert 100 <= relayed < 5000
    assert "log record(s) of this task were dropped: more than 100 a second" in run.stderr
    dropped = int(run.stderr.split(" log record(s) of this task were dropped")[0].split()[-1])
    assert relayed + dropped >= 50000 - 1000  # every line is either shown or counted


def test_secrets_are_redacted_in_the_log_files(tmp_path: Path) -> None:
    secret = "hunter2-very-secret-value"
    run = gxo(
        tmp_path,
        """
        schemaVersion: v1.0.0
        name: secret
        tasks:
          - name: leak
            type: exec
            params:
              command: "seq 1 20000; echo token=$T; echo $T >&2"
              shell: true
              env: {T: "{{ secret('GXO_TEST_TOKEN') }}"}
        """,
        env={"GXO_TEST_TOKEN": secret},
    )
    assert run.code == 0, run.stderr
    for stream in ("stdout", "stderr"):
        out = run.output("leak", stream)
        text = Path(out["path"]).read_text()
        assert secret not in text
        assert "[REDACTED_SECRET]" in text
        assert secret not in json.dumps(out)
    assert secret not in json.dumps(run.report)


def test_an_invalid_frame_from_a_worker_fails_its_task_not_the_engine(tmp_path: Path) -> None:
    run = gxo(
        tmp_path,
        """
        schemaVersion: v1.0.0
        name: garbage
        tasks:
          - name: liar
            type: python
            timeout: 60s
            params: {function: "@FUNCS@/outputs.py:send_bad_frame"}
          - name: honest
            type: python
            params: {function: "@FUNCS@/outputs.py:small_result"}
        """,
    )
    assert run.code == 1, run.stderr
    liar = run.task("liar")
    assert (liar["status"], liar["reason"]) == ("Failed", "worker_protocol_error")
    assert "exceeds the limit" in liar["error"]
    assert run.task("honest")["status"] == "Completed"


def test_bad_cap_flags_are_usage_errors(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(
        "schemaVersion: v1.0.0\nname: x\ntasks:\n  - {type: exec, params: {command: x}}\n"
    )
    for flag, value, message in (
        ("--result-limit", "2GiB", "must be at most 1072693248 bytes"),
        ("--output-capture", "lots", "'lots' is not a size like 1GiB"),
        ("--log-rate", "nan", "must be a number >= 0"),
    ):
        proc = subprocess.run(
            [*GXO, "execute", str(path), flag, value],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            cwd=tmp_path,
        )
        assert proc.returncode == 2, proc.stderr
        assert message in proc.stderr


def test_a_record_over_the_limit_fails_its_producer_and_the_consumer_sees_it(
    tmp_path: Path,
) -> None:
    funcs = Path(__file__).resolve().parent.parent / "streams" / "funcs.py"
    run = gxo(
        tmp_path,
        """
        schemaVersion: v1.0.0
        name: records
        tasks:
          - name: produce
            type: python
            params: {function: "@F@:produce_sizes", kwargs: {sizes: [10, 2000000, 10]}}
          - name: consume
            type: python
            stream_inputs: [produce]
            params: {function: "@F@:collect"}
          - name: unrelated
            type: python
            params: {function: "@FUNCS@/outputs.py:small_result"}
        """,
        "--record-limit",
        "1MiB",
        F=funcs,
    )
    assert run.code == 1
    produce = run.task("produce")
    assert (produce["status"], produce["reason"]) == ("Failed", "record_too_large")
    assert "record 1 written to the stream to 'consume' is 2000" in produce["error"]
    assert "over the limit of 1048576 bytes (--record-limit)" in produce["error"]
    consume = run.task("consume")
    assert consume["status"] == "Failed"
    assert "record_too_large" in consume["reason"]
    assert run.task("unrelated")["status"] == "Completed"


def test_what_a_python_function_prints_is_kept_in_its_output_log(tmp_path: Path) -> None:
    secret = "pa55word-of-the-day"
    run = gxo(
        tmp_path,
        """
        schemaVersion: v1.0.0
        name: py
        tasks:
          - name: talk
            type: python
            params:
              function: "@FUNCS@/outputs.py:talk"
              kwargs: {secret: "{{ secret('GXO_TEST_PY_SECRET') }}"}
          - name: hang
            type: python
            timeout: 1s
            params: {function: "@FUNCS@/outputs.py:talk_then_hang"}
          - name: silent
            type: python
            params: {function: "@FUNCS@/outputs.py:small_result"}
        """,
        env={"GXO_TEST_PY_SECRET": secret},
    )
    assert run.code == 1
    out = run.output("talk", "output")
    text = Path(out["path"]).read_text()
    assert out["path"].endswith("talk/attempt1.output")
    for line in ("from print", "to stderr", "from fd 1", "WARNING talk: a log record with"):
        assert line in text
    assert secret not in text
    assert "[REDACTED_SECRET]" in text
    # A timed-out function keeps what it printed; a silent one has no log.
    assert run.output("hang", "output")["tail"] == ["about to hang"]
    assert run.attempt("silent")["outputs"] == []


def test_output_held_by_a_replaced_stdout_or_unterminated_belongs_to_its_instance(
    tmp_path: Path,
) -> None:
    """Before the result is sent, the worker flushes a ``sys.stdout`` a module replaced and
    emits an unterminated line: both are in that instance's output log, and the next instance
    on the same worker gets back the worker's own stdout."""
    run = gxo(
        tmp_path,
        """
        schemaVersion: v1.0.0
        name: py
        tasks:
          - name: held
            type: python
            params: {function: "@FUNCS@/outputs.py:replace_stdout_then_print"}
          - name: after
            type: python
            depends_on: [held]
            params: {function: "@FUNCS@/outputs.py:talk"}
        """,
        "--workers",
        "1",
    )
    assert run.code == 0, run.stderr
    text = Path(run.output("held", "output")["path"]).read_text()
    assert "held until the worker flushes" in text
    assert "no newline at the end" in text
    after = Path(run.output("after", "output")["path"]).read_text()
    assert "from print" in after
    assert "held until" not in after


BINARY_FUNCS = """\
import os, sys

def write(path, how):
    data = open(path, "rb").read()
    if how == "buffer":
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    else:
        view = memoryview(data)
        while view:
            view = view[os.write(1, view):]
"""


def test_output_that_is_not_utf8_is_kept_exact_in_the_log_files(tmp_path: Path) -> None:
    """Bytes that are not UTF-8 reach the log file as they were written, with a secret
    masked among them: an ``exec`` command's (masked only when the playbook has secrets) and
    a ``python`` function's (its ``sys.stdout.buffer`` and file descriptor 1). They used to
    be decoded with replacement characters, so a binary log grew and no longer matched."""
    import random

    secret = "Bin4ry-secret-Zq8"
    noise = random.Random(7).randbytes(50_000)
    data = noise + b"\n" + secret.encode() + b"\n" + noise[::-1]
    (tmp_path / "data.bin").write_bytes(data)
    (tmp_path / "binfuncs.py").write_text(BINARY_FUNCS)
    run = gxo(
        tmp_path,
        """
        schemaVersion: v1.0.0
        name: binary
        tasks:
          - name: cat
            type: exec
            params: {command: [cat, data.bin], env: {S: "{{ secret('GXO_TEST_BIN') }}"}}
          - name: buffer
            type: python
            params: {function: "binfuncs.py:write", args: [data.bin, buffer]}
          - name: fd
            type: python
            params: {function: "binfuncs.py:write", args: [data.bin, fd]}
        """,
        env={"GXO_TEST_BIN": secret},
    )
    assert run.code == 0, run.stderr
    masked = data.replace(secret.encode(), b"[REDACTED_SECRET]")
    assert Path(run.output("cat", "stdout")["path"]).read_bytes() == masked
    for task in ("buffer", "fd"):
        assert Path(run.output(task, "output")["path"]).read_bytes() == masked


def test_an_unterminated_last_line_is_relayed_as_its_own_instances(tmp_path: Path) -> None:
    """The last line a task prints without a newline is shown (``-v``) under its own name
    when it ends, not held until the next task on that worker prints, then shown joined to
    that task's first line under the next task's name."""
    (tmp_path / "nonl.py").write_text(
        "import sys\n"
        "def partial():\n    sys.stdout.write('no newline from a')\n"
        "def whole():\n    print('line from b')\n"
    )
    run = gxo(
        tmp_path,
        """
        schemaVersion: v1.0.0
        name: relay
        tasks:
          - {name: a, type: python, params: {function: "nonl.py:partial"}}
          - {name: b, type: python, depends_on: [a], params: {function: "nonl.py:whole"}}
          - name: c
            type: exec
            depends_on: [b]
            params: {command: [printf, "no newline from c"]}
          - {name: d, type: python, depends_on: [c], params: {function: "nonl.py:whole"}}
        """,
        "--workers",
        "1",
        "-v",
    )
    assert run.code == 0, run.stderr
    lines = run.stderr.splitlines()
    for line in ("a | no newline from a", "b | line from b", "c | no newline from c"):
        assert line in lines, run.stderr
    assert "d | line from b" in lines, run.stderr


def test_a_silent_death_shows_no_lines_of_the_instance_before_it(tmp_path: Path) -> None:
    """The worker's console carries an instance's mark only with its first output; the lines
    an earlier instance of the same worker printed end with that instance's result, so the
    error of a later instance that died without printing does not show them as its own."""
    run = gxo(
        tmp_path,
        """
        schemaVersion: v1.0.0
        name: silent_death
        tasks:
          - name: talker
            type: python
            params: {function: "@FUNCS@/outputs.py:talk"}
          - name: victim
            type: python
            depends_on: [talker]
            params: {function: "@FUNCS@/outputs.py:kill_own_worker"}
        """,
        "--workers",
        "1",
    )
    assert run.code == 1
    assert run.task("talker")["status"] == "Completed"
    victim = run.task("victim")
    assert victim["reason"] == "worker_signaled(SIGKILL)"
    assert "from print" not in victim["error"]
    assert "last output" not in victim["error"]
