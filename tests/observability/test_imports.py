"""Optional observability libraries are imported only by a run that asked for them."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from obs_support import child_env

OPTIONAL = ("opentelemetry", "prometheus_client", "rich")

CHECK = textwrap.dedent(
    f"""
    import sys
    from gxo.cli import main
    code = main(sys.argv[1:])
    loaded = sorted({{m.split(".")[0] for m in sys.modules}} & {set(OPTIONAL)!r})
    print("LOADED=" + ",".join(loaded))
    sys.exit(code)
    """
)


def _loaded(tmp_path: Path, *args: str, **env: str) -> set[str]:
    proc = subprocess.run(
        [sys.executable, "-c", CHECK, *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=child_env(**env),
    )
    assert proc.returncode == 0, proc.stderr
    line = [x for x in proc.stdout.splitlines() if x.startswith("LOADED=")][-1]
    return {name for name in line.removeprefix("LOADED=").split(",") if name}


PLAYBOOK = """\
schemaVersion: v1.0.0
name: plain
tasks:
  - name: a
    type: exec
    params: {command: "true"}
  - name: b
    type: exec
    params: {command: "true"}
"""


def test_a_plain_run_imports_none_of_them(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text(PLAYBOOK)
    assert _loaded(tmp_path, "p.yaml") == set()


def test_results_files_and_auto_colour_without_a_terminal_import_none_of_them(
    tmp_path: Path,
) -> None:
    (tmp_path / "p.yaml").write_text(PLAYBOOK)
    args = ("p.yaml", "--junit", "j.xml", "--state-out", "s.json", "--report", "r.json")
    assert _loaded(tmp_path, *args, "--html-report", "r.html") == set()
    assert (tmp_path / "j.xml").exists()


def test_colour_imports_rich(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text(PLAYBOOK)
    assert _loaded(tmp_path, "p.yaml", "--color", "always") == {"rich"}
    assert _loaded(tmp_path, "p.yaml", FORCE_COLOR="1") == {"rich"}


def test_importing_the_cli_and_the_api_imports_none_of_them() -> None:
    code = (
        "import sys, gxo.cli, gxo.api, gxo.cli.commands, gxo.cli.parser; "
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & {set(OPTIONAL)!r}))"
    )
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env=child_env(),
    )
    assert out.stdout.strip() == "[]"
    for name in OPTIONAL:
        assert f" {name}\n" not in out.stderr
        assert f" {name}." not in out.stderr
