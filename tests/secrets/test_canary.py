"""The canary suite: plant secrets, run real playbooks through the real ``gxo``, scan every sink.

Two canaries are planted in the environment: a plain one, and one full of quotes,
backslashes, ``$``, ``%`` and a newline. Tasks echo them (``exec``), print, write and log them
from a python function (every Python-level and file-descriptor-level channel, a child
process, the logging module), raise them (plain, chained with ``from``, implicit context),
register them for later tasks, crash with them in hand (``os._exit``) and exit non-zero after
printing them to stderr. Then every sink is scanned for every required encoding, computed
here independently of gxo's redactor: gxo's stdout and stderr (text and JSON logs), the JSON
report, what later tasks received from the state, and every file gxo created under TMPDIR.

What is *not* covered is asserted too, in :func:`test_documented_limitations`, so the README
and this suite cannot drift apart.
"""

from __future__ import annotations

import base64
import html
import json
import secrets
import shlex
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest
from secrets_support import RunGxo

from gxo.secrets import REDACTED

FUNCS = Path(__file__).resolve().parent / "canary_funcs.py"
TOKEN = secrets.token_hex(6)
PLAIN = f"gxoCanaryPlain{TOKEN}"
NASTY = f'N"a\'s\\ty $HOME %s %% `x` <&> {TOKEN}\n2nd-line \t"q" {TOKEN[::-1]}\\'
CANARIES = {"GXO_CANARY_PLAIN": PLAIN, "GXO_CANARY_NASTY": NASTY}


# -- the encodings, computed independently -----------------------------------------------------


def text_forms(value: str) -> set[str]:
    return {
        value,
        repr(value)[1:-1],
        ascii(value)[1:-1],
        json.dumps(value)[1:-1],
        json.dumps(value, ensure_ascii=False)[1:-1],
        quote(value, safe=""),
        quote(value),
        quote_plus(value),
        html.escape(value),
        html.escape(value, quote=False),
        shlex.quote(value),
    }


def base64_cores(value: str) -> set[str]:
    """For each byte alignment, the base64 characters that depend on the value alone.

    Any base64 text (standard or urlsafe, padded or not) of data holding the value at that
    alignment contains the core.
    """
    raw = value.encode()
    cores = set()
    for offset in range(3):
        text = base64.b64encode(b"\0" * offset + raw).decode()
        core = text[-(-8 * offset // 6) : 8 * (offset + len(raw)) // 6]
        cores |= {core, core.replace("+", "-").replace("/", "_")}
    return cores


def forbidden(value: str) -> set[str]:
    """Every form of ``value`` that must appear in no sink."""
    found = text_forms(value) | base64_cores(value)
    for line in {*value.splitlines(), *(x.strip() for x in value.splitlines()), value.strip()}:
        if len(line.strip()) >= 4:
            found |= text_forms(line)
    return {form for form in found if len(form) >= 4}


def leaks(text: str) -> list[tuple[str, str]]:
    """(canary name, form) for every form of a canary found in ``text``."""
    return [
        (name, form)
        for name, value in CANARIES.items()
        for form in forbidden(value)
        if form in text
    ]


def test_the_forms_are_not_trivial() -> None:
    # the scan is only as good as its list: the nasty canary has many distinct forms
    forms = forbidden(NASTY)
    assert len(forms) > 25
    assert any("\\u0060" in f or "%60" in f for f in forms)  # URL-encoded backtick
    assert f'2nd-line \t"q" {TOKEN[::-1]}\\' in forms  # a line alone
    assert any(f.startswith("TiJhJ3Nc") for f in forms)  # base64, first alignment


# -- the playbook ------------------------------------------------------------------------------


def tasks_for(name: str, short: str) -> str:
    secret = f"{{{{ secret('{name}') }}}}"
    go_form = f'{{{{ secret "{name}" }}}}'
    enc = f"{FUNCS.parent / 'encode_cmd.py'}"
    return f"""
  - name: exec_{short}
    type: exec
    register: exec_{short}
    params:
      command: ["{sys.executable}", "{enc}"]
      env: {{S: "{secret}"}}
  - name: exec_argv_{short}
    type: exec
    register: exec_argv_{short}
    params:
      command: [printf, "%s|%s\\n", "{secret}", '{go_form}']
  - name: exec_fail_{short}
    type: exec
    register: exec_fail_{short}
    ignore_errors: true
    params:
      command: 'printf "%s\\n" "$S"; printf "%s\\n" "$S" >&2; exit 4'
      shell: true
      env: {{S: "{secret}"}}
  - name: shout_{short}
    type: python
    register: shout_{short}
    params:
      function: "{FUNCS}:shout"
      kwargs: {{value: "{secret}", name: "{short}"}}
  - name: raise_{short}
    type: python
    ignore_errors: true
    params:
      function: "{FUNCS}:raise_plain"
      args: ["{secret}"]
  - name: chained_{short}
    type: python
    ignore_errors: true
    params:
      function: "{FUNCS}:raise_chained"
      args: ["{secret}"]
  - name: implicit_{short}
    type: python
    ignore_errors: true
    params:
      function: "{FUNCS}:raise_implicit"
      args: ["{secret}"]
  - name: crash_{short}
    type: python
    ignore_errors: true
    params:
      function: "{FUNCS}:crash"
      args: ["{secret}"]
  - name: later_{short}
    type: python
    register: later_{short}
    params:
      function: "{FUNCS}:keep"
      args:
        - exec: "{{{{ exec_{short} }}}}"
          argv: "{{{{ exec_argv_{short} }}}}"
          failed: "{{{{ exec_fail_{short} }}}}"
          shout: "{{{{ shout_{short} }}}}"
        - "@SEEN@/later_{short}.json"
  - name: last_{short}
    type: python
    params:
      function: "{FUNCS}:keep"
      args: ["{{{{ later_{short} }}}}", "@SEEN@/last_{short}.json"]
  - name: environ_{short}
    type: python
    params:
      function: "{FUNCS}:from_environment"
      args: ["{name}"]
"""


def playbook(tmp_path: Path) -> Path:
    seen = tmp_path / "seen"
    seen.mkdir(exist_ok=True)
    text = 'schemaVersion: "v1.0.0"\nname: canary\ntasks:' + "".join(
        tasks_for(name, short)
        for name, short in (("GXO_CANARY_PLAIN", "p"), ("GXO_CANARY_NASTY", "n"))
    )
    path = tmp_path / "canary.yaml"
    path.write_text(text.replace("@SEEN@", str(seen)))
    return path


def files_under(root: Path) -> Iterator[tuple[Path, str]]:
    for path in sorted(root.rglob("*")):
        if path.is_file():
            yield path, path.read_bytes().decode("utf-8", "replace")


@pytest.mark.parametrize(
    ("log_format", "executor"),
    [
        ("text", "local"),
        ("json", "local"),
        # The same run on a Dask LocalCluster gxo starts (issue 17): secrets are resolved and
        # redacted on the Dask workers, and nothing the parent shows or writes holds a value.
        pytest.param("text", "dask", marks=pytest.mark.dask),
    ],
)
def test_no_canary_reaches_any_sink(
    run_gxo: RunGxo, tmp_path: Path, gxo_tmpdir: Path, log_format: str, executor: str
) -> None:
    book = playbook(tmp_path)
    on = ["--workers", "3"]
    if executor == "dask":
        on = ["--executor", "dask", "--dask-cluster", "local", "--dask-workers", "1"]
        on += ["--dask-slots", "3"]
    report_path = tmp_path / "report.json"
    # Every observability sink too: spans of the parent and of every worker, the Prometheus
    # text and the HTML report.
    # And what a run writes about itself (issue 12): the JUnit file and the final state.
    spans, metrics, html, junit, state = (
        tmp_path / "spans.jsonl",
        tmp_path / "metrics.prom",
        tmp_path / "run.html",
        tmp_path / "junit.xml",
        tmp_path / "state.json",
    )
    done = run_gxo(
        "execute", book, "--report", report_path, "--log-format", log_format,
        "--log-level", "debug", *on,
        "--metrics-file", metrics, "--html-report", html,
        "--junit", junit, "--state-out", state,
        env={**CANARIES, "GXO_TRACES_FILE": str(spans)},
    )  # fmt: skip
    report = json.loads(report_path.read_text())
    results = report["task_results"]

    # the run did what the suite means it to do (so that a clean scan means something)
    for short in ("p", "n"):
        for task in ("exec", "exec_argv", "shout", "later", "last", "environ"):
            assert results[f"{task}_{short}"]["status"] == "Completed", (task, done.stderr)
        for task in ("exec_fail", "raise", "chained", "implicit", "crash"):
            assert results[f"{task}_{short}"]["status"] == "Failed", task
        assert results[f"crash_{short}"]["reason"] == "worker_exited(3)"
        assert results[f"chained_{short}"]["instances"][0]["traceback"].count(REDACTED) >= 1
        assert REDACTED in results[f"raise_{short}"]["error"]
        assert REDACTED in results[f"exec_fail_{short}"]["error"]
    assert done.returncode == 0  # every failure is ignored
    assert done.stderr.count(REDACTED) > 200

    sinks = {
        "stdout": done.stdout,
        "stderr": done.stderr,
        "report": report_path.read_text(),
        "spans": spans.read_text(),
        "metrics": metrics.read_text(),
        "html report": html.read_text(),
        "junit": junit.read_text(),
        "state-out": state.read_text(),
    }
    assert '"gxo.module' in sinks["spans"]  # the workers' spans are there, not only the parent's
    assert "gxo_tasks" in sinks["metrics"]
    assert "crash_p" in sinks["html report"]
    # the new sinks hold the outputs and registers that carried the canaries, masked
    assert REDACTED in sinks["junit"]
    assert "exec_fail_n" in sinks["junit"]
    assert REDACTED in sinks["html report"]
    assert REDACTED in json.loads(sinks["state-out"])["registered"]["exec_p"]["stdout"]
    assert REDACTED in sinks["report"]
    for path, text in files_under(tmp_path / "seen"):  # the state later tasks received
        sinks[f"state seen: {path.name}"] = text
        assert REDACTED in text
    for path, text in files_under(gxo_tmpdir):  # anything gxo (or a task) left in TMPDIR
        sinks[f"temp file: {path}"] = text
    for sink, text in sinks.items():
        found = leaks(text)
        assert not found, f"{sink} holds {found[:3]}"

    # what later tasks received from the state was masked before it was stored
    later = json.loads((tmp_path / "seen" / "later_n.json").read_text())
    assert later["exec"]["stdout"].startswith(f"literal: {REDACTED}\n")
    assert later["shout"][REDACTED] == "as a key"
    assert later["shout"]["exit_code"] == 0
    assert later["shout"]["status"] == "ok"
    assert later["failed"]["exit_code"] == 4
    if log_format == "json":
        for line in done.stderr.splitlines():
            json.loads(line)  # every line is still one JSON object


def test_stream_records_carry_real_values_and_consumers_mask_them(
    run_gxo: RunGxo, tmp_path: Path, gxo_tmpdir: Path
) -> None:
    """Records between tasks carry the real value (DESIGN §15, "Records and secrets"); the
    consumer's worker masks whatever it prints, logs or returns. The names are computed at
    run time (no literal ``secret('NAME')`` anywhere), so only the producer's announcement
    can have taught the consumers' workers the values."""
    seen = tmp_path / "seen"
    seen.mkdir()
    tasks = []
    for name, short in (("GXO_CANARY_PLAIN", "p"), ("GXO_CANARY_NASTY", "n")):
        tasks.append(f"""
  - name: produce_{short}
    type: python
    params:
      function: "{FUNCS}:emit_secret"
      kwargs: {{value: "{{{{ secret(names.{short}) }}}}"}}
  - name: consume_{short}
    type: python
    register: consumed_{short}
    stream_inputs: [produce_{short}]
    params: {{function: "{FUNCS}:consume_secret", kwargs: {{name: {name}}}}}
  - name: after_{short}
    type: python
    params:
      function: "{FUNCS}:keep"
      args: ["{{{{ consumed_{short} }}}}", "{seen}/after_{short}.json"]
""")
    book = tmp_path / "streams.yaml"
    book.write_text(
        'schemaVersion: "v1.0.0"\nname: canary-streams\n'
        "vars: {names: {p: GXO_CANARY_PLAIN, n: GXO_CANARY_NASTY}}\ntasks:" + "".join(tasks)
    )
    report_path = tmp_path / "report.json"
    done = run_gxo(
        "execute", book, "--report", report_path, "--log-level", "debug", "--workers", "4",
        env=CANARIES,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    for short in ("p", "n"):
        after = json.loads((seen / f"after_{short}.json").read_text())
        assert after["intact"] is True  # the consumer saw the real value
        assert after["records"][0]["value"] == REDACTED  # what it returned is masked
        assert after["records"][1][REDACTED] == "as a key"
    assert done.stderr.count(REDACTED) > 50
    sinks = {"stdout": done.stdout, "stderr": done.stderr, "report": report_path.read_text()}
    for path, text in files_under(seen):
        sinks[f"state seen: {path.name}"] = text
    for path, text in files_under(gxo_tmpdir):
        sinks[f"temp file: {path}"] = text
    for sink, text in sinks.items():
        found = leaks(text)
        assert not found, f"{sink} holds {found[:3]}"


def test_the_registry_masks_values_a_worker_never_resolved(run_gxo: RunGxo, tmp_path: Path) -> None:
    """A task that reads a secret without calling secret() (here: straight from the environment;
    in general: through a stream or state from another task) is masked in its own worker,
    because every worker resolves the playbook's secret names before its first instance."""
    book = tmp_path / "registry.yaml"
    book.write_text(
        f"""schemaVersion: "v1.0.0"
name: registry
tasks:
  - name: never_runs
    type: exec
    when: false
    params:
      command:
        - echo
        - "{{{{ secret('GXO_CANARY_PLAIN') }}}}"
        - "{{{{ secret('GXO_CANARY_NASTY') }}}}"
  - name: reader_p
    type: python
    params:
      function: "{FUNCS}:from_environment"
      args: [GXO_CANARY_PLAIN]
  - name: reader_n
    type: python
    params:
      function: "{FUNCS}:from_environment"
      args: [GXO_CANARY_NASTY]
"""
    )
    done = run_gxo("execute", book, "--report", "r.json", env=CANARIES)
    assert done.returncode == 0, done.stderr
    assert f"read from the environment: {REDACTED}" in done.stderr
    for text in (done.stdout, done.stderr, (tmp_path / "r.json").read_text()):
        assert not leaks(text)


def wrapped_line(out: str, index: int) -> str:
    lines = out.split("wrapped base64:\n", 1)[1].splitlines()
    return lines[index]


def test_documented_limitations(run_gxo: RunGxo, tmp_path: Path) -> None:
    """What gxo does NOT redact (README, "Secrets", "Out of scope"). If one of these starts
    failing, gxo got better: update the README and move the case into the suite above."""
    short = "ab1"
    book = tmp_path / "limits.yaml"
    book.write_text(
        f"""schemaVersion: "v1.0.0"
name: limits
tasks:
  - name: transformed
    type: python
    params:
      function: "{FUNCS}:leak_transformed"
      args: ["{{{{ secret('GXO_CANARY_PLAIN') }}}}"]
  - name: short_value
    type: python
    params:
      function: "{FUNCS}:print_value"
      args: ["{{{{ secret('GXO_SHORT') }}}}"]
  - name: not_a_secret
    type: python
    params:
      function: "{FUNCS}:print_value"
      args: ["{{{{ env('GXO_PLAIN_ENV') }}}}"]
"""
    )
    env = {**CANARIES, "GXO_SHORT": short, "GXO_PLAIN_ENV": "env-value-is-not-a-secret"}
    done = run_gxo("execute", book, env=env)
    assert done.returncode == 0, done.stderr
    out = done.stderr
    # 1. transformations other than the listed encodings: hex, case changes, hashing,
    #    encryption, compression, and base64 wrapped into lines (MIME, `base64` without -w0)
    assert PLAIN.encode().hex() in out
    assert PLAIN.upper() in out
    wrapped = base64.encodebytes(b"\x01\x02" + PLAIN.encode() * 3).decode().splitlines()
    # the third copy straddles the first line break: its base64 is cut in two, and the
    # second line (most of that copy, encoded) passes unmasked
    assert wrapped[1] in out
    assert REDACTED in wrapped_line(out, 0)  # a copy whole on one line is masked
    # 2. values shorter than 4 characters are masked only where a whole field or line is
    #    the value, with a warning
    assert f"x{short}x" in out
    assert "shorter than 4 characters" in out
    # 3. env() is not a secret
    assert "env-value-is-not-a-secret" in out


# -- issue 15: a provider object, keyword redaction, the secrets metrics ------------------------

KEYWORD_CANARY = f"gxoKeywordCanary{TOKEN}"
TESTS = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_provider_object_keyword_redaction_and_secrets_metrics_leak_nothing(
    run_gxo: RunGxo, tmp_path: Path, gxo_tmpdir: Path, log_format: str
) -> None:
    """The whole canary playbook with its secrets read by a provider object (a JSON file, not
    the environment), plus a task that reads a credential by itself and prints, logs and fails
    with it in ``key=value`` forms: with ``--redact-keywords`` no sink holds any of them, and
    the secrets metrics count without naming a value."""
    book = playbook(tmp_path)
    text = book.read_text() + textwrap.indent(
        textwrap.dedent(
            f"""
          - name: keyword_leak
            type: exec
            ignore_errors: true
            params:
              command: sh
              args: ["-c", 'echo "api_key=$K"; echo "{{\\"password\\": \\"$K\\"}}" >&2; exit 5']
              env: {{K: "{KEYWORD_CANARY}"}}
        """
        ),
        "  ",
    )
    book.write_text(text)
    values = tmp_path / "vault.json"
    values.write_text(json.dumps(CANARIES))
    report_path, spans, metrics, html = (
        tmp_path / "report.json",
        tmp_path / "spans.jsonl",
        tmp_path / "metrics.prom",
        tmp_path / "run.html",
    )
    done = run_gxo(
        "execute", book, "--report", report_path, "--log-format", log_format,
        "--log-level", "debug", "--workers", "3",
        "--secrets-provider", "fixtures_modules.surface:JsonFileProvider",
        "--secrets-option", f"path={values}", "--redact-keywords",
        "--metrics-file", metrics, "--html-report", html,
        env={**CANARIES, "GXO_TRACES_FILE": str(spans), "PYTHONPATH": str(TESTS)},
    )  # fmt: skip
    report = json.loads(report_path.read_text())
    results = report["task_results"]
    assert "exec_p" in results, report["error"]
    assert results["exec_p"]["status"] == "Completed", done.stderr
    assert results["raise_n"]["status"] == "Failed"
    assert REDACTED in results["raise_n"]["error"]
    assert results["keyword_leak"]["status"] == "Failed"
    assert f'"password": "{REDACTED}"' in results["keyword_leak"]["instances"][0]["error"] + (
        done.stderr
    )
    prom = metrics.read_text()
    assert 'gxo_secrets_accessed_total{name="GXO_CANARY_PLAIN",task="exec_p"} 1.0' in prom
    assert 'gxo_secrets_redacted_total{task="exec_p"}' in prom
    sinks = {
        "stdout": done.stdout,
        "stderr": done.stderr,
        "report": report_path.read_text(),
        "spans": spans.read_text(),
        "metrics": prom,
        "html report": html.read_text(),
    }
    for path, body in files_under(gxo_tmpdir):
        sinks[f"temp file: {path}"] = body
    for sink, body in sinks.items():
        found = leaks(body)
        assert not found, f"{sink} holds {found[:3]}"
        assert KEYWORD_CANARY not in body, sink
