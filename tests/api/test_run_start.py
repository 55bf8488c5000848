"""``gxo.run`` starts the forkserver as its first act (issue 18: lazy start-up).

Its start-up, a new interpreter importing the worker's modules, then overlaps this process's
loading of the playbook instead of following it. Each case runs in a fresh interpreter: the
test process's own forkserver is already running.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

PLAIN = """\
schemaVersion: v1.0.0
name: plain
tasks:
  - {name: a, type: exec, params: {command: "true"}}
"""
TEMPLATED = PLAIN.replace('"true"}', '"true", args: ["{{ 1 }}"]}')

PROBE = """
import json, sys
from multiprocessing import forkserver
import gxo
from gxo.pool.helpers import stop_helpers
try:
    result = gxo.run(sys.argv[1], workers=1)
    outcome = result.report.overall_status
except gxo.PlaybookError:
    outcome = "invalid"
server = forkserver._forkserver
print(json.dumps({
    "outcome": outcome,
    "forkserver": server._forkserver_pid is not None,
    "preload": server._preload_modules,
    "jinja2": "jinja2" in sys.modules,
}))
stop_helpers()
"""


def _probe(tmp_path: Path, text: str) -> dict[str, object]:
    path = tmp_path / "p.yaml"
    path.write_text(text)
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, str(path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    found: dict[str, object] = json.loads(proc.stdout.splitlines()[-1])
    return found


def test_the_forkserver_starts_before_the_playbook_is_loaded(tmp_path: Path) -> None:
    """An invalid playbook raises PlaybookError from the load, and the forkserver is already
    running by then: it was started first."""
    found = _probe(tmp_path, PLAIN.replace("type: exec", "type: exec, bogus: 1"))
    assert found["outcome"] == "invalid"
    assert found["forkserver"] is True


@pytest.mark.parametrize(
    ("text", "jinja2"),
    [pytest.param(PLAIN, False, id="plain"), pytest.param(TEMPLATED, True, id="templated")],
)
def test_the_preload_has_jinja2_only_when_the_playbook_may_hold_templates(
    tmp_path: Path, text: str, jinja2: bool
) -> None:
    from gxo.pool.helpers import (
        EXEC_PRELOAD,
        FORKSERVER_PRELOAD,
        ISOLATION_PRELOAD,
        TEMPLATES_PRELOAD,
    )

    found = _probe(tmp_path, text)
    assert found["outcome"] == "Completed"
    # The library's gxo.run sniffs templates only: exec and isolation are preloaded.
    expected = [
        FORKSERVER_PRELOAD,
        EXEC_PRELOAD,
        ISOLATION_PRELOAD,
        *([TEMPLATES_PRELOAD] if jinja2 else []),
    ]
    assert found["preload"] == expected
    assert found["jinja2"] is jinja2  # and the parent imported it only to compile one
