"""The Dask executor on real clusters of processes: the installed ``gxo`` command connects by
address to a cluster this module starts (or starts its own ``LocalCluster``), and every
outcome is compared with what the local process pool gives for the same playbook."""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from dask_support import CANARY, Cluster, start_cluster, stop_cluster
from itest_support import (
    FUNCS,
    alive_with_arg,
    still_alive,
    survivors,
    unique_sleep_arg,
    wait_for_file,
)

pytestmark = pytest.mark.dask

GXO = [sys.executable, "-m", "gxo"]
DASK_FUNCS = Path(__file__).resolve().parent / "funcs.py"


def gxo(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*GXO, *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
        check=False,
    )


def write(tmp_path: Path, text: str, name: str = "playbook.yaml") -> Path:
    path = tmp_path / name
    text = textwrap.dedent(text).replace("@FUNCS@", str(FUNCS)).replace("@TMP@", str(tmp_path))
    text = text.replace("@DASK_FUNCS@", str(DASK_FUNCS))
    path.write_text(text.lstrip())
    return path


def report(tmp_path: Path, name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((tmp_path / name).read_text())
    return data


def on_dask(cluster: Cluster, playbook: Path, *more: str) -> subprocess.CompletedProcess[str]:
    return gxo(
        "execute", "--executor", "dask", "--dask-scheduler", cluster.address, *more, str(playbook)
    )


SEMANTICS = """
    schemaVersion: v1.0.0
    name: semantics
    vars:
      items: [a, b, c]
    tasks:
      - name: first
        type: exec
        params: {command: echo, args: ["one"]}
        register: first
      - name: loop
        type: exec
        loop: "{{ items }}"
        params: {command: echo, args: ["{{ item }}-{{ first.stdout | trim }}"]}
        register: looped
      - name: skipped
        type: exec
        when: "{{ first.stdout | trim == 'two' }}"
        params: {command: echo, args: [never]}
      - name: flaky
        type: python
        params:
          function: "@FUNCS@/behave.py:fail_first"
          kwargs: {marker: "@TMP@/flaky-@RUN@", failures: 1}
        retry: {attempts: 3, delay: 0s}
      - name: broken
        type: exec
        params: {command: sh, args: ["-c", "exit 3"]}
        ignore_errors: true
      - name: after
        type: exec
        depends_on: [broken, loop]
        params: {command: echo, args: ["n={{ looped | length }}"]}
"""


def _comparable(data: dict[str, Any]) -> dict[str, Any]:
    """A report without what differs between any two runs (times, pids, hosts, ids)."""
    tasks = {}
    for name, task in data["task_results"].items():
        tasks[name] = {
            "status": task["status"],
            "reason": task.get("reason"),
            "ignored": task.get("ignored"),
            "instances": [
                {
                    "status": i["status"],
                    "reason": i.get("reason"),
                    "attempts": [a.get("reason") for a in i.get("attempts", [])],
                }
                for i in task.get("instances", [])
            ],
        }
    return {
        "overall_status": data["overall_status"],
        "exit_code": data["exit_code"],
        "tasks": tasks,
    }


def test_a_run_on_dask_reports_what_a_local_run_reports(cluster: Cluster, tmp_path: Path) -> None:
    local = write(tmp_path, SEMANTICS.replace("@RUN@", "local"), "local.yaml")
    remote = write(tmp_path, SEMANTICS.replace("@RUN@", "dask"), "dask.yaml")
    here = gxo("execute", "--report", str(tmp_path / "local.json"), str(local))
    there = on_dask(cluster, remote, "--report", str(tmp_path / "dask.json"))
    assert here.returncode == 0, here.stderr
    assert there.returncode == 0, there.stderr
    assert "on Dask at " + cluster.address in there.stderr
    local_report = _comparable(report(tmp_path, "local.json"))
    dask_report = _comparable(report(tmp_path, "dask.json"))
    assert dask_report == local_report
    assert dask_report["tasks"]["flaky"]["instances"][0]["attempts"] == [
        "module_raised(ConnectionError)",
        "",
    ]
    assert dask_report["tasks"]["skipped"]["reason"] == "when_false"
    # Where things ran: each attempt's host and Dask worker, and the cluster's workers.
    host = os.uname().nodename
    here_data, there_data = report(tmp_path, "local.json"), report(tmp_path, "dask.json")
    assert here_data["executor"]["kind"] == "local"
    assert there_data["executor"]["kind"] == "dask"
    assert there_data["executor"]["scheduler"] == cluster.address
    slots = {w["address"]: w["slots"] for w in there_data["executor"]["workers"]}
    assert slots == dict.fromkeys(cluster.workers, 4)
    assert there_data["workers"] == 8  # gxo worker processes across the cluster
    ran = [
        a
        for task in there_data["task_results"].values()
        for i in task["instances"]
        for a in i["attempts"]
    ]
    assert ran
    for attempt in ran:
        assert attempt["host"] == host
        assert attempt["executor_worker"] in cluster.workers
        assert attempt["worker_pid"] > 0


CRASHES = """
    schemaVersion: v1.0.0
    name: crashes
    tasks:
      - name: segfault
        type: python
        params: {function: "@DASK_FUNCS@:segfault"}
        ignore_errors: true
      - name: hard-exit
        type: python
        params: {function: "@DASK_FUNCS@:hard_exit", kwargs: {code: 3}}
        ignore_errors: true
      - name: raise
        type: python
        params: {function: "@DASK_FUNCS@:boom"}
        ignore_errors: true
      - name: healthy
        type: exec
        depends_on: [segfault, hard-exit, raise]
        params: {command: echo, args: [fine]}
"""


def test_crashes_fail_only_their_instance_and_the_dask_workers_survive(
    cluster: Cluster, tmp_path: Path
) -> None:
    playbook = write(tmp_path, CRASHES)
    done = on_dask(cluster, playbook, "--report", str(tmp_path / "r.json"))
    assert done.returncode == 0, done.stderr
    tasks = report(tmp_path, "r.json")["task_results"]
    assert tasks["segfault"]["reason"] == "worker_signaled(SIGSEGV)"
    assert tasks["hard-exit"]["reason"] == "worker_exited(3)"
    assert tasks["raise"]["reason"].startswith("module_raised(")
    assert tasks["healthy"]["status"] == "Completed"
    for pid in cluster.workers.values():
        assert psutil.pid_exists(pid), "a Dask worker died with a module it ran"


def test_a_timeout_kills_the_whole_process_tree_on_the_node(
    cluster: Cluster, tmp_path: Path
) -> None:
    marker = unique_sleep_arg()
    playbook = write(
        tmp_path,
        f"""
        schemaVersion: v1.0.0
        name: hangs
        tasks:
          - name: hang
            type: exec
            params:
              command: sh
              args: ["-c", "echo before-the-kill; sleep {marker} & sleep {marker}; wait"]
            timeout: 1s
        """,
    )
    done = on_dask(cluster, playbook, "--grace", "0.5", "--report", str(tmp_path / "r.json"))
    assert done.returncode == 1, done.stderr
    hang = report(tmp_path, "r.json")["task_results"]["hang"]
    assert hang["reason"] == "timed_out"
    # What it printed before the kill comes back from the node with the lost attempt.
    outputs = hang["instances"][0]["attempts"][0]["outputs"]
    assert any("before-the-kill" in o["tail"] for o in outputs), outputs
    survivors = alive_with_arg(marker)
    assert not survivors, f"processes of the timed-out task survived: {survivors}"


STREAMS = """
    schemaVersion: v1.0.0
    name: streams
    tasks:
      - name: users
        type: generate:from_list
        params:
          items:
            - {id: 1, name: ada}
            - {id: 2, name: bob}
      - name: orders
        type: generate:from_list
        params:
          items:
            - {user_id: 1, total: 10}
            - {user_id: 1, total: 5}
            - {user_id: 2, total: 7}
      - name: joined
        type: stream:join
        stream_inputs: [users, orders]
        params:
          join_type: inner
          on:
            - {stream: users, field: id, role: build}
            - {stream: orders, field: user_id, role: probe}
      - name: sink
        type: file:write
        stream_inputs: [joined]
        params: {path: "@TMP@/joined.jsonl"}
"""


def test_a_stream_group_runs_as_one_unit_on_one_node(cluster: Cluster, tmp_path: Path) -> None:
    playbook = write(tmp_path, STREAMS)
    done = on_dask(cluster, playbook)
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in (tmp_path / "joined.jsonl").read_text().splitlines()]
    assert sorted((r["name"], r["total"]) for r in rows) == [("ada", 5), ("ada", 10), ("bob", 7)]


def test_secrets_are_resolved_on_the_node_and_never_reach_the_parent(
    cluster: Cluster, tmp_path: Path
) -> None:
    playbook = write(
        tmp_path,
        """
        schemaVersion: v1.0.0
        name: secrets
        tasks:
          - name: use
            type: exec
            params:
              command: sh
              args: ["-c", "echo token=$T; printf %s \\"$T\\" | sha256sum > @TMP@/digest"]
              env: {T: "{{ secret('GXO_DASK_CANARY') }}"}
            register: used
          - name: fail
            type: exec
            params: {command: sh, args: ["-c", "echo $T >&2; exit 1"],
                     env: {T: "{{ secret('GXO_DASK_CANARY') }}"}}
            ignore_errors: true
        """,
    )
    assert "GXO_DASK_CANARY" not in os.environ
    done = on_dask(cluster, playbook, "--report", str(tmp_path / "r.json"), "--log-level", "debug")
    assert done.returncode == 0, done.stderr
    import hashlib

    digest = hashlib.sha256(CANARY.encode()).hexdigest()
    assert (tmp_path / "digest").read_text().split()[0] == digest  # the node had the value
    text = (tmp_path / "r.json").read_text() + done.stdout + done.stderr
    assert CANARY not in text
    assert "[REDACTED_SECRET]" in (tmp_path / "r.json").read_text()


def test_a_dask_worker_that_dies_makes_its_attempt_lost_and_it_is_retried_elsewhere(
    tmp_path: Path,
) -> None:
    own = start_cluster(workers=2, slots=1)
    try:
        playbook = write(
            tmp_path,
            """
            schemaVersion: v1.0.0
            name: node-loss
            tasks:
              - name: doomed-once
                type: python
                params:
                  function: "@DASK_FUNCS@:kill_dask_worker_once"
                  kwargs: {marker: "@TMP@/killed"}
                retry: {attempts: 2, delay: 0s}
            """,
        )
        done = on_dask(own, playbook, "--report", str(tmp_path / "r.json"))
        assert done.returncode == 0, done.stderr
        task = report(tmp_path, "r.json")["task_results"]["doomed-once"]
        attempts = task["instances"][0]["attempts"]
        assert task["status"] == "Completed"
        assert attempts[0]["reason"].startswith("executor_worker_lost(tcp://")
        # the attempt names the Dask worker that died, the retry another one
        assert attempts[0]["reason"] == f"executor_worker_lost({attempts[0]['executor_worker']})"
        assert attempts[1]["executor_worker"] != attempts[0]["executor_worker"]
        assert attempts[1]["reason"] == ""
    finally:
        stop_cluster(own)


def test_gxo_can_start_and_stop_its_own_local_cluster(tmp_path: Path) -> None:
    playbook = write(
        tmp_path,
        """
        schemaVersion: v1.0.0
        name: own-cluster
        tasks:
          - name: hello
            type: exec
            params: {command: echo, args: [hi]}
        """,
    )
    done = gxo(
        "execute",
        "--executor",
        "dask",
        "--dask-cluster",
        "local",
        "--dask-workers",
        "1",
        str(playbook),
    )
    assert done.returncode == 0, done.stderr
    assert "on Dask at tcp://" in done.stderr
    assert re.search(r": 1 slot on 1 worker[,\n]", done.stderr)  # in the singular
    assert "ok       hello" in done.stderr


@contextlib.contextmanager
def dask_default_port_taken() -> Iterator[None]:
    """Another cluster (or notebook) already serves on Dask's default dashboard port 8787."""
    taken = socket.socket()
    taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        taken.bind(("", 8787))
        taken.listen()
    except OSError:  # someone else's: taken all the same
        pass
    try:
        yield
    finally:
        taken.close()


def test_a_taken_dashboard_port_does_not_disturb_gxos_own_local_cluster(tmp_path: Path) -> None:
    with dask_default_port_taken():
        done = gxo(
            "execute",
            "--executor",
            "dask",
            "--dask-cluster",
            "local",
            "--dask-workers",
            "1",
            str(
                write(
                    tmp_path,
                    """
                    schemaVersion: v1.0.0
                    name: own-cluster
                    tasks:
                      - name: hello
                        type: exec
                        params: {command: echo, args: [hi]}
                    """,
                )
            ),
        )
    assert done.returncode == 0, done.stderr
    assert "8787" not in done.stderr  # no UserWarning: "Port 8787 is already in use"
    assert "Warning" not in done.stderr


@pytest.mark.parametrize(
    ("kind", "directive"), [("slurm", "#SBATCH -p gxo-queue"), ("pbs", "#PBS -q gxo-queue")]
)
def test_gxo_plan_prints_the_job_script_from_the_dask_config(
    tmp_path: Path, kind: str, directive: str
) -> None:
    (tmp_path / "jobqueue.yaml").write_text(
        textwrap.dedent(
            f"""
            jobqueue:
              {kind}:
                queue: gxo-queue
                cores: 4
                memory: 8GiB
                walltime: "01:00:00"
                job-script-prologue: ["module load python/3.11"]
            """
        )
    )
    playbook = write(tmp_path, CRASHES)
    with dask_default_port_taken():
        done = gxo(
            "plan",
            "--executor",
            "dask",
            "--dask-cluster",
            kind,
            str(playbook),
            env={"DASK_CONFIG": str(tmp_path)},
        )
    assert done.returncode == 0, done.stderr
    assert directive in done.stdout
    assert "8787" not in done.stderr  # no UserWarning: "Port 8787 is already in use"
    assert "distributed.cli.dask_worker" in done.stdout or "dask worker" in done.stdout
    # The job's Dask worker reads its node's Dask config: gxo's daemon setting is exported,
    # after the user's own prologue.
    script = done.stdout
    assert "module load python/3.11\nexport DASK_DISTRIBUTED__WORKER__DAEMON=False\n" in script
    assert script.index("DASK_DISTRIBUTED__WORKER__DAEMON") < script.index("dask_worker")


def test_gxo_plan_as_json_carries_the_job_script_and_stays_json(tmp_path: Path) -> None:
    done = gxo(
        "plan",
        "--format",
        "json",
        "--executor",
        "dask",
        "--dask-cluster",
        "slurm",
        str(write(tmp_path, CRASHES)),
        env={"DASK_JOBQUEUE__SLURM__CORES": "2", "DASK_JOBQUEUE__SLURM__MEMORY": "4GiB"},
    )
    assert done.returncode == 0, done.stderr
    plan = json.loads(done.stdout)  # one JSON document, nothing after it
    assert plan["order"][-1] == "healthy"
    assert plan["job_script"]["cluster"] == "slurm"
    assert "#SBATCH --cpus-per-task=2" in plan["job_script"]["script"]


FAKE_SBATCH = """#!/bin/sh
# sbatch without SLURM: runs a copy of the job script in a session of its own, here and now;
# its pid is the job id (dask-jobqueue removes the script once sbatch returns)
copy=$(mktemp "@DIR@/job.XXXXXX")
cat "${1:--}" > "$copy"
setsid sh "$copy" > "$copy.log" 2>&1 < /dev/null &
echo "$!" >> "@DIR@/jobs"
echo "Submitted batch job $!"
"""
FAKE_SCANCEL = """#!/bin/sh
for job in "$@"; do kill -TERM -- "-$job" 2>/dev/null; done
exit 0
"""


def test_gxo_runs_on_a_slurm_cluster_it_submits_through_dask_jobqueue(tmp_path: Path) -> None:
    """--dask-cluster slurm end to end, with sbatch and scancel that run the jobs here: the
    job script's Dask workers are not daemonic (gxo exports the setting into the script) and
    jobs made after gxo set the cluster up (scale, close) still get gxo's prologue."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for name, text in (("sbatch", FAKE_SBATCH), ("scancel", FAKE_SCANCEL)):
        (bindir / name).write_text(text.replace("@DIR@", str(tmp_path)))
        (bindir / name).chmod(0o755)
    done = gxo(
        "execute",
        "--executor",
        "dask",
        "--dask-cluster",
        "slurm",
        "--report",
        str(tmp_path / "r.json"),
        str(write(tmp_path, CRASHES)),
        env={
            "PATH": f"{bindir}:{os.environ['PATH']}",
            "DASK_JOBQUEUE__SLURM__CORES": "2",
            "DASK_JOBQUEUE__SLURM__MEMORY": "2GiB",
            "DASK_JOBQUEUE__SLURM__INTERFACE": "lo",
            "GXO_DASK_WORKER_WAIT": "90",
        },
    )
    jobs = [int(pid) for pid in (tmp_path / "jobs").read_text().split()]
    assert not still_alive(jobs, timeout=30), "scancel left a job running"
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    tasks = report(tmp_path, "r.json")["task_results"]
    assert tasks["segfault"]["reason"] == "worker_signaled(SIGSEGV)"
    assert tasks["healthy"]["status"] == "Completed"


def test_a_job_queue_without_cores_or_memory_is_a_usage_error(tmp_path: Path) -> None:
    """dask-jobqueue refuses a job with no cores or memory configured: gxo says where to set
    them (exit 2, no traceback), for ``plan`` and ``execute`` alike, and runs nothing; the
    journal's last line says 2 as well."""
    playbook = write(tmp_path, CRASHES)
    env = {"DASK_CONFIG": str(tmp_path)}  # an empty Dask configuration
    state = tmp_path / "state"
    for command in (["plan"], ["execute", "--state-dir", str(state)]):
        options = ["--executor", "dask", "--dask-cluster", "slurm"]
        done = gxo(*command, *options, str(playbook), env=env)
        assert done.returncode == 2, (command, done.stderr)
        assert "Traceback" not in done.stderr
        assert "--dask-cluster slurm: dask-jobqueue cannot make a job" in done.stderr
        assert "DASK_JOBQUEUE__SLURM__CORES=8" in done.stderr
    assert "ok " not in done.stderr  # no task ran
    assert "FAILED" not in done.stderr
    (journal,) = (state / "journal").glob("*.jsonl")
    assert json.loads(journal.read_text().splitlines()[-1])["exit_code"] == 2


def test_a_job_queue_whose_jobs_cannot_be_submitted_is_the_no_worker_error(
    tmp_path: Path,
) -> None:
    """No ``sbatch`` on PATH: no job starts, so no worker connects (exit 2, the wait's
    message); stopping the cluster afterwards fails inside dask-jobqueue, which is a warning,
    not an internal error that hides why the run stopped."""
    playbook = write(tmp_path, CRASHES)
    empty = tmp_path / "bin"
    empty.mkdir()
    env = {
        "PATH": str(empty),
        "DASK_CONFIG": str(tmp_path),
        "DASK_JOBQUEUE__SLURM__CORES": "2",
        "DASK_JOBQUEUE__SLURM__MEMORY": "2GiB",
        "GXO_DASK_WORKER_WAIT": "2",
    }
    done = gxo(
        "execute",
        "--executor",
        "dask",
        "--dask-cluster",
        "slurm",
        "--state-dir",
        str(tmp_path / "state"),
        str(playbook),
        env=env,
    )
    assert done.returncode == 2, done.stderr
    assert "internal error" not in done.stderr
    assert "worker" in done.stderr


def test_a_cluster_that_does_not_stop_cleanly_is_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """What dask-jobqueue raises when it stops a cluster whose jobs were never submitted
    (``AssertionError: Status.created``, seen through the real command with no ``sbatch`` on
    PATH: exit 3 over the usage error) is said as a warning by the engine's stop of the
    cluster, and does not propagate over what ended the run."""
    from gxo.engine import _close_cluster

    class Unstoppable:
        def close(self) -> None:
            raise AssertionError("Status.created")

    with caplog.at_level("WARNING", logger="gxo"):
        _close_cluster(Unstoppable())
    assert "did not stop cleanly: AssertionError('Status.created')" in caplog.text


def test_without_the_dask_extra_the_command_says_what_to_install(tmp_path: Path) -> None:
    playbook = write(tmp_path, CRASHES)
    code = (
        "import sys; sys.modules['distributed'] = None; sys.modules['dask'] = None\n"
        "from gxo.cli import main\n"
        f"sys.exit(main(['execute', '--executor', 'dask', {str(playbook)!r}]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 2, done.stderr
    assert "pip install 'gxo[dask]'" in done.stderr


def test_a_stream_group_larger_than_every_worker_is_refused_before_anything_runs(
    cluster: Cluster, tmp_path: Path
) -> None:
    chain = "\n".join(
        f"""
          - name: s{i}
            type: passthrough
            stream_inputs: [s{i - 1}]"""
        for i in range(1, 6)
    )
    playbook = write(
        tmp_path,
        """
        schemaVersion: v1.0.0
        name: wide-group
        tasks:
          - name: s0
            type: generate:from_list
            params: {items: [1]}"""
        + chain
        + "\n",
    )
    done = on_dask(cluster, playbook)  # the cluster's workers have 4 threads each
    assert done.returncode == 2, done.stderr
    assert "a stream group of 6 tasks runs on one Dask worker" in done.stderr
    assert "ok " not in done.stderr


def test_a_cluster_without_workers_is_refused_after_the_documented_wait(tmp_path: Path) -> None:
    empty = start_cluster(workers=0)
    try:
        playbook = write(tmp_path, CRASHES)
        done = gxo(
            "execute",
            "--executor",
            "dask",
            "--dask-scheduler",
            empty.address,
            str(playbook),
            env={"GXO_DASK_WORKER_WAIT": "1"},
        )
    finally:
        stop_cluster(empty)
    assert done.returncode == 2, done.stderr
    assert "no Dask worker connected" in done.stderr


def test_daemonic_workers_are_named_and_the_run_refused_before_anything_runs(
    tmp_path: Path,
) -> None:
    # Dask's default: a nanny's worker is daemonic and may not start gxo's worker processes.
    daemonic = start_cluster(workers=1, daemonic=True)
    try:
        playbook = write(
            tmp_path,
            """
            schemaVersion: v1.0.0
            name: daemonic
            tasks:
              - name: first
                type: exec
                params: {command: touch, args: ["@TMP@/ran"]}
            """,
        )
        done = on_dask(daemonic, playbook)
    finally:
        stop_cluster(daemonic)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    (address,) = daemonic.workers
    assert f"{address} is a daemonic process" in done.stderr
    assert "DASK_DISTRIBUTED__WORKER__DAEMON=False" in done.stderr
    assert not (tmp_path / "ran").exists()


def _port_nothing_listens_on() -> str:
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        return f"tcp://127.0.0.1:{free.getsockname()[1]}"


@pytest.mark.parametrize(
    "address",
    [_port_nothing_listens_on(), "head-without-port", "tcpx://127.0.0.1:8786"],
    ids=["refused", "no-port", "bad-scheme"],
)
def test_a_scheduler_that_cannot_be_reached_is_a_clear_error_not_a_traceback(
    tmp_path: Path, address: str
) -> None:
    playbook = write(
        tmp_path,
        """
        schemaVersion: v1.0.0
        name: unreachable
        tasks:
          - name: first
            type: exec
            params: {command: touch, args: ["@TMP@/ran"]}
        """,
    )
    done = gxo(
        "execute",
        "--executor",
        "dask",
        "--dask-scheduler",
        address,
        str(playbook),
        env={"DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT": "2s"},
    )
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert f"cannot connect to the Dask scheduler at {address}" in done.stderr
    assert not (tmp_path / "ran").exists()


@pytest.mark.parametrize("wait", ["soon", "-5", "nan"])
def test_a_bad_worker_wait_is_a_clear_error(cluster: Cluster, tmp_path: Path, wait: str) -> None:
    playbook = write(tmp_path, CRASHES)
    done = gxo(
        "execute",
        "--executor",
        "dask",
        "--dask-scheduler",
        cluster.address,
        str(playbook),
        env={"GXO_DASK_WORKER_WAIT": wait},
    )
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert f"GXO_DASK_WORKER_WAIT={wait!r}" in done.stderr
    assert "ok " not in done.stderr


def test_workers_that_cannot_see_the_playbook_directory_are_named(
    cluster: Cluster, tmp_path: Path
) -> None:
    from distributed import Client

    from gxo.errors import UsageError
    from gxo.executors.dask import _check_nodes

    with Client(cluster.address, set_as_default=False) as client:
        _check_nodes(client, str(tmp_path))  # shared with this machine: fine
        with pytest.raises(UsageError) as caught:
            _check_nodes(client, str(tmp_path / "not-shared"))
    message = str(caught.value)
    for address in cluster.workers:
        assert f"{address} cannot see {tmp_path / 'not-shared'}" in message


PLACEMENT = """
    schemaVersion: v1.0.0
    name: placement
    vars:
      items: [1, 2, 3, 4, 5, 6]
    tasks:
      - name: train
        type: exec
        loop: "{{ items }}"
        params: {command: echo, args: ["{{ item }}"]}
        resources: {gpu: 1}
      - name: anywhere
        type: exec
        params: {command: echo, args: [plain]}
"""


def test_a_task_asking_for_a_resource_runs_only_on_workers_that_declare_it(
    cluster: Cluster, tmp_path: Path
) -> None:
    playbook = write(tmp_path, PLACEMENT)
    done = on_dask(cluster, playbook, "--report", str(tmp_path / "r.json"))
    assert done.returncode == 0, done.stderr
    tasks = report(tmp_path, "r.json")["task_results"]
    trained = [a["executor_worker"] for i in tasks["train"]["instances"] for a in i["attempts"]]
    assert trained == [cluster.gpu] * 6  # 6 of 6 on the one worker with a gpu
    anywhere = tasks["anywhere"]["instances"][0]["attempts"][0]["executor_worker"]
    assert anywhere in cluster.workers


def test_a_task_needing_a_resource_no_worker_offers_is_refused_before_anything_runs(
    cluster: Cluster, tmp_path: Path
) -> None:
    playbook = write(
        tmp_path,
        """
        schemaVersion: v1.0.0
        name: unplaceable
        tasks:
          - name: first
            type: exec
            params: {command: touch, args: ["@TMP@/ran"]}
          - name: two-gpus
            type: exec
            params: {command: "true"}
            resources: {gpu: 2}
          - name: tpu
            type: exec
            params: {command: "true"}
            resources: {tpu: 1}
        """,
    )
    done = on_dask(cluster, playbook)
    assert done.returncode == 2, done.stderr
    assert "task 'two-gpus' needs 2 of 'gpu': the most a worker offers is 1" in done.stderr
    assert "task 'tpu' needs 1 of 'tpu': no connected worker offers it" in done.stderr
    assert "--resources" in done.stderr
    assert not (tmp_path / "ran").exists()


def test_a_lost_scheduler_stops_the_run_with_exit_75_a_report_and_no_leftovers(
    cluster: Cluster, tmp_path: Path
) -> None:
    own = start_cluster(workers=1, slots=2)
    marker = unique_sleep_arg()
    playbook = write(
        tmp_path,
        f"""
        schemaVersion: v1.0.0
        name: scheduler-loss
        tasks:
          - name: done-before
            type: exec
            params: {{command: "true"}}
          - name: long
            type: exec
            depends_on: [done-before]
            params:
              command: sh
              args: ["-c", "touch @TMP@/started; test -e @TMP@/back || exec sleep {marker}"]
          - name: after
            type: exec
            depends_on: [long]
            params: {{command: "true"}}
        """,
    )
    run = subprocess.Popen(
        [
            *GXO,
            "execute",
            "--executor",
            "dask",
            "--dask-scheduler",
            own.address,
            "--report",
            str(tmp_path / "r.json"),
            "--state-dir",
            str(tmp_path / "state"),
            str(playbook),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for_file(tmp_path / "started", timeout=60)
        own.process.kill()  # the scheduler (and its workers) vanish mid-run
        _, err = run.communicate(timeout=90)
    finally:
        if run.poll() is None:
            run.kill()
            run.communicate()
        stop_cluster(own)
    assert run.returncode == 75, err
    assert "lost the connection to the Dask scheduler " + own.address in err
    assert "Traceback" not in err
    data = report(tmp_path, "r.json")
    assert data["exit_code"] == 75
    assert "--resume" in data["error"]
    tasks = data["task_results"]
    assert tasks["done-before"]["status"] == "Completed"
    assert (tasks["long"]["status"], tasks["long"]["reason"]) == ("Cancelled", "interrupted")
    assert tasks["after"]["status"] == "Cancelled"
    assert not survivors(marker, timeout=30), "the node's command outlived its cluster"
    # --resume on another cluster continues: what completed is restored, the rest runs.
    (tmp_path / "back").write_text("")
    resumed = on_dask(
        cluster,
        playbook,
        "--resume",
        "--state-dir",
        str(tmp_path / "state"),
        "--report",
        str(tmp_path / "resumed.json"),
    )
    assert resumed.returncode == 0, resumed.stderr
    tasks = report(tmp_path, "resumed.json")["task_results"]
    assert tasks["done-before"]["reason"] == "resumed"
    assert tasks["long"]["status"] == tasks["after"]["status"] == "Completed"


def test_a_killed_gxo_leaves_nothing_running_on_the_nodes(tmp_path: Path) -> None:
    own = start_cluster(workers=1, slots=2)
    marker = unique_sleep_arg()
    playbook = write(
        tmp_path,
        f"""
        schemaVersion: v1.0.0
        name: parent-killed
        tasks:
          - name: long
            type: exec
            params:
              command: sh
              args: ["-c", "touch @TMP@/started; sleep {marker} & exec sleep {marker}"]
        """,
    )
    (node,) = own.workers.values()
    before = {p.pid for p in psutil.Process(node).children(recursive=True)}
    run = subprocess.Popen(
        [*GXO, "execute", "--executor", "dask", "--dask-scheduler", own.address, str(playbook)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_file(tmp_path / "started", timeout=60)
        run.kill()  # gxo itself is killed: it cannot remove its pool from the nodes
        run.wait()
        left = survivors(marker, timeout=30)
        pool = [p.pid for p in psutil.Process(node).children(recursive=True) if p.pid not in before]
        pool = still_alive(pool, timeout=30)
    finally:
        stop_cluster(own)
    assert not left, "the node's command outlived the gxo that ran it"
    assert not pool, "the node kept the killed run's gxo worker processes"


def test_what_instances_log_on_a_node_reaches_the_parents_terminal(
    cluster: Cluster, tmp_path: Path
) -> None:
    playbook = write(
        tmp_path,
        """
        schemaVersion: v1.0.0
        name: relayed
        tasks:
          - name: talk
            type: python
            params:
              function: "@FUNCS@/outputs.py:talk"
              kwargs: {secret: "{{ secret('GXO_DASK_CANARY') }}"}
        """,
    )
    done = on_dask(cluster, playbook)
    assert done.returncode == 0, done.stderr
    for line in ("from print", "to stderr", "WARNING talk: a log record with [REDACTED_SECRET]"):
        assert f"talk | {line}\n" in done.stderr
    assert CANARY not in done.stderr + done.stdout


def test_dasks_own_log_lines_show_from_warning_up_unless_gxo_logs_at_debug(
    cluster: Cluster, tmp_path: Path
) -> None:
    """Dask configured to log at debug says a lot as the client connects: gxo's output keeps
    it out (as a LocalCluster would), and --log-level debug lets it through."""
    playbook = write(
        tmp_path,
        """
        schemaVersion: v1.0.0
        name: chatty
        tasks:
          - {name: one, type: exec, params: {command: "true"}}
        """,
    )
    env = {"DASK_LOGGING__DISTRIBUTED": "debug"}
    args = ("execute", "--executor", "dask", "--dask-scheduler", cluster.address)
    quiet = gxo(*args, str(playbook), env=env)
    assert quiet.returncode == 0, quiet.stderr
    assert "Connection to " not in quiet.stderr  # distributed.comm.core's DEBUG line
    assert "playbook 'chatty' Completed" in quiet.stderr
    loud = gxo("--log-level", "debug", *args, str(playbook), env=env)
    assert loud.returncode == 0, loud.stderr
    assert "distributed.comm.core - DEBUG - Connection to " in loud.stderr


def wait_for_match(path: Path, pattern: str, run: subprocess.Popen[bytes]) -> re.Match[str]:
    """Poll (bounded) the file a running gxo writes until ``pattern`` matches a line."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and run.poll() is None:
        found = re.search(pattern, path.read_text(), re.M)
        if found is not None:
            return found
        time.sleep(0.02)
    raise AssertionError(f"no line matching {pattern!r}:\n{path.read_text()}")


def test_progress_shows_each_dask_workers_occupancy(cluster: Cluster, tmp_path: Path) -> None:
    go = tmp_path / "go"
    playbook = write(
        tmp_path,
        f"""
        schemaVersion: v1.0.0
        name: occupancy
        tasks:
          - name: waits
            type: exec
            params:
              shell: true
              command: "while [ ! -e '{go}' ]; do sleep 0.02; done"
        """,
    )
    err = tmp_path / "gxo.err"
    with open(err, "wb") as errf:
        run = subprocess.Popen(
            [
                *GXO,
                "execute",
                "--executor",
                "dask",
                "--dask-scheduler",
                cluster.address,
                "--progress-interval",
                "0.05",
                str(playbook),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=errf,
        )
    try:
        busy = r"slots 1/8 busy \((127\.0\.0\.1:\d+) 1/4, (127\.0\.0\.1:\d+) 0/4\)"
        found = wait_for_match(err, busy, run)
        assert {found[1], found[2]} == {a.split("://")[1] for a in cluster.workers}
    finally:
        go.touch()
        assert run.wait(timeout=60) == 0, err.read_text()


def test_many_short_instances_travel_in_batches_and_each_is_reported(
    cluster: Cluster, tmp_path: Path
) -> None:
    playbook = write(
        tmp_path,
        """
        schemaVersion: v1.0.0
        name: batches
        tasks:
          - name: many
            type: python
            loop: "{{ range(60) | list }}"
            params: {function: "@FUNCS@/crash.py:ok", kwargs: {value: "{{ item }}"}}
            register: values
          - name: sum
            type: exec
            depends_on: [many]
            params:
              command: sh
              args: ["-c", "echo {{ values | map(attribute='value') | sum }} > @TMP@/sum"]
        """,
    )
    done = on_dask(cluster, playbook, "--report", str(tmp_path / "r.json"), "-q")
    assert done.returncode == 0, done.stderr
    tasks = report(tmp_path, "r.json")["task_results"]
    instances = tasks["many"]["instances"]
    assert [i["status"] for i in instances] == ["Completed"] * 60
    assert all(i["attempts"][0]["executor_worker"] in cluster.workers for i in instances)
    assert (tmp_path / "sum").read_text().strip() == str(sum(range(60)))


def test_verbose_shows_remote_commands_output_live_as_locally(
    cluster: Cluster, tmp_path: Path
) -> None:
    playbook = write(
        tmp_path,
        """
        schemaVersion: v1.0.0
        name: verbose
        tasks:
          - name: chatty
            type: exec
            params:
              command: sh
              args: ["-c", "echo first line; echo token=$T; echo oops >&2"]
              env: {T: "{{ secret('GXO_DASK_CANARY') }}"}
        """,
    )
    quiet = on_dask(cluster, playbook)
    loud = on_dask(cluster, playbook, "-v")
    assert quiet.returncode == loud.returncode == 0, loud.stderr
    assert "chatty | first line" not in quiet.stderr
    for line in ("first line", "token=[REDACTED_SECRET]", "oops"):
        assert f"chatty | {line}\n" in loud.stderr, loud.stderr
    assert CANARY not in loud.stderr + loud.stdout


LIMITED = """
    schemaVersion: v1.0.0
    name: limited
    tasks:
      - name: spin
        type: exec
        limits: {cpu: 1s}
        params: {command: sh, args: ["-c", "while :; do :; done"]}
      - name: fresh
        type: exec
        isolation: process
        params: {command: "true"}
"""


def test_limits_are_enforced_on_the_node(cluster: Cluster, tmp_path: Path) -> None:
    playbook = write(tmp_path, LIMITED)
    done = on_dask(cluster, playbook, "--report", str(tmp_path / "r.json"))
    assert done.returncode == 1, done.stderr
    tasks = report(tmp_path, "r.json")["task_results"]
    assert tasks["spin"]["reason"] == "limit_exceeded(cpu)", tasks["spin"]
    assert tasks["fresh"]["status"] == "Completed"
    (attempt,) = tasks["fresh"]["instances"][0]["attempts"]
    assert attempt["usage"]["processes_peak"] >= 1  # measured on the node


def test_a_node_that_cannot_enforce_a_limit_is_named_before_anything_runs(
    cluster: Cluster, tmp_path: Path
) -> None:
    from distributed import Client

    from gxo.errors import UsageError
    from gxo.executors.dask import _check_nodes

    with Client(cluster.address, set_as_default=False) as client:
        _check_nodes(client, str(tmp_path), (False, True))  # limits this node can enforce
        client.run(exec, "import os; os.environ['GXO_LIMITS_ENFORCEMENT'] = 'no-such-mode'")
        try:
            with pytest.raises(UsageError) as caught:
                _check_nodes(client, str(tmp_path), (False, True))
        finally:
            client.run(exec, "import os; os.environ.pop('GXO_LIMITS_ENFORCEMENT', None)")
    message = str(caught.value)
    for address in cluster.workers:
        assert f"{address}: GXO_LIMITS_ENFORCEMENT='no-such-mode'" in message
