"""``gxo.run`` and ``gxo.start`` check their arguments first, as ``gxo execute`` checks its flags:
a wrong type is a ``TypeError``, a wrong value a ``ValueError``, each naming the argument,
raised before any process starts.

Before, each surfaced far from its cause: ``workers="2"`` as a comparison between ``int`` and
``str`` in the pool's sizing, ``dry_run=None`` as every worker dying at start-up (the task
failed ``worker_lost``), ``run_id="../x"`` as a run directory outside the state directory,
``events=[5]`` as an error logged on every event, an unencodable variable as msgspec's words at
the first dispatch, workers already started.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

import gxo
import gxo.api

PLAYBOOK = """
schemaVersion: v1.0.0
name: args
tasks:
  - name: a
    type: passthrough
    params: {value: "{{ x | default(1) }}"}
    register: a
"""


@pytest.fixture
def nothing_starts(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Fail the test if the run got as far as starting the forkserver (its first act)."""
    started: list[str] = []
    monkeypatch.setattr(gxo.api, "_prestart", lambda *args: started.append("prestart"))
    return started


BAD: list[tuple[dict[str, Any], type[Exception], str]] = [
    ({"workers": "2"}, TypeError, "workers must be a whole number or None, got str '2'"),
    ({"workers": 2.5}, TypeError, "workers must be a whole number"),
    ({"workers": True}, TypeError, "workers must be a whole number"),
    ({"workers": 0}, ValueError, "workers must be at least 1, got 0"),
    ({"dry_run": None}, TypeError, "dry_run must be True or False, got NoneType None"),
    ({"dry_run": "no"}, TypeError, "dry_run must be True or False"),
    ({"core_dumps": 1}, TypeError, "core_dumps must be True or False"),
    ({"grace": -1}, ValueError, "grace must be a finite number of seconds, at least 0"),
    ({"grace": float("inf")}, ValueError, "grace must be a finite number"),
    ({"grace": "5"}, TypeError, "grace must be a number of seconds, got str '5'"),
    ({"start_method": "bogus"}, ValueError, "start_method must be one of 'forkserver'"),
    ({"executor": "slurm"}, ValueError, "executor must be one of 'local', 'dask'"),
    ({"verbose": "x"}, TypeError, "verbose must be a whole number"),
    ({"verbose": -1}, ValueError, "verbose must be at least 0"),
    ({"output_capture": -1}, ValueError, "output_capture must be at least 0"),
    ({"result_limit": 0}, ValueError, "result_limit must be at least 1"),
    ({"result_limit": 1 << 31}, ValueError, "result_limit must be at most"),
    ({"record_limit": -5}, ValueError, "record_limit must be at least 1"),
    ({"log_rate": -1}, ValueError, "log_rate must be a finite number of lines a second"),
    ({"events": 5}, TypeError, "events must be an EventBus or a list of callbacks, got int"),
    ({"events": print}, TypeError, r"put the callback in a list: events=\[callback\]"),
    ({"events": [print, 5]}, TypeError, r"events\[1\] must be callable"),
    ({"run_id": 5}, TypeError, "run_id must be a str or None, got int 5"),
    ({"run_id": "../escape"}, ValueError, "run_id must be a non-empty name without '/'"),
    ({"run_id": ".."}, ValueError, "run_id must be a non-empty name"),
    ({"run_id": ""}, ValueError, "run_id must be a non-empty name"),
    ({"run_id": "a\nb"}, ValueError, "control characters"),
    ({"logger": "gxo"}, TypeError, "logger must be a logging.Logger or None, got str 'gxo'"),
    ({"partial": {"fail_fast": True}}, TypeError, "partial must be a gxo.PartialRun or None"),
    ({"state_dir": 5}, TypeError, "state_dir must be a path"),
    ({"metrics_registry": object()}, TypeError, "metrics_registry must be a prometheus_client"),
    ({"modules": 5}, TypeError, "modules must be a gxo.ModuleRegistry or a mapping"),
    ({"tracer_provider": "otel"}, TypeError, "tracer_provider must be an OpenTelemetry"),
    ({"redact_keywords": "token"}, TypeError, r"one word: redact_keywords=\['token'\]"),
    ({"redact_keywords": [1]}, TypeError, "redact_keywords must hold strings, got int 1"),
    ({"variables": [("x", 1)]}, TypeError, "variables must be a mapping"),
    ({"variables": {1: 2}}, TypeError, "variables keys must be strings, got int 1"),
    ({"state": 5}, TypeError, "state must be a mapping of initial values or a gxo.StateStore"),
    ({"strict": "yes"}, TypeError, "strict must be True or False"),
    ({"task_defaults": ["timeout"]}, TypeError, "task_defaults must be a mapping"),
    ({"channel_policy": 3}, TypeError, "channel_policy must be a mapping"),
]


@pytest.mark.parametrize(("arguments", "error", "message"), BAD, ids=lambda v: repr(v)[:40])
def test_a_bad_argument_is_named_before_anything_starts(
    arguments: dict[str, Any], error: type[Exception], message: str, nothing_starts: list[str]
) -> None:
    with pytest.raises(error, match=message):
        gxo.run(PLAYBOOK, **arguments)
    assert nothing_starts == []


def test_start_checks_its_arguments_itself(nothing_starts: list[str]) -> None:
    """Not in the run's thread, where only ``wait()`` would have said so."""
    with pytest.raises(TypeError, match="workers must be a whole number"):
        gxo.start(PLAYBOOK, workers="2")
    with pytest.raises(TypeError, match="unexpected keyword argument 'wrkers'"):
        gxo.start(PLAYBOOK, wrkers=2)
    assert nothing_starts == []


def test_good_arguments_of_every_kind_run(tmp_path: Path) -> None:
    """What the checks accept: the documented types, None for the defaults."""
    result = gxo.run(
        PLAYBOOK,
        workers=1,
        grace=0,
        verbose=True,
        run_id="my.run-1",
        logger=logging.getLogger("mine"),
        state_dir=tmp_path,
        output_capture=0,
        result_limit=1 << 20,
        record_limit=1 << 20,
        log_rate=0.5,
        redact_keywords=("pin",),
        variables={"x": 2},
        partial=gxo.PartialRun(),
        events=(lambda event: None,),
    )
    assert result.ok
    assert result.registered["a"]["value"] == 2
    assert (tmp_path / "runs" / "my.run-1").is_dir()


def test_callbacks_given_as_a_generator_are_read_once_and_subscribed() -> None:
    seen: list[object] = []
    assert gxo.run(PLAYBOOK, workers=1, variables={"x": 1}, events=(cb for cb in [seen.append])).ok
    assert type(seen[-1]).__name__ == "RunFinished"


def test_redact_keywords_given_as_a_generator_are_all_used() -> None:
    leak = (
        "schemaVersion: v1.0.0\nname: leak\ntasks:\n  - name: a\n    type: exec\n"
        "    params: {command: echo, args: ['pin=1234']}\n    register: a\n"
    )
    result = gxo.run(leak, workers=1, redact_keywords=(word for word in ["pin"]))
    assert result.registered["a"]["stdout"] == "pin=[REDACTED_SECRET]\n"


def test_a_run_id_cannot_leave_the_runs_directory(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="run_id"):
        gxo.run(PLAYBOOK, workers=1, state_dir=tmp_path / "state", run_id="../../outside")
    assert not (tmp_path / "outside").exists()


def test_a_variable_a_worker_cannot_be_sent_is_named(nothing_starts: list[str]) -> None:
    seen: list[object] = []
    with pytest.raises(TypeError, match=r"variables\['x'\]: .*object"):
        gxo.run(PLAYBOOK, workers=1, variables={"x": object()}, events=[seen.append])
    with pytest.raises(TypeError, match=r"variables\['out'\]: .*PosixPath.*str, int"):
        gxo.run(PLAYBOOK, workers=1, variables={"out": Path("/tmp")})
    with pytest.raises(TypeError, match=r"state\['y'\]"):
        gxo.run(PLAYBOOK, workers=1, state={"y": {"deep": object()}})
    assert seen == []  # no RunStarted: nothing ran


def test_a_state_store_must_give_a_mapping(nothing_starts: list[str]) -> None:
    class Store:
        def initial(self) -> Any:
            return ["not", "a", "mapping"]

        def save(self, state: Any) -> None:
            raise AssertionError("no run, nothing saved")

    with pytest.raises(TypeError, match=r"Store.initial\(\) must return a mapping, got list"):
        gxo.run(PLAYBOOK, state=Store())


def test_an_empty_string_is_an_empty_playbook_not_the_current_directory() -> None:
    with pytest.raises(gxo.PlaybookError, match="the playbook is empty"):
        gxo.validate("")


def test_a_subscriber_must_be_callable() -> None:
    bus = gxo.EventBus()
    with pytest.raises(TypeError, match="a subscriber must be callable, got str"):
        bus.subscribe("print")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="flush must be callable"):
        bus.subscribe(print, flush=1)  # type: ignore[arg-type]
    assert not bus.active
    with pytest.raises(TypeError, match="maxsize must be a whole number, got str '10'"):
        gxo.EventBus(maxsize="10")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"logger must be a logging\.Logger"):
        gxo.EventBus(logger="gxo")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"limits": {"max_tasks": 3}}, "limits must be a gxo.config.InputLimits or None"),
        ({"strict": 1}, "strict must be True or False"),
        ({"variables": ["x"]}, "variables must be a mapping"),
        ({"modules": ["my:x"]}, "modules must be a gxo.ModuleRegistry or a mapping"),
        ({"task_defaults": "timeout: 1s"}, "task_defaults must be a mapping"),
    ],
)
def test_validate_and_load_name_a_bad_argument(arguments: dict[str, Any], message: str) -> None:
    for call in (gxo.validate, gxo.load):
        with pytest.raises(TypeError, match=message):
            call(PLAYBOOK, **arguments)


@pytest.mark.parametrize(
    ("fields", "error", "message"),
    [
        ({"targets": "build"}, TypeError, r"one: targets=\['build'\]"),
        ({"skip": [1]}, TypeError, "PartialRun.skip must hold strings, got int 1"),
        ({"deadline": "18:00"}, TypeError, "PartialRun.deadline must be a number of seconds"),
        ({"fail_fast": "yes"}, TypeError, "PartialRun.fail_fast must be True or False"),
        ({"journal": 5}, TypeError, "PartialRun.journal must be a path or None"),
        ({"resources": {"gpu": -1}}, ValueError, r"PartialRun.resources\['gpu'\] must be"),
    ],
)
def test_a_partial_run_names_a_bad_field_when_made(
    fields: dict[str, Any], error: type[Exception], message: str
) -> None:
    """``targets="build"`` was read as its letters: "no task named 'u' in the playbook"."""
    with pytest.raises(error, match=message):
        gxo.PartialRun(**fields)
