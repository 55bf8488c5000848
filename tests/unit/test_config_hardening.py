"""Load-time hardening (issue 11): input limits, misreadable numbers, the maximum duration,
``secret()`` in a literal ``loop``, cycles reported with other problems, module params."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from gxo.config import MAX_DURATION, InputLimits
from gxo.config.load import load_playbook_data, load_playbook_text
from gxo.config.model import Playbook
from gxo.errors import PlaybookError, Problem
from gxo.modules.registry import KnownTypes

HEAD = "schemaVersion: v1.0.0\nname: test\n"


def load(body: str, **kwargs: Any) -> Playbook:
    return load_playbook_text(HEAD + body, source="t.yaml", **kwargs)


def problems(body: str, **kwargs: Any) -> list[Problem]:
    with pytest.raises(PlaybookError) as caught:
        load(body, **kwargs)
    return caught.value.problems


def where(found: list[Problem]) -> list[tuple[int | None, int | None, str]]:
    return [(p.location.line, p.location.column, p.location.path) for p in found]


# -- numbers YAML readers disagree on ---------------------------------------------------------


@pytest.mark.parametrize("text", ["0755", "-0755", "+012", "00", "08", "0_755"])
def test_a_leading_zero_integer_is_refused_with_a_hint(text: str) -> None:
    found = problems(f"vars:\n  mode: {text}\ntasks:\n  - type: exec\n")
    assert where(found) == [(4, 9, "$.vars.mode")]
    assert "has a leading zero" in found[0].message
    assert "0o" in found[0].hint
    assert f"quote it ('{text}')" in found[0].hint


@pytest.mark.parametrize(
    ("text", "value"),
    [("0", 0), ("0o755", 493), ("755", 755), ("'0755'", "0755"), ("0.5", 0.5), ("!!int 0755", 755)],
)
def test_unambiguous_numbers_still_load(text: str, value: Any) -> None:
    assert load(f"vars:\n  mode: {text}\ntasks:\n  - type: exec\n").vars["mode"] == value


# -- the maximum duration -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value", "path"),
    [
        ("    timeout: 1e12\n", "1e12", "$.tasks[0].timeout"),
        ("    timeout: 721h\n", "721h", "$.tasks[0].timeout"),
        ("    retry: {attempts: 2, delay: 3000000}\n", "3000000", "$.tasks[0].retry.delay"),
    ],
)
def test_a_duration_over_the_maximum_is_refused(field: str, value: str, path: str) -> None:
    found = problems(f"tasks:\n  - type: exec\n{field}")
    assert [p.location.path for p in found] == [path]
    assert "longer than the maximum duration (720h0m0s, 30 days)" in found[0].message
    assert "leave the key out for no limit" in found[0].hint


def test_the_maximum_duration_itself_is_accepted() -> None:
    assert MAX_DURATION == 30 * 24 * 3600
    assert load("timeout: 720h\ntasks:\n  - type: exec\n    timeout: 2592000\n").timeout == (
        MAX_DURATION
    )


def test_a_playbook_timeout_over_the_maximum_is_refused() -> None:
    found = problems("timeout: 1e12\ntasks:\n  - type: exec\n")
    assert where(found) == [(3, 10, "$.timeout")]


# -- input limits ----------------------------------------------------------------------------


def test_a_scalar_over_the_limit_is_refused_with_the_flag_in_the_hint() -> None:
    big = "x" * (1024 * 1024 + 1)
    found = problems(f"vars:\n  blob: {big}\ntasks:\n  - type: exec\n")
    assert where(found) == [(4, 9, "$.vars.blob")]
    assert found[0].message == (
        "this value is 1.0 MiB, larger than the limit for one value (1 MiB)"
    )
    assert "--max-scalar-size" in found[0].hint


def test_a_quoted_scalar_and_a_key_over_the_limit_are_refused_too() -> None:
    limits = InputLimits(max_scalar_bytes=100)
    found = problems(
        f'vars:\n  a: "{"é" * 60}"\n  {"k" * 101}: 1\ntasks:\n  - type: exec\n', limits=limits
    )
    assert [p.location.path for p in found] == ["$.vars.a", "$.vars"]
    assert "120 bytes" in found[0].message


def test_the_scalar_limit_can_be_raised() -> None:
    big = "x" * (1024 * 1024 + 1)
    limits = InputLimits(max_scalar_bytes=2 * 1024 * 1024)
    assert load(f"vars:\n  blob: {big}\ntasks:\n  - type: exec\n", limits=limits)


def test_the_scalar_limit_applies_to_playbooks_given_as_data() -> None:
    data = {"schemaVersion": "v1.0.0", "name": "d", "vars": {"x": "y" * 200}, "tasks": []}
    with pytest.raises(PlaybookError) as caught:
        load_playbook_data(data, limits=InputLimits(max_scalar_bytes=100))
    assert [p.location.path for p in caught.value.problems] == ["$.vars.x"]


def test_more_tasks_than_the_limit_is_refused_before_anything_else() -> None:
    tasks = "".join(f"  - {{name: t{i}, type: exec, bogus: 1}}\n" for i in range(11))
    found = problems(f"tasks:\n{tasks}", limits=InputLimits(max_tasks=10))
    assert [(p.location.path, p.message) for p in found] == [
        ("$.tasks", "the playbook has 11 tasks, more than the limit (10)")
    ]
    assert "--max-tasks" in found[0].hint
    assert (
        len(
            load(
                f"tasks:\n{tasks.replace(', bogus: 1', '')}", limits=InputLimits(max_tasks=11)
            ).tasks
        )
        == 11
    )


def test_the_default_task_limit_is_ten_thousand() -> None:
    assert InputLimits().max_tasks == 10_000
    assert InputLimits().max_scalar_bytes == 1024 * 1024


# -- secret() in a literal loop ------------------------------------------------------------------


def test_secret_in_a_literal_loop_is_refused_at_every_depth() -> None:
    found = problems(
        "tasks:\n  - type: exec\n    params: {command: echo}\n"
        "    loop: [a, \"{{ secret('X') }}\", {k: '{{ secret \"Y\" }}'}]\n"
    )
    assert [p.location.path for p in found] == ["$.tasks[0].loop[1]", "$.tasks[0].loop[2].k"]
    assert all("secret() cannot be used in 'loop'" in p.message for p in found)


def test_a_literal_loop_without_secret_is_fine() -> None:
    playbook = load("tasks:\n  - type: exec\n    loop: [a, '{{ b }}', 'secret']\n")
    assert playbook.tasks[0].loop == ["a", "{{ b }}", "secret"]


# -- cycles with other problems -----------------------------------------------------------------


def test_a_cycle_is_reported_with_a_duplicate_name_and_other_problems() -> None:
    found = problems(
        "tasks:\n"
        "  - {name: a, type: exec, register: ra, params: {command: '{{ rb.stdout }}'}}\n"
        "  - {name: b, type: exec, register: rb, params: {command: '{{ ra.stdout }}'}}\n"
        "  - {name: b, type: exec, params: {command: '{{ nope }}'}}\n"
    )
    messages = [p.message for p in found]
    assert "dependency cycle: a -> b -> a" in messages
    assert "duplicate task name 'b'" in messages
    assert "undefined variable 'nope'" in messages
    cycle = next(p for p in found if p.message.startswith("dependency cycle"))
    assert "'a' reads 'rb', registered by 'b'" in cycle.hint


# -- module parameters at load ---------------------------------------------------------------


PARAMS = """tasks:
  - {name: missing, type: exec, params: {args: [x]}}
  - {name: misspelt, type: exec, params: {comand: ls}}
  - {name: args, type: exec, params: {command: ls, args: {x: 1}}}
  - {name: shell, type: exec, params: {command: ls, shell: "yes"}}
  - {name: templated, type: exec, params: {command: "{{ c }}", shell: "{{ c }}", args: ["{{ c }}"]}}
  - {name: codes, type: exec, params: {command: ls, success_codes: ["{{ c }}", a]}}
vars: {c: 1}
"""


def test_params_are_checked_at_load_with_positions() -> None:
    found = problems(PARAMS, known_types=KnownTypes())
    assert [(p.location.line, p.location.path, p.message) for p in found] == [
        (4, "$.tasks[0].params", "missing required parameter 'command'"),
        (5, "$.tasks[1].params", "missing required parameter 'command'"),
        (6, "$.tasks[2].params.args", "parameter 'args' must be a list, got mapping"),
        (7, "$.tasks[3].params.shell", "parameter 'shell' must be a boolean, got str"),
        (
            9,
            "$.tasks[5].params.success_codes[1]",
            "parameter 'success_codes[1]' must be an integer, got str",
        ),
    ]
    assert found[1].hint.startswith("'comand' is given: did you mean 'command'?")
    assert "`gxo modules` lists the parameters of exec" in found[0].hint


def test_params_are_not_checked_without_known_types() -> None:
    assert load(PARAMS)


def test_an_unknown_param_is_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    body = "tasks:\n  - {type: passthrough, params: {value: 1, conn: local, valeu: 2}}\n"
    with caplog.at_level(logging.WARNING, logger="gxo.config"):
        playbook = load(body, known_types=KnownTypes())
    assert playbook.tasks[0].params == {"value": 1, "conn": "local", "valeu": 2}
    warnings = [r.getMessage() for r in caplog.records if r.name == "gxo.config"]
    assert len(warnings) == 2
    assert warnings[0].startswith(
        "t.yaml:4:44: $.tasks[0].params.conn: unknown parameter 'conn' for passthrough"
    )
    assert "--strict makes this an error" in warnings[0]
    assert "hint: did you mean 'value'?" in warnings[1]


def test_an_unknown_param_is_an_error_when_strict() -> None:
    body = "tasks:\n  - {type: passthrough, params: {value: 1, valeu: 2}}\n"
    found = problems(body, known_types=KnownTypes(), strict=True)
    assert [(p.location.path, p.message) for p in found] == [
        ("$.tasks[0].params.valeu", "unknown parameter 'valeu' for passthrough")
    ]
    assert found[0].hint.startswith("did you mean 'value'?")


def test_cross_field_rules_are_checked_when_nothing_is_templated() -> None:
    body = "tasks:\n  - {type: exec, params: {command: ls, working_dir: /a, cwd: /b}}\n"
    found = problems(body, known_types=KnownTypes())
    assert [p.location.path for p in found] == ["$.tasks[0].params"]
    assert "mutually exclusive" in found[0].message


def test_a_params_problem_found_earlier_is_not_reported_twice() -> None:
    found = problems("tasks:\n  - {type: exec, params: [a]}\n", known_types=KnownTypes())
    assert len(found) == 1


def test_an_invalid_literal_secret_name_is_refused_at_load() -> None:
    found = problems(
        "tasks:\n  - type: exec\n    params:\n      command: echo\n"
        "      args: [\"{{ secret('bad name') }}\", \"{{ secret('GOOD') }}\",\n"
        "             '{{ secret \"x y\" }}']\n"
    )
    assert [(p.location.path, p.message) for p in found] == [
        ("$.tasks[0].params.args[0]", "invalid secret name 'bad name'"),
        ("$.tasks[0].params.args[2]", "invalid secret name 'x y'"),
    ]
