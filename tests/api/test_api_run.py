"""``gxo.run``, ``gxo.validate`` and ``gxo.load`` end to end, on real worker processes."""

from __future__ import annotations

import logging
import textwrap
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

import gxo
from gxo.api import Loaded, MemoryStateStore

PLAYBOOK = textwrap.dedent(
    """
    schemaVersion: v1.0.0
    name: api-demo
    vars:
      who: world
    tasks:
      - name: greet
        type: exec
        params:
          command: echo
          args: ["hello, {{ who }}"]
        register: greeting
      - name: keep
        type: passthrough
        params:
          value: "{{ greeting.stdout | trim }}"
        register: kept
    """
)


def test_run_from_yaml_text() -> None:
    result = gxo.run(PLAYBOOK, workers=2)
    assert result.ok
    assert result.exit_code == 0
    assert isinstance(result, gxo.RunResult)
    assert isinstance(result.report, gxo.ExecutionReport)
    assert {name: task.status for name, task in result.tasks.items()} == {
        "greet": "Completed",
        "keep": "Completed",
    }
    assert isinstance(result.tasks["greet"], gxo.TaskResult)
    assert result.registered["kept"] == {"value": "hello, world", "records_processed": 0}
    assert result.registered["greeting"]["stdout"] == "hello, world\n"


def test_run_from_path_and_from_mapping(tmp_path: Path) -> None:
    path = tmp_path / "demo.yaml"
    path.write_text(PLAYBOOK)
    from_path = gxo.run(path, workers=1, variables={"who": "path"})
    from_str_path = gxo.run(str(path), workers=1, variables={"who": "str"})
    from_mapping = gxo.run(yaml.safe_load(PLAYBOOK), workers=1, variables={"who": "map"})
    assert from_path.registered["kept"]["value"] == "hello, path"
    assert from_str_path.registered["kept"]["value"] == "hello, str"
    assert from_mapping.registered["kept"]["value"] == "hello, map"


def test_run_a_validated_playbook() -> None:
    playbook = gxo.validate(PLAYBOOK, variables={"who": "validated"})
    assert isinstance(playbook, gxo.Playbook)
    result = gxo.run(playbook, workers=1)
    assert result.registered["kept"]["value"] == "hello, validated"


def test_variables_cannot_be_applied_to_a_loaded_playbook() -> None:
    playbook = gxo.validate(PLAYBOOK)
    with pytest.raises(ValueError, match="already-loaded Playbook"):
        gxo.run(playbook, variables={"who": "late"})


def test_load_returns_playbook_and_plan() -> None:
    loaded = gxo.load(PLAYBOOK)
    assert isinstance(loaded, Loaded)
    assert [t.name for t in loaded.playbook.tasks] == ["greet", "keep"]
    assert loaded.plan.graph.upstream("keep")


def test_invalid_playbook_raises_before_anything_runs(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    text = PLAYBOOK + "  - name: touch\n    type: exec\n"
    text += f"    params: {{command: [touch, {marker}]}}\n"
    text += "  - name: broken\n    type: no-such-module\n"
    with pytest.raises(gxo.PlaybookError, match="no-such-module"):
        gxo.run(text)
    assert not marker.exists()
    with pytest.raises(gxo.PlaybookError):
        gxo.validate(text)
    assert issubclass(gxo.PlaybookError, gxo.GxoError)


def test_bad_playbook_type() -> None:
    with pytest.raises(TypeError, match="got int"):
        gxo.run(42)  # type: ignore[arg-type]


def test_failed_task_gives_a_result_not_an_exception() -> None:
    text = PLAYBOOK + "  - name: fails\n    type: exec\n    params: {command: [sh, -c, 'exit 4']}\n"
    result = gxo.run(text, workers=2)
    assert not result.ok
    assert result.exit_code == 1
    assert result.tasks["fails"].status == "Failed"
    assert result.tasks["fails"].reason == "nonzero_exit(4)"
    assert result.report.error == "1 task(s) failed: fails"


def test_state_mapping_is_the_initial_state() -> None:
    result = gxo.run(PLAYBOOK, workers=1, state={"who": "state"})
    assert result.registered["kept"]["value"] == "hello, state"
    # variables override the state, as --var overrides the playbook's vars
    result = gxo.run(PLAYBOOK, workers=1, state={"who": "state"}, variables={"who": "var"})
    assert result.registered["kept"]["value"] == "hello, var"


class RecordingStore:
    """A third-party store: anything with ``initial()`` and ``save(state)``."""

    def __init__(self) -> None:
        self.saved: dict[str, Any] | None = None

    def initial(self) -> Mapping[str, Any]:
        return {"who": "store"}

    def save(self, state: Mapping[str, Any]) -> None:
        self.saved = dict(state)


def test_state_store_protocol_receives_the_final_state() -> None:
    store = RecordingStore()
    assert isinstance(store, gxo.StateStore)
    result = gxo.run(PLAYBOOK, workers=1, state=store)
    assert result.registered["kept"]["value"] == "hello, store"
    assert store.saved is not None
    assert store.saved["who"] == "store"
    assert store.saved["kept"] == result.registered["kept"]


def test_memory_state_store_keeps_state_across_runs() -> None:
    store = MemoryStateStore({"who": "first"})
    gxo.run(PLAYBOOK, workers=1, state=store)
    assert store.data["kept"]["value"] == "hello, first"
    store.data["who"] = "second"
    gxo.run(PLAYBOOK, workers=1, state=store)
    assert store.data["kept"]["value"] == "hello, second"


def test_registered_is_a_copy() -> None:
    first = gxo.run(PLAYBOOK, workers=1)
    first.registered["kept"]["value"] = "changed"  # type: ignore[index]
    assert gxo.run(PLAYBOOK, workers=1).registered["kept"]["value"] == "hello, world"


def test_dry_run_and_run_id() -> None:
    result = gxo.run(PLAYBOOK, workers=1, dry_run=True, run_id="my-run")
    assert result.ok
    assert result.report.dry_run
    assert result.report.run_id == "my-run"
    assert result.registered["greeting"]["dry_run"] is True


def test_logger_receives_worker_output(caplog: pytest.LogCaptureFixture) -> None:
    text = textwrap.dedent(
        """
        schemaVersion: v1.0.0
        name: prints
        tasks:
          - name: talk
            type: python
            params: {function: "builtins:print", args: ["said by the worker"]}
        """
    )
    logger = logging.getLogger("myapp.gxo")
    with caplog.at_level(logging.INFO, logger="myapp.gxo"):
        result = gxo.run(text, workers=1, logger=logger)
    assert result.ok
    relayed = [r for r in caplog.records if r.name == "myapp.gxo.output"]
    assert any("said by the worker" in r.getMessage() for r in relayed), caplog.records


def test_secrets_from_a_directory(tmp_path: Path) -> None:
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "APP_TOKEN").write_text("t0ken-from-a-file")
    text = textwrap.dedent(
        """
        schemaVersion: v1.0.0
        name: secrets
        tasks:
          - name: use
            type: exec
            params:
              command: [sh, -c, 'test "$T" = t0ken-from-a-file && echo "got $T"']
              env: {T: "{{ secret('TOKEN') }}"}
            register: used
        """
    )
    config = gxo.SecretsConfig(directory=secrets, prefix="APP_")
    result = gxo.run(text, workers=1, secrets=config)
    assert result.ok, result.report.error
    assert result.registered["used"]["stdout"] == "got [REDACTED_SECRET]\n"


def test_missing_secrets_directory_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(gxo.GxoError, match="not found"):
        gxo.run(PLAYBOOK, secrets=gxo.SecretsConfig(directory=tmp_path / "nope"))


def test_a_library_run_releases_its_run_directory(tmp_path: Path) -> None:
    """The run directory's lock is held while the run goes, released when it returns (the
    no-leaks fixture checks its descriptor is closed), whether it passed or failed."""
    from gxo.outputs import RUN_LOCK, run_dir_in_use

    failing = PLAYBOOK.replace("command: echo", "command: 'false'")
    assert gxo.run(PLAYBOOK, workers=1, state_dir=tmp_path).exit_code == 0
    assert gxo.run(failing, workers=1, state_dir=tmp_path).exit_code == 1
    runs = list((tmp_path / "runs").iterdir())
    assert len(runs) == 2
    for run in runs:
        assert (run / RUN_LOCK).exists()
        assert not run_dir_in_use(run)


def test_registered_holds_only_what_this_runs_tasks_registered() -> None:
    """Not every register name the final state holds: a skipped or failed task registers
    nothing, and the state then holds a variable of that name, or what a store's
    ``initial()`` gave (the first run's registers, for a MemoryStateStore's second run)."""
    text = textwrap.dedent(
        """
        schemaVersion: v1.0.0
        name: registers
        vars: {go: true}
        tasks:
          - name: maybe
            type: passthrough
            when: "{{ go }}"
            params: {value: fresh}
            register: out
          - name: fails
            type: exec
            params: {command: "false"}
            register: failed
          - name: ignored
            type: exec
            ignore_errors: true
            params: {command: "false"}
            register: ignored
        """
    )
    memory = MemoryStateStore()
    first = gxo.run(text, workers=1, state=memory)
    assert sorted(first.registered) == ["ignored", "out"]
    assert first.registered["ignored"]["failed"] is True
    second = gxo.run(text, workers=1, state=memory, variables={"go": False})
    assert second.tasks["maybe"].status == "Skipped"
    assert sorted(second.registered) == ["ignored"]
    assert memory.data["out"] == {"value": "fresh", "records_processed": 0}  # the store keeps it
    shadowed = gxo.run(text, workers=1, variables={"go": False, "out": 1, "failed": 2})
    assert sorted(shadowed.registered) == ["ignored"]


QUICK = "schemaVersion: v1.0.0\nname: quick\ntasks: [{name: a, type: passthrough}]\n"


def test_resume_of_a_playbook_given_as_text_says_what_to_give(tmp_path: Path) -> None:
    """It said "--resume needs a journal: drop --no-journal, or give --journal", flags a
    library caller never gave (only a library call can give a playbook without a file)."""
    with pytest.raises(gxo.UsageError, match=r"give PartialRun\(journal=PATH\)") as raised:
        gxo.run(QUICK, workers=1, partial=gxo.PartialRun(resume=True))
    assert "--no-journal" not in str(raised.value)
    journal = tmp_path / "quick.jsonl"
    ran = gxo.run(QUICK, workers=1, partial=gxo.PartialRun(resume=True, journal=journal))
    assert ran.ok
    assert journal.exists()


def test_journal_enabled_for_a_playbook_given_as_text_warns(
    caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    """Asked for and quietly not written, before."""
    with caplog.at_level(logging.WARNING, logger="gxo"):
        result = gxo.run(
            QUICK, workers=1, state_dir=tmp_path, partial=gxo.PartialRun(journal_enabled=True)
        )
    assert result.ok
    assert any("has no default journal" in r.getMessage() for r in caplog.records)
    assert not (tmp_path / "journal").exists()


def test_a_run_in_a_daemonic_process_is_refused_before_it_starts(tmp_path: Path) -> None:
    """multiprocessing allows a daemonic process (a Pool worker) no children: its assertion
    came from the pool's first worker, after RunStarted was sent."""
    import subprocess
    import sys

    script = textwrap.dedent(
        """
        import multiprocessing, sys
        import gxo

        def job(queue):
            events = []
            try:
                gxo.run(sys.argv[1], workers=1, events=[events.append])
            except gxo.UsageError as exc:
                queue.put(f"{exc} | events: {len(events)}")

        if __name__ == "__main__":
            context = multiprocessing.get_context("fork")
            queue = context.Queue()
            child = context.Process(target=job, args=(queue,), daemon=True)
            child.start()
            print(queue.get(timeout=60))
            child.join()
        """
    )
    ran = subprocess.run(
        [sys.executable, "-c", script, QUICK],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ran.returncode == 0, ran.stderr
    assert "this is a daemonic process" in ran.stdout
    assert "ProcessPoolExecutor" in ran.stdout
    assert ran.stdout.strip().endswith("events: 0")


def test_a_run_id_in_use_by_another_run_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """It said "cannot write the run directory ... (Resource temporarily unavailable)"."""
    import os

    from gxo.outputs import hold_run_dir, run_dir

    held = hold_run_dir(run_dir(tmp_path, "same"))  # as a run going on holds it
    try:
        with caplog.at_level(logging.WARNING, logger="gxo"):
            result = gxo.run(QUICK, workers=1, state_dir=tmp_path, run_id="same")
    finally:
        os.close(held)
    assert result.ok
    (warning,) = [r.getMessage() for r in caplog.records if "run directory" in r.getMessage()]
    assert "in use by another run with the same run id 'same'" in warning
    assert "Resource temporarily unavailable" not in warning
