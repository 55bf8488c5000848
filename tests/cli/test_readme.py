"""README.md cannot drift into fiction: its quick start, examples and reasons are checked."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
SHELLS = {"sh", "bash", "shell", "console"}
FENCE = re.compile(r"^```([\w-]*)[^\n]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)


def _text() -> str:
    return README.read_text(encoding="utf-8")


def _section(heading: str, level: int = 2) -> str:
    """The body of the section with this heading, up to the next heading of its level or above."""
    text = _text()
    match = re.search(rf"^{'#' * level} {re.escape(heading)}[ \t]*$", text, re.MULTILINE)
    assert match is not None, f"README.md has no '{'#' * level} {heading}' section"
    rest = text[match.end() :]
    end = re.search(rf"^#{{1,{level}}} ", rest, re.MULTILINE)
    return rest[: end.start()] if end else rest


def test_quick_start_is_exactly_two_shell_commands() -> None:
    blocks = FENCE.findall(_section("Quick start"))
    assert len(blocks) == 2, f"the Quick start must have exactly two code blocks, got {blocks}"
    for language, body in blocks:
        assert language in SHELLS, f"not a shell code block: ```{language}"
        lines = [line for line in body.splitlines() if line.strip()]
        assert len(lines) == 1, f"each Quick start block is one command line, got {lines}"


def test_quick_start_runs_the_quickstart_example_then_the_checks() -> None:
    (_, first), (_, second) = FENCE.findall(_section("Quick start"))
    assert "python3 -m venv .venv" in first
    assert "pip install ." in first
    assert first.rstrip().endswith("gxo examples/quickstart.yaml")
    assert (REPO / "examples" / "quickstart.yaml").is_file()
    for step in ("pip install -e '.[test]'", "scripts/check", "python -m pytest"):
        assert step in second


def test_second_quick_start_command_matches_ci() -> None:
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    for step in ("-e '.[test]'", "scripts/check", "python -m pytest"):
        assert step in ci, f".ci/run no longer runs {step!r}; update the README's Quick start"


def _named_examples() -> list[str]:
    return sorted(set(re.findall(r"examples/[\w.-]+\.(?:ya?ml|py)\b", _text())))


def test_readme_names_examples() -> None:
    assert "examples/quickstart.yaml" in _named_examples()


@pytest.mark.parametrize("path", _named_examples())
def test_every_example_named_in_the_readme_exists(path: str) -> None:
    assert (REPO / path).is_file(), f"README.md names {path}, which does not exist"


def _table_reasons() -> list[str]:
    """The first column of the reasons table (the table whose header starts ``| reason |``)."""
    lines = _text().splitlines()
    start = next(i for i, line in enumerate(lines) if re.match(r"\|\s*reason\s*\|", line))
    reasons = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        cell = line.split("|")[1]
        match = re.fullmatch(r"\s*`([^`]+)`\s*", cell)
        assert match is not None, f"a reasons table row must start with a `reason`: {line}"
        reasons.append(match.group(1))
    return reasons


def _source() -> str:
    return "\n".join(
        path.read_text(encoding="utf-8") for path in sorted((REPO / "gxo").rglob("*.py"))
    )


def test_reasons_table_is_not_empty() -> None:
    reasons = _table_reasons()
    assert {"when_false", "upstream_failed", "timed_out", "worker_signaled(SIG)"} <= set(reasons)


@pytest.mark.parametrize("reason", _table_reasons())
def test_every_reason_in_the_table_occurs_in_the_source(reason: str) -> None:
    source = _source()
    if "(" in reason:
        # worker_signaled(SIG) is built as f"worker_signaled({name})": look for the prefix.
        needle = reason.split("(", 1)[0] + "("
        assert needle in source, f"no reason starting with {needle!r} in gxo/"
    else:
        assert f'"{reason}"' in source, f'the reason "{reason}" does not occur in gxo/'
