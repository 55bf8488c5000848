"""A low ``ulimit -n`` against many ``--workers``: the parent holds about seven descriptors
per worker, so the pool's start ran out of them and gxo ended with an internal error (exit
3) after the run had begun. Now its soft limit is raised when the hard limit allows, and the
run is refused before anything runs (exit 2) when it does not."""

from __future__ import annotations

import json
import resource
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

WORKERS = 40  # about 384 descriptors: more than the 100 these runs are given


def _playbook(tmp_path: Path) -> Path:
    lines = ["schemaVersion: v1.0.0", "name: many", "tasks:"]
    for i in range(WORKERS):
        touch = tmp_path / f"ran-{i}"
        lines.append(
            f"  - {{name: t{i}, type: exec, params: {{command: touch, args: ['{touch}']}}}}"
        )
    path = tmp_path / "many.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def _limited(soft: int, hard: int) -> Callable[[], None]:
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))

    return apply


def _run(tmp_path: Path, soft: int, hard: int) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "gxo", "execute", "--workers", str(WORKERS)]
    command += ["--no-progress", "--report", str(tmp_path / "r.json"), str(_playbook(tmp_path))]
    return subprocess.run(
        command,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        preexec_fn=_limited(soft, hard),
    )


def test_a_hard_limit_too_low_for_the_workers_is_refused_before_anything_runs(
    tmp_path: Path,
) -> None:
    done = _run(tmp_path, 100, 100)
    assert done.returncode == 2, done.stderr
    assert f"{WORKERS} worker processes need about " in done.stderr
    assert "ulimit -n" in done.stderr
    assert "internal error" not in done.stderr
    assert "running many" not in done.stderr
    assert list(tmp_path.glob("ran-*")) == []
    report = json.loads((tmp_path / "r.json").read_text())
    assert "open files" in report["error"]


def test_a_soft_limit_too_low_is_raised_up_to_the_hard_one_and_the_run_completes(
    tmp_path: Path,
) -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    done = _run(tmp_path, 100, hard)
    assert done.returncode == 0, done.stderr
    assert len(list(tmp_path.glob("ran-*"))) == WORKERS
