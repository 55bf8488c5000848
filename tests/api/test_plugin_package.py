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


BAD = (
    "schemaVersion: v1.0.0\nname: bad\ntasks:\n"
    "  - name: greet\n    type: hello:greet\n    params: {whom: world, shout: 'yes'}\n"
)


@pytest.mark.parametrize("command", ["validate", "execute"])
def test_bad_params_for_the_plugin_module_are_a_playbook_error(
    site: Path, tmp_path: Path, command: str
) -> None:
    """Checked at load, in a worker process (nothing runs): exit 2 with positions."""
    (tmp_path / "bad.yaml").write_text(BAD)
    done = _gxo(site, tmp_path, command, "bad.yaml")
    assert done.returncode == 2, done.stderr
    assert "bad.yaml:6:13: $.tasks[0].params: missing required parameter 'who'" in done.stderr
    assert "'whom' is given: did you mean 'who'?" in done.stderr
    assert (
        "bad.yaml:6:34: $.tasks[0].params.shout: parameter 'shout' must be a boolean, got str"
    ) in done.stderr
    assert "warning: bad.yaml:6:14: $.tasks[0].params.whom: unknown parameter 'whom'" in (
        done.stderr
    )
    assert not (tmp_path / "greetings.txt").exists()


def test_the_parent_never_imports_the_plugin_module_to_check_it(site: Path, tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text(BAD)
    probe = (
        "import sys, gxo\n"
        "try:\n    gxo.validate('bad.yaml')\nexcept gxo.PlaybookError as e:\n"
        "    print(len(e.problems))\n"
        "print('gxo_hello' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(site)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.stdout.split() == ["2", "False"], done.stderr


def test_an_unknown_plugin_param_warns_and_strict_refuses_it(site: Path, tmp_path: Path) -> None:
    (tmp_path / "extra.yaml").write_text(
        textwrap.dedent(PLAYBOOK).replace("to_file: greetings.txt", "to_file: g.txt, conn: x")
    )
    done = _gxo(site, tmp_path, "execute", "extra.yaml")
    assert done.returncode == 0, done.stderr
    assert "unknown parameter 'conn' for hello:greet" in done.stderr
    assert (tmp_path / "g.txt").read_text() == "HELLO, WORLD!\n"
    done = _gxo(site, tmp_path, "validate", "--strict", "extra.yaml")
    assert done.returncode == 2, done.stderr
    assert "$.tasks[0].params.conn: unknown parameter 'conn' for hello:greet" in done.stderr


def test_one_broken_plugin_does_not_hide_the_others(site: Path, tmp_path: Path) -> None:
    """`gxo modules` lists every module, marks the broken one with why, and exits 1."""
    broken = tmp_path / "broken-site"
    (broken / "gxo_broken-1.0.dist-info").mkdir(parents=True)
    (broken / "gxo_broken-1.0.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: gxo-broken\nVersion: 1.0\n"
    )
    (broken / "gxo_broken-1.0.dist-info" / "entry_points.txt").write_text(
        "[gxo.modules]\nacme:broken = gxo_broken_plugin:Thing\n"
    )
    (broken / "gxo_broken_plugin.py").write_text("raise ImportError('needs libfoo')\n")
    env = {**os.environ, "PYTHONPATH": f"{site}{os.pathsep}{broken}"}
    for args in (["modules"], ["modules", "--json"]):
        done = subprocess.run(
            [sys.executable, "-m", "gxo", *args],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 1, done.stderr
        assert "1 module type cannot be loaded: acme:broken" in done.stderr
        if args == ["modules"]:
            assert "acme:broken: BROKEN (cannot be loaded)" in done.stdout
            assert "ImportError: needs libfoo" in done.stdout
            assert "hello:greet: Greet someone" in done.stdout
            assert "exec: " in done.stdout
        else:
            listed = {m["name"]: m for m in json.loads(done.stdout)}
            assert "ImportError: needs libfoo" in listed["acme:broken"]["broken"]
            assert listed["hello:greet"]["broken"] == ""
            assert listed["exec"]["parameters"]


def test_the_plugin_module_conforms() -> None:
    spec = importlib.util.spec_from_file_location("gxo_hello_under_test", PLUGIN / "gxo_hello.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    check_module(module.GreetModule, sample_params={"who": "world", "to_file": "out.txt"})
