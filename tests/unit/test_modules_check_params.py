"""check_params (load-time parameter checks with templated placeholders), convert_params's
``unknown="ignore"``, and the third-party check in a worker process."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import msgspec
import pytest

from gxo.modules import ParamsError, convert_params
from gxo.modules._check import Request, check_in_worker
from gxo.modules._params import ParamIssue, check_params
from gxo.modules.builtin.exec import ExecModule, ExecParams
from gxo.modules.builtin.passthrough import PassthroughModule


class Inner(msgspec.Struct, forbid_unknown_fields=True):
    port: int
    host: str = "localhost"


class Sample(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    count: int = 1
    tags: list[str] = []
    limits: dict[str, int] = {}
    inner: Inner | None = None


def issues(raw: Any) -> list[tuple[tuple[str | int, ...], str, bool]]:
    return [(i.path, i.message, i.unknown) for i in check_params(Sample, raw)]


def test_every_wrong_field_is_reported_not_only_the_first() -> None:
    assert issues({"count": "3", "tags": {"a": 1}, "nmae": "x"}) == [
        (("nmae",), "unknown parameter 'nmae' (did you mean 'name'?)", True),
        ((), "missing required parameter 'name'", False),
        (("count",), "parameter 'count' must be an integer, got str", False),
        (("tags",), "parameter 'tags' must be a list, got mapping", False),
    ]


@pytest.mark.parametrize(
    "raw",
    [
        {"name": "{{ n }}", "count": "{{ c }}"},
        {"name": "x", "tags": ["{{ a }}", "b", "{% if x %}y{% endif %}"]},
        {"name": "x", "limits": {"a": "{{ a }}", "b": 2}},
        {"name": "x", "inner": {"port": "{{ p }}"}},
        {"name": "x", "inner": "{{ whole }}"},
        "{{ all_params }}",
    ],
)
def test_templated_strings_stand_in_for_the_declared_type(raw: Any) -> None:
    assert check_params(Sample, raw) == []


def test_a_literal_beside_a_template_is_still_judged() -> None:
    assert issues({"name": "x", "tags": ["{{ a }}", 3]}) == [
        (("tags", 1), "parameter 'tags[1]' must be a string, got int", False)
    ]
    assert issues({"name": "x", "limits": {"a": "{{ a }}", "b": "two"}}) == [
        (("limits", "..."), "every value of parameter 'limits' must be an integer, got str", False)
    ]
    assert issues({"name": "x", "inner": {"port": "{{ p }}", "hots": "h"}}) == [
        (("inner", "hots"), "unknown parameter 'inner.hots' (did you mean 'host'?)", True)
    ]
    assert issues({"name": "x", "inner": {"host": "h"}}) == [
        (("inner",), "missing required parameter 'inner.port'", False)
    ]


def test_cross_field_rules_are_checked_beside_an_unknown_param() -> None:
    raw = {"command": "ls", "working_dir": "/a", "cwd": "/b", "conn": "x"}
    assert [(i.message, i.unknown) for i in check_params(ExecParams, raw)] == [
        ("unknown parameter 'conn'", True),
        ("parameters 'working_dir' and 'cwd' are mutually exclusive", False),
    ]


def test_params_that_are_not_a_mapping() -> None:
    assert check_params(Sample, ["a"]) == [ParamIssue((), "params must be a mapping, got a list")]
    assert issues(None) == [((), "missing required parameter 'name'", False)]


def test_the_issue_examples_for_exec() -> None:
    def exec_issues(raw: dict[str, Any]) -> list[str]:
        return [i.message for i in check_params(ExecParams, raw)]

    assert exec_issues({}) == ["missing required parameter 'command'"]
    assert exec_issues({"comand": "ls"}) == [
        "unknown parameter 'comand' (did you mean 'command'?)",
        "missing required parameter 'command'",
    ]
    assert exec_issues({"command": "ls", "args": {"x": 1}}) == [
        "parameter 'args' must be a list, got mapping"
    ]
    assert exec_issues({"command": "ls", "shell": "yes"}) == [
        "parameter 'shell' must be a boolean, got str"
    ]


def test_convert_params_can_ignore_unknown_params_at_any_depth() -> None:
    assert convert_params(PassthroughModule, {"value": 1, "conn": "x"}, unknown="ignore") == (
        PassthroughModule.Params(value=1)
    )
    with pytest.raises(ParamsError, match="unknown parameter 'conn'"):
        convert_params(PassthroughModule, {"value": 1, "conn": "x"})
    with pytest.raises(ParamsError, match="missing required parameter 'command'"):
        convert_params(ExecModule, {"comand": "ls"}, unknown="ignore")


def test_the_check_runs_in_a_worker_process_and_answers_each_request() -> None:
    """(The plugin test in tests/api shows a third-party module is imported only there.)"""
    answers = check_in_worker(
        [
            Request("exec", {"comand": "ls"}),
            Request("no:such", {}),
        ]
    )
    assert [i.message for i in answers[0].issues] == [
        "unknown parameter 'comand' (did you mean 'command'?)",
        "missing required parameter 'command'",
    ]
    assert answers[1].error.startswith("unknown module type 'no:such'")


PLUGIN = '''
import msgspec
from gxo.modules import Module

print("imported: this must not corrupt the answer")


class Params(msgspec.Struct, forbid_unknown_fields=True):
    who: str


class Thing(Module[Params]):
    """A test plugin."""

    name = "acme:thing"
    Params = Params

    def run(self, params, ctx):
        return {}
'''


def test_the_worker_finds_a_plugin_on_a_path_added_at_run_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The child gets the parent's sys.path, as the workers that run tasks do."""
    (tmp_path / "acme_thing_plugin.py").write_text(PLUGIN)
    dist = tmp_path / "acme_thing-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-thing\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[gxo.modules]\nacme:thing = acme_thing_plugin:Thing\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    answers = check_in_worker([Request("acme:thing", {"whom": "x"})])
    assert [(i.message, i.unknown) for i in answers[0].issues] == [
        ("unknown parameter 'whom' (did you mean 'who'?)", True),
        ("missing required parameter 'who'", False),
    ]
    assert "acme_thing_plugin" not in sys.modules
