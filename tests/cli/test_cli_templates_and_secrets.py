"""GXO playbooks written the way a user writes them, through the real ``gxo`` command.

Each test is a discrepancy found by user-acceptance QA of GXO compatibility, templates,
secrets and streams (session 6): it failed before its fix.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

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


def test_a_failed_when_or_loop_template_hints_at_that_field(
    gxo: Gxo, playbook_file: PlaybookFile
) -> None:
    # The hint said "fix the template in the task's params" for a `when` that failed.
    playbook_file(
        """
        schemaVersion: "1.0.0"
        name: scheduler-templates
        vars: {n: 3, m: {a: 1}}
        tasks:
          - name: w
            type: exec
            when: "{{ eq .n 3.0 }}"
            params: {command: echo}
          - name: l
            type: exec
            loop: "{{ .n.items }}"
            params: {command: echo}
          - name: p
            type: exec
            params: {command: echo, args: ["{{ .m.nope }}"]}
        """
    )
    result = gxo("playbook.yaml")
    assert result.returncode == 1, result.stderr
    lines = result.stderr.splitlines()

    def hint_of(task: str) -> str:
        start = next(i for i, line in enumerate(lines) if f"FAILED   {task}:" in line)
        return next(line for line in lines[start:] if line.startswith("    hint:"))

    assert "$.tasks[0].when: error calling eq: incompatible types for comparison" in result.stderr
    assert hint_of("w").startswith("    hint: fix the task's `when` template: the scheduler")
    assert "$.tasks[1].loop: 'n' (an int) has no attribute 'items'" in result.stderr
    assert hint_of("l").startswith("    hint: fix the task's `loop` template: the scheduler")
    assert hint_of("p").startswith("    hint: fix the template in the task's params;")


def test_a_literal_stream_join_mistake_is_a_load_error(
    gxo: Gxo, playbook_file: PlaybookFile
) -> None:
    # GXO's checks of stream:join's params ran only in the join's worker: its producers ran
    # first and the run exited 1. Each is now found at load, with GXO's message.
    playbook_file(
        """
        schemaVersion: "1.0.0"
        name: join-mistakes
        tasks:
          - name: p
            type: generate:from_list
            params: {items: [{x: 1}]}
          - name: q
            type: generate:from_list
            params: {items: [{x: 1}]}
          - name: j
            type: stream:join
            stream_inputs: [p, q]
            params:
              join_type: sideways
              on: [{stream: p, role: probe, field: x}, {stream: q, role: build, field: x}]
          - name: j2
            type: stream:join
            stream_inputs: [p, q]
            params:
              join_type: inner
              on: [{stream: p, role: probe}, {stream: q, role: build, field: x}]
          - name: j3
            type: stream:join
            stream_inputs: [p, q]
            params:
              join_type: outer
              on: [{stream: p, role: probe, field: x}, {stream: q, role: build, field: x}]
              output: {merge_strategy: nested, nesting_keys: {p: a}}
          - name: j4
            type: stream:join
            stream_inputs: [p, q]
            params:
              join_type: left
              on: [{stream: p, role: probe, field: x}, {stream: q, role: probe, field: x}]
        """
    )
    result = gxo("playbook.yaml", "-w", "8", "--report", "r.json")
    assert result.returncode == 2, result.stderr
    err = result.stderr
    assert "playbook is invalid (4 problems)" in err
    assert "$.tasks[2].params: unsupported join_type: 'sideways'" in err
    assert "$.tasks[3].params: stream 'p' must have exactly one of 'field' or 'template'" in err
    assert "$.tasks[4].params: missing nesting_key for stream 'q'" in err
    assert "$.tasks[5].params: exactly one stream must have role 'probe', found 2" in err
    assert not [line for line in err.splitlines() if line.startswith("ok ")]  # nothing ran


def test_a_literal_stream_join_mistake_beside_a_key_template_is_a_load_error(
    gxo: Gxo, playbook_file: PlaybookFile
) -> None:
    # A key written as GXO writes it (template: "{{ .x }}") made the load-time check of the
    # params skip join_type and output: the producers ran, then the join failed (exit 1).
    playbook_file(
        """
        schemaVersion: "1.0.0"
        name: join-template-mistakes
        vars: {jt: inner}
        tasks:
          - {name: p, type: generate:from_list, params: {items: [{x: 1}]}}
          - {name: q, type: generate:from_list, params: {items: [{x: 1}]}}
          - name: j
            type: stream:join
            stream_inputs: [p, q]
            params:
              join_type: sideways
              on:
                - {stream: p, role: probe, template: "{{ .x }}"}
                - {stream: q, role: build, field: x}
          - name: j2
            type: stream:join
            stream_inputs: [p, q]
            params:
              join_type: left
              on:
                - {stream: p, role: probe, template: "{{ .x }}"}
                - {stream: q, role: build, field: x}
              output: {merge_strategy: nested}
          - name: templated
            type: stream:join
            stream_inputs: [p, q]
            params:
              join_type: "{{ .jt }}"
              on:
                - {stream: p, role: probe, template: "{{ .x }}"}
                - {stream: q, role: build, field: x}
        """
    )
    result = gxo("playbook.yaml", "-w", "8")
    assert result.returncode == 2, result.stderr
    err = result.stderr
    assert "playbook is invalid (2 problems)" in err
    assert "playbook.yaml:11:7: $.tasks[2].params: unsupported join_type: 'sideways'" in err
    assert "$.tasks[3].params: 'nesting_keys' is required for nested merge_strategy" in err


def test_whitespace_around_a_lone_expression_does_not_count_as_the_readme_says(
    gxo: Gxo, playbook_file: PlaybookFile, tmp_path: Path
) -> None:
    # README "Rendering rules" (documented in session 6: it was true, and not said).
    playbook_file(
        r"""
        schemaVersion: "1.0.0"
        name: lone
        vars: {port: 8080}
        tasks:
          - name: v
            type: passthrough
            register: v
            params:
              value:
                go: "{{ .port }}\n"
                jinja: " {{ port }}\n"
                kept: "{{ port }}{{ '\n' }}"
        """
    )
    result = gxo("playbook.yaml", "--state-out", "state.json")
    assert result.returncode == 0, result.stderr
    import json

    value = json.loads((tmp_path / "state.json").read_text())["registered"]["v"]["value"]
    assert value == {"go": 8080, "jinja": 8080, "kept": "8080\n"}


def test_var_reads_yes_as_a_string_and_true_as_a_boolean_as_the_readme_says(
    gxo: Gxo, playbook_file: PlaybookFile, tmp_path: Path
) -> None:
    # README said "--var x=yes gives true" (YAML 1.1); the reader keeps YAML 1.2's booleans,
    # as playbooks do. The README now says so.
    playbook_file(
        """
        schemaVersion: "1.0.0"
        name: cli-vars
        vars: {a: 0, b: 0, c: 0}
        tasks:
          - name: v
            type: passthrough
            register: v
            params: {value: {a: "{{ .a }}", b: "{{ .b }}", c: "{{ .c }}"}}
        """
    )
    result = gxo(
        "playbook.yaml", "--var", "a=yes", "-e", "b=true", "-e", "c=[1, x]", "--state-out", "s.json"
    )
    assert result.returncode == 0, result.stderr
    import json

    value = json.loads((tmp_path / "s.json").read_text())["registered"]["v"]["value"]
    assert value == {"a": "yes", "b": True, "c": [1, "x"]}


def test_var_named_like_a_template_function_is_read_by_a_go_template(
    gxo: Gxo, playbook_file: PlaybookFile, tmp_path: Path
) -> None:
    # GXO reads {{ .env }} as the var env; gxo refused `--var env=x` (and `vars: {env: ...}`)
    # because a Jinja template reads env as the function. `_gxo` stays refused, on the
    # command line, not at the file's `vars:` line where no such var is written.
    playbook_file(
        """
        schemaVersion: "1.0.0"
        name: cli-vars
        vars: {a: 0}
        tasks:
          - {name: v, type: passthrough, register: v, params: {value: "{{ .env }}/{{ .secret }}"}}
        """
    )
    result = gxo("playbook.yaml", "--var", "env=prod", "-e", "secret=1", "--state-out", "s.json")
    assert result.returncode == 0, result.stderr
    import json

    value = json.loads((tmp_path / "s.json").read_text())["registered"]["v"]["value"]
    assert value == "prod/1"
    result = gxo("validate", "playbook.yaml", "-e", "_gxo=x")
    assert result.returncode == 2, result.stderr
    assert "--var _gxo=x: a var cannot be named '_gxo'" in result.stderr
    assert "$.vars._gxo" not in result.stderr


def test_printf_takes_a_star_width_and_precision_from_its_arguments(
    gxo: Gxo, playbook_file: PlaybookFile, tmp_path: Path
) -> None:
    # fmt: "Either or both of the flags may be replaced with the character '*', causing their
    # values to be obtained from the next operand (preceding the one to format), which must be
    # of type int." gxo printed '%!*(int=5)d%!(EXTRA int=3)'.
    playbook_file(
        """
        schemaVersion: "1.0.0"
        name: star
        vars: {w: 6}
        tasks:
          - name: v
            type: passthrough
            register: v
            params:
              value:
                width: '{{ printf "%*d|" .w 42 }}'
                left: '{{ printf "%*d|" -4 7 }}'
                both: '{{ printf "%*.*f|" 8 2 3.14159 }}'
                bad: '{{ printf "%*d" "x" 3 }}'
          - name: huge
            type: passthrough
            when: '{{ printf "%*d" 1000000000 1 }}'
        """
    )
    result = gxo("playbook.yaml", "--state-out", "s.json")
    assert result.returncode == 1, result.stderr
    import json

    value = json.loads((tmp_path / "s.json").read_text())["registered"]["v"]["value"]
    assert value == {
        "width": "    42|",
        "left": "7   |",
        "both": "    3.14|",
        "bad": "%!(BADWIDTH)3",
    }
    # a width from an argument is held to the render budget like a written one
    assert "FAILED   huge: template_error: $.tasks[1].when: printf with a width of" in result.stderr


def test_a_shell_length_is_text_as_in_go(gxo: Gxo, playbook_file: PlaybookFile) -> None:
    # GXO reads only {{ as a delimiter: `${#A}` (shell's length of $A) is text. gxo read `{#`
    # as a Jinja comment that never ends: "template syntax error: Missing end of comment
    # tag", exit 2, for a playbook GXO runs.
    playbook_file(
        """
        schemaVersion: "1.0.0"
        name: shell-length
        vars: {x: 7}
        tasks:
          - name: plain
            type: exec
            output: stream
            params: {command: 'A=abcde; echo "len=${#A} {% raw"', shell: true}
          - name: go
            type: exec
            output: stream
            params: {command: 'A=abc; echo "go=${#A},{{ .x }}"', shell: true}
          - name: jinja
            type: exec
            output: stream
            params: {command: 'A=ab; echo "jinja=${#A},{{ x }}"', shell: true}
        """
    )
    result = gxo("playbook.yaml")
    assert result.returncode == 0, result.stderr
    assert "plain | len=5 {% raw" in result.stderr
    assert "go | go=3,7" in result.stderr
    assert "jinja | jinja=2,7" in result.stderr


def test_an_unclosed_action_is_named_as_go_names_it(gxo: Gxo, playbook_file: PlaybookFile) -> None:
    # Go: "unclosed action". gxo said "template syntax error: unexpected '.'" with the hint
    # "Jinja names have no leading dot: write {% if x.y %}", about a typo that lost a '}'.
    playbook_file(
        """
        schemaVersion: "1.0.0"
        name: unclosed
        vars: {x: 1}
        tasks:
          - name: a
            type: exec
            params: {command: echo, args: ["{{ .x }", "a {{ .x }} b {{ .x"]}
        """
    )
    result = gxo("validate", "playbook.yaml")
    assert result.returncode == 2, result.stderr
    err = result.stderr
    assert (
        "$.tasks[0].params.args[0]: template syntax error: unclosed action: the '{{' at "
        "column 1 has no '}}'" in err
    )
    assert (
        "$.tasks[0].params.args[1]: template syntax error: unclosed action: the '{{' at "
        "column 14 has no '}}'" in err
    )
    assert "leading dot" not in err


def test_a_status_read_that_names_no_task_is_a_warning(
    gxo: Gxo, playbook_file: PlaybookFile
) -> None:
    # `index ._gxo.tasks .which "status"` makes no edge (nor did it in GXO): the task ran
    # at once and printed "Pending" for a task still running, without a word.
    playbook_file(
        """
        schemaVersion: "1.0.0"
        name: dynamic-status
        vars: {which: build-step}
        tasks:
          - name: build-step
            type: exec
            params: {command: "true"}
          - name: named
            type: exec
            params: {command: echo, args: ['{{ (index ._gxo.tasks "build-step").status }}']}
          - name: dynamic
            type: exec
            params: {command: echo, args: ['{{ index ._gxo.tasks .which "status" }}']}
          - name: waits
            type: exec
            depends_on: [build-step]
            params: {command: echo, args: ['{{ index ._gxo.tasks .which "status" }}']}
        """
    )
    result = gxo("validate", "playbook.yaml")
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert warnings == [
        "warning: playbook.yaml:13:36: $.tasks[2].params.args[0]: '_gxo.tasks' is read without "
        "naming a task, so this task waits for none: a status read may still be Pending or "
        "Running"
    ]
    assert "playbook.yaml: valid (4 tasks, 2 dependencies)" in result.stdout


def test_a_go_function_written_alone_is_named_as_one(gxo: Gxo, playbook_file: PlaybookFile) -> None:
    # `{{ printf }}` has no Go form, so it is read as Jinja: the hint said "define it under
    # 'vars', pass --var printf=..., or register it from a task".
    playbook_file(
        """
        schemaVersion: "1.0.0"
        name: bare-go-function
        tasks:
          - name: a
            type: exec
            params: {command: echo, args: ["{{ printf }}", "{{ len }}"]}
        """
    )
    result = gxo("validate", "playbook.yaml")
    assert result.returncode == 2, result.stderr
    err = result.stderr
    assert "$.tasks[0].params.args[0]: undefined variable 'printf'" in err
    assert (
        """hint: 'printf' is a Go template function: give it its arguments, {{ printf "%s" .a }}"""
        in err
    )
    assert "hint: 'len' is a Go template function: give it its arguments, {{ len .list }}" in err
    assert "--var printf=" not in err


def test_passthrough_forwards_records_unchanged_as_the_differences_table_says(
    gxo: Gxo, playbook_file: PlaybookFile, tmp_path: Path
) -> None:
    # GXO added `_passthrough_source_id` to each record; gxo does not, on purpose (README,
    # "Differences from GXO v0.1.2a", a row added in session 6).
    (tmp_path / "collect.py").write_text("def collect(ctx):\n    return list(ctx.inputs)\n")
    playbook_file(
        """
        schemaVersion: "1.0.0"
        name: passthrough-unchanged
        tasks:
          - {name: gen, type: generate:from_list, params: {items: [{a: 1}, 2]}}
          - {name: pt, type: passthrough, stream_inputs: [gen]}
          - name: out
            type: python
            register: out
            stream_inputs: [pt]
            params: {function: "collect.py:collect"}
        """
    )
    result = gxo("playbook.yaml", "-w", "3", "--state-out", "s.json")
    assert result.returncode == 0, result.stderr
    import json

    assert json.loads((tmp_path / "s.json").read_text())["registered"]["out"] == [
        {"a": 1},
        {"item": 2},
    ]


def test_redact_keywords_masks_the_attempt_log_files_too(
    gxo: Gxo, playbook_file: PlaybookFile, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # With --redact-keywords and no secret() in the playbook, the run directory's
    # attempt1.stderr kept "password: hunter22xyz" (the terminal and the report masked it);
    # with a secret() value, only the last unterminated line of a log file was masked.
    playbook_file(
        """
        schemaVersion: "1.0.0"
        name: keywords-in-logs
        tasks:
          - name: a
            type: exec
            params:
              command: sh
              args: ["-c", "echo 'login failed for password: hunter22xyz' >&2; exit 1"]
          - name: b
            type: exec
            params:
              command: sh
              args: ["-c", "echo 'token=tok99value' $0; echo tail", '{{ secret "QA_SECRET" }}']
        """
    )
    monkeypatch.setenv("QA_SECRET", "Qs3cretValue")
    result = gxo("playbook.yaml", "--redact-keywords")
    assert result.returncode == 1, result.stderr
    logs = sorted((tmp_path / ".gxo").rglob("attempt1.std*"))
    assert logs
    text = "".join(log.read_text() for log in logs)
    for leaked in ("hunter22xyz", "tok99value", "Qs3cretValue"):
        assert leaked not in text
    assert "password: [REDACTED_SECRET]" in text
    assert "token=[REDACTED_SECRET] [REDACTED_SECRET]" in text


def test_redact_keywords_covers_gxo_s_list_and_an_http_scheme(
    gxo: Gxo, playbook_file: PlaybookFile, tmp_path: Path
) -> None:
    # GXO's CLI masks after `privatekey`, `authorization` and `bearer`; gxo's "GXO's list"
    # missed privatekey and bearer, and masked only the scheme of `Authorization: Bearer X`,
    # printing the token after it.
    playbook_file(
        """
        schemaVersion: "1.0.0"
        name: keywords
        tasks:
          - name: a
            type: exec
            params:
              command: sh
              args:
                - -c
                - >-
                  echo 'Authorization: Bearer abc123tokenvalue';
                  echo 'privatekey=PKvalue99';
                  echo 'bearer: xyz987value' >&2; exit 1
        """
    )
    result = gxo("playbook.yaml", "--redact-keywords", "--report", "r.json")
    assert result.returncode == 1, result.stderr
    text = result.stdout + result.stderr + (tmp_path / "r.json").read_text()
    for leaked in ("abc123tokenvalue", "PKvalue99", "xyz987value"):
        assert leaked not in text
    assert "Authorization: [REDACTED_SECRET]" in result.stderr
    assert "privatekey=[REDACTED_SECRET]" in result.stderr


def test_a_join_side_naming_no_stream_input_is_a_load_error(
    gxo: Gxo, playbook_file: PlaybookFile
) -> None:
    # GXO's "stream 'qq' defined but no input channel provided by engine" came from the
    # join's worker after its producers ran (exit 1); the load knows stream_inputs.
    playbook_file(
        """
        schemaVersion: "1.0.0"
        name: join-streams
        tasks:
          - {name: p, type: generate:from_list, params: {items: [{x: 1}]}}
          - {name: q, type: generate:from_list, params: {items: [{x: 1}]}}
          - {name: r, type: generate:from_list, params: {items: [{x: 1}]}}
          - name: j
            type: stream:join
            stream_inputs: [p, q]
            params:
              join_type: inner
              on:
                - {stream: p, role: probe, field: x}
                - {stream: qq, role: build, field: x}
          - name: j2
            type: stream:join
            stream_inputs: [p, q, r]
            params:
              join_type: inner
              on:
                - {stream: p, role: probe, field: x}
                - {stream: q, role: build, template: "{{ .x }}"}
        """
    )
    result = gxo("playbook.yaml", "-w", "8")
    assert result.returncode == 2, result.stderr
    err = result.stderr
    assert (
        "playbook.yaml:14:20: $.tasks[3].params.on[1].stream: stream 'qq' is not one of the "
        "task's stream_inputs ('p', 'q')"
    ) in err
    assert (
        "$.tasks[4].params.on: parameter 'on' must be a list of 3 objects, one for each input "
        "stream (stream_inputs: 'p', 'q', 'r')"
    ) in err


def test_the_jinja_spelling_hinted_for_a_missing_go_function_works(
    gxo: Gxo, playbook_file: PlaybookFile
) -> None:
    # GXO's docs use sprig functions (GXO had none). The hint spelled any unknown function as
    # a Jinja call, `{{ split(x) }}`, `{{ now(x) }}`, which fails in turn ("undefined
    # variable 'split'"); now it is a spelling that works, or says there is none.
    playbook_file(
        """
        schemaVersion: "1.0.0"
        name: sprig
        vars: {x: "a,b", m: {k: 1}}
        tasks:
          - {name: a, type: exec, params: {command: echo, args: ['{{ split "," .x }}']}}
          - {name: b, type: exec, params: {command: echo, args: ['{{ get .m "k" }}']}}
          - {name: c, type: exec, params: {command: echo, args: ['{{ fromJson .x }}']}}
        """
    )
    result = gxo("validate", "playbook.yaml")
    assert result.returncode == 2, result.stderr
    err = result.stderr
    assert "hint: in Jinja: {{ x.split(',') }}" in err
    assert "hint: in Jinja: {{ m['k'] }}" in err
    assert "gxo templates have no function or filter named 'fromJson'" in err
    assert "fromJson(x)" not in err
    playbook_file(
        """
        schemaVersion: "1.0.0"
        name: sprig-as-hinted
        vars: {x: "a,b", m: {k: 1}}
        tasks:
          - {name: a, type: exec, params: {command: echo, args: ["{{ x.split(',') }}"]}}
          - {name: b, type: exec, params: {command: echo, args: ["{{ m['k'] }}"]}}
        """
    )
    result = gxo("playbook.yaml")
    assert result.returncode == 0, result.stderr


def test_secret_in_a_join_key_template_says_why_for_a_key(
    gxo: Gxo, playbook_file: PlaybookFile
) -> None:
    # The message was the one for `when`/`loop` ("evaluated by the scheduler ... move the
    # secret into the task's params"), where the template already is in params.
    playbook_file(
        """
        schemaVersion: "1.0.0"
        name: join-secret
        tasks:
          - {name: p, type: generate:from_list, params: {items: [{x: 1}]}}
          - {name: q, type: generate:from_list, params: {items: [{x: 1}]}}
          - name: j
            type: stream:join
            stream_inputs: [p, q]
            params:
              join_type: inner
              on:
                - {stream: p, role: probe, template: '{{ secret "X" }}'}
                - {stream: q, role: build, field: x}
        """
    )
    result = gxo("validate", "playbook.yaml")
    assert result.returncode == 2, result.stderr
    assert (
        "$.tasks[2].params.on[0].template: join key template: secret() cannot be used in a key"
    ) in result.stderr
    assert "scheduler" not in result.stderr
    assert "hint: join on a record field" in result.stderr


def test_a_missing_secret_of_a_custom_provider_names_the_provider(
    gxo: Gxo, playbook_file: PlaybookFile, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The hint said "export DB in the environment gxo runs in", which a provider of the
    # user's own never reads.
    (tmp_path / "qa_provider.py").write_text(
        "class Vault:\n"
        "    def get(self, name):\n"
        "        return {'HAVE': 'ProviderValue123'}.get(name)\n"
        "    def options(self):\n"
        "        return {}\n"
    )
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    playbook_file(
        """
        schemaVersion: "1.0.0"
        name: provider
        tasks:
          - {name: a, type: exec, params: {command: echo, args: ['{{ secret "HAVE" }}']}}
          - {name: b, type: exec, params: {command: echo, args: ['{{ secret "DB" }}']}}
        """
    )
    result = gxo("playbook.yaml", "--secrets-provider", "qa_provider:Vault")
    assert result.returncode == 1, result.stderr
    assert (
        "secret 'DB' is not set (hint: the secrets provider qa_provider.Vault has no value "
        "for 'DB')"
    ) in result.stderr
    assert "export DB" not in result.stderr
    assert "ProviderValue123" not in result.stdout + result.stderr


def test_mapping_keys_in_params_are_not_templates_as_the_readme_says(
    gxo: Gxo, playbook_file: PlaybookFile, tmp_path: Path
) -> None:
    # README said "Every string, at any depth, may be a template"; keys never were (as in
    # GXO). It now says so.
    playbook_file(
        """
        schemaVersion: "1.0.0"
        name: keys
        vars: {name: k}
        tasks:
          - name: v
            type: passthrough
            register: v
            params: {value: {"{{ name }}": "{{ name }}"}}
        """
    )
    result = gxo("playbook.yaml", "--state-out", "s.json")
    assert result.returncode == 0, result.stderr
    import json

    value = json.loads((tmp_path / "s.json").read_text())["registered"]["v"]["value"]
    assert value == {"{{ name }}": "k"}
