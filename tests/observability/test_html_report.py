"""The HTML run report: every task and instance, self-contained, well nested."""

from __future__ import annotations

import re
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path

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
    # The timeline: one bar per attempt (flaky twice), each with its details on hover.
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
