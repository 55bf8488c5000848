"""``timeout`` (whole task, GXO), ``attempt_timeout`` and ``task_defaults`` in the model."""

from __future__ import annotations

import pytest

from gxo.config.load import load_playbook_text
from gxo.config.model import RetryPolicy
from gxo.errors import PlaybookError

HEAD = 'schemaVersion: "v1.0.0"\nname: t\n'


def test_timeout_and_attempt_timeout_are_read() -> None:
    playbook = load_playbook_text(
        HEAD + "tasks:\n  - {name: a, type: exec, timeout: 1m30s, attempt_timeout: 500ms,"
        " params: {command: 'true'}}\n",
        source="t.yaml",
    )
    task = playbook.task("a")
    assert (task.timeout, task.attempt_timeout) == (90.0, 0.5)


def test_task_defaults_fill_in_what_a_task_does_not_set() -> None:
    playbook = load_playbook_text(
        HEAD
        + """task_defaults:
  timeout: 10m
  attempt_timeout: 30s
  retry: {attempts: 3, delay: 1s}
tasks:
  - {name: plain, type: exec, params: {command: 'true'}}
  - {name: own, type: exec, timeout: 5s, retry: {attempts: 2}, params: {command: 'true'}}
  - {name: none, type: exec, timeout: 0, attempt_timeout: 0, params: {command: 'true'}}
""",
        source="t.yaml",
    )
    plain, own, none = (playbook.task(n) for n in ("plain", "own", "none"))
    assert (plain.timeout, plain.attempt_timeout) == (600.0, 30.0)
    assert plain.retry == RetryPolicy(attempts=3, delay=1.0)
    assert (own.timeout, own.attempt_timeout) == (5.0, 30.0)
    assert own.retry == RetryPolicy(attempts=2)  # a task's retry block replaces the default
    assert (none.timeout, none.attempt_timeout) == (None, None)  # 0 turns a default off
    assert none.retry == RetryPolicy(attempts=3, delay=1.0)


def test_task_defaults_are_checked_like_task_keys() -> None:
    with pytest.raises(PlaybookError) as caught:
        load_playbook_text(
            HEAD + "task_defaults: {timeout: soon, retry: {attempts: 0}, loop: [1]}\n"
            "tasks:\n  - {type: exec, params: {command: 'true'}}\n",
            source="t.yaml",
        )
    paths = sorted(p.location.path for p in caught.value.problems)
    assert paths == [
        "$.task_defaults.loop",
        "$.task_defaults.retry.attempts",
        "$.task_defaults.timeout",
    ]
