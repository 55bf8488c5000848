"""``output_capture`` and ``limits`` (gxo extensions): sizes parsed, merged key by key, errors."""

from __future__ import annotations

import pytest

from gxo.config import Playbook
from gxo.config.load import load_playbook_text
from gxo.config.model import Limits
from gxo.errors import PlaybookError

HEAD = 'schemaVersion: "v1.0.0"\nname: test\n'


def load(body: str) -> Playbook:
    return load_playbook_text(HEAD + body, source="t.yaml")


def test_defaults_are_none() -> None:
    playbook = load("tasks:\n  - type: exec\n")
    assert playbook.output_capture is None
    assert playbook.limits == Limits()
    assert playbook.tasks[0].limits.output is None


def test_sizes_are_bytes_and_task_limits_override_the_playbooks() -> None:
    playbook = load(
        "output_capture: 512MiB\n"
        "limits: {output: 10M}\n"
        "tasks:\n"
        "  - {name: a, type: exec}\n"
        "  - {name: b, type: exec, limits: {output: 2000}}\n"
        "  - {name: c, type: exec, limits: {}}\n"
    )
    assert playbook.output_capture == 512 << 20
    assert [t.limits.output for t in playbook.tasks] == [10 << 20, 2000, 10 << 20]


def test_bad_size_points_at_the_key_with_a_hint() -> None:
    with pytest.raises(PlaybookError) as caught:
        load("tasks:\n  - type: exec\n    limits: {output: lots}\n")
    (problem,) = caught.value.problems
    text = problem.format()
    assert text.startswith("t.yaml:5:")
    assert "$.tasks[0].limits.output" in text
    assert "'output' must be a size like 1GiB, 512MiB or 64KB, got 'lots'" in text
    assert "a plain number means bytes" in text


def test_unknown_limit_is_refused() -> None:
    with pytest.raises(PlaybookError) as caught:
        load("limits: {memory: 1GiB}\ntasks:\n  - type: exec\n")
    assert "unknown key 'memory'" in caught.value.problems[0].format()
