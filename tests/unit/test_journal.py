"""gxo.journal: the file (lock, batches, torn lines), fingerprints, and resume decisions."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import msgspec
import pytest

from gxo.config import Playbook
from gxo.config.load import load_playbook_text
from gxo.dag import Plan, analyse
from gxo.dag.select import select_tasks
from gxo.journal import (
    EndEntry,
    Fingerprinter,
    InstanceEntry,
    JournalIndex,
    JournalLocked,
    JournalWriter,
    Pending,
    Resumer,
    RunEntry,
    TaskEntry,
    default_state_dir,
    has_redacted,
    journal_path,
    predict,
    read_journal,
)

HEAD = 'schemaVersion: "v1.0.0"\nname: test\nvars: {v: 1, names: [a, b]}\n'


def instance(task: str = "t", fingerprint: str = "f", **more: Any) -> InstanceEntry:
    return InstanceEntry(
        run="r1", task=task, fingerprint=fingerprint, parts={}, duration=1.5, at=0.0, **more
    )


# -- the file -------------------------------------------------------------------------------


def test_path_is_stem_and_hash_of_the_absolute_path(tmp_path: Path) -> None:
    one = journal_path(tmp_path / "a" / "site.yaml", tmp_path / ".gxo")
    two = journal_path(tmp_path / "b" / "site.yaml", tmp_path / ".gxo")
    assert one.parent == tmp_path / ".gxo" / "journal"
    assert one.name.startswith("site-")
    assert one.suffix == ".jsonl"
    assert one != two
    assert journal_path("site.yaml", "x") == journal_path(os.path.abspath("site.yaml"), "x")


def test_path_is_the_same_through_a_symlinked_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``gxo site.yaml`` in the directory and ``gxo $HOME/proj/site.yaml`` through a symlinked
    ``$HOME`` name one file: they had two journals (two locks: both ran at once, and a resume
    through the other spelling found nothing)."""
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "site.yaml").write_text("x")
    (tmp_path / "link").symlink_to(tmp_path / "real")
    (tmp_path / "real" / "other.yaml").symlink_to(tmp_path / "real" / "site.yaml")
    monkeypatch.chdir(tmp_path / "link")  # the physical directory: getcwd() resolves it
    state = tmp_path / ".gxo"
    here = journal_path("site.yaml", state)
    assert journal_path(tmp_path / "link" / "site.yaml", state) == here
    assert journal_path(tmp_path / "real" / "site.yaml", state) == here
    # A playbook that is itself a link keeps its own name (and its own journal).
    assert journal_path("other.yaml", state).name.startswith("other-")


def test_state_dir_from_option_then_environment_then_default() -> None:
    assert default_state_dir("here", {"GXO_STATE_DIR": "env"}) == Path("here")
    assert default_state_dir(None, {"GXO_STATE_DIR": "env"}) == Path("env")
    assert default_state_dir(None, {}) == Path(".gxo")


def test_records_round_trip_in_order(tmp_path: Path) -> None:
    path = tmp_path / "j" / "p.jsonl"
    records = [
        RunEntry(run="r1", playbook="p.yaml", gxo="0", at=1.0),
        instance(value={"stdout": "x"}, loop_index=2, outputs={"o": "1:2"}),
        TaskEntry(run="r1", task="t", definition="d", at=2.0, value=[1, 2]),
        EndEntry(run="r1", exit_code=0, at=3.0),
    ]
    with JournalWriter(path, run_id="r1") as writer:
        for record in records:
            writer.append(record)
    contents = read_journal(path)
    assert contents.entries == records
    assert not contents.torn
    assert not contents.bad_lines


def test_appends_are_batched_and_fsynced_by_count_and_by_time(tmp_path: Path) -> None:
    now = [0.0]
    path = tmp_path / "p.jsonl"
    writer = JournalWriter(path, batch_records=3, batch_seconds=10, clock=lambda: now[0]).open()
    try:
        writer.append(instance("a"))
        writer.append(instance("b"))
        assert path.read_bytes() == b""  # still buffered
        writer.append(instance("c"))
        assert len(read_journal(path).entries) == 3
        writer.append(instance("d"))
        now[0] = 11.0
        writer.append(instance("e"))  # the batch is old: written with this record
        assert [e.task for e in read_journal(path).entries] == ["a", "b", "c", "d", "e"]  # type: ignore[union-attr]
    finally:
        writer.close()


def test_tick_writes_a_batch_that_no_later_record_comes_to_write(tmp_path: Path) -> None:
    """A run that goes quiet (one long task) must not keep its records in memory: the loop
    calls ``tick`` and waits no longer than it says."""
    now = [0.0]
    path = tmp_path / "p.jsonl"
    writer = JournalWriter(path, batch_records=100, batch_seconds=1, clock=lambda: now[0]).open()
    try:
        assert writer.tick() is None  # nothing buffered: no wake-up needed
        now[0] = 0.25
        writer.append(instance("a"))
        assert path.read_bytes() == b""
        assert writer.tick() == 0.75  # due one batch time after the last write
        now[0] = 1.0
        assert writer.tick() is None
        assert [e.task for e in read_journal(path).entries] == ["a"]  # type: ignore[union-attr]
    finally:
        writer.close()


def test_pending_records_are_built_in_order_when_their_batch_is_written(tmp_path: Path) -> None:
    built: list[str] = []

    class Later(Pending):
        __slots__ = ("task",)

        def __init__(self, task: str) -> None:
            self.task = task

        def build(self) -> InstanceEntry | None:
            built.append(self.task)
            return None if self.task == "skip" else instance(self.task)

    path = tmp_path / "p.jsonl"
    writer = JournalWriter(path, batch_records=4).open()
    try:
        writer.append(instance("a"))
        writer.append(Later("b"))
        writer.append(Later("skip"))
        assert built == []  # nothing is built before its batch is written
        writer.append(Later("c"))
        assert built == ["b", "skip", "c"]
        assert [e.task for e in read_journal(path).entries] == ["a", "b", "c"]  # type: ignore[union-attr]
    finally:
        writer.close()


def test_torn_last_line_is_ignored_and_the_next_writer_keeps_it_apart(tmp_path: Path) -> None:
    path = tmp_path / "p.jsonl"
    with JournalWriter(path) as writer:
        writer.append(instance("a"))
    whole = path.read_bytes()
    path.write_bytes(whole + whole[: len(whole) // 2])  # a crash in the middle of a write
    contents = read_journal(path)
    assert [e.task for e in contents.entries] == ["a"]  # type: ignore[union-attr]
    assert contents.torn
    with JournalWriter(path) as writer:
        writer.append(instance("b"))
    contents = read_journal(path)
    assert [e.task for e in contents.entries] == ["a", "b"]  # type: ignore[union-attr]
    assert contents.bad_lines == 1
    assert not contents.torn


def test_missing_journal_is_empty(tmp_path: Path) -> None:
    assert read_journal(tmp_path / "none.jsonl").entries == []


def test_second_writer_in_this_process_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "p.jsonl"
    with JournalWriter(path, run_id="first"):
        with pytest.raises(JournalLocked, match=r"another gxo run is using the journal") as err:
            JournalWriter(path).open()
        assert f"pid {os.getpid()}, run first" in str(err.value)
        assert "--journal FILE" in str(err.value)
    with JournalWriter(path):  # released at close
        pass


def test_lock_held_by_another_process_refuses_and_dies_with_it(tmp_path: Path) -> None:
    path = tmp_path / "p.jsonl"
    ready = tmp_path / "ready"
    code = textwrap.dedent(
        f"""
        import sys, pathlib
        from gxo.journal import JournalWriter
        w = JournalWriter({str(path)!r}, run_id="other").open()
        pathlib.Path({str(ready)!r}).write_text("x")
        sys.stdin.read()
        """
    )
    holder = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE)
    try:
        while not ready.exists():
            if holder.poll() is not None:
                pytest.fail("the lock holder exited")
            time.sleep(0.01)  # polling a file: no event to wait on
        with pytest.raises(JournalLocked, match=f"pid {holder.pid}, run other"):
            JournalWriter(path).open()
    finally:
        holder.kill()  # no clean release: the kernel drops the flock
        holder.wait()
        assert holder.stdin is not None
        holder.stdin.close()
    with JournalWriter(path):
        pass


# -- fingerprints ---------------------------------------------------------------------------


def load(body: str) -> tuple[Playbook, Plan]:
    playbook = load_playbook_text(HEAD + body)
    return playbook, analyse(playbook)


BARE_PATHS_PROBE = """
import sys
from gxo.config.load import load_playbook_text
from gxo.dag import analyse
from gxo.journal import Fingerprinter

playbook = load_playbook_text(sys.argv[1])
task = playbook.task("b")
fingerprint = Fingerprinter(analyse(playbook)).instance(task, {"ra": {"rc": 0}})
print(fingerprint.parts["params"], "jinja2" in sys.modules)
"""

BARE_PATHS = """\
schemaVersion: v1.0.0
name: chain
tasks:
  - {name: a, type: exec, register: ra, params: {command: echo}}
  - {name: b, type: exec, params: {command: echo, args: ["{{ ra }}", "x"]}}
"""


def test_fingerprinting_params_of_bare_paths_does_not_import_jinja2() -> None:
    """The parent fingerprints each instance for the journal by rendering its params: a
    playbook whose templates are all bare ``{{ name }}`` paths (a chain passing registers)
    is rendered by a dict walk, without Jinja2 (30-50 ms of a run's parent otherwise)."""
    done = subprocess.run(
        [sys.executable, "-c", BARE_PATHS_PROBE, BARE_PATHS],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    digest, jinja_imported = done.stdout.split()
    assert len(digest) == 16
    assert jinja_imported == "False"


def test_fingerprint_parts_change_with_what_they_cover(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("in.txt").write_text("1")
    body = """tasks:
  - name: t
    type: exec
    inputs: [in.txt]
    params: {command: echo, args: ["{{ v }}", "{{ env('GXO_T_ENV') }}", "{{ secret('PW') }}"]}
"""
    playbook, plan = load(body)
    task = playbook.task("t")
    fp = Fingerprinter(plan)
    base = fp.instance(task, {"v": 1})
    assert base == fp.instance(task, {"v": 1})
    assert set(base.parts) == {"definition", "params", "state", "module", "inputs"}
    changed = fp.instance(task, {"v": 2})
    assert changed.value != base.value
    assert {k for k in base.parts if base.parts[k] != changed.parts[k]} == {"params", "state"}
    monkeypatch.setenv("GXO_T_ENV", "x")
    by_env = fp.instance(task, {"v": 1})
    assert {k for k in base.parts if base.parts[k] != by_env.parts[k]} == {"params"}
    monkeypatch.delenv("GXO_T_ENV")
    monkeypatch.setenv("PW", "one")
    assert fp.instance(task, {"v": 1}) == base  # a secret's value is never part of it
    Path("in.txt").write_text("22")
    by_file = fp.instance(task, {"v": 1})
    assert {k for k in base.parts if base.parts[k] != by_file.parts[k]} == {"inputs"}
    other, other_plan = load(body.replace("echo", "printf"))
    assert (
        Fingerprinter(other_plan).instance(other.task("t"), {"v": 1}).parts["definition"]
        != base.parts["definition"]
    )


def test_checksum_fingerprints_content_not_mtime(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("in.txt").write_text("same")
    playbook, plan = load("tasks:\n  - {name: t, type: passthrough, inputs: [in.txt]}\n")
    task = playbook.task("t")
    by_stat, by_content = Fingerprinter(plan), Fingerprinter(plan, checksum=True)
    before = by_stat.instance(task, {}), by_content.instance(task, {})
    os.utime("in.txt", ns=(1, 1))
    assert by_stat.instance(task, {}) != before[0]
    assert by_content.instance(task, {}) == before[1]


def test_python_file_function_is_fingerprinted_by_its_content(tmp_path: Path) -> None:
    (tmp_path / "f.py").write_text("def fn(): return 1\n")
    body = "tasks:\n  - {name: t, type: python, params: {function: 'f.py:fn'}}\n"
    playbook, plan = load(body)
    fp = Fingerprinter(plan, base_dir=str(tmp_path))
    before = fp.instance(playbook.task("t"), {})
    (tmp_path / "f.py").write_text("def fn(): return 22\n")
    assert (
        Fingerprinter(plan, base_dir=str(tmp_path)).instance(playbook.task("t"), {}).parts["module"]
        != before.parts["module"]
    )


def test_has_redacted_looks_everywhere() -> None:
    assert has_redacted({"a": [1, {"b": "x [REDACTED_SECRET] y"}]})
    assert has_redacted({"[REDACTED_SECRET]": 1})
    assert not has_redacted({"a": [1, "fine"]})


# -- decisions ------------------------------------------------------------------------------

PIPE = """tasks:
  - {name: a, type: passthrough, register: ra, params: {x: "{{ v }}"}}
  - {name: b, type: passthrough, register: rb, params: {x: "{{ ra }}"}}
  - {name: c, type: passthrough, depends_on: [b]}
  - {name: d, type: passthrough, loop: "{{ names }}", register: rd}
"""


def completed(playbook: Playbook, plan: Plan, values: dict[str, Any]) -> JournalIndex:
    """A journal as a whole run of PIPE would leave it (predict walks the same namespaces)."""
    fp = Fingerprinter(plan)
    resumer = Resumer(JournalIndex(), fp)
    entries: list[Any] = []
    store: dict[str, Any] = dict(playbook.vars)
    for prediction in predict(playbook, plan, resumer):
        task = playbook.task(prediction.task)
        templates = plan.templates[task.name]
        ns = {k: store[k] for k in templates.state_names if k in store}
        items = [None] if task.loop is None else list(store["names"])
        results = []
        for index, item in enumerate(items):
            space = ns if task.loop is None else {**ns, "item": item}
            loop_index = None if task.loop is None else index
            value = values.get(task.name, {"ok": task.name, "i": loop_index})
            f = fp.instance(task, space)
            entries.append(
                InstanceEntry(
                    run="r0",
                    task=task.name,
                    fingerprint=f.value,
                    parts=f.parts,
                    duration=0.5,
                    at=0,
                    loop_index=loop_index,
                    value=value,
                    redacted=has_redacted(value),
                )
            )
            results.append(value)
        if task.register:
            store[task.register] = results if task.loop is not None else results[0]
            entries.append(
                TaskEntry(
                    run="r0",
                    task=task.name,
                    definition=fp.definition(task),
                    at=0,
                    value=store[task.register],
                )
            )
    return JournalIndex(entries)


def actions(playbook: Playbook, plan: Plan, index: JournalIndex, **kw: Any) -> dict[str, str]:
    selection = kw.pop("selection", None)
    resumer = Resumer(index, Fingerprinter(plan), **kw)
    return {p.task: f"{p.action}: {p.why}" for p in predict(playbook, plan, resumer, selection)}


def test_nothing_changed_resumes_everything() -> None:
    playbook, plan = load(PIPE)
    index = completed(playbook, plan, {})
    got = actions(playbook, plan, index)
    assert all(v.startswith("resume: completed in run r0") for v in got.values()), got
    assert index.duration("a") == 0.5


def test_empty_journal_runs_everything() -> None:
    playbook, plan = load(PIPE)
    got = actions(playbook, plan, JournalIndex())
    assert got["a"] == "run: the journal has no completed run of it"
    assert got["b"] == "run: upstream task 'a' runs"


def test_changed_var_reruns_the_task_and_everything_downstream() -> None:
    playbook, plan = load(PIPE)
    index = completed(playbook, plan, {})
    changed, changed_plan = load(PIPE.replace('"{{ v }}"', '"{{ v }}!"'))
    got = actions(changed, changed_plan, index)
    assert got["a"].startswith("run: changed since run r0: the task's definition")
    assert got["b"] == "run: upstream task 'a' runs"
    assert got["c"] == "run: upstream task 'b' runs"
    assert got["d"].startswith("resume")


def test_force_reruns_the_task_and_downstream() -> None:
    playbook, plan = load(PIPE)
    index = completed(playbook, plan, {})
    got = actions(playbook, plan, index, force={"b"})
    assert got["a"].startswith("resume")
    assert got["b"] == "run: --force names it"
    assert got["c"] == "run: upstream task 'b' runs"


def test_a_redacted_register_always_reruns() -> None:
    playbook, plan = load(PIPE)
    index = completed(playbook, plan, {"d": {"pw": "[REDACTED_SECRET]"}})
    got = actions(playbook, plan, index)
    assert got["d"].startswith("run: 2 of 2 iteration(s) run (d[0]: its registered value had")


def test_loop_iterations_are_decided_one_by_one() -> None:
    playbook, plan = load(PIPE)
    index = completed(playbook, plan, {})
    grown = load_playbook_text(HEAD.replace("[a, b]", "[a, b, c]") + PIPE)
    got = actions(grown, analyse(grown), index)
    assert got["d"].startswith("run: 1 of 3 iteration(s) run (d[2]: the journal has no")


def test_missing_output_reruns(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    playbook, plan = load("tasks:\n  - {name: o, type: passthrough, outputs: [out.txt]}\n")
    fp = Fingerprinter(plan)
    f = fp.instance(playbook.task("o"), {})
    Path("out.txt").write_text("x")
    entry = InstanceEntry(
        run="r0",
        task="o",
        fingerprint=f.value,
        parts=f.parts,
        duration=1,
        at=0,
        outputs=fp.signatures(["out.txt"]),
    )
    resumer = Resumer(JournalIndex([entry]), fp)
    assert resumer.decide(playbook.task("o"), f, None).resume
    Path("out.txt").write_text("changed")
    assert resumer.decide(playbook.task("o"), f, None).why == (
        "its output 'out.txt' changed since it was written"
    )
    Path("out.txt").unlink()
    assert resumer.decide(playbook.task("o"), f, None).why == "its output 'out.txt' is missing"


def test_not_selected_register_is_restored_for_its_reader() -> None:
    playbook, plan = load(PIPE)
    index = completed(playbook, plan, {"a": {"restored": True}})
    selection = select_tasks(playbook, plan.graph, skip=["a"], restorable={"a"})
    got = actions(playbook, plan, index, selection=selection)
    assert got["a"] == (
        "skip: not_selected: removed by --skip/--skip-tags; its register is restored from run r0"
    )
    assert got["b"].startswith("resume")  # its namespace holds the restored register


def test_stream_group_runs_whole() -> None:
    body = """tasks:
  - {name: p, type: passthrough}
  - {name: q, type: passthrough, stream_inputs: [p], params: {x: "{{ v }}"}}
"""
    playbook, plan = load(body)
    index = completed(playbook, plan, {})
    changed = load_playbook_text(HEAD.replace("v: 1", "v: 2") + body)
    got = actions(changed, analyse(changed), index)
    assert got["q"].startswith("run: changed since run r0: its rendered params, the state")
    assert got["p"] == "run: a task of its stream group runs (a group runs whole)"


def test_a_literal_loop_list_grown_reruns_only_the_new_item() -> None:
    """The items of a literal ``loop`` list were in every instance's definition digest, so
    adding one item ran all of them again (a template ``loop`` ran only the new one)."""
    body = "tasks:\n  - {name: t, type: passthrough, loop: @LIST@, params: {x: '{{ item }}'}}\n"
    playbook, plan = load(body.replace("@LIST@", "[a, b]"))
    grown, grown_plan = load(body.replace("@LIST@", "[c, a, b]"))
    before, after = Fingerprinter(plan), Fingerprinter(grown_plan)
    task, grown_task = playbook.task("t"), grown.task("t")
    for item in ("a", "b"):
        assert (
            before.instance(task, {"item": item}).value
            == after.instance(grown_task, {"item": item}).value
        )
    assert before.instance(task, {"item": "a"}) != before.instance(task, {"item": "b"})
    # A register is restored for a task left out of the run only while its list is the same.
    assert before.definition(task) != after.definition(grown_task)
    edited, edited_plan = load(body.replace("@LIST@", "[a, b]").replace("item }}", "item }}!"))
    assert (
        before.instance(task, {"item": "a"}).parts["definition"]
        != Fingerprinter(edited_plan).instance(edited.task("t"), {"item": "a"}).parts["definition"]
    )


def test_params_that_read_only_the_environment_are_fingerprinted_with_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Params were rendered only when they read state (vars, registers...), so a task whose
    params read nothing but ``env('X')`` kept its fingerprint when X changed, and --resume
    restored it, though README says env() is read."""
    playbook, plan = load(
        "tasks:\n  - {name: t, type: passthrough, params: {x: \"{{ env('GXO_T_E') }}\"}}\n"
    )
    task = playbook.task("t")
    monkeypatch.setenv("GXO_T_E", "one")
    before = Fingerprinter(plan).instance(task, {})
    assert before == Fingerprinter(plan).instance(task, {})
    monkeypatch.setenv("GXO_T_E", "two")
    after = Fingerprinter(plan).instance(task, {})
    assert after.value != before.value
    index = JournalIndex(
        [
            InstanceEntry(
                run="r0", task="t", fingerprint=before.value, parts=before.parts, duration=0, at=0
            )
        ]
    )
    assert Resumer(index, Fingerprinter(plan)).decide(task, after, None).why == (
        "changed since run r0: its rendered params"
    )


def test_loop_items_sharing_an_output_are_reused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A loop's items share its outputs (they are not templated): each item's record held the
    file as it left it, so every item but the last saw it "changed", and ran again on every
    --resume. The task's latest write in the same run counts too; an older run's does not."""
    monkeypatch.chdir(tmp_path)
    playbook, plan = load(
        "tasks:\n  - {name: o, type: passthrough, loop: [a, b], outputs: [all]}\n"
    )
    task, fp = playbook.task("o"), Fingerprinter(plan)
    prints = [fp.instance(task, {"item": item}) for item in ("a", "b")]
    entries = []
    for index, f in enumerate(prints):
        Path("all").write_text("ab"[: index + 1])  # each item appends to the file
        entries.append(
            InstanceEntry(
                run="r0",
                task="o",
                fingerprint=f.value,
                parts=f.parts,
                duration=1,
                at=index,
                loop_index=index,
                outputs=fp.signatures(["all"]),
            )
        )
    resumer = Resumer(JournalIndex(entries), fp)
    assert [resumer.decide(task, f, i).resume for i, f in enumerate(prints)] == [True, True]
    Path("all").write_text("changed")
    assert [resumer.decide(task, f, i).why for i, f in enumerate(prints)] == [
        "its output 'all' changed since it was written"
    ] * 2
    # Item a again in a later run (its params changed, say), which rewrote the file: b's
    # record is from the first run, whose last write is no longer what the file holds.
    Path("all").write_text("a2")
    later = msgspec.structs.replace(entries[0], run="r1", at=5, outputs=fp.signatures(["all"]))
    resumer = Resumer(JournalIndex([*entries, later]), fp)
    assert resumer.decide(task, prints[0], 0).resume
    assert not resumer.decide(task, prints[1], 1).resume
