"""The docs that list what the code has cannot drift from it.

Each test reads a list from the code (the reasons vocabulary, the built-in modules, the exit
codes, the environment variables gxo reads, the packages of ``gxo/``, the caps and defaults)
and fails, naming the doc to update, when README.md, ``man/gxo.1`` or ``man/gxo-playbook.5``
does not say the same. The report's fields are checked by
``tests/observability/test_report_docs.py``, the command-line options by
``tests/cli/test_man.py``.
"""

from __future__ import annotations

import ast
import functools
import importlib
import re
import signal
from importlib.machinery import SourceFileLoader
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import gxo

REPO = Path(__file__).resolve().parents[2]
GXO = Path(gxo.__file__).parent
README = REPO / "README.md"
MAN1 = REPO / "man" / "gxo.1"
MAN5 = REPO / "man" / "gxo-playbook.5"
STREAMS_DOC = REPO / "docs" / "streams.md"


def _gen_docs() -> ModuleType:
    loader = SourceFileLoader("gen_docs", str(REPO / "scripts" / "gen-docs"))
    module = ModuleType(loader.name)
    module.__file__ = loader.path
    loader.exec_module(module)
    return module


GEN = _gen_docs()


def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def _section(text: str, heading: str) -> str:
    """A Markdown section: from its heading to the next heading of its level or above."""
    level = len(heading) - len(heading.lstrip("#"))
    start = text.index(f"\n{heading}\n") + 1
    end = re.search(rf"^#{{1,{level}}} ", text[start + len(heading) :], re.MULTILINE)
    return text[start:] if end is None else text[start : start + len(heading) + end.start()]


def _man_section(path: Path, name: str) -> str:
    """A man page section (``.SH NAME`` to the next ``.SH``), roff escapes removed."""
    text = _read(path)
    start = text.index(f".SH {name}")
    end = text.find("\n.SH ", start + 1)
    body = text[start : end if end >= 0 else len(text)]
    body = re.sub(r"\\f(?:\[[^]]*\]|\(..|.)", "", body)
    for escape, plain in (("\\-", "-"), ("\\%", ""), ("\\&", ""), ("\\(aq", "'"), ("\\e", "\\")):
        body = body.replace(escape, plain)
    return body


# -- generated parts: reasons and modules -------------------------------------------------


@pytest.mark.parametrize(
    ("path", "part", "style"),
    [(path, part, style) for path, part, _, style in GEN.PARTS],
    ids=[f"{path.name}:{part}" for path, part, _, _ in GEN.PARTS],
)
def test_generated_part_is_current(path: Path, part: str, style: str) -> None:
    generate = next(g for p, n, g, _ in GEN.PARTS if (p, n) == (path, part))
    assert GEN.current(_read(path), part, style) == generate(), (
        f"the {part} part of {path.relative_to(REPO)} is out of date with the code: "
        "run scripts/gen-docs"
    )


def test_every_reason_is_in_the_readme_table_and_the_man_page() -> None:
    from gxo.reasons import REASONS

    table = GEN.current(_read(README), "reasons", "md")
    man = _man_section(MAN5, "STATUSES AND REASONS")
    for entry in REASONS.values():
        assert f"| `{entry.shown}` |" in table, f"README.md's reasons table lacks {entry.shown}"
        assert re.search(rf"(?<!\w){entry.name}\b", man), f"gxo-playbook(5) lacks {entry.name}"


def test_the_generated_tables_render_what_the_code_says() -> None:
    # Guards the generator itself: a table of nothing would always be "current".
    from gxo.modules.registry import BUILTIN_MODULES
    from gxo.reasons import REASONS

    assert GEN.reasons_table().count("\n| `") == len(REASONS)
    assert "| `upstream_skipped` | Skipped |" in GEN.reasons_table()
    assert "| `timed_out` | Failed |" in GEN.reasons_table()
    modules = GEN.modules_table()
    assert modules.count("\n| `") == len(BUILTIN_MODULES) >= 7
    assert "| `file:write` |" in modules


def test_every_builtin_module_is_named_where_task_type_is_described() -> None:
    from gxo.modules.registry import BUILTIN_MODULES

    readme = _read(README)
    type_row = next(line for line in readme.splitlines() if line.startswith("| `type` |"))
    man = _man_section(MAN5, "TASK KEYS")
    man_type = man[man.index(".BR type") : man.index(".BR name")]
    for name in BUILTIN_MODULES:
        assert f"`{name}`" in type_row, f"README.md's task key `type` row does not name {name}"
        assert name in man_type, f"gxo-playbook(5)'s TASK KEYS type does not name {name}"


def _builtin_params() -> list[tuple[str, str]]:
    from gxo.modules.registry import BUILTIN_MODULES, describe

    return [(name, p.name) for name in BUILTIN_MODULES for p in describe(name).parameters]


@pytest.mark.parametrize(("module", "param"), _builtin_params())
def test_every_builtin_parameter_is_described(module: str, param: str) -> None:
    # Described in prose, not only listed in the generated table: the README's Modules
    # section (its tables of params) or docs/streams.md's built-in modules.
    readme = _section(_read(README), "## Modules")
    readme = readme.replace(GEN.current(readme, "modules", "md"), "")
    streams = _section(_read(STREAMS_DOC), "## Built-in modules")
    assert f"`{param}`" in readme or f"`{param}" in streams or f"({param}" in streams, (
        f"{module}'s parameter {param!r} is described neither in README.md's Modules section "
        "nor in docs/streams.md's Built-in modules"
    )


# -- the events of docs/api.md ---------------------------------------------------------------


def _events() -> list[str]:
    import msgspec

    from gxo import events

    return [
        name
        for name in events.__all__
        if isinstance(getattr(events, name), type)
        and issubclass(getattr(events, name), msgspec.Struct)
        and "run_id" in getattr(events, name).__struct_fields__
    ]


def test_the_events_are_found() -> None:
    assert {"RunStarted", "InstanceFinished", "SecretAccessed"} <= set(_events())


@pytest.mark.parametrize("name", _events())
def test_every_event_and_field_is_in_docs_api(name: str) -> None:
    from gxo import events

    rows = [
        line
        for line in _read(REPO / "docs" / "api.md").splitlines()
        if line.startswith(f"| `{name}` |")
    ]
    assert len(rows) == 1, f"docs/api.md's events table (§2) has no row for {name}"
    fields = [f for f in getattr(events, name).__struct_fields__ if f not in ("run_id", "time")]
    missing = [f for f in fields if f"`{f}`" not in rows[0]]
    assert not missing, f"docs/api.md's row for {name} does not describe {missing}"


def _run_arguments() -> list[str]:
    import inspect

    return [
        name
        for name in inspect.signature(gxo.run).parameters
        if name != "playbook" and not name.startswith("_")
    ]


@pytest.mark.parametrize("name", _run_arguments())
def test_every_argument_of_run_is_in_docs_api(name: str) -> None:
    """docs/api.md describes every argument ``gxo.run`` takes, as `name` or `name=...`."""
    text = _read(REPO / "docs" / "api.md")
    assert f"`{name}`" in text or f"{name}=" in text, f"docs/api.md does not describe {name}="


def test_no_table_of_docs_api_describes_a_name_twice() -> None:
    firsts = [
        line.split(" | ")[0]
        for line in _read(REPO / "docs" / "api.md").splitlines()
        if line.startswith("| `")
    ]
    repeated = sorted({first for first in firsts if firsts.count(first) > 1})
    assert not repeated, f"docs/api.md has two rows for {repeated}"


# -- exit codes ----------------------------------------------------------------------------


def exit_codes() -> dict[int, str]:
    """Every exit code the code defines: each ``EXIT_*`` constant, and 128 + each stop signal."""
    codes: dict[int, str] = {}
    for path in sorted(GXO.rglob("*.py")):
        names = re.findall(r"^(EXIT_[A-Z_]+)\b[^=\n]*=", _read(path), re.MULTILINE)
        if names:
            parts = path.relative_to(GXO.parent).with_suffix("").parts
            module = importlib.import_module(".".join(p for p in parts if p != "__init__"))
            for name in names:
                codes[getattr(module, name)] = name
    from gxo.engine import STOP_SIGNALS

    for sig in STOP_SIGNALS:
        codes[128 + sig] = signal.Signals(sig).name
    return codes


def test_the_exit_codes_found_in_the_code() -> None:
    assert set(exit_codes()) == {0, 1, 2, 3, 75, 129, 130, 141, 143}


def _readme_exit_codes() -> set[int]:
    section = _section(_read(README), "## Command line")
    table = section[section.index("| code | meaning |") :]
    rows = re.findall(r"^\| (\d+) \|", table.split("\n\n")[0], re.MULTILINE)
    return {int(code) for code in rows}


def _man_exit_codes() -> set[int]:
    return {int(c) for c in re.findall(r"^\.B (\d+)$", _man_section(MAN1, "EXIT STATUS"), re.M)}


def test_every_exit_code_is_in_the_readme_and_man_gxo() -> None:
    codes = exit_codes()
    documented = _readme_exit_codes()
    assert documented == set(codes), (
        f"README.md's exit code table lists {sorted(documented)}, the code defines "
        f"{sorted(codes)} ({codes}): update the table under Command line"
    )
    in_man = _man_exit_codes()
    assert in_man == set(codes), (
        f"man/gxo.1's EXIT STATUS lists {sorted(in_man)}, the code defines {sorted(codes)}: "
        "update man/gxo.1.include, then run scripts/gen-man"
    )


# -- environment variables -------------------------------------------------------------------

_ENV_NAME = re.compile(r"^[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+$")
_ENV_READS = {"get", "getenv", "setdefault", "pop"}


def _is_environ(node: ast.AST) -> bool:
    name = node.id if isinstance(node, ast.Name) else getattr(node, "attr", "")
    return isinstance(name, str) and ("env" in name.lower())


@functools.cache
def environment_variables() -> dict[str, list[str]]:
    """Names gxo reads from the environment -> the files that read them.

    A string literal is taken for a variable when it is the key of a read of something
    named like the environment (``os.environ.get("X")``, ``env.get("X")``, ``os.getenv``,
    ``environ["X"]``), or when it looks like one (``GXO_STATE_DIR``, upper case with an
    underscore) and is not an entry of ``__all__`` (which names Python constants).
    """
    found: dict[str, list[str]] = {}
    for path in sorted(GXO.rglob("*.py")):
        tree = ast.parse(_read(path), str(path))
        exported: set[int] = set()
        names: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign) and any(
                getattr(t, "id", "") == "__all__" for t in node.targets
            ):
                exported |= {id(n) for n in ast.walk(node)}
            if isinstance(node, ast.Call) and node.args:
                func = node.func
                reads = isinstance(func, ast.Attribute) and func.attr in _ENV_READS
                if reads and (_is_environ(func.value) or func.attr == "getenv"):
                    key = node.args[0]
                    if isinstance(key, ast.Constant) and isinstance(key.value, str):
                        names.add(key.value)
            if isinstance(node, ast.Subscript) and _is_environ(node.value):
                key = node.slice
                if isinstance(key, ast.Constant) and isinstance(key.value, str):
                    names.add(key.value)
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and _ENV_NAME.match(node.value)
                and id(node) not in exported
            ):
                names.add(node.value)
        for name in names:
            found.setdefault(name, []).append(str(path.relative_to(GXO)))
    return found


def test_the_collector_finds_the_variables_gxo_reads() -> None:
    found = environment_variables()
    for name in ("GXO_STATE_DIR", "NO_COLOR", "TERM", "OTEL_SDK_DISABLED", "SLURM_CPUS_PER_TASK"):
        assert name in found, name
    assert "MAX_FRAME" not in found  # a constant named in __all__, not a variable


@pytest.mark.parametrize("name", sorted(environment_variables()))
def test_every_environment_variable_is_documented(name: str) -> None:
    readme = _section(_read(README), "### Environment variables")
    assert f"`{name}`" in readme, (
        f"gxo reads ${name} ({environment_variables()[name]}), but README.md's "
        "Environment variables table does not list it"
    )
    assert re.search(rf"(?<![\w]){name}(?![\w])", _man_section(MAN1, "ENVIRONMENT")), (
        f"gxo reads ${name}, but man/gxo.1's ENVIRONMENT does not list it: add it to "
        "man/gxo.1.include, then run scripts/gen-man"
    )


def test_every_documented_variable_is_read() -> None:
    readme = _section(_read(README), "### Environment variables")
    documented = set(re.findall(r"`([A-Z][A-Z0-9_]+)`", readme))
    # Read by the OpenTelemetry SDK that gxo configures, not by gxo's own code.
    by_libraries = {"OTEL_RESOURCE_ATTRIBUTES"}
    placeholders = {"NAME", "PNAME"}  # secret('NAME') reads any variable
    stale = documented - set(environment_variables()) - by_libraries - placeholders
    assert not stale, f"README.md documents variables gxo does not read: {sorted(stale)}"


# -- the Development map -------------------------------------------------------------------


def _packages() -> list[str]:
    names = [f"gxo/{p.name}/" for p in GXO.iterdir() if p.is_dir() and (p / "__init__.py").exists()]
    names += [
        f"gxo/{p.name}"
        for p in GXO.glob("*.py")
        if not p.name.startswith("__") and p.name not in {"_version.py", "_build_info.py"}
    ]
    return sorted(names)


@pytest.mark.parametrize("name", _packages())
def test_every_part_of_gxo_is_in_the_development_map(name: str) -> None:
    development = _section(_read(README), "## Development")
    assert re.search(rf"(?<![\w/]){re.escape(name)}(?![\w])", development), (
        f"{name} is not in README.md's Development map"
    )


# -- the Limits table ----------------------------------------------------------------------

_UNITS = {
    "KiB": 1024,
    "K": 1024,
    "MiB": 1024**2,
    "M": 1024**2,
    "GiB": 1024**3,
    "G": 1024**3,
    "days": 86400,
    "s": 1,
    "ms": 0.001,
    "lines": 1,
}
_QUANTITY = re.compile(r"(\d[\d,]*(?:\.\d+)?)\s*(KiB|MiB|GiB|days|lines|ms|K|M|G|s)?(?![\w])")


def quantities(cell: str) -> list[float]:
    """Every quantity in a table cell, in base units: ``1 GiB less 1 MiB`` -> [2**30, 2**20]."""
    values = []
    for number, unit in _QUANTITY.findall(cell.replace("`", "")):
        values.append(float(number.replace(",", "")) * _UNITS.get(unit, 1))
    return values


def _limits_in_code() -> dict[str, list[float]]:
    """The first words of each Limits row -> the values the code holds for it."""
    from gxo.api import run
    from gxo.config.duration import MAX_DURATION
    from gxo.config.limits import MAX_SCALAR_BYTES, MAX_TASKS
    from gxo.config.model import ChannelPolicy
    from gxo.config.yaml_source import MAX_ALIAS_NODES, MAX_BYTES, MAX_DEPTH
    from gxo.modules.capture import DRAIN_SECONDS
    from gxo.observability.progress import DEFAULT_INTERVAL
    from gxo.outputs import (
        DEFAULT_OUTPUT_CAPTURE,
        DEFAULT_RESULT_LIMIT,
        MAX_RESULT_LIMIT,
        TAIL_BYTES,
        TAIL_LINES,
        TAIL_TEXT_BYTES,
    )
    from gxo.pool.capture import TEXT_LIMIT
    from gxo.pool.enforce import WATCH_INTERVAL
    from gxo.pool.relay import DEFAULT_LOG_RATE, LINE_LIMIT
    from gxo.pool.session import TRACK_INTERVAL
    from gxo.report import SUMMARY_LIMIT
    from gxo.scheduler.policy import MAX_WORKER_DEATHS
    from gxo.streams.channel import DEFAULT_RECORD_LIMIT
    from gxo.template.budget import DEFAULT_RENDER_BUDGET
    from gxo.wire import MAX_FRAME

    grace = run.__kwdefaults__["grace"]
    return {
        "one value (a string or key)": [MAX_SCALAR_BYTES],
        "tasks in one playbook": [MAX_TASKS],
        "a duration": [MAX_DURATION],
        "one rendering of a `when`/`loop` template: time": [DEFAULT_RENDER_BUDGET.seconds],
        "one rendering of a `when`/`loop` template: size": [DEFAULT_RENDER_BUDGET.max_size],
        "the playbook file": [MAX_BYTES, MAX_DEPTH, MAX_ALIAS_NODES],
        "`output_capture`": [DEFAULT_OUTPUT_CAPTURE],
        "command output in memory": [TAIL_BYTES],
        "`limits.output`": [],
        "`limits.memory`, `cpu`": [],
        "the process-tree watch": [WATCH_INTERVAL],
        "a worker's guard looking for processes": [TRACK_INTERVAL],
        "a task's result": [DEFAULT_RESULT_LIMIT],
        "one stream record": [DEFAULT_RECORD_LIMIT],
        "error and traceback text": [TEXT_LIMIT],
        "module log lines relayed": [DEFAULT_LOG_RATE],
        "one relayed line": [LINE_LIMIT],
        "a summary in the report": [SUMMARY_LIMIT],
        "command output shown": [TAIL_LINES, TAIL_TEXT_BYTES],
        "one message between gxo and a worker": [MAX_FRAME],
        "the largest `--result-limit`": [1 << 30, (1 << 30) - MAX_RESULT_LIMIT],
        "grace between SIGTERM and SIGKILL": [grace],
        "`exec`: output read after the command exits": [DRAIN_SECONDS],
        "workers one instance may kill": [MAX_WORKER_DEATHS],
        "records queued on a stream edge": [ChannelPolicy().buffer_size],
        "progress lines": [DEFAULT_INTERVAL],
    }


def _limits_rows() -> dict[str, str]:
    """The Limits table: each row's first cell -> its default cell."""
    section = _section(_read(README), "## Limits")
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
        if line.startswith("| ") and len(cells) >= 4 and cells[0] not in ("limit", "---"):
            rows[cells[0]] = cells[1]
    return rows


def _row(label: str, rows: dict[str, str]) -> str:
    matches = [cell for first, cell in rows.items() if first.startswith(label)]
    assert len(matches) == 1, f"README.md's Limits table has {len(matches)} rows for {label!r}"
    return matches[0]


@pytest.mark.parametrize(("label", "values"), sorted(_limits_in_code().items()))
def test_limits_table_holds_the_value_in_the_code(label: str, values: list[Any]) -> None:
    cell = _row(label, _limits_rows())
    assert quantities(cell) == [float(v) for v in values], (
        f"README.md's Limits row {label!r} says {cell!r}; the code says {values}"
    )


def test_every_limits_row_is_checked_against_the_code() -> None:
    checked = _limits_in_code()
    unchecked = [r for r in _limits_rows() if not any(r.startswith(label) for label in checked)]
    assert not unchecked, (
        f"Limits rows with no value from the code in this test: {unchecked}; add each to "
        "_limits_in_code()"
    )


def test_quantities_reads_the_units_the_table_uses() -> None:
    assert quantities("10 MiB, 64 levels, 100,000 alias nodes") == [10 * 2**20, 64, 100_000]
    assert quantities("`1GiB` per stream per attempt") == [2**30]
    assert quantities("1M characters or items") == [2**20]
    assert quantities("30 days") == [30 * 86400.0]
    assert quantities("0.25 s") == [0.25]
    assert quantities("every 20 ms") == [0.02]
    assert quantities("none") == []


# -- packaging metadata ------------------------------------------------------------------------


def test_license_is_an_spdx_string_and_the_license_file_is_that_license() -> None:
    import tomllib

    project = tomllib.loads(_read(REPO / "pyproject.toml"))["project"]
    # A TOML table is deprecated by setuptools (an error after 2027-02-18).
    assert project["license"] == "Apache-2.0"
    assert project["license-files"] == ["LICENSE"]
    text = " ".join(_read(REPO / "LICENSE").split())
    assert text.startswith("Apache License Version 2.0, January 2004"), (
        "LICENSE is not the Apache License 2.0 that pyproject.toml declares"
    )
    assert "END OF TERMS AND CONDITIONS" in text
    assert all(url.startswith("https://") for url in project["urls"].values())


# -- command-line options --------------------------------------------------------------------


def _options() -> list[tuple[str, str]]:
    import argparse

    from gxo.cli.parser import build_parser

    found = []
    for action in build_parser()._actions:
        if isinstance(action, argparse._SubParsersAction):
            for command, sub in action.choices.items():
                found += [
                    (command, option)
                    for act in sub._actions
                    for option in act.option_strings
                    if option.startswith("--") and option != "--help"
                ]
    return sorted(set(found))


def test_the_options_are_found() -> None:
    assert ("execute", "--workers") in _options()


@pytest.mark.parametrize(("command", "option"), _options())
def test_every_option_is_in_the_readme(command: str, option: str) -> None:
    # man/gxo.1 lists every option (tests/cli/test_man.py); the user guide names each too.
    assert re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", _read(README)), (
        f"gxo {command} {option} is not described in README.md"
    )
