"""The render budget of parent-side templates (``when``, ``loop``): time, size, interrupts."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from gxo.errors import TemplateError
from gxo.template import (
    RenderBudget,
    RenderStopped,
    allow_renders,
    compile_value,
    interrupt_renders,
    render_budget,
    set_render_budget,
)

NESTED = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}x"


@pytest.fixture(autouse=True)
def budget() -> Iterator[None]:
    saved = render_budget()
    set_render_budget(RenderBudget(seconds=0.5, max_size=1024 * 1024))
    allow_renders()
    yield
    set_render_budget(saved)
    allow_renders()


def when(text: str) -> Any:
    return compile_value(text, where="$.tasks[0].when", allow_secret=False)


def fails(text: str, ns: dict[str, Any] | None = None) -> TemplateError:
    started = time.monotonic()
    with pytest.raises(TemplateError) as caught:
        when(text).render(ns or {})
    assert time.monotonic() - started < 5
    assert caught.value.where == "$.tasks[0].when"
    assert "--render-timeout" in caught.value.hint
    return caught.value


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{{ 'a' * 10**9 }}", "str * 1000000000 would make a value of 1,000,000,000"),
        ("{{ 10**9 * 'a' }}", "str * 1000000000"),
        ("{{ [0] * 10**8 }}", "list * 100000000"),
        ("{{ range(100000) | list * 100 }}", "list * 100"),
        ("{{ 7 ** (10**8) }}", "a number of about"),
        ("{{ ('a' * 1000) | replace('a', 'a' * 10000) }}", "replace()"),
        ("{{ 'a' | center(10**9) }}", "center"),
        ("{{ 'a'.ljust(10**9) }}", "ljust"),
        ("{{ 'a'.zfill(10**9) }}", "zfill"),
        ("{{ '%1000000000s' % 'a' }}", "'%' formatting with a width of 1000000000"),
        ("{{ '%2000000d' | format(1) }}", "format with a width of 2000000"),
        ("{{ '{:>1000000000}'.format('a') }}", "format() with a width of 1000000000"),
        ("{{ ('x' * 1000000) ~ ('y' * 100000) }}x", "the template's output"),
        ("{% for i in range(2000) %}{{ 'z' * 1000 }}{% endfor %}", "the template's output"),
    ],
)
def test_a_value_too_large_is_refused_before_it_is_built(text: str, message: str) -> None:
    error = fails(text)
    assert "render budget allows (1,048,576)" in error.message
    assert message in error.message


@pytest.mark.parametrize(
    "text",
    [
        NESTED,
        "{{ ('ab ' * 300000) | wordwrap(1) | length }}",  # textwrap's loop, in a filter
        "{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}"
        "{{ f(40) }}",
    ],
)
def test_a_template_that_runs_too_long_is_stopped(text: str) -> None:
    started = time.monotonic()
    error = fails(text)
    assert error.message == "the template took longer than the render budget allows (0.5s)"
    assert time.monotonic() - started < 3


def test_the_bound_works_in_a_thread_that_is_not_the_main_one() -> None:
    errors: list[BaseException] = []

    def render() -> None:
        try:
            when(NESTED).render({})
        except TemplateError as exc:
            errors.append(exc)

    thread = threading.Thread(target=render)
    thread.start()
    thread.join(timeout=10)
    assert not thread.is_alive()
    assert [type(e) for e in errors] == [TemplateError]


def test_interrupting_stops_a_render_at_once_and_allow_renders_resets() -> None:
    set_render_budget(RenderBudget(seconds=60))
    timer = threading.Timer(0.2, interrupt_renders)
    started = time.monotonic()
    timer.start()
    with pytest.raises(RenderStopped, match="the run is being interrupted"):
        when(NESTED).render({})
    timer.join()
    assert time.monotonic() - started < 10
    with pytest.raises(RenderStopped):  # sticky: a render that starts after the signal too
        when("{{ 1 + 1 }}").render({})
    allow_renders()
    assert when("{{ 1 + 1 }}").render({}) == 2


def test_the_budget_can_be_raised() -> None:
    set_render_budget(RenderBudget(seconds=2, max_size=3 * 1024 * 1024))
    assert len(when("{{ 'a' * 2000000 }}").render({})) == 2_000_000


def test_worker_side_params_are_not_bounded_here() -> None:
    params = compile_value({"a": "{{ 'a' * 2000000 }}"}, where="$.tasks[0].params")
    assert len(params.render({})["a"]) == 2_000_000


def test_ordinary_templates_are_unchanged_and_the_tracer_is_restored() -> None:
    before = sys.gettrace()
    ns = {"items": [1, 2, 3], "r": {"stdout": "ok\n"}, "name": "x"}
    assert when("{{ items | length > 2 and r.stdout | trim == 'ok' }}").render(ns) is True
    assert when("{{ items | map('string') | join(',') }}").render(ns) == "1,2,3"
    assert when("{{ '%05d' % 42 }} {{ name | center(5) }}").render(ns) == "00042   x  "
    assert when("{{ '{}-{}'.format(1, 2) * 3 }}").render(ns) == "1-21-21-2"
    assert when("{{ r.stdout }}").render(ns) == "ok\n"
    assert sys.gettrace() is before
