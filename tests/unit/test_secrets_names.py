"""The run-wide registry's input (secret names, never values) and ``gxo plan``'s rendering."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import gxo
from gxo.cli.output import plan_params
from gxo.errors import UsageError
from gxo.secrets import REDACTED
from gxo.secrets.config import worker_config
from gxo.template import compile_value
from gxo.template.compiled import secret_names


def names(value: Any) -> frozenset[str]:
    return secret_names(compile_value(value, where="$"))


def test_literal_names_in_every_form_and_place() -> None:
    value = {
        "a": "{{ secret('A') }}",
        "b": ['x {{ secret "B" }} y', {"deep": '{% if x %}{{ secret("C") | upper }}{% endif %}'}],
        "c": 1,
        "d": "{{ secret('A') ~ secret('D.d-1') }}",
    }
    assert names(value) == {"A", "B", "C", "D.d-1"}


def test_computed_names_and_plain_text_give_nothing() -> None:
    assert names({"a": "{{ secret(name) }}", "b": "secret('X')", "c": "{{ x.secret }}"}) == set()
    assert names("no template") == set()


def test_secrets_config_collects_names_and_never_values(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GXO_NAMES_TEST", "value-never-read-by-the-parent")
    path = tmp_path / "p.yaml"
    path.write_text(
        'schemaVersion: "v1.0.0"\nname: n\ntasks:\n'
        "  - name: a\n    type: exec\n    params:\n"
        "      command: [echo, \"{{ secret('GXO_NAMES_TEST') }}\", '{{ secret \"OTHER\" }}']\n"
    )
    params = [t.params for t in gxo.load(path).plan.templates.values()]
    config = worker_config(params, prefix="P_")
    assert config.secret_names == ("GXO_NAMES_TEST", "OTHER")
    assert config.secrets_prefix == "P_"
    assert config.secrets_dir == ""
    assert "value-never-read" not in repr(config)
    config = worker_config(params, directory=tmp_path)
    assert config.secrets_dir == str(tmp_path)
    with pytest.raises(UsageError, match="not found"):
        worker_config(params, directory=tmp_path / "missing")
    with pytest.raises(UsageError, match="prefix"):
        worker_config(params, prefix="../")


def test_plan_params_render_what_they_can() -> None:
    params = {
        "command": ["echo", "{{ secret('DB') }}", "{{ user }}", "{{ reg.stdout }}"],
        "env": {"X": "pre-{{ secret('DB') }}-{{ user | upper }}"},
        "n": 3,
        "loop": "{{ item }}",
    }
    assert plan_params(params, {"user": "alice"}) == {
        "command": ["echo", REDACTED, "alice", "{{ reg.stdout }}"],
        "env": {"X": f"pre-{REDACTED}-ALICE"},
        "n": 3,
        "loop": "{{ item }}",
    }
