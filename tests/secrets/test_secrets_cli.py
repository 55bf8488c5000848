"""Secrets through the ``gxo`` command: providers, options, plan, and parent-side templates."""

from __future__ import annotations

import json
from pathlib import Path

from secrets_support import RunGxo

from gxo.secrets import REDACTED

HEAD = 'schemaVersion: "v1.0.0"\nname: s\n'
VALUE = "cli-secret-Value-9183"


FUNCS = """
def keep(value, path):
    with open(path, "w") as f:
        f.write(value)
    print("seen:", value)
"""


def write(tmp_path: Path, body: str, name: str = "p.yaml") -> Path:
    (tmp_path / "funcs.py").write_text(FUNCS)
    path = tmp_path / name
    path.write_text(HEAD + body)
    return path


ECHO = """tasks:
  - name: show
    type: exec
    register: shown
    params:
      command: [echo, "{{ secret('DB_PASSWORD') }}"]
  - name: later
    type: python
    params:
      function: funcs.py:keep
      args: ["{{ shown.stdout }}", "seen.txt"]
"""


def report(tmp_path: Path) -> dict:
    return json.loads((tmp_path / "r.json").read_text())


def seen(tmp_path: Path) -> str:
    """What the later task received from the state: redacted before it was stored."""
    return (tmp_path / "seen.txt").read_text()


def test_environment_is_the_default_provider(run_gxo: RunGxo, tmp_path: Path) -> None:
    playbook = write(tmp_path, ECHO)
    done = run_gxo("execute", playbook, "--report", "r.json", env={"DB_PASSWORD": VALUE})
    assert done.returncode == 0, done.stderr
    assert seen(tmp_path) == f"{REDACTED}\n"
    assert f"seen: {REDACTED}" in done.stderr
    assert VALUE not in done.stdout + done.stderr + (tmp_path / "r.json").read_text()


def test_secrets_dir_and_prefix(run_gxo: RunGxo, tmp_path: Path) -> None:
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "app_DB_PASSWORD").write_text(VALUE + "\n")
    playbook = write(tmp_path, ECHO)
    done = run_gxo(
        "execute",
        playbook,
        "--secrets-dir",
        secrets,
        "--secrets-prefix",
        "app_",
        "--report",
        "r.json",
        env={"DB_PASSWORD": "not-this-one"},
    )
    assert done.returncode == 0, done.stderr
    assert seen(tmp_path) == f"{REDACTED}\n"
    assert f"seen: {REDACTED}" in done.stderr
    assert VALUE not in done.stdout + done.stderr + (tmp_path / "r.json").read_text()


def test_env_prefix(run_gxo: RunGxo, tmp_path: Path) -> None:
    playbook = write(tmp_path, ECHO)
    done = run_gxo(
        "execute", playbook, "--secrets-prefix", "APP_", "--report", "r.json",
        env={"APP_DB_PASSWORD": VALUE},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert VALUE not in done.stdout + done.stderr + (tmp_path / "r.json").read_text()


def test_missing_secret_names_it_and_nothing_else(run_gxo: RunGxo, tmp_path: Path) -> None:
    playbook = write(tmp_path, ECHO.replace("DB_PASSWORD", "GXO_TEST_SURELY_UNSET"))
    done = run_gxo("execute", playbook, "--report", "r.json")
    result = report(tmp_path)["task_results"]["show"]
    assert done.returncode == 1
    assert result["reason"] == "secret_missing"
    assert "GXO_TEST_SURELY_UNSET" in result["error"]


def test_bad_secret_options_are_usage_errors(run_gxo: RunGxo, tmp_path: Path) -> None:
    playbook = write(tmp_path, ECHO)
    done = run_gxo("execute", playbook, "--secrets-dir", tmp_path / "nope")
    assert done.returncode == 2
    assert "secrets directory" in done.stderr
    done = run_gxo("execute", playbook, "--secrets-prefix", "a/b")
    assert done.returncode == 2
    assert "prefix" in done.stderr


def test_plan_shows_secrets_as_the_marker_and_runs_nothing(run_gxo: RunGxo, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    playbook = write(
        tmp_path,
        f"""vars:
  user: alice
tasks:
  - name: first
    type: exec
    register: first
    params:
      command: [touch, "{marker}"]
      env: {{PW: "{{{{ secret('DB_PASSWORD') }}}}", WHO: "{{{{ user }}}}"}}
  - name: second
    type: exec
    params:
      command: [echo, "{{{{ first.stdout }}}}", '{{{{ secret "DB_PASSWORD" }}}}']
""",
    )
    done = run_gxo("plan", playbook, env={"DB_PASSWORD": VALUE})
    assert done.returncode == 0, done.stderr
    assert not marker.exists()
    assert VALUE not in done.stdout + done.stderr
    assert f'"PW": "{REDACTED}", "WHO": "alice"' in done.stdout
    assert f'"{{{{ first.stdout }}}}", "{REDACTED}"' in done.stdout
    as_json = run_gxo("plan", playbook, "--format", "json", env={"DB_PASSWORD": VALUE})
    rendered = json.loads(as_json.stdout)["rendered_params"]
    assert rendered["first"]["env"] == {"PW": REDACTED, "WHO": "alice"}
    assert VALUE not in as_json.stdout


def test_parent_side_templates_cannot_call_secret(run_gxo: RunGxo, tmp_path: Path) -> None:
    playbook = write(
        tmp_path,
        """tasks:
  - name: a
    type: exec
    when: "{{ secret('X') == 'y' }}"
    params: {command: ["true"]}
  - name: b
    type: exec
    loop: "{{ secret('Y') | list }}"
    params: {command: ["true"]}
""",
    )
    done = run_gxo("validate", playbook)
    assert done.returncode == 2
    assert done.stderr.count("secret() cannot be used here") == 2
    assert "$.tasks[0].when" in done.stderr
    assert "$.tasks[1].loop" in done.stderr
    assert "move the secret into the task's params" in done.stderr


def test_short_value_warning_is_shown_once_under_the_task_that_reads_it(
    tmp_path: Path, run_gxo: RunGxo
) -> None:
    # Every worker registers the playbook's secrets ahead of time; the warning about a short
    # value used to be printed by each of them, under whatever task it was running then.
    book = write(
        tmp_path,
        """tasks:
  - name: first
    type: exec
    params: {command: ["sh", "-c", "echo one"]}
  - name: second
    type: exec
    depends_on: [first]
    params: {command: ["sh", "-c", "echo {{ secret('GXO_S3') }}"]}
""",
    )
    for workers in ("1", "2"):
        done = run_gxo("--workers", workers, book, env={"GXO_S3": "q7z"})
        assert done.returncode == 0, done.stderr
        warnings = [line for line in done.stderr.splitlines() if "shorter than 4" in line]
        assert len(warnings) == 1, done.stderr
        assert warnings[0].startswith("second | WARNING gxo.secrets: "), done.stderr
        assert "GXO_S3" in warnings[0]
        assert "q7z" not in done.stdout + done.stderr
