"""`gxo [OPTIONS] PLAYBOOK` is `gxo execute [OPTIONS] PLAYBOOK`, whatever the option order."""

from __future__ import annotations

import argparse

import pytest

from gxo.cli import COMMANDS, VALUE_OPTIONS, _first_positional, main
from gxo.cli.parser import build_parser


def _value_options(parser: argparse.ArgumentParser) -> set[str]:
    found: set[str] = set()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                found |= _value_options(sub)
        elif action.option_strings and action.nargs != 0:
            found |= set(action.option_strings)
    return found


def test_value_options_match_the_parser():
    assert _value_options(build_parser()) == VALUE_OPTIONS


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["pb.yaml"], "pb.yaml"),
        (["--log-level", "warning", "pb.yaml"], "pb.yaml"),
        (["-q", "--workers", "3", "pb.yaml"], "pb.yaml"),
        (["--log-format=json", "validate", "pb.yaml"], "validate"),
        (["--version"], None),
        ([], None),
    ],
)
def test_first_positional(argv, expected):
    assert _first_positional(argv) == expected


def test_options_may_come_before_the_playbook(write_playbook, capsys):
    path = write_playbook(
        """
        schemaVersion: v1.0.0
        name: shortcut
        tasks:
          - {name: a, type: passthrough}
        """
    )
    assert main(["--log-level", "warning", "-w", "1", str(path)]) == 0
    assert "validate" in COMMANDS


@pytest.mark.parametrize(
    ("argv", "written"),
    [
        (["-q", "execute", "p.yaml"], "default"),
        (["--log-level", "warning", "-q", "execute", "p.yaml"], "default"),
        (["-e", "word=execute", "-q", "execute", "p.yaml"], "execute"),
        (["--var", "word=x", "-q", "execute", "p.yaml", "--workers", "1"], "x"),
    ],
)
def test_options_may_come_before_the_command(gxo, tmp_path, argv, written):
    """`gxo -q execute p.yaml` is `gxo execute -q p.yaml`: every option is the subcommand's."""
    (tmp_path / "p.yaml").write_text(
        "schemaVersion: v1.0.0\nname: t\nvars: {word: default}\ntasks:\n"
        "  - {name: a, type: exec, params: {shell: true, command: 'echo {{ word }} > out'}}\n"
    )
    done = gxo(*argv)
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""  # -q reached execute: no run lines
    assert (tmp_path / "out").read_text() == f"{written}\n"


def test_options_before_validate(gxo, tmp_path):
    (tmp_path / "p.yaml").write_text(
        "schemaVersion: v1.0.0\nname: t\ntasks:\n  - {name: a, type: passthrough}\n"
    )
    done = gxo("--log-level", "warning", "validate", "p.yaml")
    assert done.returncode == 0, done.stderr
    assert "valid" in done.stdout
