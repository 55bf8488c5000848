"""Records and secrets (DESIGN §15): a record passed between tasks of one run carries the real
value; whatever leaves the run (results, output, the report) is redacted, in every worker."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import pytest
from stream_support import FUNCS

import gxo
from gxo.secrets.redact import REDACTED

SECRET = "hunter2-stream-value"


@pytest.mark.parametrize(
    "template",
    [
        "{{ secret('STREAM_SECRET') }}",  # literal: every worker resolved it at start
        "{{ secret(which) }}",  # computed: announced by the producer's worker at run time
        "{{ secret(prefix ~ '_SECRET') }}",
    ],
)
def test_records_carry_the_real_value_and_results_are_redacted(
    tmp_path: Path, template: str, caplog: pytest.LogCaptureFixture
) -> None:
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "STREAM_SECRET").write_text(SECRET)
    digest = hashlib.sha256(SECRET.encode()).hexdigest()
    path = tmp_path / "p.yaml"
    path.write_text(f"""
schemaVersion: v1.0.0
name: t
vars: {{which: STREAM_SECRET, prefix: STREAM}}
tasks:
  - name: p
    type: python
    params:
      function: "{FUNCS}:emit_value"
      kwargs: {{value: "{template}"}}
  - name: check
    type: python
    register: checked
    stream_inputs: [p]
    params: {{function: "{FUNCS}:check_value", kwargs: {{digest: "{digest}"}}}}
  - name: keep
    type: python
    register: got
    stream_inputs: [p]
    params: {{function: "{FUNCS}:collect"}}
""")
    with caplog.at_level(logging.DEBUG, logger="gxo"):
        result = gxo.run(path, workers=3, secrets=gxo.SecretsConfig(directory=secrets))
    report, registered = result.report, result.registered
    assert report.exit_code == 0, report.error
    # The data path is intact: the consumer saw the real value...
    assert registered["checked"]["matches"] == [True]
    # ...and what it returned or printed is masked by its own worker.
    assert registered["got"] == [{"v": REDACTED, "text": f"token={REDACTED};"}]
    assert f"got {REDACTED}" in caplog.text
    assert SECRET not in caplog.text
    assert SECRET not in report.to_json().decode()
    assert SECRET not in repr(registered)
