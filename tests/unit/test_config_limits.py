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
        load("limits: {swap: 1GiB}\ntasks:\n  - type: exec\n")
    assert "unknown key 'swap'" in caught.value.problems[0].format()


def test_process_limits_merge_key_by_key_and_imply_isolation_process() -> None:
    playbook = load(
        "limits: {memory: 512MiB, output: 1MiB}\n"
        "tasks:\n"
        "  - {name: a, type: exec, limits: {cpu: 1.5s, open_files: 64}}\n"
        "  - {name: b, type: exec, limits: {memory: 0}}\n"
        "  - {name: c, type: exec, limits: {processes: 50, file_size: 10MiB}}\n"
    )
    a, b, c = playbook.tasks
    assert a.limits == Limits(output=1 << 20, memory=512 << 20, cpu=1.5, open_files=64)
    assert a.isolation == "process"
    # memory: 0 lifts the playbook's memory limit; output alone needs no fresh process
    assert b.limits == Limits(output=1 << 20, memory=0)
    assert b.isolation == "pooled"
    assert c.limits.process_limits() == {
        "memory": 512 << 20,
        "processes": 50,
        "file_size": 10 << 20,
    }
    assert c.isolation == "process"


def test_zero_lifts_every_process_limit_of_the_playbook_counts_included() -> None:
    """As the README and the man page say for every key: ``open_files: 0`` and
    ``processes: 0`` lift the playbook's (they were refused: "must be at least 1")."""
    playbook = load(
        "limits: {open_files: 64, processes: 50}\n"
        "tasks:\n"
        "  - {name: a, type: exec}\n"
        "  - {name: b, type: exec, limits: {open_files: 0, processes: 0}}\n"
    )
    a, b = playbook.tasks
    assert a.isolation == "process"
    assert b.limits.process_limits() == {}
    assert b.isolation == "pooled"


def test_isolation_network_and_limits_mode_default_from_the_playbook() -> None:
    playbook = load(
        "isolation: process\nlimits_mode: best_effort\n"
        "tasks:\n"
        "  - {name: a, type: exec}\n"
        "  - {name: b, type: exec, isolation: pooled}\n"
        "  - {name: c, type: exec, isolation: pooled, network: false, limits_mode: strict}\n"
    )
    a, b, c = playbook.tasks
    assert (a.isolation, a.network, a.limits_mode) == ("process", True, "best_effort")
    assert (b.isolation, b.limits_mode) == ("pooled", "best_effort")
    # network: false changes the process for good: it needs a fresh one
    assert (c.isolation, c.network, c.limits_mode) == ("process", False, "strict")
    assert playbook.isolation == "process"


@pytest.mark.parametrize(
    ("body", "path", "message"),
    [
        ("isolation: fresh", "$.tasks[0].isolation", "must be one of: pooled, process"),
        ("limits: {cpu: lots}", "$.tasks[0].limits.cpu", "'cpu' must be a duration"),
        ("limits: {processes: -1}", "$.tasks[0].limits.processes", "processes"),
        ("limits: {memory: -1}", "$.tasks[0].limits.memory", "memory"),
        ("network: no-thanks", "$.tasks[0].network", "network"),
        ("limits_mode: lax", "$.tasks[0].limits_mode", "strict, best_effort"),
    ],
)
def test_bad_isolation_keys_point_at_the_key(body: str, path: str, message: str) -> None:
    with pytest.raises(PlaybookError) as caught:
        load(f"tasks:\n  - type: exec\n    {body}\n")
    (problem,) = caught.value.problems
    text = problem.format()
    assert text.startswith("t.yaml:5:")
    assert path in text
    assert message in text
