"""What a run writes for people and machines afterwards, through the real ``gxo`` command.

``--report`` (against its published JSON Schema), ``--junit`` (against the Jenkins/Ant JUnit
XSD), ``--state-out``; and what a loop registers, seen through ``--state-out``.
"""

from __future__ import annotations

import html
import json
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

import pytest

from gxo.report import SUMMARY_LIMIT, report_json_schema, schema_path

xmlschema = pytest.importorskip("xmlschema", reason="xmlschema is a test dependency ([test])")

XSD = Path(__file__).resolve().parent.parent / "observability" / "data" / "junit-jenkins.xsd"

PLAYBOOK = r"""
schemaVersion: v1.0.0
name: results
vars: {who: world}
tasks:
  - name: greet
    type: exec
    register: greeting
    params: {command: [echo, "hello {{ who }}"]}
  - name: pytest_like
    type: exec
    ignore_errors: false
    params:
      command: sh
      args:
        - -c
        - |
          for i in $(seq 1 30); do echo "test_$i PASSED"; done
          printf '\033[31mE   assert 1 == 2\033[0m\001\n'
          echo "FAILED test_x.py::test_math - assert 1 == 2"
          exit 1
  - name: fan
    type: exec
    loop: [a, b, c]
    ignore_errors: true
    register: fanned
    params: {command: sh, args: [-c, 'echo "item $0"; test "$0" != b', "{{ item }}"]}
  - name: later
    type: exec
    depends_on: [pytest_like]
    params: {command: "true"}
  - name: never
    type: exec
    when: false
    params: {command: "true"}
"""


@pytest.fixture
def ran(
    tmp_path: Path, gxo: Callable, playbook_file: Callable
) -> tuple[object, dict, ET.Element, dict]:
    book = playbook_file(PLAYBOOK)
    (tmp_path / "out").mkdir()
    proc = gxo(book, "--report", "r.json", "--junit", "out/junit.xml", "--state-out", "state.json")
    assert proc.returncode == 1, proc.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    junit = ET.parse(tmp_path / "out" / "junit.xml").getroot()
    state = json.loads((tmp_path / "state.json").read_text())
    return proc, report, junit, state


def test_the_shipped_schema_is_the_generated_one() -> None:
    shipped = json.loads(Path(schema_path()).read_text())
    assert shipped == report_json_schema(), "run scripts/gen-report-schema"
    assert shipped["$defs"]["ExecutionReport"]["properties"]["schema_version"]


def test_the_report_holds_commands_exit_codes_output_and_results(
    ran: tuple, report_validator: Callable
) -> None:
    _, report, _, _ = ran
    report_validator(report)
    assert report["schema_version"] == "1.0"
    failed = report["task_results"]["pytest_like"]["instances"][0]
    attempt = failed["attempts"][-1]
    assert attempt["command"][0] == "sh"
    assert attempt["exit_code"] == 1
    outputs = {o["name"]: o for o in attempt["outputs"]}
    tail = outputs["stdout"]["tail"]
    assert len(tail) == 20
    assert tail[-1] == "FAILED test_x.py::test_math - assert 1 == 2"
    assert "test_1 PASSED" not in tail  # the last 20 lines, not the first
    assert outputs["stdout"]["bytes"] > 30 * len("test_1 PASSED")
    assert Path(outputs["stdout"]["path"]).read_text().startswith("test_1 PASSED\n")  # whole
    assert outputs["stderr"]["tail"] == []
    greet = report["task_results"]["greet"]["instances"][0]
    assert greet["summary"]["stdout"] == "hello world\n"  # the registered value
    assert greet["attempts"][0]["exit_code"] == 0


def test_a_report_that_breaks_the_schema_is_rejected(
    ran: tuple, report_validator: Callable
) -> None:
    _, report, _, _ = ran
    report["task_results"]["greet"]["instances"][0]["attempts"][0]["surprise"] = 1
    with pytest.raises(Exception, match="surprise"):
        report_validator(report)
    del report["schema_version"]
    with pytest.raises(Exception, match="schema_version"):
        report_validator(report)


def test_junit_is_valid_and_says_what_happened(ran: tuple) -> None:
    _, _, root, _ = ran
    xmlschema.XMLSchema(str(XSD)).validate(ET.tostring(root, "unicode"))
    (suite,) = root.findall("testsuite")
    assert suite.get("name") == "results"
    cases = {c.get("name"): c for c in suite.findall("testcase")}
    assert list(cases) == [
        "greet",
        "pytest_like",
        "fan[0]",
        "fan[1]",
        "fan[2]",
        "later",
        "never",
    ]
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("7", "1", "3")
    failure = cases["pytest_like"].find("failure")
    assert failure is not None
    assert failure.get("type") == "nonzero_exit(1)"
    assert failure.get("message", "").startswith("nonzero_exit(1): command exited with status 1")
    assert "FAILED test_x.py::test_math - assert 1 == 2" in (failure.text or "")
    assert "E   assert 1 == 2" in (failure.text or "")
    assert "\x1b" not in (failure.text or "")
    assert "\x01" not in (failure.text or "")
    assert cases["fan[1]"].findtext("skipped", "").startswith("failed (ignored): nonzero_exit(1)")
    assert cases["fan[0]"].find("skipped") is None
    assert cases["later"].findtext("skipped", "").startswith("skipped: upstream_failed")
    assert cases["never"].findtext("skipped", "").startswith("skipped: when_false")
    assert cases["greet"].findtext("system-out") == "hello world\n"


def test_junit_marks_cancelled_work_skipped(
    tmp_path: Path, gxo: Callable, playbook_file: Callable
) -> None:
    book = playbook_file(
        """
        schemaVersion: v1.0.0
        name: cut
        timeout: 300ms
        tasks:
          - name: slow
            type: exec
            params: {command: [sleep, "30"]}
          - name: after
            type: exec
            depends_on: [slow]
            params: {command: "true"}
        """
    )
    proc = gxo(book, "--junit", "j.xml", "--grace", "0.5")
    assert proc.returncode == 1, proc.stderr
    text = (tmp_path / "j.xml").read_text()
    xmlschema.XMLSchema(str(XSD)).validate(text)
    cases = {c.get("name"): c for c in ET.fromstring(text).iter("testcase")}
    assert cases["slow"].findtext("skipped", "").startswith("cancelled: run_timed_out")
    assert cases["after"].findtext("skipped", "").startswith("cancelled: run_timed_out")


def test_state_out_holds_vars_and_every_register(ran: tuple) -> None:
    _, _, _, state = ran
    assert state["vars"] == {"who": "world"}
    assert state["registered"]["greeting"]["stdout"] == "hello world\n"
    assert set(state["registered"]) == {"greeting", "fanned"}


def test_a_loop_registers_every_item_with_its_own_outcome(ran: tuple) -> None:
    """GXO documents a list: every item's result in item order, each with its own failed,
    reason and error, also when ignore_errors absorbed a failed item."""
    _, _, _, state = ran
    items = state["registered"]["fanned"]
    assert [i["stdout"] for i in items] == ["item a\n", "item b\n", "item c\n"]
    assert [i["failed"] for i in items] == [False, True, False]
    assert [i["reason"] for i in items] == ["", "nonzero_exit(1)", ""]
    assert items[0]["error"] is None
    assert items[2]["error"] is None
    assert items[1]["error"] == "command exited with status 1"
    assert [i["exit_code"] for i in items] == [0, 1, 0]


def test_a_large_registered_value_is_capped_in_the_report(
    tmp_path: Path, gxo: Callable, playbook_file: Callable
) -> None:
    size = SUMMARY_LIMIT * 2
    book = playbook_file(
        f"""
        schemaVersion: v1.0.0
        name: big
        tasks:
          - name: big
            type: exec
            params: {{command: sh, args: [-c, "head -c {size} /dev/zero | tr '\\\\0' x"]}}
        """
    )
    proc = gxo(book, "--report", "r.json")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((tmp_path / "r.json").read_text())["task_results"]["big"]["instances"][0][
        "summary"
    ]
    assert summary["truncated"] is True
    assert summary["bytes"] > SUMMARY_LIMIT
    assert len(summary["preview"]) <= 4096


def test_paths_without_a_directory_are_refused_before_anything_runs(
    tmp_path: Path, gxo: Callable, playbook_file: Callable
) -> None:
    book = playbook_file(
        """
        schemaVersion: v1.0.0
        name: nothing
        tasks:
          - name: touch
            type: exec
            params: {command: [touch, "@TMP@/ran"]}
        """
    )
    for flag in ("--junit", "--state-out", "--report"):
        proc = gxo(book, flag, tmp_path / "missing" / "f")
        assert proc.returncode == 2, (flag, proc.stderr)
        missing = tmp_path / "missing"
        assert f"{flag} {missing}/f: directory {missing} does not exist" in proc.stderr
    assert not (tmp_path / "ran").exists()


def test_every_attempt_has_its_own_command_and_exit_code(
    tmp_path: Path, gxo: Callable, playbook_file: Callable, report_validator: Callable
) -> None:
    """Not only the last attempt: each one's argv and exit status, from its own summary."""
    book = playbook_file(
        r"""
        schemaVersion: v1.0.0
        name: tries
        tasks:
          - name: flaky
            type: exec
            retry: {attempts: 3, delay: 10ms}
            params:
              command: sh
              args: [-c, 'n=$(cat c 2>/dev/null || echo 0); echo $((n+1)) > c; exit $((2-n))']
        """
    )
    proc = gxo(book, "--report", "r.json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    report_validator(report)
    attempts = report["task_results"]["flaky"]["instances"][0]["attempts"]
    assert [a["exit_code"] for a in attempts] == [2, 1, 0]
    assert [a["reason"] for a in attempts] == ["nonzero_exit(2)", "nonzero_exit(1)", ""]
    assert all(a["command"] is not None and a["command"][:2] == ["sh", "-c"] for a in attempts)


def test_an_invalid_playbook_still_gets_its_junit_file(
    tmp_path: Path, gxo: Callable, playbook_file: Callable
) -> None:
    book = playbook_file(
        """
        schemaVersion: v1.0.0
        name: broken
        tasks:
          - name: a
            type: exec
            params: {}
        """,
        name="broken.yaml",
    )
    proc = gxo(
        book, "--junit", "j.xml", "--report", "r.json", *("--html-report", "r.html"),
        *("--metrics-file", "m.prom"),
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    page = (tmp_path / "r.html").read_text()
    assert "broken.yaml:6:13: $.tasks[0].params: missing required parameter" in html.unescape(page)
    assert ">Failed<" in page
    assert "exit code 2" in page
    assert "No task results: nothing ran." in page  # not an empty DAG and empty tables
    assert "<h2>DAG</h2>" not in page
    assert _samples(tmp_path / "m.prom", "broken") == NOT_RUN_METRICS
    text = (tmp_path / "j.xml").read_text()
    xmlschema.XMLSchema(str(XSD)).validate(text)
    suite = ET.fromstring(text).find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("errors"), suite.get("failures")) == ("1", "1", "0")
    (case,) = suite.findall("testcase")
    assert case.get("name") == "validate"
    error = case.find("error")
    assert error is not None
    assert error.get("type") == "invalid_playbook"
    assert "broken.yaml:6:13:" in (error.text or "")  # the problem, with its place
    assert "$.tasks[0].params" in (error.text or "")
    assert json.loads((tmp_path / "r.json").read_text())["problems"]


def test_a_playbook_that_cannot_run_as_asked_still_gets_its_report_and_junit(
    tmp_path: Path, gxo: Callable, playbook_file: Callable, report_validator: Callable
) -> None:
    """Valid, but refused at the run's start (a resource no ``--resource`` declares): exit 2,
    nothing ran, and the report and the JUnit file say why, so a CI step finds them (the
    JUnit file with an error: not an empty suite a CI would read as passed)."""
    book = playbook_file(
        """
        schemaVersion: v1.0.0
        name: wants-gpu
        tasks:
          - name: a
            type: exec
            resources: {gpu: 1}
            params: {command: "true"}
        """,
        name="wants-gpu.yaml",
    )
    proc = gxo(
        book, "--junit", "j.xml", "--report", "r.json", *("--html-report", "r.html"),
        *("--metrics-file", "m.prom"),
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    page = html.unescape((tmp_path / "r.html").read_text())
    assert "task 'a' needs the resource 'gpu'" in page
    assert "exit code 2" in page
    # The metrics of a run that never started, not the empty registry the refused run made.
    assert _samples(tmp_path / "m.prom", "wants-gpu") == NOT_RUN_METRICS
    report = json.loads((tmp_path / "r.json").read_text())
    report_validator(report)
    assert (report["overall_status"], report["exit_code"], report["total_tasks"]) == (
        "Failed",
        2,
        0,
    )
    assert "needs the resource 'gpu'" in report["error"]
    text = (tmp_path / "j.xml").read_text()
    xmlschema.XMLSchema(str(XSD)).validate(text)
    suite = ET.fromstring(text).find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("errors"), suite.get("failures")) == ("1", "1", "0")
    (case,) = suite.findall("testcase")
    error = case.find("error")
    assert error is not None
    assert error.get("type") == "not_run"
    assert "add --resource gpu=N" in (error.text or "")


#: What ``--metrics-file`` holds for a run that never started (its run id and end time aside).
NOT_RUN_METRICS = {
    "gxo_run_info": 1.0,
    "gxo_tasks": 0.0,
    "gxo_workers": 0.0,
    "gxo_tasks_running": 0.0,
    "gxo_tasks_queued": 0.0,
    "gxo_instances_running": 0.0,
    "gxo_run_duration_seconds": 0.0,
    "gxo_run_exit_code": 2.0,
    "gxo_run_success": 0.0,
}


def _samples(path: Path, playbook: str) -> dict[str, float]:
    """The samples of a metrics textfile by name, each checked to carry ``playbook``."""
    from prometheus_client.parser import text_string_to_metric_families

    found: dict[str, float] = {}
    for family in text_string_to_metric_families(path.read_text()):
        for sample in family.samples:
            assert sample.labels["playbook"] == playbook, sample
            found[sample.name] = sample.value
    assert found.pop("gxo_run_end_timestamp_seconds") > 0
    return found


def test_an_invalid_playbooks_files_that_cannot_be_written_are_said_and_the_exit_code_stays_2(
    tmp_path: Path, gxo: Callable, playbook_file: Callable
) -> None:
    book = playbook_file("schemaVersion: v1.0.0\nname: broken\ntasks: []\nbogus: 1\n")
    proc = gxo(
        book, "--html-report", "missing/r.html", "--metrics-file", "missing/m.prom",
        *("--report", "r.json"),
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert "--html-report missing/r.html: directory" in proc.stderr
    assert "--metrics-file missing/m.prom: directory" in proc.stderr
    assert json.loads((tmp_path / "r.json").read_text())["exit_code"] == 2
    assert not (tmp_path / "missing").exists()


def test_a_killed_attempt_still_says_what_it_ran_after_a_longer_command_in_its_worker(
    tmp_path: Path, gxo: Callable, playbook_file: Callable
) -> None:
    """A timed-out attempt sends no summary: its command and directory come from its
    worker's command file, which the worker overwrites for each command (padded over the
    longer record of the command it ran before)."""
    book = playbook_file(
        """
schemaVersion: v1.0.0
name: killed
tasks:
  - name: first
    type: exec
    params: {command: [echo, "a much longer command line than the next one"]}
  - name: slow
    type: exec
    depends_on: [first]
    attempt_timeout: 0.3s
    params: {command: [sh, -c, "trap '' TERM; sleep 30"]}
"""
    )
    # The command ignores SIGTERM: its worker is killed after the grace period.
    proc = gxo(book, "--workers", "1", "--grace", "0.2", "--report", "r.json")
    assert proc.returncode == 1, proc.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    slow = report["task_results"]["slow"]["instances"][0]
    assert slow["reason"] == "attempt_timed_out"
    attempt = slow["attempts"][-1]
    argv = ["sh", "-c", "trap '' TERM; sleep 30"]
    assert (attempt["command"], attempt["cwd"]) == (argv, str(tmp_path))
    first = report["task_results"]["first"]["instances"][0]["attempts"][0]
    assert first["command"] == ["echo", "a much longer command line than the next one"]


def test_junit_and_html_show_the_command_as_the_failed_line_does(
    tmp_path: Path, gxo: Callable, playbook_file: Callable
) -> None:
    """The command of a failure, quoted as a shell reads it, the same in the FAILED line, the
    JUnit file and the HTML report: pasted into a shell, it runs what gxo ran (joined by
    spaces, ``sh -c echo "a b"; exit 3`` would run ``echo`` alone)."""
    import html
    import re

    book = playbook_file(
        """
        schemaVersion: v1.0.0
        name: quoted
        tasks:
          - name: broken
            type: exec
            params: {command: [sh, -c, 'echo "a b"; exit 3']}
        """
    )
    proc = gxo(book, "--junit", "junit.xml", "--html-report", "run.html")
    assert proc.returncode == 1, proc.stderr
    shown = """sh -c 'echo "a b"; exit 3'"""
    assert f"    command: {shown} (cwd {tmp_path})" in proc.stderr
    junit = ET.parse(tmp_path / "junit.xml").getroot()
    assert f"command: {shown} (cwd {tmp_path})" in (junit.findtext(".//failure") or "")
    page = (tmp_path / "run.html").read_text()
    assert shown in [html.unescape(cell) for cell in re.findall(r"<dd>(.*?)</dd>", page)]


def test_junit_and_html_name_the_signal_that_ended_a_command(
    tmp_path: Path, gxo: Callable, playbook_file: Callable
) -> None:
    """A command a timeout stopped was ``exit code: killed by signal SIGTERM`` on the FAILED
    line but a bare ``-15`` in the JUnit file and the HTML report."""
    import html
    import re

    book = playbook_file(
        """
        schemaVersion: v1.0.0
        name: stopped
        tasks:
          - name: slow
            type: exec
            timeout: 300ms
            params: {command: [sleep, "30"]}
        """
    )
    proc = gxo(book, "--junit", "junit.xml", "--html-report", "run.html", "--grace", "5")
    assert proc.returncode == 1, proc.stderr
    assert "    exit code: killed by signal SIGTERM" in proc.stderr
    junit = ET.parse(tmp_path / "junit.xml").getroot()
    assert "exit code: -15 (killed by signal SIGTERM)" in (junit.findtext(".//failure") or "")
    page = (tmp_path / "run.html").read_text()
    cells = [html.unescape(cell) for cell in re.findall(r"<dd>(.*?)</dd>", page)]
    assert "-15 (killed by signal SIGTERM)" in cells


def test_the_html_report_drops_colour_codes_as_junit_does(
    tmp_path: Path, gxo: Callable, playbook_file: Callable
) -> None:
    """A test runner's coloured failure (``\\033[31mE   assert ...``) reads as text in the page,
    not as ``[31m`` with a box for ESC."""
    proc = gxo(playbook_file(PLAYBOOK), "--html-report", "run.html")
    assert proc.returncode == 1, proc.stderr
    page = (tmp_path / "run.html").read_text()
    assert "E   assert 1 == 2" in page
    assert "\x1b" not in page
    assert "\x01" not in page
