"""Every Python block of ``docs/api.md`` runs, in order, in a scratch directory."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from test_plugin_package import install_plugin

DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"
_BLOCK = re.compile(r"^```python\n(.*?)^```$", re.DOTALL | re.MULTILINE)


def _blocks() -> list[tuple[int, str]]:
    text = DOC.read_text()
    return [(text.count("\n", 0, m.start(1)) + 1, m.group(1)) for m in _BLOCK.finditer(text)]


def test_every_section_has_an_example() -> None:
    text = DOC.read_text()
    sections = re.split(r"^## ", text, flags=re.MULTILINE)[1:]
    assert len(sections) == 6
    for section in sections:
        assert "```python\n" in section, section.splitlines()[0]


def test_docs_examples_run(
    in_tmp: Path, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Section 4 runs `gxo` with the example plugin package installed.
    site = install_plugin(tmp_path_factory.mktemp("docs-plugin"))
    monkeypatch.setenv("PYTHONPATH", str(site))
    namespace: dict[str, object] = {"__name__": "docs_api"}
    blocks = _blocks()
    assert len(blocks) >= 5
    for line, code in blocks:
        compiled = compile("\n" * (line - 1) + code, str(DOC), "exec")
        exec(compiled, namespace)  # running the documentation is the point
