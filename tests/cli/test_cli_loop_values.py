"""A ``loop`` that gives neither a list nor a mapping, through the real ``gxo`` command.

It used to fail at run time with Python's type names (``got str 'a,b'``, ``got int 3``),
even when the template reads only vars and so was certain to fail before anything ran.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

Gxo = Callable[..., subprocess.CompletedProcess[str]]
PlaybookFile = Callable[..., Path]


def test_a_loop_over_a_string_or_number_var_is_a_load_error(
    gxo: Gxo, playbook_file: PlaybookFile
) -> None:
    path = playbook_file(
        """
        schemaVersion: "1.0.0"
        name: loops
        vars: {items: "a,b", count: 3, regions: {eu: 1}}
        tasks:
          - name: words
            type: exec
            loop: "{{ items }}"
            params: {command: echo, args: ["{{ item }}"]}
          - name: times
            type: exec
            loop: "{{ .count }}"
            params: {command: echo, args: ["{{ item }}"]}
          - name: fine
            type: exec
            loop: "{{ regions }}"
            params: {command: echo, args: ["{{ item.key }}"]}
        """
    )
    result = gxo("playbook.yaml")
    assert result.returncode == 2, result.stderr
    err = result.stderr
    assert (
        "playbook.yaml:7:11: $.tasks[0].loop: 'loop' must give a list or a mapping, "
        "got a string 'a,b'" in err
    )
    assert """loop: "{{ items.split(',') }}\"""" in err
    assert (
        "playbook.yaml:11:11: $.tasks[1].loop: 'loop' must give a list or a mapping, "
        "got a number (3)" in err
    )
    assert 'loop: "{{ range(count) }}"' in err
    assert "tasks[2]" not in err  # a mapping is looped over as key/value items
    assert " str " not in err
    assert " int " not in err
    assert not (path.parent / ".gxo" / "runs").exists()  # nothing ran


def test_the_loop_hints_work_as_written(gxo: Gxo, playbook_file: PlaybookFile) -> None:
    playbook_file(
        """
        schemaVersion: "1.0.0"
        name: loops
        vars: {items: "a,b", count: 3}
        tasks:
          - name: words
            type: exec
            loop: "{{ items.split(',') }}"
            params: {command: echo, args: ["{{ item }}"]}
          - name: times
            type: exec
            loop: "{{ range(count) }}"
            params: {command: echo, args: ["{{ item }}"]}
        """
    )
    result = gxo("playbook.yaml")
    assert result.returncode == 0, result.stderr
    assert "[2 iterations]" in result.stderr
    assert "[3 iterations]" in result.stderr


def test_a_loop_over_a_registered_string_fails_in_the_user_s_words(
    gxo: Gxo, playbook_file: PlaybookFile
) -> None:
    # A register is known only at run time: the task fails then, with the same words.
    playbook_file(
        """
        schemaVersion: "1.0.0"
        name: loops
        tasks:
          - name: p
            type: exec
            params: {command: echo, args: ["x"]}
            register: out
          - name: s
            type: exec
            loop: "{{ out.stdout }}"
            params: {command: echo, args: ["{{ item }}"]}
        """
    )
    result = gxo("playbook.yaml")
    assert result.returncode == 1, result.stderr
    err = result.stderr
    assert (
        "FAILED   s: template_error: $.tasks[1].loop: 'loop' must give a list or a mapping, "
        "got a string 'x\\n'" in err
    )
    assert '"{{ out.stdout.splitlines() }}"' in err
    assert " str " not in err
