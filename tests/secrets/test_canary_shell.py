"""The canary suite, extended (issue 11): shell re-quoting, colliding keys, numeric secrets.

Real commands print the canaries the way shells re-quote them (bash's ``set -x`` trace,
``printf %q``, ``$`` doubled to ``$$``); the forms to look for are computed here by running
bash itself, independently of gxo's redactor, and no sink (gxo's output with debug logs, the
JSON report) may hold one. A module that returns two secrets as keys keeps both entries, and
one that returns a numeric secret as a number gets the string ``[REDACTED_SECRET]``.
"""

from __future__ import annotations

import json
import secrets
import shutil
import subprocess
from pathlib import Path

import pytest
from secrets_support import RunGxo
from test_canary import FUNCS, forbidden

from gxo.secrets import REDACTED

pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")

TOKEN = secrets.token_hex(5)
# A plain canary with a $ in it, and one with quotes, a space, a tab and a newline.
DOLLAR = f"gxo$Dollar{TOKEN}$x"
QUOTED = f'it\'s a {TOKEN} "q"\tend\nnext-{TOKEN[::-1]} $y'
NUMERIC = str(10**9 + int(TOKEN[:4], 16))
CANARIES = {"GXO_CANARY_DOLLAR": DOLLAR, "GXO_CANARY_QUOTED": QUOTED}

SCRIPT = 'set -x; true "$S"; set +x; printf "%q\\n" "$S"; printf "%s\\n" "${S//\\$/\\$\\$}"'


def bash_forms(value: str) -> set[str]:
    """What bash itself prints for ``value``: its xtrace word, ``%q`` and ``$$`` forms."""
    done = subprocess.run(
        ["bash", "-c", SCRIPT, "bash", value],
        env={"S": value, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    )
    trace = done.stderr.split("+ true ", 1)[1].split("\n+ set +x", 1)[0]
    found = {trace, *done.stdout.splitlines()}
    found |= {line for line in trace.splitlines() if len(line) >= 8}
    return {form for form in found if form and form != value} | forbidden(value)


def leaks(text: str) -> list[str]:
    return [form for value in CANARIES.values() for form in bash_forms(value) if form in text]


def test_bash_forms_differ_from_the_old_encodings() -> None:
    """The suite looks for forms the original list did not cover."""
    assert "'it'\\''s a" in "".join(bash_forms(QUOTED))
    assert f"gxo$$Dollar{TOKEN}$$x" in bash_forms(DOLLAR)
    assert f"gxo\\$Dollar{TOKEN}\\$x" in bash_forms(DOLLAR)
    assert not bash_forms(DOLLAR) <= forbidden(DOLLAR)


def playbook(tmp_path: Path) -> Path:
    tasks = "".join(
        f"""
  - name: bash_{short}
    type: exec
    register: bash_{short}
    params:
      command: [bash, -c, '{SCRIPT}']
      env: {{S: "{{{{ secret('{name}') }}}}"}}
"""
        for short, name in (("d", "GXO_CANARY_DOLLAR"), ("q", "GXO_CANARY_QUOTED"))
    )
    text = f"""schemaVersion: "v1.0.0"
name: shell-canary
tasks:{tasks}
  - name: keys
    type: python
    register: keys
    params:
      function: "{FUNCS}:two_keys"
      args: ["{{{{ secret('GXO_CANARY_DOLLAR') }}}}", "{{{{ secret('GXO_CANARY_QUOTED') }}}}"]
  - name: numbers
    type: python
    register: numbers
    params:
      function: "{FUNCS}:as_numbers"
      args: ["{{{{ secret('GXO_CANARY_NUMBER') }}}}"]
  - name: seen
    type: python
    params:
      function: "{FUNCS}:keep"
      args:
        - bash_d: "{{{{ bash_d }}}}"
          bash_q: "{{{{ bash_q }}}}"
          keys: "{{{{ keys }}}}"
          numbers: "{{{{ numbers }}}}"
        - "{tmp_path / "seen.json"}"
"""
    path = tmp_path / "shell.yaml"
    path.write_text(text)
    return path


def test_shell_requoting_keys_and_numbers_are_masked(run_gxo: RunGxo, tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    done = run_gxo(
        "execute", playbook(tmp_path), "--report", report, "--log-level", "debug",
        env={**CANARIES, "GXO_CANARY_NUMBER": NUMERIC},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    # what the registers hold, as a later task received them
    seen = json.loads((tmp_path / "seen.json").read_text())
    for short in ("d", "q"):
        summary = seen[f"bash_{short}"]
        assert summary["stderr"].startswith(f"+ true {REDACTED}") or (
            f"'{REDACTED}" in summary["stderr"]
        ), summary["stderr"]
        assert summary["stdout"].count(REDACTED) >= 2, summary["stdout"]
    keys = seen["keys"]
    assert keys == {REDACTED: "first", f"{REDACTED}#2": "second", "plain": "kept"}
    assert "two keys of one mapping are equal once secrets are redacted" in done.stderr
    numbers = seen["numbers"]
    assert numbers == {"int": REDACTED, "float": REDACTED, "list": [REDACTED, 7], "other": 1234}
    sinks = {
        "stdout": done.stdout,
        "stderr": done.stderr,
        "report": report.read_text(),
        "state seen": (tmp_path / "seen.json").read_text(),
    }
    for sink, text in sinks.items():
        assert not leaks(text), f"{sink} holds {leaks(text)[:3]}"
        assert NUMERIC not in text, sink


def test_an_empty_and_a_short_secret_warn_by_name(run_gxo: RunGxo, tmp_path: Path) -> None:
    book = tmp_path / "short.yaml"
    book.write_text(
        f"""schemaVersion: "v1.0.0"
name: short
tasks:
  - name: use
    type: python
    params:
      function: "{FUNCS}:print_value"
      args: ["{{{{ secret('GXO_EMPTY') }}}}{{{{ secret('GXO_SHORT') }}}}"]
"""
    )
    done = run_gxo("execute", book, env={"GXO_EMPTY": "", "GXO_SHORT": "ab"})
    assert done.returncode == 0, done.stderr
    assert "the value of secret 'GXO_EMPTY' is empty: there is nothing to redact" in done.stderr
    assert (
        "the value of secret 'GXO_SHORT' is shorter than 4 characters: only strings equal to "
        "it are redacted"
    ) in done.stderr
