"""Every fixture in tests/playbooks loads (valid/) or fails with its expected text (invalid/)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gxo.config.load import load_playbook, load_playbook_text
from gxo.errors import PlaybookError

PLAYBOOKS = Path(__file__).resolve().parent.parent / "playbooks"
VALID = sorted((PLAYBOOKS / "valid").glob("*.yaml"))
INVALID = sorted((PLAYBOOKS / "invalid").glob("*.yaml"))


def test_fixtures_exist() -> None:
    assert len(VALID) >= 10
    assert len(INVALID) >= 20
    for path in INVALID:
        assert path.with_suffix(".expected").is_file(), f"{path.name} has no .expected file"


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.name)
def test_valid_playbook_loads(path: Path) -> None:
    playbook = load_playbook(path)
    assert playbook.tasks
    assert playbook.source == str(path)
    assert playbook.schema_version.startswith("v1.")


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.name)
def test_invalid_playbook_reports_expected_problems(path: Path) -> None:
    with pytest.raises(PlaybookError) as caught:
        load_playbook_text(path.read_text("utf-8"), source=path.name)
    text = str(caught.value)
    expected = path.with_suffix(".expected").read_text("utf-8")
    lines = expected.splitlines()
    if lines and lines[0] == "# substrings":
        position = 0
        for line in filter(None, lines[1:]):
            found = text.find(line, position)
            assert found >= 0, f"{line!r} not found (in order) in:\n{text}"
            position = found + len(line)
    else:
        assert text == expected.rstrip("\n")
    # Every problem has a position in the file, and they come sorted by it.
    problems = caught.value.problems
    positions = [(p.location.line or 0, p.location.column or 0) for p in problems]
    assert positions == sorted(positions)
    assert all(p.location.file == path.name for p in problems)


def test_examples_directory_loads() -> None:
    """The project's examples/ are valid playbooks too."""
    examples = sorted((PLAYBOOKS.parent.parent / "examples").glob("*.yaml"))
    for path in examples:
        load_playbook(path)
