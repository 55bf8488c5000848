"""The report written as a stream from the run's spool is the report built whole (issue 18).

Each instance's report entry is written to the spool as it ends (``Spooler``), and the state
forgets it; ``--report`` is then written piece by piece (``iter_report_json``). Here one run
of the state machine (no processes) keeps its records too, so the old whole report (built
from the records) and the streamed one (read back from the spool) come from the same run,
with retries, failures, an ignored failure, a loop and a task never run; they must be equal
byte for byte, and field by field (so a difference says where it is).
"""

from __future__ import annotations

import random
from typing import Any

import msgspec
import pytest

import gxo
import gxo.scheduler.report as report_module
from gxo.config.load import load_playbook_text
from gxo.dag import analyse
from gxo.journal.spool import InstanceSpool
from gxo.report import (
    attach_instances,
    iter_report_json,
    task_instances,
)
from gxo.scheduler.messages import AttemptFinished, AttemptStarted, Capacity
from gxo.scheduler.report import Spooler, build_report
from gxo.scheduler.state import SchedulerState
from gxo.wire import Done

PLAYBOOK = """\
schemaVersion: v1.0.0
name: streamed
tasks:
  - name: flaky
    type: passthrough
    retry: {attempts: 3, delay: 0s}
    register: f
  - name: each
    type: passthrough
    loop: [a, b, c, d, e]
    loop_control: {parallel: 2}
    retry: {attempts: 2, delay: 0s}
    ignore_errors: true
    register: items
  - name: broken
    type: passthrough
    depends_on: [flaky]
  - name: never
    type: passthrough
    depends_on: [broken]
"""


def _run(state: SchedulerState, summary_of: Any = None) -> None:
    """Drive ``state`` to its end; ``summary_of(label)``: a completed instance's summary."""
    now = 1.0
    state.start(now)
    fails_always: set[str] = {"each[2]", "broken"}
    flaky_tried = False
    while not state.is_finished():
        batch = state.dispatch(Capacity(idle=2, pipelined=2))
        if not batch:
            now += 1.0
            state.tick(now)
            continue
        for dispatch in batch:
            now += 0.25
            state.handle(AttemptStarted(dispatch.instance_id, 4000 + dispatch.instance_id), now)
            now += 0.5
            failed = dispatch.label in fails_always
            if dispatch.label == "flaky" and not flaky_tried:
                failed, flaky_tried = True, True
            done = (
                Done(
                    dispatch.instance_id,
                    ok=False,
                    summary={"exit_code": 3},
                    reason="nonzero_exit(3)",
                    error=f"{dispatch.label} failed",
                    traceback="Traceback: line 1",
                    duration=0.5,
                    max_rss_kib=1234,
                    started_at=now - 0.5,
                )
                if failed
                else Done(
                    dispatch.instance_id,
                    ok=True,
                    summary=(
                        {"value": dispatch.label, "n": [1, 2]}
                        if summary_of is None
                        else summary_of(dispatch.label)
                    ),
                    duration=0.5,
                    started_at=now - 0.5,
                )
            )
            state.handle(AttemptFinished(done), now)


def test_the_streamed_report_equals_the_whole_one(monkeypatch: pytest.MonkeyPatch) -> None:
    playbook = load_playbook_text(PLAYBOOK)
    spooler = Spooler(InstanceSpool(""))
    spooler.offset = 1_700_000_000.0
    state = SchedulerState(
        playbook,
        analyse(playbook),
        rng=random.Random(1),
        ended=spooler,
        release_finished=False,  # keep the records too: the old report is built from them
    )
    _run(state)
    times = {"started_wall": 1_700_000_001.0, "started_mono": 1.0, "ended_mono": 30.0}
    common: dict[str, Any] = {"run_id": "r1", "workers": 2, "worker_restarts": 0, "exit_code": 1}
    whole = build_report(state, **times, **common)
    monkeypatch.setattr(report_module, "INLINE_INSTANCES", 0)  # leave them in the spool
    streamed = build_report(state, **times, **common, spooler=spooler)

    assert all(not r.instances for r in streamed.task_results.values())
    written = b"".join(iter_report_json(streamed))
    old = whole.to_json()
    # The run had what the report must carry: retries, failures, a loop, a task never run.
    data = msgspec.json.decode(old)
    results = data["task_results"]
    assert [len(i["attempts"]) for i in results["flaky"]["instances"]] == [2]
    assert [i["status"] for i in results["each"]["instances"]] == [
        "Completed", "Completed", "Failed", "Completed", "Completed"
    ]  # fmt: skip
    assert results["each"]["attempts"] == 6
    assert results["each"]["ignored"]
    assert results["broken"]["status"] == "Failed"
    assert results["never"]["instances"] == []
    assert results["never"]["status"] == "Skipped"

    # Field by field first (a difference names its place), then byte for byte.
    new = msgspec.json.decode(written)
    assert new.keys() == data.keys()
    for key in data:
        if key != "task_results":
            assert new[key] == data[key], key
    assert new["task_results"].keys() == results.keys()
    for name, result in results.items():
        got = new["task_results"][name]
        for field in result:
            if field != "instances":
                assert got[field] == result[field], (name, field)
        assert len(got["instances"]) == len(result["instances"]), name
        for mine, theirs in zip(got["instances"], result["instances"], strict=True):
            for field in theirs:
                assert mine[field] == theirs[field], (name, theirs["label"], field)
    assert written == old
    # Readers of the report in memory see the same instances, read from the spool.
    for name, result in whole.task_results.items():
        assert list(task_instances(streamed, name)) == result.instances


def test_a_real_run_s_report_streams_to_the_same_bytes(tmp_path: Any) -> None:
    playbook = tmp_path / "p.yaml"
    playbook.write_text(
        "schemaVersion: v1.0.0\nname: real\ntasks:\n"
        "  - name: each\n    type: exec\n    loop: [0, 1, 2, 3]\n"
        "    loop_control: {parallel: 2}\n"
        '    params: {command: ["sh", "-c", "echo item {{ item }}; test {{ item }} != 2"]}\n'
        "    retry: {attempts: 2, delay: 0s}\n    ignore_errors: true\n"
    )
    result = gxo.run(gxo.load(playbook), workers=2, state_dir=str(tmp_path / "state"))
    report = result.report
    assert [i.status for i in report.task_results["each"].instances] == [
        "Completed", "Completed", "Failed", "Completed"
    ]  # fmt: skip
    # The same report without its instances in memory, reading them from the run's spool
    # (instances.jsonl in the run directory): what a run of 5,001+ instances writes.
    spool_file = tmp_path / "state" / "runs" / report.run_id / "instances.jsonl"
    lines = spool_file.read_bytes().splitlines()
    assert len(lines) == 4  # one line per instance, as each ended

    class Source:
        def lines(self, task: str) -> Any:
            decoded = [msgspec.json.decode(line) for line in lines]
            ordered = sorted(zip(decoded, lines, strict=True), key=lambda p: p[0]["loop_index"])
            yield from (line for d, line in ordered if d["label"].startswith(task))

    hollow = msgspec.structs.replace(
        report,
        task_results={
            name: msgspec.structs.replace(r, instances=[])
            for name, r in report.task_results.items()
        },
    )
    attach_instances(hollow, Source())
    assert b"".join(iter_report_json(hollow)) == report.to_json()


def test_entries_kept_in_memory_equal_the_ones_read_back() -> None:
    # The engine's spooler keeps a small run's entries (keep=True) instead of reading the
    # spool back; the report must not tell the two apart: same instances, in item order,
    # with each summary as JSON gives it back (a float JSON cannot hold becomes null), and
    # never the very object the state registered.
    summaries: dict[str, Any] = {
        "flaky": {"n": [1, 2.5], "s": "x"},
        "each[0]": float("nan"),
        "each[1]": ["a", None],
        "each[3]": 7,
        "each[4]": "text",
    }
    reports, stores = [], []
    for keep in (False, True):
        playbook = load_playbook_text(PLAYBOOK)
        spooler = Spooler(InstanceSpool(""), deferred=True, keep=keep)
        spooler.offset = 1_700_000_000.0
        state = SchedulerState(
            playbook, analyse(playbook), rng=random.Random(1), ended=spooler, release_finished=True
        )
        _run(state, summaries.get)
        times = {"started_wall": 1_700_000_001.0, "started_mono": 1.0, "ended_mono": 30.0}
        common: dict[str, Any] = {"run_id": "r1", "workers": 2, "worker_restarts": 0}
        reports.append(build_report(state, **times, **common, exit_code=1, spooler=spooler))
        stores.append(state.store)
        assert (spooler.kept() is not None) is keep  # the report took them from memory
    read_back, kept = reports
    assert kept.to_json() == read_back.to_json()
    for name, result in read_back.task_results.items():
        assert kept.task_results[name].instances == result.instances, name
    each = kept.task_results["each"].instances
    assert [i.loop_index for i in each] == [0, 1, 2, 3, 4]  # item order, not end order
    assert each[0].summary is None  # NaN, as JSON gives it back
    flaky = kept.task_results["flaky"].instances[0].summary
    assert flaky == stores[1]["f"] == {"n": [1, 2.5], "s": "x"}
    assert flaky is not stores[1]["f"]
