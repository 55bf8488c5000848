"""Every command shown with its output in README.md and docs/ runs, and prints that output.

A code block is executed when it holds ``$ COMMAND`` lines: each command runs through
``sh -c`` with the real ``gxo``, in a scratch directory holding ``examples/`` and the
playbooks of ``tests/cli/doc_blocks/`` (the files the examples name), and what it prints
(stdout and stderr) must be the lines under it. What depends on the machine is compared by
shape: durations (``0.01s``), pids, run ids and hashes, the worker count and why it was
chosen, and the scratch directory, which the docs write ``/home/me/proj``.

A comment on the line before a block says how to read it:

- ``<!-- executed: any order -->``: the lines may come in another order (parallel tasks);
- ``<!-- not executed: REASON -->``: the block is not run, and says why.

A ``text``, ``console`` or ``json`` block with neither commands nor a reason fails here, so a
new example cannot slip in unchecked.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
FIXTURES = Path(__file__).parent / "doc_blocks"
SCRATCH_SHOWN = "/home/me/proj"
#: A fenced block, also indented inside a list item (its lines then lose that indent).
FENCE = re.compile(r"^([ \t]*)```([\w-]*)[^\n]*\n(.*?)^\1```[ \t]*$", re.MULTILINE | re.DOTALL)
MARKER = re.compile(r"<!--\s*(executed: any order|not executed:\s*(.*?))\s*-->\s*$")
#: Blocks of these languages show output, or a command and its output.
OUTPUT_LANGUAGES = {"text", "console", "json", ""}

#: What differs from one machine or run to the next, and the shape it must have.
SHAPES = [
    r"\(--workers default: [^)]*\)",
    r"\d+ worker process(?:es)?",
    r"(?<![\w.])\d+\.\d+s\b",
    r"\bpid \d+",
    r"\b[0-9a-f]{12}\b",
    r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:[+-]\d\d:\d\d|Z)",
    r'"duration":\d+(?:\.\d+)?(?:e-?\d+)?',
]
_SHAPE = re.compile("|".join(f"({s})" for s in SHAPES))


class Block:
    def __init__(self, doc: Path, line: int, language: str, body: str, marker: str) -> None:
        self.doc, self.line, self.language, self.body, self.marker = (
            doc,
            line,
            language,
            body,
            marker,
        )

    @property
    def id(self) -> str:
        return f"{self.doc.name}:{self.line}"

    def steps(self) -> list[tuple[str, list[str]]]:
        """(command, the output lines under it), in order."""
        steps: list[tuple[str, list[str]]] = []
        for line in self.body.splitlines():
            if line.startswith("$ "):
                steps.append((line[2:], []))
            elif steps:
                steps[-1][1].append(line.rstrip())
        return steps


def blocks() -> list[Block]:
    found = []
    for doc in DOCS:
        text = doc.read_text(encoding="utf-8")
        for match in FENCE.finditer(text):
            before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
            marker = MARKER.search(before)
            line = text.count("\n", 0, match.start()) + 1
            indent = len(match.group(1))
            body = "".join(row[indent:] for row in match.group(3).splitlines(keepends=True))
            found.append(Block(doc, line, match.group(2), body, marker.group(1) if marker else ""))
    return found


def _runnable() -> list[Block]:
    return [b for b in blocks() if b.steps() and not b.marker.startswith("not executed")]


def pattern(expected: str) -> re.Pattern[str]:
    """An expected line as a regex: literal text, machine-dependent parts by their shape."""
    parts, last = [], 0
    for match in _SHAPE.finditer(expected):
        parts.append(re.escape(expected[last : match.start()]))
        index = next(i for i, group in enumerate(match.groups()) if group is not None)
        parts.append(SHAPES[index])
        last = match.end()
    parts.append(re.escape(expected[last:]))
    return re.compile("".join(parts))


def test_pattern_checks_shape_not_text() -> None:
    line = "ok       greet (0.01s)"
    assert pattern(line).fullmatch("ok       greet (12.34s)")
    assert not pattern(line).fullmatch("ok       greet (soon)")
    assert not pattern(line).fullmatch("FAILED   greet (0.01s)")
    start = "running q (4 tasks) on 2 worker processes (--workers default: CPU affinity)"
    assert pattern(start).fullmatch(
        "running q (4 tasks) on 1 worker process (--workers default: SLURM_CPUS_PER_TASK=1)"
    )
    assert pattern("worker (pid 41873) died").fullmatch("worker (pid 7) died")


def test_every_output_block_is_executed_or_says_why_not() -> None:
    unmarked = [
        b.id for b in blocks() if b.language in OUTPUT_LANGUAGES and not b.steps() and not b.marker
    ]
    assert not unmarked, (
        "these blocks show output but run no `$ command` and give no reason: add the command "
        "(and its playbook to tests/cli/doc_blocks/), or a '<!-- not executed: why -->' "
        f"comment on the line before: {unmarked}"
    )
    reasons = [b for b in blocks() if b.marker.startswith("not executed")]
    assert all(len(b.marker) > len("not executed: ") + 10 for b in reasons)
    assert len(_runnable()) >= 8  # guards the parser: these tests must not pass on nothing


def _scratch(tmp_path: Path) -> Path:
    shutil.copytree(REPO / "examples", tmp_path / "examples", ignore=shutil.ignore_patterns(".*"))
    for path in FIXTURES.iterdir():
        shutil.copy(path, tmp_path / path.name)
    return tmp_path


def _environment(tmp_path: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("GXO_", "OTEL_", "SLURM_")) and k not in ("FORCE_COLOR",)
    }
    bin_dir = str(Path(sys.executable).parent)
    env.update(NO_COLOR="1", PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}", HOME=str(tmp_path))
    return env


def _matches(expected: list[str], actual: list[str], any_order: bool) -> list[str]:
    """The problems, empty when ``actual`` has the lines of ``expected``."""
    patterns = [pattern(line) for line in expected]
    if not any_order:
        problems = [
            f"line {i + 1}: expected {e!r}, got {a!r}"
            for i, (e, a, p) in enumerate(zip(expected, actual, patterns, strict=False))
            if not p.fullmatch(a)
        ]
        if len(expected) != len(actual):
            problems.append(f"expected {len(expected)} lines, got {len(actual)}")
        return problems
    left = list(actual)
    problems = []
    for line, compiled in zip(expected, patterns, strict=True):
        hit = next((a for a in left if compiled.fullmatch(a)), None)
        if hit is None:
            problems.append(f"no output line like {line!r}")
        else:
            left.remove(hit)
    problems += [f"unexpected line {a!r}" for a in left]
    return problems


@pytest.mark.parametrize("block", _runnable(), ids=lambda b: b.id)
def test_doc_block_prints_what_it_shows(block: Block, tmp_path: Path) -> None:
    scratch = _scratch(tmp_path)
    env = _environment(tmp_path)
    for command, expected in block.steps():
        result = subprocess.run(
            ["sh", "-c", command],
            cwd=scratch,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=60,
            check=False,
        )
        actual = result.stdout.replace(str(scratch), SCRATCH_SHOWN).rstrip("\n").splitlines()
        actual = [line.rstrip() for line in actual]
        problems = _matches(expected, actual, block.marker == "executed: any order")
        assert not problems, (
            f"{block.id}: `{command}` does not print what {block.doc.name} shows; update the "
            "block (or tests/cli/doc_blocks/):\n  "
            + "\n  ".join(problems)
            + "\n--- actual output ---\n"
            + "\n".join(actual)
        )
