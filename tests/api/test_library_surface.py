"""Issue 15, the library surface: modules and secrets providers given in code, engine
defaults, keyword redaction, secrets metrics, a report for an invalid playbook, runs from a
thread with a handle. Each through ``gxo.run`` on real workers, and the real ``gxo`` command
where it has a flag."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

import msgspec
import pytest
from fixtures_modules.surface import (
    FailingProvider,
    JsonFileProvider,
    LeakyModule,
    NoOptionsProvider,
    NumberProvider,
    ShoutModule,
)

import gxo
from gxo.events import InstanceStarted
from gxo.modules.registry import ModuleRegistry
from gxo.secrets import REDACTED, EnvProvider, FileProvider, SecretProvider

TESTS = Path(__file__).resolve().parent.parent
SURFACE = "fixtures_modules.surface"

SHOUT = textwrap.dedent(
    """
    schemaVersion: v1.0.0
    name: shout
    tasks:
      - name: loud
        type: my:shout
        params: {text: "hello"}
        register: loud
    """
)


def gxo_cmd(*args: str | os.PathLike[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """The real ``gxo`` command, with the test fixtures importable (as an installed package
    of the user's would be)."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]),
    }
    return subprocess.run(
        [sys.executable, "-m", "gxo", *map(str, args)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )


# -- 1. modules without packaging -------------------------------------------------------------


def test_run_with_a_module_class_given_in_code() -> None:
    result = gxo.run(SHOUT, workers=1, modules={"my:shout": ShoutModule})
    assert result.ok, result.report.error
    assert result.registered["loud"] == {"text": "HELLO", "task": "loud"}


def test_what_load_returned_runs_with_the_modules_it_was_loaded_with() -> None:
    """load(modules=...) validated the playbook with them, and run(loaded) then ran it
    without: its tasks failed module_unavailable."""
    registry = gxo.ModuleRegistry({"my:shout": ShoutModule})
    loaded = gxo.load(SHOUT, modules=registry)
    registry.register("my:leaky", f"{SURFACE}:LeakyModule")  # later: not the loaded's
    assert loaded.modules == {"my:shout": f"{SURFACE}:ShoutModule"}
    result = gxo.run(loaded, workers=1)
    assert result.ok, result.report.error
    assert result.registered["loud"] == {"text": "HELLO", "task": "loud"}


def test_a_registry_object_register_get_list() -> None:
    registry = gxo.ModuleRegistry()
    registry.register("my:shout", ShoutModule)
    registry.register("my:leaky", f"{SURFACE}:LeakyModule")
    assert registry.list() == ["my:leaky", "my:shout"]
    assert registry.get("my:shout") is ShoutModule
    assert registry.get("my:leaky") is LeakyModule
    assert registry.targets["my:shout"] == f"{SURFACE}:ShoutModule"
    assert gxo.run(SHOUT, workers=1, modules=registry).registered["loud"]["text"] == "HELLO"


def test_without_the_module_the_playbook_is_invalid() -> None:
    with pytest.raises(gxo.PlaybookError, match="my:shout"):
        gxo.validate(SHOUT)
    assert gxo.validate(SHOUT, modules={"my:shout": ShoutModule}).name == "shout"


def test_a_class_defined_in_main_is_refused_before_the_run() -> None:
    main_class = type("Step", (ShoutModule,), {"__module__": "__main__"})
    with pytest.raises(gxo.UsageError, match=r"cannot be imported by name in a worker.*'__main__'"):
        gxo.run(SHOUT, modules={"my:shout": main_class})


def test_a_class_defined_in_a_function_is_refused_before_the_run() -> None:
    class Local(ShoutModule):
        pass

    with pytest.raises(gxo.UsageError, match="defined inside a function"):
        gxo.run(SHOUT, modules={"my:shout": Local})


def test_registry_refuses_builtins_and_non_modules() -> None:
    registry = ModuleRegistry()
    with pytest.raises(gxo.UsageError, match="built in"):
        registry.register("exec", ShoutModule)
    with pytest.raises(gxo.UsageError, match=r"not a gxo\.modules\.Module"):
        registry.register("my:x", JsonFileProvider)  # type: ignore[arg-type]
    with pytest.raises(gxo.UsageError, match=r"package\.module:Class"):
        registry.register("my:x", "no_colon")
    with pytest.raises(gxo.GxoError, match="not registered"):
        registry.get("my:none")


def test_cli_module_flag_for_modules_validate_and_execute(tmp_path: Path) -> None:
    book = tmp_path / "shout.yaml"
    book.write_text(SHOUT)
    flag = ["--module", f"my:shout={SURFACE}:ShoutModule"]
    listed = gxo_cmd("modules", "--json", *flag, cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    info = {m["name"]: m for m in json.loads(listed.stdout)}
    assert info["my:shout"]["target"] == f"{SURFACE}:ShoutModule"
    assert info["my:shout"]["parameters"][0]["name"] == "text"
    assert gxo_cmd("validate", book, cwd=tmp_path).returncode == 2
    valid = gxo_cmd("validate", book, *flag, cwd=tmp_path)
    assert valid.returncode == 0, valid.stderr
    report = tmp_path / "report.json"
    ran = gxo_cmd("execute", book, *flag, "--report", report, cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    assert json.loads(report.read_text())["task_results"]["loud"]["status"] == "Completed"
    bad = gxo_cmd("validate", book, "--module", "my:shout", cwd=tmp_path)
    assert bad.returncode == 2
    assert "NAME=PKG.MOD:CLASS" in bad.stderr


def test_cli_module_flag_for_list_and_journal(tmp_path: Path) -> None:
    """The partial-run commands load the playbook too: they take --module like validate."""
    book = tmp_path / "shout.yaml"
    book.write_text(SHOUT)
    flag = ["--module", f"my:shout={SURFACE}:ShoutModule"]
    assert gxo_cmd("list", book, cwd=tmp_path).returncode == 2
    listed = gxo_cmd("list", book, *flag, cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout == "loud\n"
    state = ["--state-dir", tmp_path / "state"]
    ran = gxo_cmd("execute", book, *flag, *state, cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    journal = gxo_cmd("journal", book, *flag, *state, cwd=tmp_path)
    assert journal.returncode == 0, journal.stderr
    assert "(1 completed instance record(s))" in journal.stdout


def test_cli_module_flag_unimportable_is_listed_broken(tmp_path: Path) -> None:
    listed = gxo_cmd("modules", "--json", "--module", "my:gone=no_such_pkg.mod:Gone", cwd=tmp_path)
    assert listed.returncode == 1
    info = {m["name"]: m for m in json.loads(listed.stdout)}
    assert info["my:gone"]["target"] == "no_such_pkg.mod:Gone"
    assert "no_such_pkg" in info["my:gone"]["broken"]
    assert info["exec"]["broken"] == ""
    # It came from --module, not from an installed package's entry point: no message says so.
    assert "entry point" not in info["my:gone"]["broken"]
    book = tmp_path / "gone.yaml"
    book.write_text(SHOUT.replace("my:shout", "my:gone"))
    bad = gxo_cmd("validate", book, "--module", "my:gone=no_such_pkg.mod:Gone", cwd=tmp_path)
    assert bad.returncode == 2
    assert "failed to load: class 'no_such_pkg.mod:Gone': ModuleNotFoundError" in bad.stderr
    assert "hint: my:gone=no_such_pkg.mod:Gone was given by --module" in bad.stderr
    assert "entry point" not in bad.stderr
    assert "reinstall the package" not in bad.stderr


# -- 2. secrets providers as objects ----------------------------------------------------------

SECRET_BOOK = textwrap.dedent(
    """
    schemaVersion: v1.0.0
    name: secrets
    tasks:
      - name: use
        type: exec
        params:
          command: sh
          args: ["-c", "echo got $0", "{{ secret('DB_PASSWORD') }}"]
        register: used
    """
)


def test_env_and_directory_providers_implement_the_protocol(tmp_path: Path) -> None:
    for provider in (EnvProvider("APP_"), FileProvider(tmp_path, "x_")):
        assert isinstance(provider, SecretProvider)
        rebuilt = type(provider)(**provider.options())
        assert rebuilt.options() == provider.options()


def test_run_with_a_json_file_provider(tmp_path: Path) -> None:
    values = tmp_path / "secrets.json"
    values.write_text(json.dumps({"DB_PASSWORD": "pw-from-json-file"}))
    result = gxo.run(SECRET_BOOK, workers=1, secrets=JsonFileProvider(str(values)))
    assert result.ok, result.report.error
    assert result.registered["used"]["stdout"] == f"got {REDACTED}\n"


def test_cli_secrets_provider_and_options(tmp_path: Path) -> None:
    values = tmp_path / "secrets.json"
    values.write_text(json.dumps({"DB_PASSWORD": "pw-from-json-file"}))
    book = tmp_path / "s.yaml"
    book.write_text(SECRET_BOOK)
    report = tmp_path / "r.json"
    ran = gxo_cmd(
        "execute",
        book,
        "--secrets-provider",
        f"{SURFACE}:JsonFileProvider",
        "--secrets-option",
        f"path={values}",
        "--report",
        report,
        cwd=tmp_path,
    )
    assert ran.returncode == 0, ran.stderr
    assert "pw-from-json-file" not in ran.stdout + ran.stderr + report.read_text()
    missing = gxo_cmd("execute", book, "--secrets-option", "path=x", cwd=tmp_path)
    assert missing.returncode == 2
    assert "--secrets-option needs --secrets-provider" in missing.stderr


def test_a_failing_provider_fails_the_task_with_its_error_redacted() -> None:
    leak = "leaked-credential-123"
    result = gxo.run(
        SECRET_BOOK, workers=1, secrets=FailingProvider(leak=leak), redact_keywords=True
    )
    task = result.tasks["use"]
    assert task.status == "Failed"
    assert task.reason == "secret_provider_failed"
    assert "vault unreachable" in task.error
    assert f"token={REDACTED}" in task.error
    assert leak not in result.report.to_json().decode()


def test_a_provider_returning_a_non_string_fails_the_task_not_the_workers() -> None:
    """Each worker reads the playbook's literal secrets when it starts: a value that is not a
    str was registered for redaction there and killed every worker (``worker_lost``, "4
    workers died before they could start this instance"); the task now says what is wrong."""
    result = gxo.run(SECRET_BOOK, workers=1, secrets=NumberProvider())
    task = result.tasks["use"]
    assert (task.status, task.reason) == ("Failed", "secret_provider_failed")
    assert "it returned int, not str" in task.error
    assert result.report.worker_restarts == 0


def test_cli_failing_provider(tmp_path: Path) -> None:
    book = tmp_path / "s.yaml"
    book.write_text(SECRET_BOOK)
    report = tmp_path / "r.json"
    ran = gxo_cmd(
        "execute",
        book,
        "--secrets-provider",
        f"{SURFACE}:FailingProvider",
        "--secrets-option",
        "leak=zzz-secret-zzz",
        "--redact-keywords",
        "--report",
        report,
        cwd=tmp_path,
    )
    assert ran.returncode == 1
    data = json.loads(report.read_text())
    assert data["task_results"]["use"]["reason"] == "secret_provider_failed"
    assert "zzz-secret-zzz" not in ran.stdout + ran.stderr + report.read_text()


def test_a_provider_that_cannot_travel_is_refused_before_the_run() -> None:
    with pytest.raises(gxo.UsageError, match=r"needs get\(name\) and options\(\)"):
        gxo.run(SECRET_BOOK, secrets=NoOptionsProvider())
    local = type("Local", (JsonFileProvider,), {"__module__": "__main__"})
    with pytest.raises(gxo.UsageError, match="cannot be imported by name"):
        gxo.run(SECRET_BOOK, secrets=local("x"))


# -- 3. engine defaults and keyword redaction -------------------------------------------------

DEFAULTS_BOOK = textwrap.dedent(
    """
    schemaVersion: v1.0.0
    name: defaults
    tasks:
      - name: plain
        type: passthrough
        params: {value: 1}
      - name: own
        type: passthrough
        timeout: 7s
        params: {value: 2}
    """
)


def test_task_defaults_and_channel_policy_arguments_fill_what_tasks_do_not_set() -> None:
    loaded = gxo.load(
        DEFAULTS_BOOK,
        task_defaults={"timeout": "5s", "attempt_timeout": "2s", "retry": {"attempts": 3}},
        channel_policy={"buffer_size": 7},
    )
    plain, own = loaded.playbook.tasks
    assert (plain.timeout, plain.attempt_timeout, plain.retry.attempts) == (5.0, 2.0, 3)
    assert own.timeout == 7.0  # the task's own setting wins
    assert loaded.playbook.channel_policy.buffer_size == 7
    assert plain.channel_policy.buffer_size == 7


def test_validate_takes_task_defaults_as_the_error_for_a_validated_playbook_says() -> None:
    """run(validated, task_defaults=...) says to give them to validate() or load(): validate()
    did not take them."""
    with pytest.raises(ValueError, match=r"pass them to validate\(\) or load\(\)"):
        gxo.run(gxo.validate(DEFAULTS_BOOK), task_defaults={"timeout": "5s"})
    playbook = gxo.validate(
        DEFAULTS_BOOK, task_defaults={"timeout": "5s"}, channel_policy={"buffer_size": 7}
    )
    assert playbook.tasks[0].timeout == 5.0
    assert playbook.channel_policy.buffer_size == 7


def test_the_playbook_task_defaults_win_over_the_argument() -> None:
    text = DEFAULTS_BOOK.replace("tasks:", "task_defaults: {timeout: 3s}\ntasks:", 1)
    plain = gxo.load(text, task_defaults={"timeout": "5s", "attempt_timeout": "2s"}).playbook.tasks[
        0
    ]
    assert (plain.timeout, plain.attempt_timeout) == (3.0, 2.0)


def test_a_bad_task_defaults_argument_is_a_playbook_error() -> None:
    with pytest.raises(gxo.PlaybookError, match="task_defaults"):
        gxo.load(DEFAULTS_BOOK, task_defaults={"timeout": "soon"})


def test_task_defaults_timeout_applies_in_a_run() -> None:
    book = textwrap.dedent(
        """
        schemaVersion: v1.0.0
        name: slow
        tasks:
          - name: sleepy
            type: exec
            params: {command: sleep, args: ["60"]}
        """
    )
    result = gxo.run(book, workers=1, grace=0.5, task_defaults={"timeout": "1s"})
    assert result.tasks["sleepy"].reason == "timed_out"


LEAKY_BOOK = textwrap.dedent(
    """
    schemaVersion: v1.0.0
    name: leaky
    tasks:
      - name: connect
        type: my:leaky
        params: {line: "dsn: host=db password=hunter2hunter2 api_key: 'k-123-456'"}
    """
)


def test_redact_keywords_mask_key_value_forms_in_errors_and_output(caplog: Any) -> None:
    caplog.set_level("INFO", logger="gxo")
    off = gxo.run(LEAKY_BOOK, workers=1, modules={"my:leaky": LeakyModule})
    assert "hunter2hunter2" in off.tasks["connect"].error  # opt-in: off by default
    caplog.clear()  # only the second run's relayed lines (one record may hold several lines)
    on = gxo.run(LEAKY_BOOK, workers=1, modules={"my:leaky": LeakyModule}, redact_keywords=["dsn"])
    error = on.tasks["connect"].error
    assert f"password={REDACTED}" in error
    assert f"api_key: '{REDACTED}'" in error
    assert f"dsn: {REDACTED}" in error
    assert "hunter2hunter2" not in on.report.to_json().decode()
    assert "k-123-456" not in on.report.to_json().decode()
    relayed = [r.getMessage() for r in caplog.records if "connect |" in r.getMessage()]
    assert relayed
    assert all("hunter2hunter2" not in line for line in relayed)


def test_cli_redact_keyword(tmp_path: Path) -> None:
    book = tmp_path / "l.yaml"
    book.write_text(LEAKY_BOOK)
    flag = ["--module", f"my:leaky={SURFACE}:LeakyModule"]
    plain = gxo_cmd("execute", book, *flag, cwd=tmp_path)
    assert "hunter2hunter2" in plain.stdout + plain.stderr
    masked = gxo_cmd("execute", book, *flag, "--redact-keyword", "dsn", cwd=tmp_path)
    assert masked.returncode == 1
    assert "hunter2hunter2" not in masked.stdout + masked.stderr
    assert f"password={REDACTED}" in masked.stdout + masked.stderr


# -- 6. secrets metrics -----------------------------------------------------------------------


def test_secrets_metrics_count_accesses_and_redactions(tmp_path: Path) -> None:
    from prometheus_client import CollectorRegistry, generate_latest

    values = tmp_path / "secrets.json"
    values.write_text(json.dumps({"DB_PASSWORD": "pw-for-metrics"}))
    registry = CollectorRegistry()
    result = gxo.run(
        SECRET_BOOK, workers=1, secrets=JsonFileProvider(str(values)), metrics_registry=registry
    )
    assert result.ok
    accessed = registry.get_sample_value(
        "gxo_secrets_accessed_total", {"task": "use", "name": "DB_PASSWORD"}
    )
    assert accessed == 1.0
    redacted = registry.get_sample_value("gxo_secrets_redacted_total", {"task": "use"})
    assert redacted is not None
    assert redacted >= 1.0
    assert "pw-for-metrics" not in generate_latest(registry).decode()


# -- 7. a report for every outcome ------------------------------------------------------------


def test_an_invalid_playbook_still_writes_its_report(tmp_path: Path) -> None:
    book = tmp_path / "bad.yaml"
    book.write_text("schemaVersion: v1.0.0\nname: bad\ntasks:\n  - name: x\n    type: nope\n")
    report = tmp_path / "report.json"
    ran = gxo_cmd("execute", book, "--report", report, cwd=tmp_path)
    assert ran.returncode == 2
    data = json.loads(report.read_text())
    assert data["overall_status"] == "Failed"
    assert data["task_results"] == {}
    assert data["exit_code"] == 2
    problem = data["problems"][0]
    assert problem["location"]["line"] == 5
    assert problem["location"]["path"] == "$.tasks[0].type"
    assert "nope" in problem["message"]


# -- 8. runs from any thread, and cancellation ------------------------------------------------

SLEEPER = textwrap.dedent(
    """
    schemaVersion: v1.0.0
    name: sleeper
    tasks:
      - name: nap
        type: exec
        params: {command: sleep, args: ["60"]}
    """
)


def test_start_returns_a_handle_with_events_cancel_and_wait() -> None:
    handle = gxo.start(SLEEPER, workers=1, grace=0.5)
    seen = []
    for event in handle.events():
        seen.append(event)
        if isinstance(event, InstanceStarted):
            handle.cancel()
    result = handle.wait(timeout=30)
    assert handle.done()
    assert result.report.exit_code == 130
    assert result.tasks["nap"].status in ("Failed", "Cancelled")
    assert type(seen[0]).__name__ == "RunStarted"
    assert type(seen[-1]).__name__ == "RunFinished"


def test_start_with_an_invalid_playbook_raises_at_once() -> None:
    with pytest.raises(gxo.PlaybookError):
        gxo.start("schemaVersion: v1.0.0\nname: x\ntasks: []\nbogus: 1\n")


def test_run_from_a_non_main_thread() -> None:
    box: dict[str, Any] = {}

    def target() -> None:
        box["result"] = gxo.run(SHOUT, workers=1, modules={"my:shout": ShoutModule})

    thread = threading.Thread(target=target)
    thread.start()
    thread.join(timeout=60)
    assert box["result"].ok


def test_report_problems_round_trip() -> None:
    try:
        gxo.validate("schemaVersion: v1.0.0\nname: x\ntasks:\n  - name: a\n    type: nope\n")
    except gxo.PlaybookError as exc:
        from gxo.report import invalid_playbook_report

        report = invalid_playbook_report(exc, playbook_name="x")
        assert msgspec.json.decode(report.to_json())["problems"][0]["location"]["line"] == 5


# -- 4. a module reads the state it asks for, read-only at every depth ------------------------

READS_BOOK = textwrap.dedent(
    """
    schemaVersion: v1.0.0
    name: reads
    tasks:
      - name: count
        type: my:count
        register: counted
      - name: list_users
        type: passthrough
        params:
          value:
            names: [alice, bob]
            stdout: "alice\\nbob"
            meta: {tags: [a]}
        register: users
    """
)


def test_a_module_reads_the_state_it_declares_frozen_at_every_depth() -> None:
    from fixtures_modules.surface import CountUsersModule

    result = gxo.run(READS_BOOK, workers=2, modules={"my:count": CountUsersModule})
    assert result.ok, result.report.error
    summary = result.registered["counted"]
    assert summary["count"] == 2
    assert set(summary["attempts"].values()) == {"read-only"}
    # ordered after the task registering what it reads, with no template saying so
    assert result.tasks["count"].start_time >= result.tasks["list_users"].end_time


def test_a_module_given_by_path_on_the_command_line_reads_its_declared_state(
    tmp_path: Path,
) -> None:
    """``reads_state`` holds for every way a module arrives (here ``--module NAME=path``, read
    in the parent by importing the class), not only for classes given as objects."""
    book = tmp_path / "reads.yaml"
    book.write_text(READS_BOOK)
    report = tmp_path / "r.json"
    flag = ["--module", f"my:count={SURFACE}:CountUsersModule"]
    ran = gxo_cmd("execute", book, *flag, "--report", report, "--no-progress", cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    results = json.loads(report.read_text())["task_results"]
    assert results["count"]["status"] == "Completed"  # ctx.state["users"] was there to read
    assert results["count"]["start_time"] >= results["list_users"]["end_time"]


def test_a_module_path_that_cannot_be_imported_is_an_error_before_the_run(tmp_path: Path) -> None:
    book = tmp_path / "shout.yaml"
    book.write_text(SHOUT)
    for target in (f"{SURFACE}:NoSuchClass", "no_such_package_xyz.mod:Step"):
        ran = gxo_cmd("execute", book, "--module", f"my:shout={target}", cwd=tmp_path)
        assert ran.returncode == 2, ran.stderr
        assert "my:shout" in ran.stderr
        assert target.split(":")[0] in ran.stderr
        assert not (tmp_path / ".gxo").exists() or not list((tmp_path / ".gxo").rglob("*.log"))


def test_a_registry_path_that_cannot_be_imported_is_a_playbook_error_at_the_task() -> None:
    """As docs/api.md says: the error is located at the `type` of the task using it."""
    for target, error in (
        ("no_such_package_xyz.mod:Step", "No module named 'no_such_package_xyz'"),
        (f"{SURFACE}:NoSuchClass", "has no attribute 'NoSuchClass'"),
        ("os:getcwd", "is not a gxo.modules.Module subclass"),
    ):
        with pytest.raises(gxo.PlaybookError, match=r"\$\.tasks\[0\]\.type") as raised:
            gxo.run(SHOUT, modules={"my:shout": target})
        assert error in str(raised.value)


# -- 5. traced logs ---------------------------------------------------------------------------

CHATTY_BOOK = textwrap.dedent(
    """
    schemaVersion: v1.0.0
    name: chatty
    tasks:
      - name: talk
        type: my:chatty
    """
)


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_with_tracing_every_log_record_carries_trace_and_span_ids(tmp_path: Path, fmt: str) -> None:
    book = tmp_path / "c.yaml"
    book.write_text(CHATTY_BOOK)
    spans_file = tmp_path / "spans.jsonl"
    env_file = {"GXO_TRACES_FILE": str(spans_file), "OTEL_TRACES_EXPORTER": "none"}
    env = {**os.environ, **env_file, "PYTHONPATH": str(TESTS)}
    ran = subprocess.run(
        [
            sys.executable,
            "-m",
            "gxo",
            "execute",
            book,
            "--otel",
            "--no-progress",
            "--module",
            f"my:chatty={SURFACE}:ChattyModule",
            "--log-format",
            fmt,
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert ran.returncode == 0, ran.stderr
    spans = [json.loads(line) for line in spans_file.read_text().splitlines() if line.strip()]
    (run,) = [s for s in spans if s["name"].startswith("gxo.run")]
    (module,) = [s for s in spans if s["name"] == "gxo.module talk"]
    (task,) = [s for s in spans if s["name"] == "gxo.task talk"]
    trace = run["context"]["trace_id"].removeprefix("0x")
    lines = [line for line in ran.stderr.splitlines() if line.strip()]
    assert lines
    chatty = [line for line in lines if "chatty says hello" in line]
    assert len(chatty) == 1
    worker_ids = f"trace_id={trace} span_id={module['context']['span_id'].removeprefix('0x')}"
    assert worker_ids in chatty[0]  # the worker's record: its attempt's span
    if fmt == "json":
        records = [json.loads(line) for line in lines]
        assert all(r["trace_id"] == trace and r["span_id"] for r in records), records
        talk = next(r for r in records if "chatty says hello" in r["message"])
        assert talk["span_id"] == task["context"]["span_id"].removeprefix("0x")
    else:
        assert all(f"[trace_id={trace} span_id=" in line for line in lines), lines


def test_reads_state_holds_for_a_validated_playbook_too() -> None:
    from fixtures_modules.surface import CountUsersModule

    modules = {"my:count": CountUsersModule}
    playbook = gxo.validate(READS_BOOK, modules=modules)
    result = gxo.run(playbook, workers=1, modules=modules)
    assert result.ok, result.report.error
    assert result.registered["counted"]["count"] == 2


@pytest.mark.parametrize("where", ["gxo", "root"])
def test_gxo_run_with_a_tracer_provider_puts_trace_ids_on_gxo_log_records(where: str) -> None:
    """Whether the caller's handler sits on the ``gxo`` logger or only on the root logger
    (``logging.basicConfig``), the records gxo logs reach it with the run's trace ids."""
    import io
    import logging

    from fixtures_modules.surface import ChattyModule
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from gxo.observability.logging import JsonFormatter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("gxo")
    holder = logger if where == "gxo" else logging.getLogger()
    holder.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.INFO)
    try:
        result = gxo.run(
            CHATTY_BOOK, workers=1, modules={"my:chatty": ChattyModule}, tracer_provider=provider
        )
    finally:
        holder.removeHandler(handler)
        logger.setLevel(level)
    assert result.ok
    spans = exporter.get_finished_spans()
    (run,) = [s for s in spans if s.name.startswith("gxo.run")]
    (task,) = [s for s in spans if s.name == "gxo.task talk"]
    records = [json.loads(line) for line in stream.getvalue().splitlines()]
    trace = format(run.context.trace_id, "032x")
    assert records
    assert all(r["trace_id"] == trace for r in records), records
    relayed = next(r for r in records if "chatty says hello" in r["message"])
    assert relayed["span_id"] == format(task.context.span_id, "016x")
