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
