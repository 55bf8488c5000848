"""What ``gxo execute`` prints while it runs: dry-run lines, ``-q``, colour."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from gxo.cli.output import use_colour

GXO = [sys.executable, "-m", "gxo"]

MIXED = """
schemaVersion: v1.0.0
name: mixed
vars: {who: world}
tasks:
  - name: greet
    type: exec
    params: {command: [echo, "hello {{ who }}"], working_dir: "@TMP@"}
  - name: fan
    type: exec
    loop: [a, b]
    params: {command: sh, args: [-c, 'echo "$0"', "{{ item }}"]}
  - name: py
    type: python
    params: {function: "os:getcwd"}
  - name: never
    type: exec
    when: false
    params: {command: "true"}
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
    params: {command: sh, args: [-c, "echo bad >&2; exit 2"]}
"""


def run(
    tmp_path: Path, *args: str | os.PathLike[str], env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")}
    return subprocess.run(
        [*GXO, *map(str, args)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**base, **(env or {})},
    )


def test_dry_run_says_what_would_run_and_what_cannot(
    tmp_path: Path, playbook_file: Callable
) -> None:
    book = playbook_file(MIXED)
    proc = run(tmp_path, book, "--dry-run")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.splitlines()
    greet = lines.index(next(x for x in lines if x.startswith("ok") and " greet" in x))
    assert lines[greet + 1] == f"    would run: echo 'hello world' (cwd {tmp_path})"
    fan = lines.index(next(x for x in lines if " fan " in x))
    assert lines[fan + 1] == "    fan[0]: would run: sh -c 'echo \"$0\"' a (cwd .)"
    assert lines[fan + 2] == "    fan[1]: would run: sh -c 'echo \"$0\"' b (cwd .)"
    py = lines.index(next(x for x in lines if " py " in x or x.endswith(" py")))
    assert lines[py + 1] == "    not run (python: no dry-run support)"
    assert not (tmp_path / "hello").exists()


def test_a_real_run_prints_no_would_run_lines(tmp_path: Path, playbook_file: Callable) -> None:
    proc = run(tmp_path, playbook_file(MIXED))
    assert proc.returncode == 0, proc.stderr
    assert "would run" not in proc.stderr
    assert "not run" not in proc.stderr


def test_quiet_prints_nothing_on_success(tmp_path: Path, playbook_file: Callable) -> None:
    proc = run(tmp_path, "-q", playbook_file(MIXED))
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert proc.stdout == ""


def test_quiet_still_prints_warnings_and_log_level_error_hides_them(
    tmp_path: Path, playbook_file: Callable
) -> None:
    """README: with -q a successful run prints nothing but warnings."""
    book = playbook_file(
        """
        schemaVersion: v1.0.0
        name: typo
        tasks:
          - {name: a, type: exec, params: {command: "true", comand: x}}
        """
    )
    proc = run(tmp_path, "-q", book)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.startswith("warning: ")
    assert "unknown parameter 'comand' for exec" in proc.stderr
    assert "ok " not in proc.stderr
    assert "playbook 'typo'" not in proc.stderr
    silent = run(tmp_path, "-q", "--log-level", "error", book)
    assert (silent.returncode, silent.stderr) == (0, "")


def test_quiet_prints_only_the_failures(tmp_path: Path, playbook_file: Callable) -> None:
    proc = run(tmp_path, "-q", playbook_file(FAILING))
    assert proc.returncode == 1
    assert proc.stderr.startswith("error: FAILED   broken: nonzero_exit(2)")
    assert "fine" not in proc.stderr.split("playbook")[0]  # no line for the task that passed
    assert "running failing" not in proc.stderr
    assert "playbook 'failing' Failed" in proc.stderr


ESC = "\x1b["


@pytest.mark.parametrize(
    ("args", "env", "coloured"),
    [
        (["--color", "always"], {}, True),
        (["--color", "always"], {"NO_COLOR": "1"}, True),  # the flag wins
        (["--color", "never"], {"FORCE_COLOR": "1"}, False),
        ([], {}, False),  # auto: stderr is a pipe here
        ([], {"FORCE_COLOR": "1"}, True),
        ([], {"FORCE_COLOR": "1", "NO_COLOR": "1"}, False),
        (["--color", "always", "--log-format", "json"], {}, False),
    ],
)
def test_colour_follows_the_flag_and_the_environment(
    tmp_path: Path, playbook_file: Callable, args: list[str], env: dict[str, str], coloured: bool
) -> None:
    proc = run(tmp_path, playbook_file(FAILING), *args, env=env)
    assert proc.returncode == 1
    assert (ESC in proc.stderr) is coloured, proc.stderr
    if coloured:
        assert f"{ESC}32mok{ESC}0m       fine" in proc.stderr
        assert f"{ESC}1;31mFAILED{ESC}0m   broken" in proc.stderr


class _Tty:
    def __init__(self, tty: bool) -> None:
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


def test_auto_colour_needs_a_terminal_that_is_not_dumb() -> None:
    assert use_colour("auto", stream=_Tty(True), env={"TERM": "xterm"})
    assert not use_colour("auto", stream=_Tty(True), env={"TERM": "dumb"})
    assert not use_colour("auto", stream=_Tty(True), env={"TERM": "xterm", "NO_COLOR": "x"})
    assert not use_colour("auto", stream=_Tty(False), env={})
    assert use_colour("auto", stream=_Tty(False), env={"FORCE_COLOR": "1"})
    # an empty NO_COLOR does not count (https://no-color.org)
    assert use_colour("auto", stream=_Tty(True), env={"TERM": "xterm", "NO_COLOR": ""})


PYTEST_LIKE = r"""
schemaVersion: v1.0.0
name: explain
tasks:
  - name: unit
    type: exec
    params:
      command: sh
      args:
        - -c
        - |
          for i in $(seq 1 40); do echo "test_$i PASSED"; done
          echo "FAILED tests/test_x.py::test_math - assert 1 == 2"
          echo "1 failed, 40 passed"
          exit 1
  - name: killed
    type: exec
    params: {command: sh, args: [-c, 'echo before; kill -9 $$']}
"""


def test_a_failure_shows_its_command_exit_code_and_last_output(
    tmp_path: Path, playbook_file: Callable
) -> None:
    """pytest and make print their failure on stdout: it must be under the FAILED line."""
    proc = run(tmp_path, playbook_file(PYTEST_LIKE))
    assert proc.returncode == 1
    err = proc.stderr
    unit = err[err.index("FAILED   unit") :]
    unit = unit[: unit.index("\nerror:")] if "\nerror:" in unit else unit
    assert "    command: sh -c 'for i in $(seq 1 40)" in unit
    assert "    exit code: 1" in unit
    assert re.search(r"\n    stdout \(last 20 lines of \d+ bytes\):\n", unit), unit
    log = unit.split("    stdout log: ", 1)[1].splitlines()[0]
    assert Path(log).read_text().startswith("test_1 PASSED\n")  # the whole output, kept
    assert "      | FAILED tests/test_x.py::test_math - assert 1 == 2" in unit
    assert "      | 1 failed, 40 passed" in unit
    assert "test_22 PASSED" not in unit  # only the last 20 lines
    assert "test_23 PASSED" in unit
    killed = err[err.index("FAILED   killed") :]
    assert "    exit code: killed by signal SIGKILL" in killed
    assert "      | before" in killed


FLAKY = """
schemaVersion: v1.0.0
name: flaky
tasks:
  - name: flaky
    type: exec
    retry: {attempts: 3, delay: 0.05}
    params:
      command: sh
      args: [-c, 'n=$(cat count 2>/dev/null || echo 0); n=$((n+1)); echo $n > count; test $n -ge 3']
  - name: hopeless
    type: exec
    retry: {attempts: 2, delay: 0}
    params: {command: sh, args: [-c, "echo nope >&2; exit 5"]}
"""


def test_retries_are_visible(tmp_path: Path, playbook_file: Callable) -> None:
    proc = run(tmp_path, playbook_file(FLAKY))
    assert proc.returncode == 1
    lines = proc.stderr.splitlines()
    retries = [x for x in lines if x.startswith("retry flaky:")]
    assert [x.split("; ")[1].rsplit(" in ", 1)[0] for x in retries] == [
        "attempt 2/3",
        "attempt 3/3",
    ]
    assert retries[0].startswith("retry flaky: nonzero_exit(1): command exited with status 1;")
    assert any(x.startswith("ok       flaky (") and x.endswith(" after 3 attempts") for x in lines)
    assert (
        "retry hopeless: nonzero_exit(5): command exited with status 5: nope; attempt 2/2 in 0.00s"
        in lines
    )
    final = next(x for x in lines if "FAILED   hopeless" in x)
    assert final.endswith("(after 2 attempts)")
    quiet = run(tmp_path, "-q", playbook_file(FLAKY, name="again.yaml"))
    assert "retry" not in quiet.stderr  # -q: failures only


CRASHER = """
schemaVersion: v1.0.0
name: crasher
tasks:
  - name: crash
    type: python
    retry: {attempts: 5, delay: 0s}
    params: {function: "@FUNCS@/crash.py:os_exit"}
"""


def test_a_crash_retried_less_than_attempts_says_why(
    tmp_path: Path, playbook_file: Callable
) -> None:
    """``retry.attempts: 5``, but an instance that killed 3 workers is not tried again: the
    failure says so rather than leave "after 3 attempts" unexplained."""
    proc = run(tmp_path, playbook_file(CRASHER), "--report", "run.json")
    assert proc.returncode == 1, proc.stderr
    final = next(x for x in proc.stderr.splitlines() if "FAILED   crash" in x)
    assert final.startswith("error: FAILED   crash: worker_exited(3): ")
    assert final.endswith(
        "; not retried again: it killed 3 worker processes (at most 3, whatever "
        "retry.attempts says); its last output: (after 3 attempts)"
    )
    crash = json.loads((tmp_path / "run.json").read_text())["task_results"]["crash"]
    assert crash["attempts"] == 3
    assert "not retried again: it killed 3 worker processes" in crash["error"]


def test_a_task_line_shows_run_time_and_large_queued_time(
    tmp_path: Path, playbook_file: Callable
) -> None:
    book = playbook_file(
        """
        schemaVersion: v1.0.0
        name: queue
        tasks:
          - name: first
            type: exec
            params: {command: sleep, args: ["1.2"]}
          - name: second
            type: exec
            params: {command: "true"}
        """
    )
    proc = run(tmp_path, book, "--workers", "1")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.splitlines()
    first = next(x for x in lines if " first (" in x)
    second = next(x for x in lines if " second (" in x)
    assert "queued" not in first
    run_time, queued = second.split("(")[1].rstrip(")").split(", queued ")
    assert float(run_time.rstrip("s")) < 1.0  # its own run time, not the wait
    assert float(queued.rstrip("s")) >= 1.0


def _wait_for(path: Path, text: str, proc: subprocess.Popen[bytes], timeout: float = 30) -> str:
    """Wait until gxo wrote ``text`` to the file ``path`` (its stderr)."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        content = path.read_text() if path.exists() else ""
        if text in content:
            return content
        assert proc.poll() is None, f"gxo ended before printing {text!r}: {content}"
        time.sleep(0.02)
    raise AssertionError(f"{text!r} not printed within {timeout}s: {path.read_text()}")


LIVE = """
schemaVersion: v1.0.0
name: live
tasks:
  - name: waits
    type: exec
    params:
      command: sh
      args:
        - -c
        - 'echo first; echo "token=$T" >&2; until test -e go; do sleep .02; done; echo second'
      env: {T: "{{ secret('GXO_LIVE_TOKEN') }}"}
"""


def test_verbose_relays_what_a_command_prints_while_it_runs(
    tmp_path: Path, playbook_file: Callable, start_gxo: Callable
) -> None:
    os.environ["GXO_LIVE_TOKEN"] = "live-secret-value-123"
    try:
        proc = start_gxo(playbook_file(LIVE), "-v")
    finally:
        del os.environ["GXO_LIVE_TOKEN"]
    err = tmp_path / "gxo.err"
    # "first" is shown while the command still runs: it waits for the file "go"
    shown = _wait_for(err, "waits | first", proc)
    assert "second" not in shown
    (tmp_path / "go").touch()
    assert proc.wait(timeout=60) == 0, err.read_text()
    text = err.read_text()
    assert "waits | second" in text
    assert "waits | token=[REDACTED_SECRET]" in text  # stderr too, redacted in the worker
    assert "live-secret-value-123" not in text


LOUD_ITEMS = """
schemaVersion: v1.0.0
name: loud
tasks:
  - name: loud
    type: exec
    loop: [1, 2, 3, 4, 5, 6]
    params: {command: seq, args: ["{{ item }}00001", "{{ item }}40000"]}
  - name: after
    type: exec
    depends_on: [loud]
    params: {command: [echo, after-line]}
"""


def test_verbose_lines_carry_the_task_that_printed_them(
    tmp_path: Path, playbook_file: Callable
) -> None:
    """One worker runs every iteration, one after another, each printing 40,000 lines: the
    lines an iteration printed are labelled with it, however late the parent reads them
    (it reads a worker's output apart from its results, and the worker starts the next
    instance as soon as it sent one)."""
    proc = run(tmp_path, "-v", "-w", "1", playbook_file(LOUD_ITEMS))
    assert proc.returncode == 0, proc.stderr[-2000:]
    labels: dict[str, list[str]] = {}
    for line in proc.stderr.splitlines():
        label, bar, text = line.partition(" | ")
        if bar:
            labels.setdefault(label, []).append(text)
    assert labels["after"] == ["after-line"]
    for item in range(1, 7):
        expected = [str(n) for n in range(item * 100000 + 1, item * 100000 + 40001)]
        assert labels[f"loud[{item - 1}]"] == expected, f"loud[{item - 1}]"
    assert sorted(labels) == ["after"] + [f"loud[{i}]" for i in range(6)]


FAKE_MARKS = r"""
def fake():
    print("before \x00gxo-instance:abc\x00 after")
    print("x\x00gxo-instance:" + "9" * 40 + "\x00y")
    print("tail \x00gxo-instance:", end="", flush=True)
    return {"ok": True}
"""


def test_output_that_looks_like_an_instance_mark_is_plain_output(
    tmp_path: Path, playbook_file: Callable
) -> None:
    """What a module prints cannot break the parent: bytes that begin like the worker's mark
    of an instance's output (``gxo.wire.CONSOLE_MARK``) but are not one are relayed as
    they are."""
    (tmp_path / "fake.py").write_text(FAKE_MARKS)
    path = playbook_file(
        """
        schemaVersion: v1.0.0
        name: fake
        tasks:
          - {name: f, type: python, params: {function: "fake.py:fake"}}
          - {name: g, type: exec, depends_on: [f], params: {command: [echo, g-line]}}
        """
    )
    proc = run(tmp_path, "-v", path)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.splitlines()
    assert "f | before \x00gxo-instance:abc\x00 after" in lines
    assert "f | x\x00gxo-instance:" + "9" * 40 + "\x00y" in lines
    assert "f | tail \x00gxo-instance:" in lines
    assert "g | g-line" in lines


def test_without_verbose_a_successful_command_prints_nothing_new(
    tmp_path: Path, playbook_file: Callable
) -> None:
    (tmp_path / "go").touch()
    proc = run(tmp_path, playbook_file(LIVE), env={"GXO_LIVE_TOKEN": "live-secret-value-123"})
    assert proc.returncode == 0, proc.stderr
    assert "first" not in proc.stderr
    assert "waits |" not in proc.stderr


def test_vv_shows_rendered_params_redacted(tmp_path: Path, playbook_file: Callable) -> None:
    (tmp_path / "go").touch()
    proc = run(
        tmp_path, "-vv", playbook_file(LIVE), env={"GXO_LIVE_TOKEN": "live-secret-value-123"}
    )
    assert proc.returncode == 0, proc.stderr
    params = next(x for x in proc.stderr.splitlines() if x.startswith("waits | params: "))
    assert '"env":{"T":"[REDACTED_SECRET]"}' in params
    assert '"command":"sh"' in params
    assert "live-secret-value-123" not in proc.stderr


def test_vv_params_line_is_not_the_tasks_output(tmp_path: Path, playbook_file: Callable) -> None:
    """The params line is gxo's, shown on the terminal: a failed task's FAILED lines, the
    report's outputs and its ``.output`` log hold what the task printed, as without -vv."""
    (tmp_path / "f.py").write_text(
        "def boom():\n    print('task said this')\n    raise ValueError('x')\n"
    )
    book = playbook_file(
        """
        schemaVersion: v1.0.0
        name: vv
        tasks:
          - {name: ex, type: exec, params: {command: "echo out; exit 3", shell: true}}
          - {name: py, type: python, params: {function: "f.py:boom"}}
        """
    )
    proc = run(tmp_path, "-vv", book, "--report", "r.json")
    assert proc.returncode == 1, proc.stderr
    assert "ex | params: " in proc.stderr
    assert "py | params: " in proc.stderr
    # Under each FAILED line only the task's own output (before -vv went through the task's
    # output, and showed as "output (last line ...): | params: {...}").
    assert "      | params: " not in proc.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    outputs = {
        task: report["task_results"][task]["instances"][0]["attempts"][0]["outputs"]
        for task in ("ex", "py")
    }
    assert [(o["name"], o["tail"]) for o in outputs["py"]] == [("output", ["task said this"])]
    assert [(o["name"], o["tail"]) for o in outputs["ex"] if o["bytes"]] == [("stdout", ["out"])]
    for output in outputs["py"] + outputs["ex"]:
        if output["path"]:
            assert "params: " not in Path(output["path"]).read_text(), output


def test_an_endless_line_is_relayed_in_pieces_of_the_documented_size(
    tmp_path: Path, playbook_file: Callable
) -> None:
    """A task printing without a newline is relayed in pieces of at most 64 KiB (the Limits
    table's "one relayed line"), every byte of it; they were up to twice that: what was held
    back plus one read."""
    from gxo.pool.relay import LINE_LIMIT

    (tmp_path / "f.py").write_text(
        "import sys\n"
        "def spew():\n"
        "    for _ in range(40):\n"
        "        sys.stdout.write('x' * 10_000)\n"
        "        sys.stdout.flush()\n"
        "    return 'done'\n"
    )
    book = playbook_file(
        """
        schemaVersion: v1.0.0
        name: spew
        tasks:
          - {name: spew, type: python, params: {function: "f.py:spew"}}
        """
    )
    proc = run(tmp_path, book)
    assert proc.returncode == 0, proc.stderr
    pieces = [
        line[len("spew | ") :] for line in proc.stderr.splitlines() if line.startswith("spew | ")
    ]
    assert sum(map(len, pieces)) == 400_000
    assert set("".join(pieces)) == {"x"}
    assert max(map(len, pieces)) <= LINE_LIMIT


def test_a_timed_out_command_keeps_what_it_printed(tmp_path: Path, playbook_file: Callable) -> None:
    book = playbook_file(
        """
        schemaVersion: v1.0.0
        name: slow
        tasks:
          - name: hangs
            type: exec
            timeout: 1s
            params: {command: sh, args: [-c, "echo started work; echo partial >&2; exec sleep 60"]}
        """
    )
    proc = run(tmp_path, book, "--grace", "0.5", "--report", "r.json", "--junit", "j.xml")
    assert proc.returncode == 1
    failed = proc.stderr[proc.stderr.index("FAILED   hangs: timed_out") :]
    assert "      | started work" in failed
    assert "      | partial" in failed
    assert "    stdout log: " in failed
    attempt = json.loads((tmp_path / "r.json").read_text())["task_results"]["hangs"]["instances"][
        0
    ]["attempts"][0]
    outputs = {o["name"]: o for o in attempt["outputs"]}
    assert outputs["stdout"]["tail"] == ["started work"]
    assert outputs["stderr"]["tail"] == ["partial"]
    assert "started work" in (tmp_path / "j.xml").read_text()


def test_a_killed_attempt_still_says_what_it_ran(tmp_path: Path, playbook_file: Callable) -> None:
    """A worker stopped on a timeout may send no summary: the command, its directory and
    (when it ended within the grace period) its exit status still reach the FAILED line and
    every attempt of the report, from the result or the attempt's command file."""
    polite = playbook_file(
        """
        schemaVersion: v1.0.0
        name: polite
        tasks:
          - name: polite
            type: exec
            attempt_timeout: 1s
            retry: {attempts: 2, delay: 10ms}
            params: {command: sh, args: [-c, "echo polite; exec sleep 60"]}
        """,
        name="polite.yaml",
    )
    proc = run(tmp_path, polite, "--grace", "30", "--report", "polite.json")
    assert proc.returncode == 1
    where = f"(cwd {tmp_path})"
    failed = proc.stderr[proc.stderr.index("FAILED   polite: attempt_timed_out") :]
    assert f"    command: sh -c 'echo polite; exec sleep 60' {where}" in failed
    report = json.loads((tmp_path / "polite.json").read_text())
    tries = report["task_results"]["polite"]["instances"][0]["attempts"]
    # Every attempt, not only the last, says what it ran; its exit status is known when its
    # worker reported the command's end (SIGTERM: -15), null when the worker went with it.
    assert all(a["command"] == ["sh", "-c", "echo polite; exec sleep 60"] for a in tries)
    assert all(a["cwd"] == str(tmp_path) for a in tries)
    assert all(a["exit_code"] in (-15, None) for a in tries)
    if tries[-1]["exit_code"] == -15:
        assert "    exit code: killed by signal SIGTERM" in failed, proc.stderr

    stubborn = playbook_file(
        """
        schemaVersion: v1.0.0
        name: stubborn
        tasks:
          - name: stubborn
            type: exec
            attempt_timeout: 1s
            params: {command: sh, args: [-c, "trap '' TERM; echo stubborn; sleep 60"]}
        """,
        name="stubborn.yaml",
    )
    # It ignores SIGTERM: its worker is killed after the grace period, its result never sent.
    proc = run(tmp_path, stubborn, "--grace", "0.3", "--report", "stubborn.json")
    assert proc.returncode == 1
    failed = proc.stderr[proc.stderr.index("FAILED   stubborn: attempt_timed_out") :]
    command_line = failed.split("\n")[1]
    assert command_line.startswith("    command: sh -c "), failed  # from its command file
    assert command_line.endswith(where), failed
    report = json.loads((tmp_path / "stubborn.json").read_text())
    (killed,) = report["task_results"]["stubborn"]["instances"][0]["attempts"]
    assert killed["command"] == ["sh", "-c", "trap '' TERM; echo stubborn; sleep 60"]
    assert killed["cwd"] == str(tmp_path)
    assert killed["exit_code"] is None  # its status was never collected: gxo killed it


def test_the_output_key_streams_or_silences_a_task(tmp_path: Path, playbook_file: Callable) -> None:
    book = playbook_file(
        """
        schemaVersion: v1.0.0
        name: outkey
        tasks:
          - name: loud
            type: exec
            output: stream
            params: {command: sh, args: [-c, "echo streamed"]}
          - name: hush
            type: exec
            output: quiet
            params: {command: sh, args: [-c, "echo hushed"]}
          - name: plain
            type: exec
            params: {command: sh, args: [-c, "echo plain"]}
        """
    )
    quiet_run = run(tmp_path, book)
    assert "loud | streamed" in quiet_run.stderr  # stream: without -v too
    assert "plain" not in quiet_run.stderr.replace("ok       plain", "")
    verbose = run(tmp_path, book, "-v")
    assert "loud | streamed" in verbose.stderr
    assert "plain | plain" in verbose.stderr
    assert "hushed" not in verbose.stderr  # quiet: not even with -v
    bad = playbook_file(
        """
        schemaVersion: v1.0.0
        name: bad
        tasks:
          - name: t
            type: exec
            output: loud
            params: {command: "true"}
        """,
        name="bad.yaml",
    )
    proc = run(tmp_path, "validate", bad)
    assert proc.returncode == 2
    assert "$.tasks[0].output: 'output' must be one of: stream, capture, quiet" in proc.stderr


VERBOSE_FAILURE = """
schemaVersion: v1.0.0
name: loud
tasks:
  - name: cmd
    type: exec
    params: {command: sh, args: [-c, "echo on-stdout; echo on-stderr >&2; exit 3"]}
  - name: py
    type: python
    params: {function: "builtins:print", args: [printed-by-python]}
"""


def test_verbose_does_not_log_a_commands_output_twice(
    tmp_path: Path, playbook_file: Callable
) -> None:
    """Under -v a command's lines are relayed live and kept in its .stdout/.stderr logs, not
    also in the worker's .output log (what the worker itself printed): the FAILED block and
    the report show each stream once. A python function's prints still reach .output."""
    report = tmp_path / "r.json"
    proc = run(tmp_path, "-v", playbook_file(VERBOSE_FAILURE), "--report", report)
    assert proc.returncode == 1, proc.stderr
    assert "cmd | on-stdout" in proc.stderr
    assert "py | printed-by-python" in proc.stderr
    assert "output (last" not in proc.stderr
    assert proc.stderr.count("| on-stdout") == 2  # the live line and the FAILED block's tail
    results = json.loads(report.read_text())["task_results"]
    (cmd,) = results["cmd"]["instances"][0]["attempts"]
    assert [o["name"] for o in cmd["outputs"] if o["bytes"]] == ["stdout", "stderr"]
    (py,) = results["py"]["instances"][0]["attempts"]
    assert [(o["name"], o["tail"]) for o in py["outputs"]] == [("output", ["printed-by-python"])]


def test_one_task_is_counted_in_the_singular(tmp_path: Path) -> None:
    (tmp_path / "one.yaml").write_text(
        "schemaVersion: v1.0.0\nname: one\ntasks:\n"
        "  - name: only\n    type: exec\n    params: {command: 'true'}\n"
    )
    proc = run(tmp_path, "execute", "--workers", "1", "one.yaml")
    assert proc.returncode == 0, proc.stderr
    assert "running one (1 task) on 1 worker process" in proc.stderr
    assert ": 1 task, 1 completed" in proc.stderr
    assert "1 tasks" not in proc.stderr
    valid = run(tmp_path, "validate", "one.yaml")
    assert valid.stdout == "one.yaml: valid (1 task, 0 dependencies)\n"


def test_one_line_of_output_is_counted_in_the_singular(tmp_path: Path) -> None:
    """``stdout (last line of 4 bytes)``, not ``last 1 lines``: in the FAILED line, the JUnit
    file and the HTML report alike."""
    (tmp_path / "one.yaml").write_text(
        "schemaVersion: v1.0.0\nname: one\ntasks:\n"
        "  - name: only\n    type: exec\n"
        "    params: {command: sh, args: [-c, 'echo bad; printf x >&2; exit 2']}\n"
    )
    proc = run(tmp_path, "one.yaml", "--junit", "junit.xml", "--html-report", "run.html")
    assert proc.returncode == 1, proc.stderr
    assert "    stdout (last line of 4 bytes):\n      | bad\n" in proc.stderr
    assert "    stderr (last line of 1 byte):\n      | x\n" in proc.stderr
    junit = (tmp_path / "junit.xml").read_text()
    assert "stdout (last line of 4 bytes):" in junit
    assert "stderr (last line of 1 byte):" in junit
    page = (tmp_path / "run.html").read_text()
    assert "stdout: last line of 4 bytes" in page
    assert "stderr: last line of 1 byte<" in page
    for text in (proc.stderr, junit, page):
        assert "last 1 lines" not in text
        assert " 1 bytes" not in text
