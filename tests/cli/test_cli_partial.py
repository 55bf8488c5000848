"""`gxo list`, `gxo completion`, `gxo clean`, `gxo journal`: the real command, in a child."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PLAYBOOK = """\
schemaVersion: v1.0.0
name: site
vars: {greeting: hi}
tasks:
  - {name: fetch, type: passthrough, register: src, tags: [build], params: {x: "{{ greeting }}"}}
  - {name: compile, type: passthrough, tags: [build, slow], params: {x: "{{ src }}"}}
  - {name: docs, type: passthrough}
"""


@pytest.fixture
def site(tmp_path: Path) -> Path:
    path = tmp_path / "site.yaml"
    path.write_text(PLAYBOOK)
    return path


def test_list_prints_names_one_per_line(gxo, site: Path) -> None:
    result = gxo("list", site)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "fetch\ncompile\ndocs\n"


def test_list_tags(gxo, site: Path) -> None:
    result = gxo("list", "--tags", site)
    assert result.stdout == "fetch\tbuild\ncompile\tbuild,slow\ndocs\t\n"


def test_list_of_an_invalid_playbook_exits_2(gxo, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("schemaVersion: v1.0.0\nname: x\ntasks: [{name: a}]\n")
    result = gxo("list", bad)
    assert result.returncode == 2
    assert "missing required key 'type'" in result.stderr


def test_list_of_a_playbook_that_needs_a_var_takes_var(gxo, tmp_path: Path) -> None:
    # `gxo list p.yaml` said "undefined variable 'target'" with the hint "pass --var
    # target=...", and `gxo list` refused --var; bash completion could list no task of it.
    path = tmp_path / "needs.yaml"
    path.write_text(
        "schemaVersion: v1.0.0\nname: x\ntasks:\n"
        "  - {name: deploy, type: exec, params: {command: echo, args: ['{{ target }}']}}\n"
        "  - {name: check, type: passthrough}\n"
    )
    result = gxo("list", path)
    assert result.returncode == 2
    assert "pass --var target=..." in result.stderr
    result = gxo("list", path, "--var", "target=prod")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "deploy\ncheck\n"
    text = gxo("completion", "bash").stdout
    assert _bash_complete(tmp_path, text, "gxo", "execute", "needs.yaml", "") == []
    for words in [
        ("gxo", "execute", "-e", "target=prod", "needs.yaml", "d"),
        ("gxo", "execute", "needs.yaml", "--var", "target=prod", "d"),
        ("gxo", "execute", "--var=target=prod", "needs.yaml", "--skip", "d"),
    ]:
        assert _bash_complete(tmp_path, text, *words) == ["deploy"], words


def _bash_complete(tmp_path: Path, script: str, *words: str) -> list[str]:
    """COMPREPLY of the generated bash completion for the command line ``words``."""
    (tmp_path / "gxo.bash").write_text(script)
    program = (
        "source gxo.bash\n"
        f"COMP_WORDS=({' '.join(words)}); COMP_CWORD={len(words) - 1}\n"
        # The function the script registers for gxo, as bash calls it.
        "fn=$(complete -p gxo); fn=${fn##*-F }; ${fn%% *}\n"
        'printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    # `gxo` must be on PATH for task names: the completion calls `gxo list`.
    bindir = tmp_path / "bin"
    bindir.mkdir(exist_ok=True)
    shim = bindir / "gxo"
    shim.write_text(f'#!/bin/sh\nexec {sys.executable} -m gxo "$@"\n')
    shim.chmod(0o755)
    env = {**os.environ, "PATH": f"{bindir}:{os.environ['PATH']}"}
    result = subprocess.run(
        ["bash", "-c", program],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return [line for line in result.stdout.splitlines() if line]


def test_bash_completion_completes_commands_options_files_and_task_names(
    gxo, site: Path, tmp_path: Path
) -> None:
    script = gxo("completion", "bash")
    assert script.returncode == 0, script.stderr
    text = script.stdout
    assert "list" in _bash_complete(tmp_path, text, "gxo", "li")
    assert _bash_complete(tmp_path, text, "gxo", "execute", "--fail") == [
        "--fail-fast",
        "--fail-fast-kill",
    ]
    assert _bash_complete(tmp_path, text, "gxo", "execute", "si") == ["site.yaml"]
    assert _bash_complete(tmp_path, text, "gxo", "execute", "site.yaml", "co") == ["compile"]
    assert _bash_complete(tmp_path, text, "gxo", "execute", "site.yaml", "--skip", "d") == ["docs"]


def test_options_taking_a_file_or_a_directory_complete_paths(
    gxo, site: Path, tmp_path: Path
) -> None:
    # `gxo execute --report ou<TAB>` completed nothing (bash's script falls back to
    # -o bashdefault, not to file names; fish's marked the option -x, no files either).
    (tmp_path / "outfile.json").write_text("")
    (tmp_path / "statedir").mkdir()
    text = gxo("completion", "bash").stdout
    for words, expected in [
        (("gxo", "execute", "--report", "ou"), ["outfile.json"]),
        (("gxo", "execute", "site.yaml", "--junit", "ou"), ["outfile.json"]),
        (("gxo", "journal", "site.yaml", "--journal", "ou"), ["outfile.json"]),
        (("gxo", "execute", "--state-dir", "st"), ["statedir"]),
        (("gxo", "clean", "--state-dir", "st"), ["statedir"]),
    ]:
        assert _bash_complete(tmp_path, text, *words) == expected, words
    fish = gxo("completion", "fish").stdout
    assert '-l report -xka "(__fish_complete_path (commandline -ct))"' in fish
    zsh = gxo("completion", "zsh").stdout
    assert ']:FILE:_files"' in zsh
    assert ']:DIR:_files -/"' in zsh


def test_bash_completes_the_shortcut_gxo_playbook_as_execute(
    gxo, site: Path, tmp_path: Path
) -> None:
    # `gxo site.yaml <TAB>` offered the command names again (shtab's function knows only
    # `gxo COMMAND ...`), and `gxo <TAB>` offered no playbook, though `gxo PLAYBOOK` is the
    # shortcut README leads with.
    script = gxo("completion", "bash").stdout
    assert _bash_complete(tmp_path, script, "gxo", "site.yaml", "co") == ["compile"]
    assert _bash_complete(tmp_path, script, "gxo", "-v", "site.yaml", "--skip", "d") == ["docs"]
    assert _bash_complete(tmp_path, script, "gxo", "site.yaml", "--fail-fast-k") == [
        "--fail-fast-kill"
    ]
    assert _bash_complete(tmp_path, script, "gxo", "si") == ["site.yaml"]
    first = _bash_complete(tmp_path, script, "gxo", "")
    assert "validate" in first
    assert "site.yaml" in first
    assert _bash_complete(tmp_path, script, "gxo", "validate", "site.yaml", "") == []


@pytest.mark.parametrize("shell", ["zsh", "fish"])
def test_zsh_and_fish_scripts_name_the_commands_and_complete_task_names(gxo, shell: str) -> None:
    result = gxo("completion", shell)
    assert result.returncode == 0, result.stderr
    for word in ("execute", "journal", "--fail-fast", "--resume", "gxo_task_names"):
        assert word in result.stdout
    if shutil.which(shell):
        check = ["zsh", "-n"] if shell == "zsh" else ["fish", "--no-execute"]
        assert subprocess.run([*check], input=result.stdout, text=True, check=False).returncode == 0


def test_clean_keeps_the_newest_runs(gxo, tmp_path: Path) -> None:
    runs = tmp_path / "state" / "runs"
    for number in range(5):
        run = runs / f"run{number}"
        run.mkdir(parents=True)
        (run / "attempt.log").write_text("x")
        os.utime(run, (1000 + number, 1000 + number))
    result = gxo("clean", "--keep", "2", "--state-dir", tmp_path / "state")
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in runs.iterdir()) == ["run3", "run4"]
    assert "removed 3 run(s), kept 2" in result.stdout


def test_clean_reads_gxo_state_dir(tmp_path: Path) -> None:
    runs = tmp_path / "elsewhere" / "runs"
    (runs / "old").mkdir(parents=True)
    result = subprocess.run(
        [sys.executable, "-m", "gxo", "clean", "--keep", "0"],
        cwd=tmp_path,
        env={**os.environ, "GXO_STATE_DIR": str(tmp_path / "elsewhere")},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert list(runs.iterdir()) == []


def test_journal_without_records_says_everything_runs(gxo, site: Path) -> None:
    result = gxo("journal", site)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("journal: ")
    assert "/.gxo/journal/site-" in lines[0]
    assert lines[1].split(None, 2) == ["run", "fetch", "the journal has no completed run of it"]
    assert lines[2].split(None, 2) == ["run", "compile", "upstream task 'fetch' runs"]


def test_journal_with_targets_shows_what_is_not_selected(gxo, site: Path) -> None:
    result = gxo("journal", site, "compile")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[3].split(None, 2) == [
        "skip",
        "docs",
        "not_selected: not a target, and no target needs it",
    ]


def test_unknown_target_is_a_usage_error(gxo, site: Path) -> None:
    result = gxo("journal", site, "compil")
    assert result.returncode == 2
    assert "no task named 'compil' in the playbook; did you mean compile?" in result.stderr


def test_missing_journal_file_is_a_usage_error(gxo, site: Path) -> None:
    result = gxo("journal", "--journal", "nope.jsonl", site)
    assert result.returncode == 2
    assert "--journal 'nope.jsonl': no such file" in result.stderr


def test_one_state_dir_holds_the_journal_and_the_attempt_logs(gxo, tmp_path: Path) -> None:
    """``--state-dir`` is one flag with one resolver: the run journal (``journal/``) and the
    attempt logs (``runs/<run_id>/``) of the same run land under it, and ``gxo journal``
    reads the journal back from there."""
    playbook = tmp_path / "echo.yaml"
    playbook.write_text(
        "schemaVersion: v1.0.0\nname: echo\ntasks:\n"
        '  - {name: say, type: exec, params: {command: echo, args: ["hello"]}}\n'
    )
    state = tmp_path / "state"
    result = gxo("execute", "--state-dir", state, playbook)
    assert result.returncode == 0, result.stderr
    (run,) = (state / "runs").iterdir()
    assert (run / "say" / "attempt1.stdout").read_text() == "hello\n"
    assert [p.suffix for p in (state / "journal").iterdir() if p.suffix == ".jsonl"] == [".jsonl"]
    assert not (tmp_path / ".gxo" / "journal").exists()
    listed = gxo("journal", "--state-dir", state, playbook)
    assert listed.returncode == 0, listed.stderr
    assert "say" in listed.stdout
