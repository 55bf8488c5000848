"""Task lines skip the logging framework only when gxo's own text handler is all it would use."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from gxo.cli.output import TaskLines, configure, plain_handler
from gxo.events import TaskStatusChanged
from gxo.observability.logging import setup_logging


@pytest.fixture
def gxo_logger() -> Iterator[logging.Logger]:
    logger = logging.getLogger("gxo")
    saved = logger.handlers[:], logger.level, logger.propagate, logger.filters[:]
    yield logging.getLogger("gxo.progress.task")
    logger.handlers[:], logger.level, logger.propagate, logger.filters[:] = saved


def _playbook() -> Any:
    import gxo

    return gxo.load(
        "schemaVersion: v1.0.0\nname: p\ntasks:\n"
        "  - {name: a, type: exec, params: {command: 'true'}}\n"
        "  - {name: b, type: exec, params: {command: 'true'}}\n"
    ).playbook


def _status(task: str, value: str, reason: str = "") -> TaskStatusChanged:
    return TaskStatusChanged(
        run_id="r", time=0.0, task=task, status=value, reason=reason, duration=0.5
    )


def test_written_directly_as_the_handler_would(gxo_logger: logging.Logger) -> None:
    fast, slow = io.StringIO(), io.StringIO()
    handler = setup_logging("info", "text", "run1", stream=fast)
    assert plain_handler(gxo_logger) is handler
    configure(colour=False)
    TaskLines(_playbook())(_status("a", "Completed"))
    setup_logging("info", "text", "run1", stream=slow)
    gxo_logger.info("ok       a (0.50s)")
    assert fast.getvalue() == slow.getvalue() == "ok       a (0.50s)\n"


def test_hidden_by_the_level_is_not_written(gxo_logger: logging.Logger) -> None:
    stream = io.StringIO()
    setup_logging("warning", "text", "r", stream=stream)
    configure(colour=False)
    TaskLines(_playbook())(_status("a", "Completed"))
    assert stream.getvalue() == ""


@pytest.mark.parametrize("case", ["json", "extra handler", "filter", "trace ids"])
def test_anything_else_gets_a_real_record(gxo_logger: logging.Logger, case: str) -> None:
    stream = io.StringIO()
    handler = setup_logging("info", "json" if case == "json" else "text", "r", stream=stream)
    if case == "extra handler":
        logging.getLogger("gxo.progress").addHandler(logging.NullHandler())
    if case == "filter":
        logging.getLogger("gxo").addFilter(logging.Filter())
    if case == "trace ids":
        handler.addFilter(logging.Filter("gxo"))
    try:
        assert plain_handler(gxo_logger) is None
    finally:
        logging.getLogger("gxo.progress").handlers.clear()


def test_buffered_task_lines_are_written_at_flush_and_before_anything_logged_after_them(
    gxo_logger: logging.Logger,
) -> None:
    stream = io.StringIO()
    setup_logging("info", "text", "r", stream=stream)
    configure(colour=False)
    lines = TaskLines(_playbook(), buffered=True)

    lines(_status("a", "Completed"))
    assert stream.getvalue() == ""  # waits for the bus's flush
    lines.flush()
    assert stream.getvalue() == "ok       a (0.50s)\n"
    lines(_status("a", "Completed"))
    lines(_status("b", "Failed", "nonzero_exit(1)"))  # logged: the buffered line goes first
    assert stream.getvalue().splitlines()[1:] == [
        "ok       a (0.50s)",
        "error: FAILED   b: nonzero_exit(1)",
    ]
