"""The ETL example (examples/etl) runs, exits 0 and writes the joined records."""

from __future__ import annotations

import json
from pathlib import Path

import gxo

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "etl" / "etl.yaml"


def test_etl_example(tmp_path: Path) -> None:
    output = tmp_path / "orders.jsonl"
    report = gxo.run(EXAMPLE, variables={"output": str(output)}, workers=2).report
    assert report.exit_code == 0, report.error
    rows = [json.loads(line) for line in output.read_text().splitlines()]
    assert [(r["order_id"], r.get("name")) for r in rows] == [
        (101, "Alice"),
        (102, "Carol"),
        (103, "Alice"),
        (104, None),  # no such user: a left join keeps the order
        (105, "Dave"),
    ]
    load = report.task_results["load"]
    (edge,) = load.streams
    assert (edge.producer, edge.side, edge.records) == ("join", "in", 5)


def test_etl_example_dry_run_writes_nothing(tmp_path: Path) -> None:
    """Modules without dry-run support read their inputs to the end: nothing fails or hangs."""
    output = tmp_path / "orders.jsonl"
    report = gxo.run(EXAMPLE, variables={"output": str(output)}, workers=2, dry_run=True).report
    assert report.exit_code == 0, report.error
    assert not output.exists()
