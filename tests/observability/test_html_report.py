"""The HTML run report: every task and instance, self-contained, well nested."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path

import pytest

import gxo
from gxo.observability.html_report import render_html

VOID = {"meta", "link", "br", "hr", "img", "input", "col", "area", "base", "source", "wbr"}

PLAYBOOK = """\
schemaVersion: v1.0.0
name: html_demo
tasks:
  - name: prepare
    type: exec
    params: {command: "true"}
  - name: each
    type: exec
    loop: ["a", "b", "c"]
    loop_control: {parallel: 2}
    depends_on: [prepare]
    params: {command: echo, args: ["{{ item }}"]}
  - name: flaky
    type: exec
    retry: {attempts: 2, delay: 0}
    ignore_errors: true
    params: {command: sh, args: ["-c", "echo '<b>not markup</b>' >&2; exit 4"]}
  - name: never
    type: exec
    when: "{{ false }}"
    params: {command: "true"}
"""


class Checker(HTMLParser):
    """Records text, attributes and nesting errors of a document."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.text: list[str] = []
        self.attrs: list[tuple[str, str, str]] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs.extend((tag, k, v or "") for k, v in attrs)
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs.extend((tag, k, v or "") for k, v in attrs)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
            return
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def check(html: str) -> Checker:
    parser = Checker()
    parser.feed(html)
    parser.close()
    assert parser.errors == []
    assert parser.stack == []
    assert html.startswith("<!DOCTYPE html>")
    assert not re.search(r"https?://", html), "the page must not load anything"
    for tag, key, value in parser.attrs:
        assert key not in ("src", "href") or not value, (tag, key, value)
    assert "script" not in parser.tags
    return parser


def test_every_task_and_instance_is_in_the_page(tmp_path: Path) -> None:
    report = gxo.run(PLAYBOOK, workers=2).report
    parser = check(render_html(report))
    text = "\n".join(parser.text)
    cells = [t.strip() for t in parser.text]
    for name, result in report.task_results.items():
        assert name in cells
        for inst in result.instances:
            assert inst.label in cells
            assert inst.status in cells
    assert "each[0]" in cells
    assert "each[2]" in cells
    assert "nonzero_exit(4)" in cells
    assert "<b>not markup</b>" not in render_html(report)  # escaped, shown as text
    assert "Failed (ignored)" in cells
    assert "Skipped" in cells
    # The instance timeline: one bar per attempt (flaky twice), each with its details on
    # hover, after a grey bar for the time it was queued when it waited for a worker.
    bars = [t for t in parser.text if " attempt " in t]
    assert len(bars) == 1 + 3 + 2
    assert any("flaky attempt 1: Retried (nonzero_exit(4))" in t for t in bars)
    assert any(t.startswith("flaky attempt 2: Failed") for t in bars)
    pids = {
        a.worker_pid
        for r in report.task_results.values()
        for i in r.instances
        for a in i.attempts
        if a.worker_pid
    }
    for pid in pids:
        assert f"worker {pid}" in text
    queued = [t for t in parser.text if " queued " in t and "waiting for a worker" in t]
    waited = [i for r in report.task_results.values() for i in r.instances if i.queued_duration]
    assert len(queued) == len([i for i in waited if i.ready_time and i.start_time > i.ready_time])


def test_cli_writes_the_html_report(
    tmp_path: Path, gxo: Callable, write_playbook: Callable
) -> None:
    playbook = write_playbook(PLAYBOOK)
    out = tmp_path / "run.html"
    proc = gxo(playbook, "--html-report", out, "--report", tmp_path / "run.json")
    assert proc.returncode == 0, proc.stderr
    parser = check(out.read_text())
    assert "gxo run: html_demo" in parser.text
    assert not list(tmp_path.glob("run.html.tmp*"))


def test_a_run_where_nothing_ran_still_renders(tmp_path: Path) -> None:
    report = gxo.run(
        "schemaVersion: v1.0.0\nname: empty_run\ntasks:\n"
        "  - name: skipped\n    type: exec\n    when: '{{ false }}'\n"
        "    params: {command: 'true'}\n"
    ).report
    parser = check(render_html(report))
    assert "skipped" in [t.strip() for t in parser.text]


FAILING = """\
schemaVersion: v1.0.0
name: failing
tasks:
  - name: build
    type: exec
    params: {command: "true"}
  - name: unit
    type: exec
    depends_on: [build]
    retry: {attempts: 2, delay: 0}
    params:
      command: sh
      args: [-c, "for i in $(seq 1 25); do echo case $i ok; done; echo 'E boom <x>' >&2; exit 3"]
  - name: lint
    type: python
    depends_on: [build]
    ignore_errors: true
    params: {function: "json:loads", args: ["{not json"]}
  - name: package
    type: exec
    depends_on: [unit]
    params: {command: "true"}
"""


def test_failures_come_first_with_command_output_and_traceback() -> None:
    report = gxo.run(FAILING, workers=2).report
    html = render_html(report)
    parser = check(html)
    cells = [t.strip() for t in parser.text]
    # The failures section precedes the timeline, the DAG and the tables.
    order = [html.index(h) for h in ("Failures (2)", "Timeline of each", "<h2>DAG", "<h2>Tasks")]
    assert order == sorted(order)
    failures = html[html.index("Failures (2)") : html.index("Timeline of each")]
    assert failures.index("unit") < failures.index("lint")  # run-failing before ignored
    assert "sh -c &#39;for i in $(seq 1 25)" in failures  # the command, quoted as a shell would
    assert "case 25 ok" in failures
    assert "case 5 ok" not in failures  # only the last 20 lines
    assert "E boom &lt;x&gt;" in failures  # stderr, escaped
    assert "exit code" in cells
    assert "3" in cells
    assert "2 attempts (retries)" in cells  # the retries, listed
    assert "JSONDecodeError" in failures
    assert "traceback" in cells
    assert "Traceback (most recent call last)" in failures
    assert parser.tags.count("details") >= 5  # collapsible instances
    # The DAG: one node per task, one path per edge.
    assert {"build", "unit", "lint", "package"} <= set(cells)
    assert parser.tags.count("path") == 3


def test_the_page_renders_in_headless_chromium(tmp_path: Path) -> None:
    browser = next(
        (b for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)), None
    )
    if browser is None:
        pytest.skip("no Chromium on this machine (apt-get install chromium); parsed only")
    report = gxo.run(FAILING, workers=2).report
    page = tmp_path / "run.html"
    page.write_text(render_html(report))
    shot = tmp_path / "run.png"
    common = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"]
    common += [f"--user-data-dir={tmp_path / 'profile'}", "--no-first-run"]
    dom = subprocess.run(
        [*common, "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=90, check=True, start_new_session=True,
    )  # fmt: skip
    # The browser built the same document: every section, every collapsible instance.
    assert "Failures (2)" in dom.stdout
    assert dom.stdout.count("<details") == render_html(report).count("<details")
    assert dom.stdout.count("<rect") == render_html(report).count("<rect")
    subprocess.run(
        [*common, "--window-size=1280,2000", f"--screenshot={shot}", page.as_uri()],
        capture_output=True, timeout=90, check=True, start_new_session=True,
    )  # fmt: skip
    data = shot.read_bytes()
    assert data.startswith(b"\x89PNG")
    assert len(data) > 20_000  # a page with content, not a blank one


BIG = """\
schemaVersion: v1.0.0
name: html_big
tasks:
  - name: first
    type: passthrough
  - name: each
    type: passthrough
    loop: "{{ range(%d) | list }}"
    loop_control: {parallel: 50}
    depends_on: [first]
    params: {value: "{{ item }}"}
"""


def _chromium() -> str | None:
    return next(
        (b for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)), None
    )


def test_past_the_threshold_the_timeline_is_one_bar_per_task_in_headless_chromium(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past TIMELINE_AGGREGATE_ABOVE instances that ran, the timeline is aggregated per
    task (count, first start, last end, statuses, slowest instances), the instances are
    read from the run's spool (as for any run past INLINE_INSTANCES), and the page still
    opens in a browser."""
    import gxo.scheduler.report as report_module
    from gxo.observability.html_report import SLOWEST, TIMELINE_AGGREGATE_ABOVE

    monkeypatch.setattr(report_module, "INLINE_INSTANCES", 0)
    items = TIMELINE_AGGREGATE_ABOVE + 100
    path = tmp_path / "big.yaml"
    path.write_text(BIG % items)
    report = gxo.run(gxo.load(path), workers=2, state_dir=str(tmp_path / "state")).report
    assert report.task_results["each"].instances == []  # in the spool, not in memory
    html = render_html(report)
    assert f"{items + 1} instances ran: more than {TIMELINE_AGGREGATE_ABOVE}" in html
    assert "Timeline of each instance" not in html
    assert "each[0] attempt" not in html  # no bar per instance
    assert f"each: {items} instance(s) ran, Completed {items}" in html  # the task's bar
    assert html.count(" (Completed)") >= SLOWEST  # its slowest instances are listed
    assert f'<td class="num">{items}</td>' in html  # the task table counts from the spool
    page = tmp_path / "big.html"
    page.write_text(html)
    assert len(html) < 3_000_000  # bounded: details and worker bars are cut at fixed limits
    browser = _chromium()
    if browser is None:
        pytest.skip("no Chromium on this machine (apt-get install chromium); parsed only")
    common = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"]
    common += [f"--user-data-dir={tmp_path / 'profile'}", "--no-first-run"]
    dom = subprocess.run(
        [*common, "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=90, check=True, start_new_session=True,
    )  # fmt: skip
    assert "so one bar per task" in dom.stdout
    assert dom.stdout.count("<details") == html.count("<details")
    assert dom.stdout.count("<rect") == html.count("<rect")


def test_a_short_runs_timeline_ticks_are_all_different(
    tmp_path: Path, gxo: Callable, write_playbook: Callable
) -> None:
    """A run of a few milliseconds had its six timeline ticks labelled with two decimals,
    ``0.00s 0.01s 0.01s 0.02s 0.03s 0.03s``: the axis said two moments were one."""
    playbook = write_playbook(
        """\
        schemaVersion: v1.0.0
        name: short
        tasks:
          - name: one
            type: passthrough
          - name: two
            type: passthrough
            depends_on: [one]
        """
    )
    out = tmp_path / "run.html"
    proc = gxo(playbook, "--html-report", out)
    assert proc.returncode == 0, proc.stderr
    page = out.read_text()
    svg = page.split("<svg", 1)[1].split("</svg>", 1)[0]
    ticks = re.findall(r'text-anchor="middle">([^<]*)</text>', svg)
    assert len(ticks) == 6, svg
    assert len(set(ticks)) == 6, ticks


def test_a_stream_that_printed_nothing_says_so_once(
    tmp_path: Path, gxo: Callable, write_playbook: Callable
) -> None:
    """A failed command's empty stderr was "stderr: last 0 lines of 0 bytes" then
    "(nothing)"; it is one heading, "stderr: nothing printed"."""
    playbook = write_playbook(
        """\
        schemaVersion: v1.0.0
        name: quiet_failure
        tasks:
          - name: only_stdout
            type: exec
            params: {command: sh, args: ["-c", "echo said this; exit 2"]}
        """
    )
    out = tmp_path / "run.html"
    proc = gxo(playbook, "--html-report", out)
    assert proc.returncode == 1, proc.stderr
    page = out.read_text()
    assert "stdout: last line of 10 bytes" in page
    assert "stderr: nothing printed" in page
    assert "0 lines of 0 bytes" not in page
