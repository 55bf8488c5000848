"""The cyclic garbage collector is off during start-up only (issue 18).

``gxo`` turns it off for its imports and the load and back on, with the start-up's objects
frozen, when the run starts; the forkserver does the same around its preload. Workers (forked
from it) and the run must have it on, or a long run's cyclic garbage would never be freed.
"""

from __future__ import annotations

import gc
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import gxo.cli

TASKS = textwrap.dedent(
    """
    import gc, json


    def collector(out):
        with open(out, "w") as file:
            json.dump({"enabled": gc.isenabled(), "frozen": gc.get_freeze_count()}, file)
    """
)


def test_workers_run_with_the_collector_on_and_the_preload_frozen(tmp_path: Path) -> None:
    (tmp_path / "tasks.py").write_text(TASKS)
    out = tmp_path / "out.json"
    (tmp_path / "p.yaml").write_text(
        "schemaVersion: v1.0.0\nname: gc\ntasks:\n  - name: t\n    type: python\n"
        f'    params: {{function: "{tmp_path / "tasks.py"}:collector", kwargs: {{out: "{out}"}}}}\n'
    )
    proc = subprocess.run(
        [sys.executable, "-m", "gxo", "p.yaml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    found = json.loads(out.read_text())
    assert found["enabled"] is True
    assert found["frozen"] > 1000  # the forkserver's preload (~20,000 objects)


def test_the_run_turns_the_collector_back_on_with_the_start_up_frozen() -> None:
    assert gc.isenabled()
    gc.disable()
    gxo.cli._gc_deferred = True  # as console_main leaves it
    try:
        gxo.cli.start_run_gc()
        assert gc.isenabled()
        assert gc.get_freeze_count() > 0
        gxo.cli.start_run_gc()  # once only
    finally:
        gc.unfreeze()
        gc.enable()


def test_in_process_main_leaves_the_collector_alone() -> None:
    assert gc.isenabled()
    gxo.cli.start_run_gc()  # console_main did not defer it: nothing to do
    assert gc.isenabled()
    assert gc.get_freeze_count() == 0


def test_only_a_load_starts_without_the_collector(tmp_path: Path) -> None:
    """As console_main leaves it: ``validate`` keeps it off to the end, ``modules`` (which
    loads no playbook) turns it back on at once."""
    (tmp_path / "p.yaml").write_text(
        "schemaVersion: v1.0.0\nname: gc\ntasks:\n"
        '  - {name: t, type: exec, params: {command: "true"}}\n'
    )
    try:
        for argv, enabled in ((["validate", str(tmp_path / "p.yaml")], False), (["modules"], True)):
            gc.disable()
            gxo.cli._gc_deferred = True
            assert gxo.cli.main(argv) == 0
            assert gc.isenabled() is enabled, argv
    finally:
        gxo.cli._gc_deferred = False
        gc.unfreeze()
        gc.enable()
