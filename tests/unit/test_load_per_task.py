"""What loading does once per playbook rather than once per task still reports per task.

Loading checks each distinct ``params`` once per module type (tasks often repeat them) and
compiles a bare ``{{ a.b }}`` without Jinja2; these tests pin that every task is still
reported at its own position, and that a playbook of bare paths loads without Jinja2.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import gxo
from gxo.errors import PlaybookError

HEAD = 'schemaVersion: "v1.0.0"\nname: t\ntasks:\n'


def test_repeated_bad_params_are_reported_at_every_task_with_its_own_line() -> None:
    tasks = "".join(
        f"  - name: t{i}\n    type: python\n    params:\n      function: 42\n" for i in range(3)
    )
    with pytest.raises(PlaybookError) as caught:
        gxo.load(HEAD + tasks)
    found = [(p.location.path, p.location.line) for p in caught.value.problems]
    assert found == [
        ("$.tasks[0].params.function", 7),
        ("$.tasks[1].params.function", 11),
        ("$.tasks[2].params.function", 15),
    ]


def test_params_equal_in_python_but_not_in_yaml_are_checked_apart() -> None:
    """``true`` and ``1`` are equal (and hash alike) in Python: the check of one task's params
    must not answer for the other's."""
    tasks = (
        '  - {name: a, type: exec, params: {command: "true", shell: true}}\n'
        '  - {name: b, type: exec, params: {command: "true", shell: 1}}\n'
    )
    with pytest.raises(PlaybookError) as caught:
        gxo.load(HEAD + tasks)
    assert [p.location.path for p in caught.value.problems] == ["$.tasks[1].params.shell"]


def test_a_playbook_of_bare_paths_loads_without_jinja2() -> None:
    """A chain passing ``{{ r0 }}`` on is loaded (compiled, checked, planned) with no Jinja2;
    a template that is not a bare path still imports it."""
    probe = (
        "import json, sys, gxo\n"
        "head = 'schemaVersion: v1.0.0\\nname: c\\ntasks:\\n'\n"
        "tasks = '  - {name: a, type: exec, register: r0, params: {command: \"true\"}}\\n'\n"
        "tasks += '  - {name: b, type: exec, params: {command: \"{{ r0.stdout }}\"}}\\n'\n"
        "loaded = gxo.load(head + tasks)\n"
        "edges = [list(e) for e in loaded.plan.graph.edges]\n"
        "bare = 'jinja2' in sys.modules\n"
        "gxo.load(head + tasks.replace('{{ r0.stdout }}', 'x {{ r0.stdout | upper }}'))\n"
        "print(json.dumps([edges, bare, 'jinja2' in sys.modules]))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    edges, bare, full = json.loads(result.stdout)
    assert edges == [["a", "b", "register"]]
    assert bare is False
    assert full is True
