"""The README's report section and man gxo-playbook(5) name every field of the report."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gxo.report import report_json_schema

REPO = Path(__file__).resolve().parents[2]


def _fields() -> list[str]:
    names: set[str] = set()
    for definition in report_json_schema()["$defs"].values():
        names |= set(definition.get("properties", {}))
    return sorted(names)


def _readme_section() -> str:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    start = text.index("### The run report (`--report FILE`)")
    return text[start : text.index("\n## ", start)]


@pytest.mark.parametrize("name", _fields())
def test_every_report_field_is_documented(name: str) -> None:
    assert f"`{name}`" in _readme_section() or re.search(
        rf"[`{{ ]{name}[,`}} ]", _readme_section()
    ), f"README.md's report section does not describe {name!r}"
    man = (REPO / "man" / "gxo-playbook.5").read_text(encoding="utf-8")
    section = man[man.index(".SH RUN REPORT") : man.index(".SH STATUSES AND REASONS")]
    assert f"\\fB{name}\\fR" in section or re.search(rf"\b{name}\b", section), (
        f"man/gxo-playbook.5's RUN REPORT does not describe {name!r}"
    )


def _overall_statuses() -> set[str]:
    """Every string the code puts in ``overall_status`` (the report's constructors)."""
    import ast

    found: set[str] = set()
    for source in ("gxo/scheduler/report.py", "gxo/report.py"):
        tree = ast.parse((REPO / source).read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.keyword) and node.arg == "overall_status":
                found |= {
                    c.value
                    for c in ast.walk(node.value)
                    if isinstance(c, ast.Constant) and isinstance(c.value, str)
                }
    return found


def test_every_overall_status_the_code_gives_is_documented() -> None:
    statuses = _overall_statuses()
    assert {"Completed", "Failed", "Cancelled"} <= statuses  # the collector finds them
    row = next(line for line in _readme_section().splitlines() if "`overall_status` |" in line)
    man = (REPO / "man" / "gxo-playbook.5").read_text(encoding="utf-8")
    man_part = man[man.index("\\fBoverall_status\\fR (") :].split(")", 1)[0]
    for status in sorted(statuses):
        assert f"`{status}`" in row, f"README.md's overall_status row lacks {status!r}"
        assert status in man_part, f"man/gxo-playbook.5's overall_status lacks {status!r}"
