"""The GXO compatibility corpus: playbooks written only with GXO v0.1.2a forms, run unchanged
through the real ``gxo`` command (with GXO's own command line, ``gxo -playbook FILE``), each
with the outcome GXO documents (its test suite and docs, ``reference/gxo-go-behaviour.md``).

Where gxo deliberately differs from GXO (README, "Differences from GXO v0.1.2a"), the
expectation says so in a comment. Each playbook's header names where it comes from.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

CORPUS = Path(__file__).resolve().parent / "playbooks"
SECRET = "my-super-secret-api-key-12345"


@dataclass(frozen=True)
class Expect:
    exit: int = 0
    statuses: dict[str, str] = field(default_factory=dict)
    reasons: dict[str, str] = field(default_factory=dict)
    files: dict[str, str | None] = field(default_factory=dict)  # None: must not exist
    stderr: tuple[str, ...] = ()
    args: tuple[str, ...] = ()


CASES: dict[str, Expect] = {
    "01_single_exec.yaml": Expect(
        statuses={"task_a": "Completed", "task_b": "Completed"},
        files={"out_01.txt": "hello\n|Completed"},
    ),
    "02_state_passing.yaml": Expect(files={"out_02.txt": "consumed=from_vars\n"}),
    "03_when_skip.yaml": Expect(
        statuses={"task_a": "Completed", "task_b_skipped": "Skipped", "task_c": "Completed"},
        files={"out_03.txt": "Skipped", "out_03_b.txt": None},
    ),
    "04_when_eq.yaml": Expect(
        statuses={"task_a": "Completed", "task_b": "Completed", "task_c": "Skipped"},
        files={
            "out_04_a.txt": "a\n",
            "out_04_b.txt": "b\n",
            "out_04_c.txt": None,
            "out_04_d.txt": "d\n",
        },
    ),
    "05_skipped_register.yaml": Expect(
        exit=1,
        statuses={"task_a_skipped": "Skipped", "task_b_fails": "Failed"},
        reasons={"task_b_fails": "template_error"},
    ),
    "06_loop_literal.yaml": Expect(files={"out_06.txt": "alpha\nbeta\ngamma\n"}),
    "07_loop_template.yaml": Expect(
        files={f"out_07_{h}.txt": f"{h}\n" for h in ("web1", "web2", "db1", "db2")}
    ),
    "08_retry.yaml": Expect(statuses={"flaky": "Completed"}, files={"out_08.txt": "2\n"}),
    "09_timeout.yaml": Expect(
        exit=1,
        statuses={"too_slow": "Failed", "independent": "Completed"},
        reasons={"too_slow": "timed_out"},
        files={"out_09.txt": "ok\n"},
    ),
    "10_exec_pipeline.yaml": Expect(files={"out_10.txt": '"a\\nb\\nc\\n" 3 b many'}),
    "11_inner_join.yaml": Expect(files={"out_11.txt": "2 2"}),
    "12_left_join_template.yaml": Expect(files={"out_12.txt": "2 2 1"}),
    "13_right_join.yaml": Expect(files={"out_13.txt": "2"}),
    "14_outer_join.yaml": Expect(files={"out_14.txt": "3"}),
    "15_join_max_build.yaml": Expect(
        exit=1,
        statuses={"join_streams": "Failed"},
        stderr=("max_build_records of 2 reached",),
    ),
    "16_policies.yaml": Expect(files={"out_16.txt": "hello\n3"}),
    "17_secret.yaml": Expect(
        files={
            "out_17_secret.txt": f"postgres://user:{SECRET}@host/db",
            "out_17.txt": "postgres://user:[REDACTED_SECRET]@host/db\n",
        }
    ),
    # GXO's docs: ignore_errors does not fail the run (GXO's code exits 1: its bug 26).
    "18_status_reads.yaml": Expect(
        statuses={"build-step": "Completed", "lint": "Failed", "summary": "Completed"},
        files={"out_18.txt": "build=Completed lint=Failed"},
    ),
    # Rejected before anything runs (GXO exits 1 at its DAG build; gxo exits 2 at load).
    "19_cycle.yaml": Expect(exit=2, stderr=("dependency cycle: task_a -> task_b -> task_a",)),
    # GXO ignores a parameter the module does not read; gxo warns at load and runs.
    "20_exec_consumer.yaml": Expect(
        statuses={"produce": "Completed", "consume": "Completed"}, files={"out_20.txt": "done"}
    ),
    "21_unknown_param.yaml": Expect(
        statuses={"relay": "Completed"},
        files={"out_21.txt": "2"},
        stderr=("unknown parameter 'conn' for passthrough",),
    ),
    "22_non_string_args.yaml": Expect(files={"out_22.txt": "8080|0.5|true|[a b]|8080"}),
    "23_dry_run.yaml": Expect(
        args=("-dry-run",), statuses={"would_write": "Completed"}, files={"out_23.txt": None}
    ),
    "24_when_numeric_zero.yaml": Expect(
        statuses={
            "formatted_zero": "Skipped",
            "padded_zero": "Skipped",
            "signed_zero": "Skipped",
            "not_zero": "Completed",
        },
        reasons={"formatted_zero": "when_false", "padded_zero": "when_false"},
        files={
            "out_24_formatted.txt": None,
            "out_24_padded.txt": None,
            "out_24_signed.txt": None,
            "out_24_small.txt": "ran",
        },
    ),
    "25_vars_named_like_functions.yaml": Expect(
        statuses={"context": "Completed", "deploy": "Completed"},
        files={"out_25.txt": "production/kube-system\n/ab/n/true"},
    ),
    # A deliberate difference (README): the list of every item's result, not the last one.
    "26_loop_register_field.yaml": Expect(
        exit=2,
        stderr=(
            "$.tasks[1].params.args[2]: 'hosts_out' is the register of task 'per_host', which "
            "loops: it holds a list with one result per item, which has no 'stdout'",
            "read an item's: {{ (index .hosts_out 0).stdout }}",
        ),
    ),
    "27_range_assignment.yaml": Expect(files={"out_27.txt": "web1,db1 last=db1"}),
    "28_yaml_numbers.yaml": Expect(files={"out_28.txt": "1000000 5 8080 0.5 string"}),
}


def test_the_corpus_is_large_enough_and_listed() -> None:
    files = sorted(path.name for path in CORPUS.glob("*.yaml"))
    assert files == sorted(CASES)
    assert len(files) >= 15


@pytest.mark.parametrize("name", sorted(CASES))
def test_gxo_playbook_runs_unchanged(name: str, tmp_path: Path) -> None:
    expect = CASES[name]
    report = tmp_path / "report.json"
    env = {**os.environ, "TEST_API_KEY": SECRET}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "gxo",
            "-playbook",
            str(CORPUS / name),
            "-worker-pool-size",
            "2",
            *expect.args,
            "--report",
            str(report),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == expect.exit, output
    for text in expect.stderr:
        assert text in result.stderr
    assert SECRET not in output
    if expect.exit != 2:
        data = json.loads(report.read_text())
        assert SECRET not in report.read_text()
        tasks = data["task_results"]
        for task, status in expect.statuses.items():
            assert tasks[task]["status"] == status, (task, tasks[task], output)
        for task, reason in expect.reasons.items():
            assert tasks[task]["reason"] == reason, (task, tasks[task])
        if expect.exit == 0:
            assert all(t["status"] in ("Completed", "Skipped") or t.get("ignored")
                       for t in tasks.values()), tasks  # fmt: skip
    for file, content in expect.files.items():
        path = tmp_path / file
        if content is None:
            assert not path.exists(), file
        else:
            assert path.read_text() == content, (file, output)
