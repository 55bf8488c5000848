"""Shared fixtures. Every test is checked for leftover child processes, zombies and fds."""

from __future__ import annotations

import os
import signal
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("dev", max_examples=30, deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")

REPO = Path(__file__).resolve().parent.parent


def _unignore_for_children() -> None:
    """A suite started under ``nohup`` (or as a script's background job) has SIGHUP (SIGINT)
    ignored, and every ``gxo`` it starts would inherit that and keep it ignored (as make
    does): the tests that stop a run with those signals would see it run on. A handler that
    does nothing keeps this process as immune, and its children get the default action
    (``exec`` resets caught signals, not ignored ones)."""
    for signum in (signal.SIGHUP, signal.SIGINT):
        if signal.getsignal(signum) is signal.SIG_IGN:
            signal.signal(signum, lambda *_: None)


_unignore_for_children()


def _forkserver_pid() -> int | None:
    """multiprocessing's forkserver lives as long as the test process, by design."""
    from multiprocessing import forkserver

    return getattr(forkserver._forkserver, "_forkserver_pid", None)


def _tracker_pid() -> int | None:
    """multiprocessing's resource tracker, started with the forkserver, lives as long too."""
    from multiprocessing import resource_tracker

    return getattr(resource_tracker._resource_tracker, "_pid", None)


def _children() -> set[int]:
    """Live descendants of the test process, less multiprocessing's long-lived helpers."""
    helpers = {_forkserver_pid(), _tracker_pid()}
    return {c.pid for c in psutil.Process().children(recursive=True) if c.pid not in helpers}


def _fds() -> set[int]:
    return {int(fd) for fd in os.listdir("/proc/self/fd")}


def _describe(pids: set[int]) -> str:
    out = []
    for pid in sorted(pids):
        try:
            proc = psutil.Process(pid)
            out.append(f"{pid} {proc.status()} {' '.join(proc.cmdline())[:120]}")
        except psutil.NoSuchProcess:
            continue
    return "; ".join(out)


@pytest.fixture(autouse=True)
def no_leaks() -> Iterator[None]:
    """Fail a test that leaves a child process, a zombie or an open fd behind."""
    helpers_before = (_forkserver_pid(), _tracker_pid())
    children_before = _children()
    fds_before = _fds()
    yield
    leaked = _children() - children_before
    if leaked:
        # A worker being reaped can still be listed for a moment: wait for the real state.
        procs = []
        for pid in leaked:
            try:
                procs.append(psutil.Process(pid))
            except psutil.NoSuchProcess:
                continue
        _, alive = psutil.wait_procs(procs, timeout=5)
        leaked = {p.pid for p in alive}
    assert not leaked, f"child processes left behind: {_describe(leaked)}"
    fds_after = _fds()
    if helpers_before != (_forkserver_pid(), _tracker_pid()):
        # The first test that starts a pool also starts the forkserver and the resource
        # tracker, and the test process keeps their fds for as long as they live.
        fds_before |= fds_after - fds_before
    extra = fds_after - fds_before
    details = {fd: _fd_target(fd) for fd in extra}
    assert not extra, f"file descriptors left open: {details}"


def _fd_target(fd: int) -> str:
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return "?"


@pytest.fixture
def write_playbook(tmp_path: Path) -> Callable[[str], Path]:
    """Write a playbook (dedented YAML) to a temp file and return its path."""
    counter = iter(range(1_000_000))

    def write(text: str, name: str | None = None) -> Path:
        path = tmp_path / (name or f"playbook{next(counter)}.yaml")
        path.write_text(textwrap.dedent(text).lstrip())
        return path

    return write


@pytest.fixture(scope="session")
def report_validator() -> Callable[[object], object]:
    """The published JSON Schema of the run report (gxo/report.schema.json), compiled."""
    import json

    import fastjsonschema

    from gxo.report import schema_path

    with open(schema_path(), encoding="utf-8") as schema:
        validate: Callable[[object], object] = fastjsonschema.compile(json.load(schema))
    return validate


def _is_report(data: object) -> bool:
    return isinstance(data, dict) and "schema_version" in data and "task_results" in data


@pytest.fixture(autouse=True)
def reports_match_their_schema(
    request: pytest.FixtureRequest,
    report_validator: Callable[[object], object],
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[None]:
    """Every report a test makes is checked against the published schema (DESIGN §15).

    In-process runs are checked as the engine builds their report; the files a test wrote
    under its ``tmp_path`` (``gxo execute --report``, ``--state-out`` excluded) afterwards.
    """
    import json

    import gxo.engine

    original = gxo.engine.build_report

    def build_and_check(*args: object, **kwargs: object) -> object:
        report = original(*args, **kwargs)  # type: ignore[arg-type]
        report_validator(json.loads(report.to_json()))
        return report

    monkeypatch.setattr(gxo.engine, "build_report", build_and_check)
    yield
    tmp = request.node.funcargs.get("tmp_path")
    if not isinstance(tmp, Path):
        return
    for path in tmp.rglob("*.json"):
        try:
            data = json.loads(path.read_bytes())
        except (OSError, ValueError):
            continue
        if _is_report(data):
            report_validator(data)


@pytest.fixture(scope="session", autouse=True)
def _state_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Runs write their attempt logs under a temporary state directory, not ./.gxo."""
    saved = os.environ.get("GXO_STATE_DIR")
    os.environ["GXO_STATE_DIR"] = str(tmp_path_factory.mktemp("gxo-state"))
    yield
    if saved is None:
        os.environ.pop("GXO_STATE_DIR", None)
    else:
        os.environ["GXO_STATE_DIR"] = saved
