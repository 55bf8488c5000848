"""A secret inside a record never leaves the worker that resolved it."""

from __future__ import annotations

from pathlib import Path

from stream_support import FUNCS

import gxo
from gxo.secrets.redact import REDACTED

SECRET = "hunter2-stream-value"


def test_records_are_redacted(tmp_path: Path) -> None:
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "STREAM_SECRET").write_text(SECRET)
    path = tmp_path / "p.yaml"
    path.write_text(f"""
schemaVersion: v1.0.0
name: t
tasks:
  - name: p
    type: python
    params:
      function: "{FUNCS}:emit_value"
      kwargs: {{value: "{{{{ secret('STREAM_SECRET') }}}}"}}
  - name: c
    type: python
    register: got
    stream_inputs: [p]
    params: {{function: "{FUNCS}:collect"}}
""")
    result = gxo.run(path, workers=2, secrets=gxo.SecretsConfig(directory=secrets))
    assert result.report.exit_code == 0, result.report.error
    assert result.registered["got"] == [{"v": REDACTED, "text": f"token={REDACTED};"}]
