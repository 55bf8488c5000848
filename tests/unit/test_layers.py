"""DESIGN.md §10's import levels, enforced: a gxo module imports only its own level and below.

Every ``import`` statement of every module under ``gxo/`` counts, wherever it is: at the top,
inside a function (lazy imports), and under ``if TYPE_CHECKING:``. Importing ``gxo.a.b`` also
runs ``gxo/a/__init__.py``, so a package counts as imported with each of its modules.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import gxo

GXO = Path(gxo.__file__).parent

#: Module (or package prefix) -> level. The longest matching prefix wins. Keep in step with
#: the table in DESIGN.md §10.
LEVELS: dict[str, int] = {
    # level 0: the vocabulary every layer speaks
    "gxo._version": 0,
    "gxo.errors": 0,
    "gxo.reasons": 0,
    "gxo.wire": 0,
    "gxo.events": 0,
    "gxo.report": 0,
    "gxo.otel": 0,
    "gxo.outputs": 0,
    # level 1: leaves
    "gxo.template": 1,
    "gxo.config": 1,  # the package itself exports only the model
    "gxo.config.model": 1,
    "gxo.config.duration": 1,
    "gxo.secrets": 1,
    "gxo.streams": 1,
    # level 2
    "gxo.dag": 2,
    "gxo.modules": 2,
    # level 3
    "gxo.config.load": 3,
    "gxo.config.build": 3,
    "gxo.config.checks": 3,
    "gxo.config.problems": 3,
    "gxo.config.references": 3,
    "gxo.config.schema": 3,
    "gxo.config.yaml_source": 3,
    "gxo.scheduler": 3,
    "gxo.scheduler.inputs": 3,
    "gxo.scheduler.policy": 3,
    "gxo.scheduler.records": 3,
    "gxo.scheduler.state": 3,
    "gxo.pool": 3,
    # level 4
    "gxo.scheduler.loop": 4,
    "gxo.scheduler.notify": 4,
    "gxo.scheduler.report": 4,
    "gxo.observability": 4,
    "gxo.executors": 4,
    # level 5
    "gxo.engine": 5,
    # level 6
    "gxo.api": 6,
    "gxo.cli": 6,
    "gxo.__main__": 6,
    "gxo": 6,
}


def level(module: str) -> int:
    parts = module.split(".")
    for end in range(len(parts), 0, -1):
        found = LEVELS.get(".".join(parts[:end]))
        if found is not None:
            return found
    raise KeyError(module)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(GXO.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported(tree: ast.AST, module: str, is_package: bool) -> set[str]:
    """Every gxo module an AST imports (packages on the way included)."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".")
                anchor = anchor if is_package else anchor[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            # ``from gxo.a import b`` may name the module gxo.a.b: count it when it is one.
            targets = [base]
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                if _is_module(candidate):
                    targets.append(candidate)
        else:
            continue
        for target in targets:
            if target != "gxo" and not target.startswith("gxo."):
                continue
            parts = target.split(".")
            names.update(".".join(parts[:end]) for end in range(2, len(parts) + 1))
    return names


def _is_module(name: str) -> bool:
    path = GXO.parent.joinpath(*name.split("."))
    return path.with_suffix(".py").exists() or (path / "__init__.py").exists()


def violations() -> list[str]:
    found = []
    for path in sorted(GXO.rglob("*.py")):
        module = module_name(path)
        own = level(module)
        tree = ast.parse(path.read_text(), str(path))
        for target in sorted(imported(tree, module, path.name == "__init__.py")):
            if target == module or module.startswith(target + "."):
                continue  # a module's own package
            if level(target) > own:
                found.append(f"{module} (level {own}) imports {target} (level {level(target)})")
    return found


def test_no_module_imports_a_higher_level() -> None:
    assert violations() == []


def test_every_module_has_a_level() -> None:
    for path in GXO.rglob("*.py"):
        level(module_name(path))


def test_the_collector_sees_lazy_and_type_checking_imports() -> None:
    source = """
from typing import TYPE_CHECKING
if TYPE_CHECKING:
    from gxo.engine import RunOptions
def f():
    import gxo.pool.worker
    from gxo.scheduler import state
"""
    names = imported(ast.parse(source), "gxo.x", False)
    assert {"gxo.engine", "gxo.pool", "gxo.pool.worker", "gxo.scheduler.state"} <= names


@pytest.mark.parametrize(
    ("module", "expected"),
    [("gxo.config.model", 1), ("gxo.config.load", 3), ("gxo.scheduler.loop", 4), ("gxo", 6)],
)
def test_levels_follow_the_design_table(module: str, expected: int) -> None:
    assert level(module) == expected
