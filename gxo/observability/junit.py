"""A JUnit XML file of a run (``gxo execute --junit FILE``), for CI systems to read.

The de facto format of Ant's and Jenkins' JUnit reports (GitLab, GitHub Actions, Jenkins,
Azure and Buildkite all read it): a ``<testsuites>`` root, one ``<testsuite>`` per playbook,
one ``<testcase>`` per task instance (``task``, or ``task[i]`` for a loop item), so a CI page
lists every task with its time and outcome:

- Completed: an empty ``<testcase>``;
- Failed: ``<failure message="reason: error" type="reason">`` holding the error, the
  traceback, the command and the last lines of stdout and stderr;
- Skipped and Cancelled: ``<skipped>`` with the reason; a failure that ``ignore_errors``
  absorbed: ``<skipped>`` starting ``failed (ignored)``, so it does not fail the CI job.

An invalid playbook (nothing ran, exit code 2) is one ``<testcase name="validate">`` with an
``<error type="invalid_playbook">`` listing every problem with its place, so the CI job shows
why instead of an empty suite.

Built from the run report only (what the workers sent back, redacted). Text is cleaned of
ANSI escapes and of every character XML 1.0 does not allow, so the file always parses.
"""

from __future__ import annotations

import os
import re
import shlex
import xml.etree.ElementTree as ET

from gxo._util.outputs import write_atomic
from gxo.report import (
    AttemptReport,
    ExecutionReport,
    InstanceReport,
    TaskResult,
    task_instances,
)

__all__ = ["clean_text", "exit_code_text", "render_junit", "write_junit"]

#: ANSI escape sequences: CSI (colours, cursor moves), OSC (titles, links) and 2-byte forms.
_ANSI = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[@-Z\\-_])")
#: Characters XML 1.0 cannot hold (C0 controls other than tab/LF/CR, DEL, surrogates, U+FFFE/F).
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff\ufffe\uffff]")


def clean_text(text: str) -> str:
    """``text`` without ANSI escapes and without characters XML 1.0 does not allow."""
    return _NOT_XML.sub("", _ANSI.sub("", text))


def exit_code_text(code: int) -> str:
    """``1``; ``-15 (killed by signal SIGTERM)`` for a command a signal ended, as the FAILED
    line says it (the report keeps the number)."""
    if code >= 0:
        return str(code)
    import signal

    try:
        name = signal.Signals(-code).name
    except ValueError:
        name = str(-code)
    return f"{code} (killed by signal {name})"


def _seconds(value: float) -> str:
    return f"{value:.3f}"


def _run_time(inst: InstanceReport) -> float:
    return sum(a.duration for a in inst.attempts)


def _output_text(attempt: AttemptReport | None) -> str:
    """The command and the tails of stdout and stderr of an attempt, as plain text."""
    if attempt is None:
        return ""
    parts: list[str] = []
    if attempt.command is not None:
        where = f" (cwd {attempt.cwd})" if attempt.cwd else ""
        # Quoted as a shell reads it, as the FAILED line shows it: one copy-paste reruns it.
        parts.append("command: " + shlex.join(attempt.command) + where)
    if attempt.exit_code is not None:
        parts.append(f"exit code: {exit_code_text(attempt.exit_code)}")
    for output in attempt.outputs:
        if not output.tail:
            continue
        shown = "line" if len(output.tail) == 1 else f"{len(output.tail)} lines"
        size = "1 byte" if output.bytes == 1 else f"{output.bytes} bytes"
        parts.append(f"{output.name} (last {shown} of {size}):")
        parts.extend("  " + line for line in output.tail)
        if output.path:
            parts.append(f"  full log: {output.path}")
    return "\n".join(parts)


def _testcase(
    suite: ET.Element, playbook: str, label: str, result: TaskResult, inst: InstanceReport | None
) -> str:
    """Add one ``<testcase>``; return its outcome (passed, failed, skipped)."""
    case = ET.SubElement(
        suite,
        "testcase",
        name=clean_text(label),
        classname=clean_text(playbook),
        time=_seconds(_run_time(inst) if inst is not None else 0.0),
    )
    status = inst.status if inst is not None else result.status
    reason = (inst.reason if inst is not None else "") or result.reason
    error = (inst.error if inst is not None else "") or result.error
    last = inst.attempts[-1] if inst is not None and inst.attempts else None
    message = f"{reason}: {error}" if reason and error else (reason or error)
    if status == "Failed" and result.ignored:
        skipped = ET.SubElement(case, "skipped")
        skipped.text = clean_text("failed (ignored)" + (f": {message}" if message else ""))
        return "skipped"
    if status == "Failed":
        failure = ET.SubElement(case, "failure", message=clean_text(message), type=reason)
        body = [error]
        if inst is not None and inst.traceback:
            body.append(inst.traceback.rstrip("\n"))
        if inst is not None and len(inst.attempts) > 1:
            body.append(f"after {len(inst.attempts)} attempts")
        output = _output_text(last)
        if output:
            body.append(output)
        failure.text = clean_text("\n".join(p for p in body if p))
        _system_streams(case, last)
        return "failed"
    if status in ("Skipped", "Cancelled"):
        skipped = ET.SubElement(case, "skipped")
        skipped.text = clean_text(f"{status.lower()}: {message}" if message else status.lower())
        return "skipped"
    _system_streams(case, last)
    return "passed"


def _system_streams(case: ET.Element, attempt: AttemptReport | None) -> None:
    """``<system-out>``/``<system-err>``: the tails CI pages show under a test."""
    if attempt is None:
        return
    tags = {"stdout": "system-out", "stderr": "system-err"}
    for output in attempt.outputs:
        if output.name in tags and output.tail:
            ET.SubElement(case, tags[output.name]).text = clean_text("\n".join(output.tail) + "\n")


def render_junit(report: ExecutionReport) -> str:
    """The JUnit XML document of ``report``."""
    playbook = report.playbook_name
    root = ET.Element("testsuites", name=clean_text(playbook))
    suite = ET.SubElement(root, "testsuite", name=clean_text(playbook))
    counts = {"passed": 0, "failed": 0, "skipped": 0}
    errors = 0
    if report.problems:  # an invalid playbook: nothing ran
        case = ET.SubElement(
            suite, "testcase", name="validate", classname=clean_text(playbook), time="0.000"
        )
        count = len(report.problems)
        message = f"the playbook is invalid ({count} problem{'s' if count != 1 else ''})"
        error = ET.SubElement(case, "error", message=message, type="invalid_playbook")
        error.text = clean_text(report.error)
        errors = 1
    elif not report.task_results and report.overall_status == "Failed":  # refused at start
        case = ET.SubElement(
            suite, "testcase", name="start", classname=clean_text(playbook), time="0.000"
        )
        message = clean_text(report.error.partition("\n")[0])
        error = ET.SubElement(case, "error", message=message, type="not_run")
        error.text = clean_text(report.error)
        errors = 1
    for name, result in report.task_results.items():
        expanded = False
        for inst in task_instances(report, name):  # from the run's spool for a big run
            counts[_testcase(suite, playbook, inst.label, result, inst)] += 1
            expanded = True
        if not expanded:  # skipped or cancelled before it was expanded
            counts[_testcase(suite, playbook, name, result, None)] += 1
    tests = sum(counts.values()) + errors
    duration = _seconds(report.duration)
    suite.attrib.update(
        tests=str(tests),
        failures=str(counts["failed"]),
        errors=str(errors),
        skipped=str(counts["skipped"]),
        time=duration,
        timestamp=report.start_time.strftime("%Y-%m-%dT%H:%M:%S"),
        id=report.run_id,
    )
    root.attrib.update(
        tests=str(tests), failures=str(counts["failed"]), errors=str(errors), time=duration
    )
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, "unicode") + "\n"


def write_junit(path: str | os.PathLike[str], report: ExecutionReport) -> None:
    """Write the file as every output file is (:func:`~gxo._util.outputs.write_atomic`: a
    temporary file renamed over ``path``, or in place into a pipe or a device)."""
    write_atomic(path, render_junit(report).encode())
