"""What gxo does when a telemetry package is missing: the OTLP exporter (the only optional
extra, ``gxo[otel]``), or a regular dependency in a broken install.

Each case runs the real ``gxo`` with the package really unimportable: a ``sitecustomize``
module on ``PYTHONPATH`` puts an import hook in front of every other, in gxo and in every
process it starts (the forkserver and the workers import ``sitecustomize`` too).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest
from obs_support import child_env

Gxo = Callable[..., subprocess.CompletedProcess[str]]
REPO = Path(__file__).resolve().parents[2]

BLOCKER = textwrap.dedent(
    """
    import os
    import sys

    BLOCKED = tuple(filter(None, os.environ.get("TEST_BLOCK_MODULES", "").split(",")))


    class Blocker:
        def find_spec(self, name, path=None, target=None):
            if any(name == b or name.startswith(b + ".") for b in BLOCKED):
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None


    sys.meta_path.insert(0, Blocker())
    """
)

#: Three tasks on two workers: a message a worker repeated would show more than once.
PLAYBOOK = """\
schemaVersion: v1.0.0
name: extras
tasks:
  - {name: a, type: exec, params: {command: touch, args: ["@TMP@/a"]}}
  - {name: b, type: exec, params: {command: touch, args: ["@TMP@/b"]}}
  - {name: c, type: exec, depends_on: [a, b], params: {command: touch, args: ["@TMP@/c"]}}
"""
EXPORTER = "opentelemetry.exporter"
INSTALL_HINT = "pip install 'gxo[otel]'"


@pytest.fixture
def without(
    tmp_path: Path, gxo: Gxo, write_playbook: Callable[..., Path]
) -> Callable[..., subprocess.CompletedProcess[str]]:
    """``without(modules, *args, **env)``: run gxo on PLAYBOOK with ``modules`` unimportable."""
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(BLOCKER)
    playbook = write_playbook(PLAYBOOK)

    def run(modules: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        environ = child_env(PYTHONPATH=str(hook), TEST_BLOCK_MODULES=modules, **env)
        return gxo(playbook, "--workers", "2", *args, env=environ)

    return run


def _clean(proc: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in proc.stderr, proc.stderr
    assert "internal error" not in proc.stderr


def _ran(tmp_path: Path) -> bool:
    return all((tmp_path / name).exists() for name in "abc")


def test_the_blocker_really_blocks(tmp_path: Path) -> None:
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(BLOCKER)
    env = child_env(PYTHONPATH=str(hook), TEST_BLOCK_MODULES=EXPORTER)
    code = "import opentelemetry.exporter.otlp.proto.http.trace_exporter"
    proc = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 1
    assert "ModuleNotFoundError" in proc.stderr


@pytest.mark.parametrize(
    ("args", "env"),
    [(("--otel",), {}), ((), {"OTEL_TRACES_EXPORTER": "otlp"})],
    ids=["--otel", "OTEL_TRACES_EXPORTER=otlp"],
)
def test_otlp_asked_for_without_the_exporter_is_a_usage_error(
    without: Callable[..., subprocess.CompletedProcess[str]],
    tmp_path: Path,
    args: tuple[str, ...],
    env: dict[str, str],
) -> None:
    proc = without(EXPORTER, *args, **env)
    assert proc.returncode == 2, proc.stderr
    assert f"tracing: the OTLP exporter is not installed: {INSTALL_HINT}" in proc.stderr
    # where the console exporter writes (test_the_console_exporter_needs_no_extra: stdout)
    assert "or to stdout with OTEL_TRACES_EXPORTER=console" in proc.stderr
    _clean(proc)
    assert not (tmp_path / "a").exists(), "a task ran"


def test_an_inherited_endpoint_without_the_exporter_is_one_warning(
    without: Callable[..., subprocess.CompletedProcess[str]], tmp_path: Path
) -> None:
    proc = without(EXPORTER, OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:9")
    assert proc.returncode == 0, proc.stderr
    assert _ran(tmp_path)
    assert proc.stderr.count("OTLP exporter is not installed") == 1, proc.stderr
    assert (
        "warning: tracing: OTEL_EXPORTER_OTLP_ENDPOINT is set, but the OTLP exporter is not "
        f"installed, so no spans are sent: {INSTALL_HINT} to send them" in proc.stderr
    )
    assert "tracing in the worker is off" not in proc.stderr
    _clean(proc)


def test_the_console_exporter_needs_no_extra(
    without: Callable[..., subprocess.CompletedProcess[str]], tmp_path: Path
) -> None:
    proc = without(EXPORTER, OTEL_TRACES_EXPORTER="console")
    assert proc.returncode == 0, proc.stderr
    assert _ran(tmp_path)
    assert '"name": "gxo.run extras"' in proc.stdout
    _clean(proc)


def test_a_traces_file_needs_no_extra(
    without: Callable[..., subprocess.CompletedProcess[str]], tmp_path: Path
) -> None:
    traces = tmp_path / "traces.jsonl"
    proc = without(EXPORTER, GXO_TRACES_FILE=str(traces))
    assert proc.returncode == 0, proc.stderr
    names = [line for line in traces.read_text().splitlines() if '"name"' in line]
    assert any('"gxo.run extras"' in line for line in names)
    assert sum('"gxo.module ' in line for line in names) == 3  # the workers' spans too
    _clean(proc)


@pytest.mark.parametrize("flag", ["--metrics-file", "--metrics-port"])
def test_metrics_in_a_broken_install_is_a_usage_error(
    without: Callable[..., subprocess.CompletedProcess[str]], tmp_path: Path, flag: str
) -> None:
    value = str(tmp_path / "gxo.prom") if flag == "--metrics-file" else "0"
    proc = without("prometheus_client", flag, value)
    assert proc.returncode == 2, proc.stderr
    assert f"{flag} needs prometheus-client, a dependency of gxo, which cannot be imported" in (
        proc.stderr
    )
    assert "pip install prometheus-client" in proc.stderr
    _clean(proc)
    assert not (tmp_path / "a").exists()


def test_tracing_in_a_broken_install_is_a_usage_error(
    without: Callable[..., subprocess.CompletedProcess[str]], tmp_path: Path
) -> None:
    proc = without("opentelemetry", GXO_TRACES_FILE=str(tmp_path / "t.jsonl"))
    assert proc.returncode == 2, proc.stderr
    assert "tracing needs opentelemetry-sdk, a dependency of gxo" in proc.stderr
    _clean(proc)


@pytest.mark.parametrize("args", [("--metrics-file", "gxo.prom"), ("--metrics-port", "0")])
def test_metrics_work_without_the_extra(
    without: Callable[..., subprocess.CompletedProcess[str]],
    tmp_path: Path,
    args: tuple[str, ...],
) -> None:
    proc = without(EXPORTER, *args)
    assert proc.returncode == 0, proc.stderr
    if args[0] == "--metrics-file":
        assert "gxo_tasks" in (tmp_path / "gxo.prom").read_text()
    else:
        assert "serving metrics at http://127.0.0.1:" in proc.stderr
    _clean(proc)


def test_telemetry_libraries_are_dependencies_and_only_the_exporter_is_an_extra() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    names = [d.split(">")[0].split("=")[0].strip() for d in project["dependencies"]]
    assert {"opentelemetry-sdk", "prometheus-client"} <= set(names)
    extras = project["optional-dependencies"]
    assert [d.split(">")[0] for d in extras["otel"]] == ["opentelemetry-exporter-otlp-proto-http"]


def test_a_traces_file_that_becomes_unwritable_loses_spans_not_the_run(
    gxo: Gxo, write_playbook: Callable[..., Path], tmp_path: Path
) -> None:
    """The file's directory passed the check, then a task removed it: a warning, exit 0."""
    (tmp_path / "traces").mkdir()
    playbook = write_playbook(
        """
        schemaVersion: v1.0.0
        name: removes-the-traces-directory
        tasks:
          - {name: rm, type: exec, params: {command: rm, args: ["-r", "@TMP@/traces"]}}
          - {name: after, type: exec, depends_on: [rm], params: {command: "true"}}
        """
    )
    env = child_env(GXO_TRACES_FILE=str(tmp_path / "traces" / "t.jsonl"))
    proc = gxo(playbook, env=env)
    assert proc.returncode == 0, proc.stderr
    assert f"cannot append to GXO_TRACES_FILE={tmp_path}/traces/t.jsonl" in proc.stderr
    _clean(proc)
