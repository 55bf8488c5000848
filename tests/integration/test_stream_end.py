"""Streams that end early, through the real ``gxo`` command (DESIGN §15).

A consumer that returns without reading its inputs to the end is drained, so its producer
completes; ``exec`` consumers included (GXO compatibility issue, item 2).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

GXO = [sys.executable, "-m", "gxo"]


def run_gxo(tmp_path: Path, text: str, *args: str, timeout: float = 240.0) -> dict[str, Any]:
    playbook = tmp_path / "pb.yaml"
    playbook.write_text(text, encoding="utf-8")
    report = tmp_path / "report.json"
    done = subprocess.run(
        [*GXO, "execute", "--report", str(report), *args, str(playbook)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    data: dict[str, Any] = json.loads(report.read_text(encoding="utf-8"))
    data["_exit"] = done.returncode
    data["_stderr"] = done.stderr
    return data


def _exec_pairs(count: int, pairs: int) -> str:
    """``pairs`` independent exec producer -> exec consumer groups; half the consumers read
    one line and exit (``head -n1``), half never read at all (``true``)."""
    lines = ["schemaVersion: v1.0.0", "name: drain", "tasks:"]
    for n in range(pairs):
        consumer = (
            '{command: head, args: ["-n1"], stdin_records: true}' if n % 2 else '{command: "true"}'
        )
        lines += [
            f"  - name: p{n}",
            "    type: exec",
            f'    params: {{command: seq, args: ["{count}"], stdout_records: true}}',
            f"  - name: c{n}",
            "    type: exec",
            f"    stream_inputs: [p{n}]",
            f"    params: {consumer}",
        ]
    return "\n".join(lines) + "\n"


@pytest.mark.timeout(600)
@pytest.mark.parametrize("count", [2, 100, 50_000])
def test_exec_consumers_drain_their_producers_50_times(tmp_path: Path, count: int) -> None:
    report = run_gxo(tmp_path, _exec_pairs(count, 50), "--workers", "2")
    results = report["task_results"]
    reasons = {name: (r["status"], r["reason"]) for name, r in results.items()}
    assert "consumers_gone" not in json.dumps(reasons)
    assert all(v == ("Completed", "") for v in reasons.values()), reasons
    for n in range(50):
        (edge,) = [e for e in results[f"c{n}"]["streams"] if e["side"] == "in"]
        assert edge["records"] == count
        if n % 2 == 0:
            assert edge["drained"] == count  # `true` read nothing: every record was drained
    assert report["_exit"] == 0, report["_stderr"]
