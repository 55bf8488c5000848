"""examples/slurm/gxo-job.sbatch, run as the plain bash script it is (no SLURM needed).

``scontrol`` is a stub on PATH that records its arguments. The script must run gxo in the
background, forward USR1 (and TERM) to it, wait for gxo's own exit status even though the
trapped signal interrupts ``wait``, and requeue the job exactly when gxo exits 75.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "examples" / "slurm" / "gxo-job.sbatch"

#: A stand-in for gxo: records its argv, says it started, and on USR1 exits with STATUS.
STUB_GXO = """\
#!{python}
import os, signal, sys
here = {here!r}
with open(os.path.join(here, "gxo-args"), "w") as f:
    f.write(" ".join(sys.argv[1:]))
def drain(signum, frame):
    open(os.path.join(here, "gxo-signal"), "w").write(signal.Signals(signum).name)
    sys.exit({status})
signal.signal(signal.SIGUSR1, drain)
signal.signal(signal.SIGTERM, drain)
open(os.path.join(here, "gxo-started"), "w").close()
if {exit_at_once}:
    sys.exit({status})
while True:
    signal.pause()
"""


def wait_for(path: Path, proc: subprocess.Popen[bytes]) -> None:
    """Until ``path`` exists (or the process ended: then fail)."""
    while not path.exists():
        if proc.poll() is not None:
            pytest.fail(f"the script ended (status {proc.returncode}) before {path.name}")
        time.sleep(0.01)  # polling a file: no event to wait on


@pytest.fixture
def job(tmp_path: Path) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    scontrol = bindir / "scontrol"
    scontrol.write_text(f'#!/bin/sh\necho "$@" >> {tmp_path / "scontrol-calls"}\n')
    scontrol.chmod(0o755)
    started: list[subprocess.Popen[bytes]] = []

    def start(*args: str, status: int = 75, exit_at_once: bool = False, **env: str):
        stub = tmp_path / "fake-gxo"
        stub.write_text(
            STUB_GXO.format(
                python=sys.executable, here=str(tmp_path), status=status, exit_at_once=exit_at_once
            )
        )
        stub.chmod(0o755)
        environ = {
            **os.environ,
            "PATH": f"{bindir}:{os.environ['PATH']}",
            "GXO": str(stub),
            "SLURM_JOB_ID": "4242",
            **env,
        }
        if "GXO_DEADLINE" not in env:
            environ.pop("GXO_DEADLINE", None)
        with open(tmp_path / "job.log", "wb") as log:
            proc = subprocess.Popen(
                ["bash", str(SCRIPT), *args], cwd=tmp_path, env=environ, stdout=log, stderr=log
            )
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)


def test_usr1_is_forwarded_and_exit_75_requeues(job, tmp_path: Path) -> None:
    proc = job("pipeline.yaml", "--var", "x=1")
    wait_for(tmp_path / "gxo-started", proc)
    proc.send_signal(signal.SIGUSR1)
    assert proc.wait(timeout=60) == 75
    assert (tmp_path / "gxo-signal").read_text() == "SIGUSR1"
    assert (tmp_path / "gxo-args").read_text() == "execute --resume pipeline.yaml --var x=1"
    assert (tmp_path / "scontrol-calls").read_text() == "requeue 4242\n"
    assert "requeueing job 4242" in (tmp_path / "job.log").read_text()


def test_term_is_forwarded_and_its_status_is_not_requeued(job, tmp_path: Path) -> None:
    proc = job("pipeline.yaml", status=143)
    wait_for(tmp_path / "gxo-started", proc)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 143
    assert (tmp_path / "gxo-signal").read_text() == "SIGTERM"
    assert not (tmp_path / "scontrol-calls").exists()


@pytest.mark.parametrize(("status", "says"), [(0, "every task completed"), (1, "a task failed")])
def test_other_statuses_are_passed_on_without_requeue(
    job, tmp_path: Path, status: int, says: str
) -> None:
    proc = job("pipeline.yaml", status=status, exit_at_once=True)
    assert proc.wait(timeout=60) == status
    assert not (tmp_path / "scontrol-calls").exists()
    assert says in (tmp_path / "job.log").read_text()


def test_gxo_deadline_is_passed_as_the_option(job, tmp_path: Path) -> None:
    proc = job("pipeline.yaml", status=0, exit_at_once=True, GXO_DEADLINE="3h")
    assert proc.wait(timeout=60) == 0
    assert (tmp_path / "gxo-args").read_text() == "execute --resume --deadline 3h pipeline.yaml"


def test_script_carries_the_sbatch_directives_the_readme_promises() -> None:
    text = SCRIPT.read_text()
    for directive in ("#SBATCH --signal=B:USR1@120", "#SBATCH --requeue"):
        assert directive in text
    assert textwrap.dedent(text).startswith("#!/bin/bash")


PIPELINE = """\
schemaVersion: v1.0.0
name: pipeline
tasks:
  - name: long
    type: exec
    params:
      shell: true
      command: >-
        echo run >> {tmp}/count-long; touch {tmp}/long-started;
        while [ ! -e {tmp}/release ]; do sleep 0.01; done
  - name: after
    type: exec
    depends_on: [long]
    params: {{shell: true, command: "echo run >> {tmp}/count-after"}}
"""


def test_with_the_real_gxo_usr1_drains_requeues_and_the_next_job_resumes(
    tmp_path: Path,
) -> None:
    """Two "jobs": the first gets SLURM's USR1, gxo drains and exits 75, the script requeues;
    the second (the requeued job) resumes and finishes what was left."""
    (tmp_path / "pipeline.yaml").write_text(PIPELINE.format(tmp=tmp_path))
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for name, body in {
        "scontrol": f'echo "$@" >> {tmp_path / "scontrol-calls"}',
        "gxo": f'exec {sys.executable} -m gxo "$@"',
    }.items():
        (bindir / name).write_text(f"#!/bin/sh\n{body}\n")
        (bindir / name).chmod(0o755)
    env = {
        **os.environ,
        "PATH": f"{bindir}:{os.environ['PATH']}",
        "SLURM_JOB_ID": "99",
        "GXO_STATE_DIR": str(tmp_path / ".gxo"),
    }
    env.pop("GXO", None)
    env.pop("GXO_DEADLINE", None)
    with open(tmp_path / "job1.log", "wb") as log:
        job = subprocess.Popen(
            ["bash", str(SCRIPT), "pipeline.yaml", "--report", "job1.json"],
            cwd=tmp_path,
            env=env,
            stdout=log,
            stderr=log,
        )
    try:
        wait_for(tmp_path / "long-started", job)
        job.send_signal(signal.SIGUSR1)  # what #SBATCH --signal=B:USR1@120 does
        log_text = ""
        while "draining" not in log_text:  # gxo said it drains: the release is not a race
            if job.poll() is not None:
                pytest.fail((tmp_path / "job1.log").read_text())
            log_text = (tmp_path / "job1.log").read_text()
            time.sleep(0.01)  # polling a file: no event to wait on
        (tmp_path / "release").touch()
        assert job.wait(timeout=60) == 75
    finally:
        if job.poll() is None:
            job.kill()
            job.wait()
    assert (tmp_path / "scontrol-calls").read_text() == "requeue 99\n"
    assert not (tmp_path / "count-after").exists()

    second = subprocess.run(
        ["bash", str(SCRIPT), "pipeline.yaml"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert second.returncode == 0, second.stdout + second.stderr
    assert "cached   long" in second.stderr
    assert (tmp_path / "count-long").read_text() == "run\n"  # not run again
    assert (tmp_path / "count-after").read_text() == "run\n"
    assert (tmp_path / "scontrol-calls").read_text() == "requeue 99\n"  # no second requeue
