"""The worker's result is redacted on every path: success, module failure, raise, chains."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from gxo.pool.worker import _WorkerState, run_attempt
from gxo.secrets import REDACTED
from gxo.wire import Run, WorkerConfig

SECRET = "w0rker-canary-Zq9"

FUNCS = """
def chained(value):
    try:
        raise KeyError("inner " + value)
    except KeyError as exc:
        raise RuntimeError("outer") from exc

def implicit(value):
    try:
        raise KeyError("first " + value)
    except KeyError:
        raise RuntimeError("during handling")

def echo(value):
    return {value: [value, {"nested": "x" + value + "y"}], "exit_code": 0}
"""


@pytest.fixture
def state(monkeypatch: pytest.MonkeyPatch) -> _WorkerState:
    monkeypatch.setenv("GXO_TEST_CANARY", SECRET)
    return _WorkerState()


def run(params: dict[str, Any], module: str = "exec", playbook_dir: str = "") -> Run:
    return Run(
        instance_id=1,
        task_index=0,
        task_name=f"t{id(params)}",
        module=module,
        params=params,
        namespace={},
        playbook_dir=playbook_dir,
    )


def everything(done: Any) -> str:
    return repr((done.summary, done.error, done.traceback, done.reason))


def test_exec_failure_keeps_a_redacted_summary(state: _WorkerState) -> None:
    done = run_attempt(
        run(
            {
                "command": "echo out $S; echo err $S >&2; exit 3",
                "shell": True,
                "env": {"S": "{{ secret('GXO_TEST_CANARY') }}"},
            }
        ),
        state,
    )
    assert not done.ok
    assert done.reason == "nonzero_exit(3)"
    assert done.summary["stdout"] == f"out {REDACTED}\n"
    assert done.summary["stderr"] == f"err {REDACTED}\n"
    assert done.summary["exit_code"] == 3
    assert SECRET not in everything(done)
    assert f"err {REDACTED}" in done.error


@pytest.mark.parametrize("function", ["chained", "implicit"])
def test_exception_chains_and_tracebacks_are_redacted(
    state: _WorkerState, tmp_path: Path, function: str
) -> None:
    (tmp_path / "f.py").write_text(FUNCS)
    done = run_attempt(
        run(
            {"function": f"f.py:{function}", "args": ["{{ secret('GXO_TEST_CANARY') }}"]},
            module="python",
            playbook_dir=str(tmp_path),
        ),
        state,
    )
    assert not done.ok
    assert done.reason == "module_raised(RuntimeError)"
    assert "caused by KeyError" in done.error
    assert REDACTED in done.error
    assert REDACTED in done.traceback
    assert SECRET not in everything(done)


def test_summary_keys_and_values_at_any_depth(state: _WorkerState, tmp_path: Path) -> None:
    (tmp_path / "f.py").write_text(FUNCS)
    done = run_attempt(
        run(
            {"function": "f.py:echo", "args": ["{{ secret('GXO_TEST_CANARY') }}"]},
            module="python",
            playbook_dir=str(tmp_path),
        ),
        state,
    )
    assert done.ok
    assert done.summary == {
        REDACTED: [REDACTED, {"nested": f"x{REDACTED}y"}],
        "exit_code": 0,
    }


def test_missing_secret_names_the_secret_only(state: _WorkerState) -> None:
    done = run_attempt(
        run({"command": ["echo", "{{ secret('GXO_TEST_NOT_SET_ANYWHERE') }}"]}), state
    )
    assert done.reason == "secret_missing"
    assert "GXO_TEST_NOT_SET_ANYWHERE" in done.error


def test_file_provider_and_prefix(tmp_path: Path) -> None:
    (tmp_path / "app_db").write_text(SECRET + "\n")
    state = _WorkerState(WorkerConfig(secrets_dir=str(tmp_path), secrets_prefix="app_"))
    done = run_attempt(run({"command": ["echo", "{{ secret('db') }}"]}), state)
    assert done.ok
    assert done.summary["stdout"] == f"{REDACTED}\n"
    missing = run_attempt(run({"command": ["echo", "{{ secret('nope') }}"]}), state)
    assert missing.reason == "secret_missing"
    assert "nope" in missing.error


def test_env_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PFX_TOKEN", SECRET)
    state = _WorkerState(WorkerConfig(secrets_prefix="PFX_"))
    done = run_attempt(run({"command": ["echo", "{{ secret('TOKEN') }}"]}), state)
    assert done.ok
    assert done.summary["stdout"] == f"{REDACTED}\n"


def test_preloaded_names_mask_values_this_worker_never_resolved(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GXO_TEST_CANARY", SECRET)
    state = _WorkerState()
    state.preload(("GXO_TEST_CANARY", "GXO_TEST_NOT_SET_ANYWHERE", "../bad name"))
    # the value arrives through state (a registered result of another task), not secret()
    done = run_attempt(run({"command": ["echo", "from state: " + SECRET]}), state)
    assert done.summary["stdout"] == f"from state: {REDACTED}\n"


def test_redaction_failure_withholds_the_result(
    state: _WorkerState, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(obj: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr(state.redactor, "redact", broken)
    done = run_attempt(run({"command": ["echo", "{{ secret('GXO_TEST_CANARY') }}"]}), state)
    assert not done.ok
    assert done.reason == "redaction_failed"
    assert done.summary is None
    assert SECRET not in everything(done)


def test_a_module_chosen_reason_is_redacted_too() -> None:
    from gxo.pool.worker import _Outcome, _redacted
    from gxo.secrets import Redactor

    outcome = _Outcome(ok=False, reason=f"custom_{SECRET}", error="x")
    done = _redacted(7, outcome, 0.5, 1.0, Redactor([SECRET]))
    assert done.reason == f"custom_{REDACTED}"


@settings(max_examples=150, deadline=None)
@given(
    secret=st.text(min_size=1, max_size=12),
    ok=st.booleans(),
    exit_code=st.integers(-255, 255),
    duration=st.floats(0, 1e6),
)
def test_structural_fields_are_never_rewritten(
    secret: str, ok: bool, exit_code: int, duration: float
) -> None:
    from gxo.pool.worker import _Outcome, _redacted
    from gxo.secrets import Redactor

    reason = "" if ok else "nonzero_exit(3)"
    summary = {"exit_code": exit_code, "ok": ok, "stdout": f"a {secret} b", "n": [1, 2.5, None]}
    # Keys are masked too when they hold a secret (contract), so a secret that is, or is in,
    # one of these keys would rename it: that is not what this property is about.
    assume(not any(secret == key or (len(secret) >= 4 and secret in key) for key in summary))
    outcome = _Outcome(ok=ok, summary=summary, reason=reason)
    done = _redacted(42, outcome, duration, 3.0, Redactor([secret]))
    assert done.instance_id == 42
    assert done.ok is ok
    assert done.duration == duration
    assert done.started_at == 3.0
    assert done.summary["exit_code"] == exit_code
    assert done.summary["ok"] is ok
    assert done.summary["n"] == [1, 2.5, None]
    if secret.strip() and len(secret) >= 4:
        assert secret not in done.summary["stdout"].replace(REDACTED, "\0")
    if not ok and secret not in reason:
        assert done.reason == reason
