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

#: DESIGN.md §10's table: level, then the modules (or package prefixes) at that level, without
#: the ``gxo.`` prefix. The longest matching prefix wins; the package ``gxo`` itself is level 6.
#: ``config`` is the model package (the loader modules are listed at level 3).
TABLE = """
0  _version _build_info _util errors reasons wire events report otel outputs
1  template config config.model config.duration config.size secrets streams
2  dag modules modules.capture
3  config.load config.build config.checks config.join_keys config.params config.problems
3  config.references config.schema
3  config.yaml_source scheduler scheduler.messages scheduler.policy scheduler.records
3  scheduler.state scheduler.partial pool pool.capture pool.relay journal
4  scheduler.loop scheduler.notify scheduler.report scheduler.journaling observability executors
5  engine run_options
6  api cli __main__
"""

LEVELS: dict[str, int] = {"gxo": 6} | {
    f"gxo.{name}": int(line.split()[0])
    for line in TABLE.strip().splitlines()
    for name in line.split()[1:]
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
    from gxo.cli.output import TaskLines
def f():
    import gxo.pool.worker
    from gxo.scheduler import state
"""
    names = imported(ast.parse(source), "gxo.x", False)
    assert {"gxo.cli.output", "gxo.pool", "gxo.pool.worker", "gxo.scheduler.state"} <= names


def test_only_the_api_imports_the_engine() -> None:
    """One door: the engine is private wiring behind ``gxo.api``."""
    private = next(name for name, at in LEVELS.items() if at == 5)
    importers = []
    for path in sorted(GXO.rglob("*.py")):
        module = module_name(path)
        tree = ast.parse(path.read_text(), str(path))
        if private in imported(tree, module, path.name == "__init__.py") and module != private:
            importers.append(module)
    assert importers == ["gxo.api"]


@pytest.mark.parametrize(
    ("module", "expected"),
    [("gxo.config.model", 1), ("gxo.config.load", 3), ("gxo.scheduler.loop", 4), ("gxo", 6)],
)
def test_levels_follow_the_design_table(module: str, expected: int) -> None:
    assert level(module) == expected
