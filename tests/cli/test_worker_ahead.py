"""The ``gxo`` command's first worker is the one it started ahead of the engine.

:func:`gxo.api._start_worker_ahead` builds the worker's configuration before the engine
exists, from the same options through the same :func:`gxo.run_options.worker_setup` the engine
calls; the pool takes that worker only if both configurations are equal
(:func:`gxo.pool.entry.take_ahead`), so a difference would silently cost the head start. Each
case runs the real command (its console entry point, in a fresh interpreter) with
``take_ahead`` wrapped to say whether the worker was there and taken.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

PROBE = """
import sys
import gxo.pool.entry as entry
import gxo.pool.process_pool as pool

original = entry.take_ahead


def take_ahead(config):
    started = bool(entry._ahead)
    taken = original(config)
    if started:
        sys.stderr.write(f"AHEAD taken={taken is not None}\\n")
    return taken


pool.take_ahead = take_ahead
sys.argv = ["gxo", *sys.argv[1:]]
from gxo.cli import console_main

console_main()
"""

PLAYBOOK = """\
schemaVersion: v1.0.0
name: ahead
tasks:
  - name: t
    type: exec
    params: {command: "true"}
"""


@pytest.mark.parametrize(
    "options",
    [(), ("-v",), ("-vv",), ("--dry-run",), ("--state-dir", "relative"), ("--log-rate", "5")],
)
def test_the_worker_started_ahead_is_taken_by_the_pool(
    tmp_path: Path, options: tuple[str, ...]
) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text(PROBE)
    playbook = tmp_path / "ahead.yaml"
    playbook.write_text(PLAYBOOK)
    proc = subprocess.run(
        [sys.executable, str(probe), "execute", *options, "--workers", "1", str(playbook)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    # Started ahead only when the forked forkserver was ready in time (a loaded machine may
    # miss it); when it was started, the pool must have taken it.
    assert "AHEAD taken=False" not in proc.stderr, proc.stderr
