"""Records and secrets (DESIGN §15): a record passed between tasks of one run carries the real
value; whatever leaves the run (results, output, the report) is redacted, in every worker."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

import pytest
from stream_support import FUNCS

from gxo import engine
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
    playbook, plan = engine.load(path)
    state: dict[str, Any] = {}
    options = engine.RunOptions(workers=3, secrets_dir=secrets, on_state=state.update)
    with caplog.at_level(logging.DEBUG, logger="gxo"):
        report = engine.execute(playbook, plan, options)
    assert report.exit_code == 0, report.error
    # The data path is intact: the consumer saw the real value...
    assert state["checked"]["matches"] == [True]
    # ...and what it returned or printed is masked by its own worker.
    assert state["got"] == [{"v": REDACTED, "text": f"token={REDACTED};"}]
    assert f"got {REDACTED}" in caplog.text
    assert SECRET not in caplog.text
    assert SECRET not in report.to_json().decode()
    assert SECRET not in repr(state)
