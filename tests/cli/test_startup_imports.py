"""What each command imports before it answers (issue 18: lazy start-up).

``gxo --version`` must start as fast as Python does, and the commands that run nothing must
not pay for the engine: the real command runs in a child with ``python -X importtime`` and
the modules it imported are read from that list. Deterministic (a set of names), not timed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

PLAYBOOK = """\
schemaVersion: v1.0.0
name: startup
tasks:
  - name: a
    type: exec
    params: {command: "true"}
  - name: b
    type: exec
    params: {command: "echo {{ vars_value }}"}
vars: {vars_value: 1}
"""

#: What no command that runs nothing imports: the run's machinery and the display.
RUN_ONLY = (
    "psutil",
    "rich",
    "multiprocessing",
    "gxo.engine",
    "gxo.pool.process_pool",
    "gxo.pool.worker",
    "gxo.scheduler.loop",
    "gxo.scheduler.state",
    "prometheus_client",
    "opentelemetry",
    "dask",
    "distributed",
)
#: What the commands that never read a playbook do not import either.
LOAD_ONLY = ("jinja2", "yaml", "fastjsonschema", "gxo.config", "gxo.dag", "gxo.template")


def _python(tmp_path: Path, args: list[str], **extra_env: str) -> subprocess.CompletedProcess[str]:
    """Run this interpreter with ``args`` in ``tmp_path``, without the caller's OTEL_/GXO_
    settings (plus ``extra_env``); it must exit 0."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "GXO_"))}
    proc = subprocess.run(
        [sys.executable, *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env | extra_env,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc


def _imported(tmp_path: Path, *args: str) -> set[str]:
    """The modules ``python -X importtime -m gxo ARGS`` imported (it must exit 0)."""
    proc = _python(tmp_path, ["-X", "importtime", "-m", "gxo", *args])
    names = set()
    for line in proc.stderr.splitlines():
        # A worker's lines come relayed with its task's name in front (``a | import time:``).
        if "import time:" in line and "|" in line:
            name = line.rsplit("|", 1)[1].strip()
            if name != "imported package":
                names.add(name)
    assert "gxo.cli" in names, "importtime output not understood"
    return names


def _baseline() -> set[str]:
    """What the interpreter imports for ``python -c pass`` in this environment."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "pass"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return {
        line.rsplit("|", 1)[1].strip()
        for line in proc.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }


def _hits(names: set[str], banned: tuple[str, ...]) -> set[str]:
    return {n for n in names for b in banned if n == b or n.startswith(b + ".")}


def test_version_imports_only_the_version(tmp_path: Path) -> None:
    """Beyond Python's own start-up, ``--version`` imports gxo's version and the tiny CLI
    front (the GXO flag translation), and no third-party package at all."""
    extra = _imported(tmp_path, "--version") - _baseline()
    gxo_modules = {n for n in extra if n.split(".")[0] == "gxo"}
    assert gxo_modules <= {
        "gxo",
        "gxo.__main__",
        "gxo._version",
        "gxo._build_info",
        "gxo.cli",
        "gxo.cli.gxo_flags",
    }
    others = {n.split(".")[0] for n in extra} - {"gxo"}
    assert others <= set(sys.stdlib_module_names), others - set(sys.stdlib_module_names)
    assert not _hits(extra, ("msgspec", "logging", "argparse", *RUN_ONLY, *LOAD_ONLY))


def test_gxo_single_dash_version_is_as_light(tmp_path: Path) -> None:
    extra = _imported(tmp_path, "-version") - _baseline()
    assert not _hits(extra, ("msgspec", "logging", "argparse", *RUN_ONLY, *LOAD_ONLY))


def test_help_imports_argparse_and_the_parser_only(tmp_path: Path) -> None:
    names = _imported(tmp_path, "--help")
    assert "gxo.cli.parser" in names
    assert not _hits(names, ("msgspec", "gxo.errors", "gxo.cli.commands", *RUN_ONLY, *LOAD_ONLY))


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(("modules",), id="modules"),
        pytest.param(("modules", "--json"), id="modules-json"),
        pytest.param(("completion", "bash"), id="completion"),
    ],
)
def test_commands_without_a_playbook_import_no_engine(tmp_path: Path, args: tuple[str]) -> None:
    assert not _hits(_imported(tmp_path, *args), (*RUN_ONLY, *LOAD_ONLY))


@pytest.mark.parametrize("command", ["validate", "list", "plan", "graph"])
def test_commands_that_read_a_playbook_import_no_pool(tmp_path: Path, command: str) -> None:
    """They load (YAML, schema, templates, DAG) but never start or import the pool."""
    (tmp_path / "p.yaml").write_text(PLAYBOOK)
    names = _imported(tmp_path, command, "p.yaml")
    assert "gxo.config.load" in names
    assert not _hits(names, RUN_ONLY)


TEMPLATE_FREE = """\
schemaVersion: v1.0.0
name: plain
tasks:
  - name: a
    type: exec
    params: {command: "true"}
  - name: b
    type: exec
    depends_on: [a]
    params: {command: "true"}
"""


def test_validate_of_a_template_free_playbook_imports_no_jinja2_nor_the_schema_compiler(
    tmp_path: Path,
) -> None:
    """Jinja2 is imported by the first template compiled, and the schema's validator is
    generated code (scripts/gen-schema): a playbook without templates needs neither Jinja2
    nor fastjsonschema; one with a template imports Jinja2 (the check can fail)."""
    (tmp_path / "plain.yaml").write_text(TEMPLATE_FREE)
    names = _imported(tmp_path, "validate", "plain.yaml")
    assert "gxo.config.load" in names
    assert not _hits(names, ("jinja2", "fastjsonschema", *RUN_ONLY))
    (tmp_path / "p.yaml").write_text(PLAYBOOK)
    assert "jinja2" in _imported(tmp_path, "validate", "p.yaml")


def test_a_template_free_run_imports_no_jinja2_psutil_or_rich_in_any_process(
    tmp_path: Path,
) -> None:
    """``gxo execute`` of a playbook without templates, default output to a file: neither
    the parent nor the forkserver (its preload) nor the workers import Jinja2, psutil (a
    worker needs it only to stop a module's children), rich or fastjsonschema. Their
    ``-X importtime`` lines all reach the same stderr (the flag is passed on to the
    forkserver). With a template, the forkserver preloads Jinja2."""
    (tmp_path / "plain.yaml").write_text(TEMPLATE_FREE)
    names = _imported(tmp_path, "plain.yaml", "--workers", "2")
    assert {"gxo.engine", "gxo.pool.worker"} <= names  # the run happened, workers included
    assert not _hits(names, ("jinja2", "psutil", "rich", "fastjsonschema", "dask"))
    (tmp_path / "t.yaml").write_text(TEMPLATE_FREE.replace('"true"}', '"true", args: ["{{ 1 }}"]}'))
    names = _imported(tmp_path, "t.yaml", "--workers", "2")
    assert {"jinja2", "gxo.template.templates"} <= names


#: What a plain run (no error, no secret, no limit, no Dask) never needs, in any process: the
#: "did you mean" helper, the schema file's reader (the generated validator checks a valid
#: playbook), redaction's encodings of a secret, the cgroup probe, the Dask settings; and,
#: for a playbook that never says ``exec``, ``isolation`` or ``limits``, the forkserver's
#: preload of the ``exec`` module and of the fresh processes' limits; multiprocessing's
#: client side (``connection``, with ``tempfile``), which gxo's forkserver loop does not use.
PLAIN_RUN_NEVER = (
    "difflib",
    "pkgutil",
    "html",
    "shlex",
    "gxo.pool.cgroups",
    "gxo.executors",
    "gxo.modules.builtin.exec",
    "gxo.pool.preload_exec",
    "gxo.pool.enforce",
    "gxo.pool.rlimits",
    "multiprocessing.connection",
    "multiprocessing.forkserver",
    "tempfile",
)


def test_a_plain_one_task_run_imports_none_of_what_only_errors_limits_or_dask_need(
    tmp_path: Path,
) -> None:
    """``gxo one.yaml --workers 2`` with one ``python`` task (no template): the parent, the
    forkserver and the worker import none of :data:`PLAIN_RUN_NEVER`. A playbook with a
    misspelt key does import difflib (its "did you mean"): the check can fail."""
    (tmp_path / "noop.py").write_text("def noop():\n    return None\n")
    one = "schemaVersion: v1.0.0\nname: one\ntasks:\n  - name: t0\n    type: python\n"
    (tmp_path / "one.yaml").write_text(one + "    params: {function: 'noop.py:noop'}\n")
    names = _imported(tmp_path, "one.yaml", "--workers", "2")
    assert {"gxo.engine", "gxo.pool.worker"} <= names  # the run happened, workers included
    assert not _hits(names, PLAIN_RUN_NEVER)
    (tmp_path / "typo.yaml").write_text(one + "    parms: {function: 'noop.py:noop'}\n")
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "gxo", "validate", "typo.yaml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "| difflib" in proc.stderr


#: What the parent of a plain one-task run does not import: each is needed only by an option
#: or a path such a run does not take (``--resume``/``--deadline``/``gxo journal``, a
#: selection, ``isolation: process``, the workers' own output capture, reports and exporters
#: asked for by flags, Dask, ``gxo bench``, ``gxo.start``'s handle; ``hashlib``, which loads
#: OpenSSL, where CPython's own digests do; ``json``, for messages about odd keys;
#: multiprocessing, which the forkserver imports: its first worker is asked for without it,
#: and with it pickle, tempfile, shutil, subprocess; random, for retry jitter only), and
#: each was on the parent's path once.
PARENT_PLAIN_RUN_NEVER = (
    "gxo.journal.resume",
    "gxo.dag.select",
    "gxo.pool.enforce",
    "gxo.pool.rlimits",
    "gxo.pool.cgroups",
    "gxo.modules.capture",
    "gxo.observability.html_report",
    "gxo.observability.junit",
    "gxo.observability.metrics",
    "gxo.observability.tracing",
    "gxo.executors",
    "gxo.cli.bench",
    "queue",
    "hashlib",
    "json",
    "multiprocessing",
    "pickle",
    "tempfile",
    "shutil",
    "subprocess",
    "random",
)
#: The dataclasses a plain run's parent may build at import: the public API's. Every other
#: record of the run's path is a msgspec Struct (a dataclass costs ~0.5-1 ms to build, each
#: an ``exec`` of generated code). The loader's packages (config, template, dag) are not
#: checked here.
PUBLIC_DATACLASSES = {
    "gxo.api.SecretsConfig",
    "gxo.api.Loaded",
    "gxo.api.RunResult",
    "gxo.scheduler.partial.PartialRun",
}

PARENT_DUMP = """\
import atexit, os, sys

out, parent = os.environ["GXO_TEST_MODULES_OUT"], os.getpid()


def dump():
    if os.getpid() != parent:
        return
    built = set()
    for name, module in list(sys.modules.items()):
        parts = name.split(".")
        if parts[0] != "gxo" or parts[1:2] in (["config"], ["template"], ["dag"]):
            continue
        for value in list(vars(module).values()):
            if isinstance(value, type) and value.__module__ == name:
                if "__dataclass_fields__" in vars(value):
                    built.add(name + "." + value.__qualname__)
    with open(out, "w") as fh:
        fh.write(" ".join(sorted(sys.modules)) + "\\n" + " ".join(sorted(built)) + "\\n")


atexit.register(dump)
sys.argv = ["gxo", *sys.argv[1:]]
from gxo.cli import console_main

console_main()
"""


def _parent_modules(tmp_path: Path, *args: str) -> tuple[set[str], set[str]]:
    """The modules in the ``gxo ARGS`` parent's ``sys.modules`` when it exits (a real run,
    through ``console_main``), and the dataclasses of gxo's modules it holds."""
    out = tmp_path / "modules.txt"
    _python(tmp_path, ["-c", PARENT_DUMP, *args], GXO_TEST_MODULES_OUT=str(out))
    modules, built = out.read_text().split("\n")[:2]
    return set(modules.split()), set(built.split())


def test_the_parent_of_a_plain_one_task_run_imports_only_its_path(tmp_path: Path) -> None:
    """``gxo one.yaml --workers 2`` (one ``python`` no-op): the parent imports none of
    :data:`PARENT_PLAIN_RUN_NEVER` and builds no dataclass beyond the public API's. The
    same run with ``--resume`` and a target does import the journal's resume and the
    selection: the check can fail."""
    (tmp_path / "noop.py").write_text("def noop():\n    return None\n")
    one = "schemaVersion: v1.0.0\nname: one\ntasks:\n  - name: t0\n    type: python\n"
    (tmp_path / "one.yaml").write_text(one + "    params: {function: 'noop.py:noop'}\n")
    modules, built = _parent_modules(tmp_path, "one.yaml", "--workers", "2")
    assert {"gxo.engine", "gxo.pool.process_pool", "gxo.journal.store"} <= modules  # it ran
    assert not _hits(modules, PARENT_PLAIN_RUN_NEVER)
    assert built <= PUBLIC_DATACLASSES, built - PUBLIC_DATACLASSES
    modules, _ = _parent_modules(tmp_path, "one.yaml", "t0", "--workers", "2", "--resume")
    assert {"gxo.journal.resume", "gxo.dag.select"} <= modules


IMPORT_LOG = """\
import os, sys
import importlib._bootstrap as _bootstrap

_out, _find_and_load = os.environ["GXO_TEST_IMPORTS_OUT"], _bootstrap._find_and_load


def _logged(name, import_):
    new = name not in sys.modules
    try:
        return _find_and_load(name, import_)
    finally:
        if new:  # one line per import, with the importing process
            fd = os.open(_out, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            os.write(fd, f"{os.getpid()} {name}\\n".encode())
            os.close(fd)


_bootstrap._find_and_load = _logged
"""


def test_the_parent_and_the_forkserver_never_both_import_a_module_after_the_fork(
    tmp_path: Path,
) -> None:
    """``gxo one.yaml --workers 2``: what both the parent and the forkserver (a fork of it)
    need is imported once, before the fork; after it, no module is imported by both (each
    would pay its CPU). The parent is the first process logged, the forkserver the second."""
    (tmp_path / "noop.py").write_text("def noop():\n    return None\n")
    one = "schemaVersion: v1.0.0\nname: one\ntasks:\n  - name: t0\n    type: python\n"
    (tmp_path / "one.yaml").write_text(one + "    params: {function: 'noop.py:noop'}\n")
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(IMPORT_LOG)
    out = tmp_path / "imports.txt"
    _python(
        tmp_path,
        ["-m", "gxo", "one.yaml", "--workers", "2"],
        PYTHONPATH=str(site),
        GXO_TEST_IMPORTS_OUT=str(out),
    )
    lines = [line.split() for line in out.read_text().splitlines()]
    pids = list(dict.fromkeys(pid for pid, _ in lines))
    assert len(pids) >= 2, pids  # the parent and the forkserver (and the worker)
    parent, server = pids[0], pids[1]
    fork = next(i for i, (pid, _) in enumerate(lines) if pid == server)
    after_fork = {name for pid, name in lines[fork:] if pid == parent}
    in_server = {name for pid, name in lines if pid == server}
    assert "gxo.engine" in after_fork  # the run happened: the check can fail
    assert "gxo.pool.worker" in in_server
    assert after_fork & in_server == set()
