"""What a worker skips or caches per instance gives the same results as doing it every time:
params without a template are used as they arrived, the module class and the capture
settings are looked up once or only when read."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gxo.modules import ModuleContext
from gxo.modules.capture import CaptureSettings
from gxo.pool.worker import _no_template, in_process
from gxo.wire import Run, WorkerConfig

TESTS = Path(__file__).resolve().parents[1]
ECHO = "fixtures_modules.funcs:echo"


@pytest.fixture(autouse=True)
def _fixtures_importable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(TESTS))


def run(index: int, params: dict[str, Any], namespace: dict[str, Any] | None = None) -> Run:
    return Run(index, index, f"t{index}", "python", params, namespace or {})


@pytest.mark.parametrize(
    ("params", "plain"),
    [
        ({"function": "m:f"}, True),
        ({"function": "m:f", "kwargs": {"x": "a { b } {c}", "n": [1, 2.5, None]}}, True),
        ({"function": "m:f", "kwargs": {"x": "{{ y }}"}}, False),
        ({"function": "m:f", "args": ["{% if y %}1{% endif %}"]}, False),
        ({"function": "m:f", "args": [["deep", {"k": "{# note #}"}]]}, False),
        ({"function": "m:f", "kwargs": {"{{ key }}": 1}}, False),  # a key only looks like one
    ],
)
def test_params_without_a_template_are_recognised(params: dict[str, Any], plain: bool) -> None:
    assert _no_template(params) is plain


def test_plain_and_templated_params_reach_the_function_as_before() -> None:
    attempt = in_process()
    plain = {"function": ECHO, "kwargs": {"text": "a {b} c", "n": 3}}
    done = attempt(run(0, plain))
    assert done.ok, done
    assert done.summary == {"args": [], "kwargs": {"text": "a {b} c", "n": 3}}
    templated = {"function": ECHO, "kwargs": {"prev": "{{ r0 }}", "text": "x {{ r0.n }}"}}
    done = attempt(run(1, templated, {"r0": {"n": 7}}))
    assert done.ok, done
    assert done.summary == {"args": [], "kwargs": {"prev": {"n": 7}, "text": "x 7"}}
    # The same task again (its compiled params are cached) renders against the new state.
    done = attempt(run(1, templated, {"r0": {"n": 8}}))
    assert done.summary == {"args": [], "kwargs": {"prev": {"n": 8}, "text": "x 8"}}


def test_a_function_that_changes_its_arguments_does_not_change_the_next_instance(
    tmp_path: Path,
) -> None:
    """Params without a template are the run's own (decoded for each instance), never a value
    kept from an earlier instance of the same task."""
    source = tmp_path / "grow.py"
    source.write_text("def grow(items):\n    items.append(0)\n    return len(items)\n")
    attempt = in_process()
    for _ in range(2):
        done = attempt(run(0, {"function": f"{source}:grow", "args": [[1]]}))
        assert done.ok, done
        assert done.summary == 2


def test_an_unknown_module_fails_every_instance() -> None:
    attempt = in_process(WorkerConfig())
    for index in range(2):
        done = attempt(Run(index, index, f"t{index}", "no_such_module_type", {}, {}))
        assert not done.ok
        assert done.reason == "module_unavailable"


def test_capture_settings_are_made_on_first_read_and_once() -> None:
    made: list[CaptureSettings] = []

    def make() -> CaptureSettings:
        made.append(CaptureSettings(capture_limit=123))
        return made[-1]

    ctx = ModuleContext(task_name="t", instance_id=1, capture=make)
    assert made == []
    assert ctx.capture.capture_limit == 123
    assert ctx.capture is made[0]
    assert len(made) == 1
    assert ModuleContext(task_name="t", instance_id=2).capture == CaptureSettings()
    given = CaptureSettings(output_limit=5)
    assert ModuleContext(task_name="t", instance_id=3, capture=given).capture is given


def test_a_first_instance_rendered_without_compiling_fails_as_a_compiled_one_does() -> None:
    """The first instance of a task whose templates are bare paths is rendered without
    compiling its params; a name it cannot find fails it exactly as the compiled params
    fail the next instance (same reason, same message, same place)."""
    attempt = in_process()
    params = {"function": ECHO, "kwargs": {"prev": "{{ r9 }}"}}
    first, second = (attempt(run(3, params, {"r0": 1})) for _ in range(2))
    assert not first.ok
    assert first.reason == "template_error"
    assert "$.tasks[3].params.kwargs.prev" in first.error
    assert (second.ok, second.reason, second.error) == (first.ok, first.reason, first.error)
    done = attempt(run(3, params, {"r9": [1]}))  # the same task, now compiled: renders
    assert done.summary == {"args": [], "kwargs": {"prev": [1]}}
