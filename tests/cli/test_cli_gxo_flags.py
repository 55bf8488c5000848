"""GXO's command line is accepted: its single-dash flags are aliases of gxo's options."""

from __future__ import annotations

import json
import platform
import sys
from pathlib import Path

import pytest

from gxo.cli.gxo_flags import translate_gxo_argv
from gxo.errors import UsageError


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["-playbook", "f.yaml"], ["f.yaml", "--oversubscribe"]),
        (["-playbook=f.yaml"], ["f.yaml", "--oversubscribe"]),
        (["--playbook", "f.yaml"], ["f.yaml", "--oversubscribe"]),
        (["-dry-run", "-playbook", "f"], ["--dry-run", "f", "--oversubscribe"]),
        (["-dry-run=true", "-playbook", "f"], ["--dry-run", "f", "--oversubscribe"]),
        (["-dry-run=false", "-playbook", "f"], ["f", "--oversubscribe"]),
        (["-worker-pool-size", "4", "-playbook", "f"], ["--workers", "4", "f", "--oversubscribe"]),
        (["-worker-pool-size=0", "-playbook", "f"], ["f", "--oversubscribe"]),
        (
            ["-channel-buffer-size", "7", "-playbook", "f"],
            ["--channel-buffer-size", "7", "f", "--oversubscribe"],
        ),
        (
            ["-log-level", "WARN", "-playbook", "f"],
            ["--log-level", "warning", "f", "--oversubscribe"],
        ),
        (
            ["-log-level", "Debug", "-playbook", "f"],
            ["--log-level", "debug", "f", "--oversubscribe"],
        ),
        (["-log-level", "loud", "-playbook", "f"], ["--log-level", "info", "f", "--oversubscribe"]),
        (
            ["-log-format", "json", "-playbook", "f"],
            ["--log-format", "json", "f", "--oversubscribe"],
        ),
        (["-version"], ["--version"]),
        (["validate", "-playbook", "f"], ["validate", "f"]),
        # gxo's own options are left alone
        (["--log-level", "debug", "--dry-run", "-w", "2", "f"], None),
        (["execute", "--var", "x=-playbook", "f"], None),
        (["--", "-playbook"], None),
    ],
)
def test_translation(argv: list[str], expected: list[str] | None) -> None:
    assert translate_gxo_argv(argv) == (argv if expected is None else expected)


def test_a_value_flag_without_its_value_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="flag needs an argument: -playbook"):
        translate_gxo_argv(["-playbook"])


PLAYBOOK = """\
schemaVersion: v1.0.0
name: gxo_cli
tasks:
  - name: hello
    type: exec
    params:
      command: sh
      args: ["-c", "echo ran > {out}"]
"""


def test_gxo_command_line_runs_a_playbook(gxo, tmp_path: Path) -> None:
    out = tmp_path / "ran.txt"
    path = tmp_path / "p.yaml"
    path.write_text(PLAYBOOK.format(out=out))
    result = gxo("-playbook", path, "-worker-pool-size", "2", "-log-level", "info")
    assert result.returncode == 0, result.stderr
    assert out.read_text() == "ran\n"


def test_gxo_dry_run_runs_nothing(gxo, tmp_path: Path) -> None:
    out = tmp_path / "ran.txt"
    path = tmp_path / "p.yaml"
    path.write_text(PLAYBOOK.format(out=out))
    result = gxo("-playbook", path, "-dry-run")
    assert result.returncode == 0, result.stderr
    assert not out.exists()


def test_gxo_validate_and_missing_playbook(gxo, tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(PLAYBOOK.format(out=tmp_path / "x"))
    assert gxo("validate", "-playbook", path).returncode == 0
    missing = gxo("-playbook")
    assert missing.returncode == 2
    assert "flag needs an argument: -playbook" in missing.stderr


def test_gxo_run_as_gxo_docs_write_it_names_execute(gxo, tmp_path: Path) -> None:
    # GXO's specification runs a playbook with `gxo run`; gxo read 'run' as the playbook's
    # path: "run: $: cannot read the playbook: No such file or directory".
    path = tmp_path / "p.yaml"
    path.write_text(PLAYBOOK.format(out=tmp_path / "ran.txt"))
    result = gxo("run", "-playbook", path)
    assert result.returncode == 2
    assert "gxo: unknown command 'run' (did you mean 'execute'?)" in result.stderr
    assert "cannot read the playbook" not in result.stderr
    assert not (tmp_path / "ran.txt").exists()


STREAM = """\
schemaVersion: v1.0.0
name: buffers
tasks:
  - name: produce
    type: generate:from_list
    params: {items: [1, 2, 3]}
  - name: consume
    type: passthrough
    stream_inputs: [produce]
  - name: own
    type: passthrough
    stream_inputs: [produce]
    channel_policy: {buffer_size: 5}
"""


def test_channel_buffer_size_sets_the_playbook_default(gxo, tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(STREAM)
    result = gxo("plan", "--format", "json", path)
    assert result.returncode == 0, result.stderr
    from gxo.cli.commands import _default_buffer_size
    from gxo.config.load import load_playbook

    playbook = _default_buffer_size(load_playbook(path), 3)
    assert playbook.channel_policy.buffer_size == 3
    assert playbook.task("consume").channel_policy.buffer_size == 3
    assert playbook.task("own").channel_policy.buffer_size == 5  # a task's own value wins
    run = gxo("-playbook", path, "-channel-buffer-size", "3", "--report", tmp_path / "r.json")
    assert run.returncode == 0, run.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["task_results"]["consume"]["status"] == "Completed"
    assert gxo("-playbook", path, "-channel-buffer-size", "-1").returncode == 2


@pytest.mark.parametrize("flag", ["--version", "-version"])
def test_version_prints_gxo_lines(gxo, flag: str) -> None:
    from gxo._version import __version__

    result = gxo(flag)
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    assert lines[0] == f"gxo version {__version__}"
    assert lines[1].startswith("commit: ")
    assert lines[1] != "commit: "
    assert lines[2].startswith("built: ")
    assert lines[3].startswith(f"python version: {platform.python_version()}")
    assert lines[4] == f"os/arch: {sys.platform}/{platform.machine()}"


def test_version_without_build_info_says_unknown(monkeypatch: pytest.MonkeyPatch) -> None:
    import gxo._version

    monkeypatch.setitem(sys.modules, "gxo._build_info", None)  # import fails
    text = gxo._version.version_text()
    assert "commit: unknown" in text
    assert "built: unknown" in text
