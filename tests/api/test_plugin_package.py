"""``examples/plugin``: a third-party module package, installed and used through a real ``gxo``.

The package is installed with pip into a private directory put on ``PYTHONPATH``. When pip
cannot build it offline (setuptools without ``wheel``, no index), the test writes the same
``.dist-info`` (METADATA and entry_points.txt, read from the package's pyproject.toml) by
hand: the entry point is then a real one, found by ``importlib.metadata`` like any other.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest

from gxo.modules.testing import check_module

PLUGIN = Path(__file__).resolve().parents[2] / "examples" / "plugin"

PLAYBOOK = """
schemaVersion: v1.0.0
name: hello
tasks:
  - name: greet
    type: hello:greet
    params: {who: world, shout: true, to_file: greetings.txt}
    register: greeting
  - name: echo-it
    type: exec
    params:
      command: echo
      args: ["{{ greeting.message }}"]
"""


def install_plugin(tmp_path: Path) -> Path:
    """Install examples/plugin under ``tmp_path``; return the directory to put on sys.path."""
    source, target = tmp_path / "gxo-hello-src", tmp_path / "site"
    shutil.copytree(PLUGIN, source)  # a build writes into the source tree: keep the repo clean
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--target",
            str(target),
            str(source),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if done.returncode != 0:
        _install_by_hand(source, target)
    return target


def _install_by_hand(source: Path, target: Path) -> None:
    project = tomllib.loads((source / "pyproject.toml").read_text())["project"]
    name, version = project["name"], project["version"]
    target.mkdir(exist_ok=True)
    shutil.copy(source / "gxo_hello.py", target / "gxo_hello.py")
    dist_info = target / f"{name.replace('-', '_')}-{version}.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    )
    lines = []
    for group, entries in project["entry-points"].items():
        lines.append(f"[{group}]")
        lines += [f"{key} = {value}" for key, value in entries.items()]
    (dist_info / "entry_points.txt").write_text("\n".join(lines) + "\n")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return install_plugin(tmp_path_factory.mktemp("plugin"))


def _gxo(site: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gxo", *args],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(site)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_installed_entry_point(site: Path) -> None:
    entry_points = next(site.glob("gxo_hello-*.dist-info/entry_points.txt")).read_text()
    assert "[gxo.modules]" in entry_points
    assert "gxo_hello:GreetModule" in entry_points


def test_gxo_modules_lists_it(site: Path, tmp_path: Path) -> None:
    done = _gxo(site, tmp_path, "modules")
    assert done.returncode == 0, done.stderr
    assert "hello:greet" in done.stdout
    done = _gxo(site, tmp_path, "modules", "--json")
    info = next(m for m in json.loads(done.stdout) if m["name"] == "hello:greet")
    assert info["target"] == "gxo_hello:GreetModule"
    assert info["supports_dry_run"] is True
    assert info["description"] == "Greet someone, and optionally write the greeting to a file."
    assert [p["name"] for p in info["parameters"]] == ["who", "greeting", "shout", "to_file"]


def test_a_playbook_runs_the_plugin_module(site: Path, tmp_path: Path) -> None:
    (tmp_path / "hello.yaml").write_text(textwrap.dedent(PLAYBOOK))
    done = _gxo(site, tmp_path, "execute", "--report", "report.json", "hello.yaml")
    assert done.returncode == 0, done.stderr
    assert "playbook 'hello' Completed" in done.stderr
    assert "2 tasks, 2 completed, 0 failed, 0 skipped" in done.stderr
    assert (tmp_path / "greetings.txt").read_text() == "HELLO, WORLD!\n"
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["task_results"]["greet"]["status"] == "Completed"


def test_dry_run_of_the_plugin_module_writes_nothing(site: Path, tmp_path: Path) -> None:
    (tmp_path / "hello.yaml").write_text(textwrap.dedent(PLAYBOOK))
    done = _gxo(site, tmp_path, "execute", "--dry-run", "--report", "report.json", "hello.yaml")
    assert done.returncode == 0, done.stderr
    assert not (tmp_path / "greetings.txt").exists()
    report = json.loads((tmp_path / "report.json").read_text())
    summary = report["task_results"]["greet"]["instances"][0]["summary"]
    assert summary == {"message": "HELLO, WORLD!", "would_write": str(tmp_path / "greetings.txt")}


def test_bad_params_for_the_plugin_module_are_a_playbook_error(site: Path, tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text(
        "schemaVersion: v1.0.0\nname: bad\ntasks:\n"
        "  - name: greet\n    type: hello:greet\n    params: {whom: world}\n"
    )
    done = _gxo(site, tmp_path, "execute", "bad.yaml")
    assert done.returncode == 1, done.stderr
    assert "unknown parameter 'whom' (did you mean 'who'?)" in done.stderr


def test_the_plugin_module_conforms() -> None:
    spec = importlib.util.spec_from_file_location("gxo_hello_under_test", PLUGIN / "gxo_hello.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    check_module(module.GreetModule, sample_params={"who": "world", "to_file": "out.txt"})
