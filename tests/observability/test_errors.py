"""Errors a person can act on: each names where it happened and what to do (README "Errors").

Every case runs the real ``gxo`` command; the wording asserted here is the documented one.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

HEADER = "schemaVersion: v1.0.0\nname: errs\ntasks:\n"

# (case, playbook tasks, exit code, lines expected on stderr, in order)
CASES = [
    (
        "yaml_syntax",
        "  - name: a\n    type: exec\n    params: {command: [true\n",
        2,
        [
            "playbook is invalid (1 problem):",
            r"{path}:7:1: $: invalid YAML: did not find expected ',' or ']'",
            "    hint: while parsing a flow sequence (line 6); check the indentation and quoting",
        ],
    ),
    (
        "unknown_key",
        "  - name: a\n    type: exec\n    parms: {command: 'true'}\n",
        2,
        [
            "playbook is invalid (1 problem):",
            "{path}:6:5: $.tasks[0].parms: unknown key 'parms' in task 0",
            "    hint: did you mean 'params'?",
        ],
    ),
    (
        "unknown_module",
        "  - name: a\n    type: exce\n    params: {command: 'true'}\n",
        2,
        [
            "{path}:5:11: $.tasks[0].type: unknown module type 'exce'",
            "    hint: did you mean 'exec'? Run `gxo modules` to list the installed modules.",
        ],
    ),
    (
        "bad_params",
        "  - name: p\n    type: passthrough\n    register: r\n    params: {value: 'yes'}\n"
        "  - name: a\n    type: exec\n    params: {command: 'true', shell: '{{ r.value }}'}\n",
        1,
        [
            "error: FAILED   a: bad_params: parameter 'shell' must be a boolean, got str",
            "    where: task 'a' ($.tasks[1], type exec)",
            "    hint: check the task's params against `gxo modules` (it lists the parameters of "
            "exec with their types)",
        ],
    ),
    (
        "secret_missing",
        "  - name: a\n    type: exec\n"
        "    params: {command: echo, args: [\"{{ secret('GXO_TEST_UNSET_SECRET') }}\"]}\n",
        1,
        [
            "error: FAILED   a: secret_missing: $.tasks[0].params.args[0]: secret "
            "'GXO_TEST_UNSET_SECRET' is not set (hint: export GXO_TEST_UNSET_SECRET in the "
            "environment gxo runs in)",
            "    where: task 'a' ($.tasks[0], type exec)",
        ],
    ),
    (
        "template_undefined",
        "  - name: a\n    type: exec\n    params: {command: echo, args: ['{{ nope }}']}\n",
        2,
        [
            "{path}:6:36: $.tasks[0].params.args[0]: undefined variable 'nope'",
            "    hint: define it under 'vars', pass --var nope=..., or register it from a task",
        ],
    ),
    (
        "template_syntax",
        "  - name: a\n    type: exec\n    params: {command: echo, args: ['{{ x + }}']}\n",
        2,
        [
            "{path}:6:36: $.tasks[0].params.args[0]: template syntax error: unexpected "
            "'end of print statement'",
            "    hint: gxo templates are Jinja2: {{ expression }}, {% statement %}, {# comment #}",
        ],
    ),
    (
        "template_runtime",
        "  - name: first\n    type: exec\n    params: {command: echo, args: [hi]}\n"
        "    register: first_out\n"
        "  - name: second\n    type: exec\n    depends_on: [first]\n"
        "    params: {command: echo, args: ['{{ first_out.nope }}']}\n",
        1,
        [
            "error: FAILED   second: template_error: $.tasks[1].params.args[0]: 'first_out' has "
            "no attribute 'nope' (keys: 'command', 'cwd', 'exit_code', 'stderr', 'stdout')",
            "    where: task 'second' ($.tasks[1], type exec)",
            "    hint: fix the template in the task's params; `gxo plan PLAYBOOK` shows the "
            "params rendered with the playbook's vars",
        ],
    ),
    (
        "import_failed",
        "  - name: fn\n    type: python\n    params: {function: 'nowhere.py:main'}\n",
        1,
        [
            "error: FAILED   fn: import_failed: cannot load 'nowhere.py:main': file "
            "'{tmp}/nowhere.py': No such file or directory",
            "    where: task 'fn' ($.tasks[0], type python)",
            "    hint: check the function's module or file path in params (a relative file is "
            "looked up in the playbook's directory, then the current one) and that it imports",
        ],
    ),
    (
        "bad_params_at_load",
        "  - name: a\n    type: exec\n    params: {comand: 'true'}\n",
        2,
        [
            "playbook is invalid (1 problem):",
            "{path}:6:13: $.tasks[0].params: missing required parameter 'command'",
            "    hint: 'comand' is given: did you mean 'command'? `gxo modules` lists the "
            "parameters of exec with their types",
        ],
    ),
]


@pytest.mark.parametrize(
    ("tasks", "code", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_error_wording(
    tasks: str, code: int, expected: list[str], tmp_path: Path, gxo: Callable
) -> None:
    path = tmp_path / "playbook.yaml"
    path.write_text(HEADER + tasks)
    proc = gxo(path, "--no-progress")
    assert proc.returncode == code, proc.stderr
    lines = proc.stderr.splitlines()
    wanted = [e.replace("{path}", str(path)).replace("{tmp}", str(tmp_path)) for e in expected]
    # The expected lines appear in this order (other lines may come between the groups).
    start = lines.index(wanted[0]) if wanted[0] in lines else -1
    assert start >= 0, f"{wanted[0]!r} not in:\n{proc.stderr}"
    assert lines[start : start + len(wanted)] == wanted, proc.stderr


def test_missing_secret_from_a_directory_names_the_file(tmp_path: Path, gxo: Callable) -> None:
    path = tmp_path / "playbook.yaml"
    path.write_text(HEADER + CASES[4][1])
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    proc = gxo(path, "--no-progress", "--secrets-dir", secrets)
    assert proc.returncode == 1
    assert f"(hint: create the file '{secrets}/GXO_TEST_UNSET_SECRET')" in proc.stderr


def test_missing_playbook_and_bad_option(tmp_path: Path, gxo: Callable) -> None:
    proc = gxo(tmp_path / "nope.yaml")
    assert proc.returncode == 2
    assert f"{tmp_path}/nope.yaml: $: cannot read the playbook: No such file or directory" in (
        proc.stderr
    )
    proc = gxo("--bogus", "x.yaml")
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [
        "gxo execute: unrecognized arguments: --bogus",
        "(run 'gxo execute --help' for usage)",
    ]


def test_readme_errors_table_lists_every_case() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    match = re.search(r"^## Errors\n(.*?)(?=^## )", readme, re.M | re.S)
    assert match is not None, "README.md has no '## Errors' section"
    section = match.group(1)
    for needle in (
        "invalid YAML",
        "unknown key",
        "unknown module type",
        "bad_params",
        "secret_missing",
        "undefined variable",
        "template syntax error",
        "template_error",
        "import_failed",
    ):
        assert needle in section, needle
