"""exec prints non-string template values in its argv and environment as GXO does."""

from __future__ import annotations

import sys
from typing import Any

import pytest

from gxo.modules import ModuleContext, ParamsError, convert_params
from gxo.modules.builtin.exec import ExecModule, stringify_arguments
from gxo.template import compile_value

PY = sys.executable


def run(raw: dict[str, Any]) -> dict[str, Any]:
    module = ExecModule()
    params = convert_params(ExecModule, raw)
    return module.run(params, ModuleContext(task_name="t", instance_id=1))


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (8080, "8080"),
        (-3, "-3"),
        (True, "true"),
        (False, "false"),
        (0.5, "0.5"),
        (1e6, "1e+06"),
        (2.0, "2"),
        ([1, "a", True], "[1 a true]"),
        ({"b": 2, "a": [1, 2]}, "map[a:[1 2] b:2]"),
        ([], "[]"),
        ({}, "map[]"),
        ("already text", "already text"),
    ],
)
def test_each_value_prints_as_go_prints_it(value: Any, text: str) -> None:
    assert stringify_arguments({"args": [value]})["args"] == [text]


def test_templates_rendering_non_strings_run() -> None:
    state = {"port": 8080, "n": 3, "flag": True, "users": ["ann", "bob"], "cfg": {"k": 1}}
    raw = compile_value(
        {
            "command": PY,
            "args": [
                "-c",
                "import os, sys; print(sys.argv[1:], os.environ['N'], os.environ['F'])",
                "{{ port }}",
                "{{ .users }}",
                "{{ cfg }}",
                "{{ eq .n 3 }}",
            ],
            "env": {"N": "{{ n }}", "F": "{{ .flag }}"},
        },
        where="$.tasks[0].params",
    ).render(state)
    assert raw["args"][2] == 8080  # the template kept the native value...
    summary = run(raw)  # ...and exec printed it as text
    assert summary["stdout"] == "['8080', '[ann bob]', 'map[k:1]', 'true'] 3 true\n"


def test_strings_pass_through_untouched() -> None:
    raw = {"command": "echo", "args": ["a", "b"], "env": {"X": "1"}}
    assert stringify_arguments(raw) is raw


def test_argv_list_command_and_environment_items() -> None:
    raw = stringify_arguments({"command": [PY, 1], "environment": ["A=1"], "env": {"B": 2.5}})
    assert raw["command"] == [PY, "1"]
    assert raw["env"] == {"B": "2.5"}


def test_null_is_an_error_naming_the_item() -> None:
    with pytest.raises(ParamsError, match=r"parameter 'args\[1\]' is null"):
        convert_params(ExecModule, {"command": "echo", "args": ["a", None]})
    with pytest.raises(ParamsError, match=r"parameter 'env\.N' is null"):
        convert_params(ExecModule, {"command": "echo", "env": {"N": None}})


def test_a_non_list_is_still_reported_by_the_params_check() -> None:
    with pytest.raises(ParamsError, match="parameter 'args' must be a list"):
        convert_params(ExecModule, {"command": "echo", "args": 3})
