"""The Dask executor on real clusters of processes: the installed ``gxo`` command connects by
address to a cluster this module starts (or starts its own ``LocalCluster``), and every
outcome is compared with what the local process pool gives for the same playbook."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import psutil
import pytest
from dask_support import CANARY, Cluster, start_cluster, stop_cluster
from itest_support import FUNCS, alive_with_arg, unique_sleep_arg

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
            params: {{command: sh, args: ["-c", "sleep {marker} & sleep {marker}; wait"]}}
            timeout: 1s
        """,
    )
    done = on_dask(cluster, playbook, "--grace", "0.5", "--report", str(tmp_path / "r.json"))
    assert done.returncode == 1, done.stderr
    assert report(tmp_path, "r.json")["task_results"]["hang"]["reason"] == "timed_out"
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
    assert "ok       hello" in done.stderr


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
            """
        )
    )
    playbook = write(tmp_path, CRASHES)
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
    assert "distributed.cli.dask_worker" in done.stdout or "dask worker" in done.stdout


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
