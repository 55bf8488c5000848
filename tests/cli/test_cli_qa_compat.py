"""GXO playbooks written the way a user writes them, through the real ``gxo`` command.

Each test is a discrepancy found by user-acceptance QA of GXO compatibility, templates,
secrets and streams (session 6): it failed before its fix.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

Gxo = Callable[..., subprocess.CompletedProcess[str]]
PlaybookFile = Callable[..., Path]


def test_a_function_named_but_not_called_is_a_load_error(
    gxo: Gxo, playbook_file: PlaybookFile
) -> None:
    # Go: `{{ secret }}` is "wrong number of args for secret". gxo passed the function's
    # Python repr ("<function ...secret at 0x...>") to the command as its argument.
    path = playbook_file(
        """
        schemaVersion: "1.0.0"
        name: uncalled
        tasks:
          - name: a
            type: exec
            params:
              command: echo
              args: ["{{ secret }}", "x {{ env }}"]
          - name: b
            type: exec
            when: "{{ env }}"
            params: {command: echo}
        """
    )
    result = gxo("playbook.yaml", "--report", "r.json")
    assert result.returncode == 2, result.stderr
    err = result.stderr
    assert "playbook.yaml:8:14: $.tasks[0].params.args[0]: 'secret' is a function" in err
    assert "$.tasks[0].params.args[1]: 'env' is a function" in err
    assert "playbook.yaml:11:11: $.tasks[1].when: 'env' is a function" in err
    assert """hint: call it: secret('NAME'), or in a Go template {{ secret "NAME" }}""" in err
    assert "<function" not in result.stdout + err
    assert not (path.parent / ".gxo" / "runs").exists()  # nothing ran
