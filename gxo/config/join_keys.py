"""``stream:join`` key templates: compiled for per-record rendering, not with the params.

Why a module of its own: GXO writes a join key as ``template: "{{ .user_id }}"``, rendered
once per record against the state with the record's fields on top. Rendered with the task's
params (against the state alone), ``user_id`` would be an undefined variable. So, when the
playbook is built, each such template is checked on its own (syntax, Go forms) and replaced in
``params`` by a Jinja string literal of itself: rendering the params gives the template text
back, and ``stream:join`` compiles it per record. The state it names (vars, registers,
``_gxo``) is kept as references of the literal, in a branch never taken, so the DAG orders
the task after the registers it reads and the worker is sent those values. A template already
wrapped in ``{% raw %}...{% endraw %}`` (the way gxo documented it before) is left as it is.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import Any, Final

import msgspec

from gxo.config.model import Task
from gxo.config.problems import Problems
from gxo.errors import TemplateError
from gxo.template import compile_value

__all__ = ["JOIN_TYPE", "per_record_join_keys"]

#: The module whose ``on[*].template`` values are per-record templates.
JOIN_TYPE: Final = "stream:join"

_STATE_ROOT = "_gxo"
_RAW_WRAPPED = re.compile(
    r"\s*\{%-?\s*raw\s*-?%\}(?:(?!\{%-?\s*endraw).)*\{%-?\s*endraw\s*-?%\}\s*", re.DOTALL
)


def per_record_join_keys(
    tasks: tuple[Task, ...], variables: Collection[str], problems: Problems
) -> tuple[Task, ...]:
    """``tasks`` with every ``stream:join`` key template turned into a literal of itself."""
    if not any(task.type == JOIN_TYPE for task in tasks):
        return tasks
    state = {*variables, _STATE_ROOT, *(t.register for t in tasks if t.register is not None)}
    return tuple(
        _rewrite(task, state, problems) if task.type == JOIN_TYPE else task for task in tasks
    )


def _rewrite(task: Task, state: Collection[str], problems: Problems) -> Task:
    on = task.params.get("on")
    if not isinstance(on, list):
        return task
    _check_streams(task, on, problems)
    rewritten: list[Any] = []
    changed = False
    for index, element in enumerate(on):
        template = element.get("template") if isinstance(element, dict) else None
        if not isinstance(template, str) or not _is_template(template):
            rewritten.append(element)
            continue
        if _RAW_WRAPPED.fullmatch(template):
            rewritten.append(element)
            continue
        path = ("tasks", task.index, "params", "on", index, "template")
        try:
            compiled = compile_value(template, where=f"{task.path}.params.on[{index}].template")
        except TemplateError as error:
            problems.add(path, f"join key template: {error.message}", error.hint)
            compiled = None  # reported once, here; the params check sees only the literal
        if compiled is not None and compiled.uses_secret:
            problems.add(
                path,
                "join key template: secret() cannot be used in a key, which is rendered for "
                "each record without secrets (GXO's join renders keys without secret too)",
                "join on a record field, or on a template of the record's fields and vars",
            )
            compiled = None
        reads = [] if compiled is None else sorted(set(compiled.top_level_names) & set(state))
        rewritten.append({**element, "template": _literal(template, reads)})
        changed = True
    if not changed:
        return task
    _check_shape(task, on, problems)
    return msgspec.structs.replace(task, params={**task.params, "on": rewritten})


def _check_streams(task: Task, on: list[Any], problems: Problems) -> None:
    """Each side of ``on`` names one of the task's ``stream_inputs``, one side per input (GXO
    finds this out in the join's worker, after its producers started)."""
    inputs = task.stream_inputs
    listed = ", ".join(map(repr, inputs)) or "none"
    if len(on) >= 2 and len(on) != len(inputs):
        problems.add(
            ("tasks", task.index, "params", "on"),
            f"parameter 'on' must be a list of {len(inputs)} objects, one for each input "
            f"stream (stream_inputs: {listed})",
        )
    for index, element in enumerate(on):
        stream = element.get("stream") if isinstance(element, dict) else None
        if isinstance(stream, str) and not _is_template(stream) and stream not in inputs:
            problems.add(
                ("tasks", task.index, "params", "on", index, "stream"),
                f"stream {stream!r} is not one of the task's stream_inputs ({listed})",
                "name a producer listed in stream_inputs, or add it there",
            )


def _check_shape(task: Task, on: list[Any], problems: Problems) -> None:
    """GXO's checks of the join's other params (``join_type``, ``on``, ``output``), which the
    params check leaves to run time once ``on`` holds a template: done here with each key
    template standing as plain text, so a literal mistake is still a load error."""
    params = {**task.params, "on": [_untemplated(element) for element in on]}
    if any(_holds_template(value) for value in params.values()):
        return  # a templated value: judged when the task runs
    from gxo.modules.builtin.join import JoinParams

    try:
        msgspec.convert(params, JoinParams)
    except msgspec.ValidationError as error:
        if "Object contains unknown field" not in str(error):  # the params check says so
            problems.add(
                ("tasks", task.index, "params"),
                str(error).split(" - at ")[0],
                f"`gxo modules` lists the parameters of {JOIN_TYPE} with their types",
            )


def _untemplated(element: Any) -> Any:
    if isinstance(element, dict) and isinstance(element.get("template"), str):
        return {**element, "template": "key"}
    return element


def _holds_template(value: Any) -> bool:
    if isinstance(value, str):
        return _is_template(value)
    if isinstance(value, dict):
        return any(_holds_template(v) for v in value.values())
    if isinstance(value, list):
        return any(_holds_template(v) for v in value)
    return False


def _is_template(text: str) -> bool:
    return "{{" in text or "{%" in text or "{#" in text


def _literal(template: str, reads: list[str]) -> str:
    """A Jinja template whose value is ``template``'s text (and that names ``reads``)."""
    escaped = template.encode("unicode_escape").decode("ascii").replace("'", "\\'")
    if not reads:
        return "{{ '" + escaped + "' }}"
    return "{{ '" + escaped + "' if true else (" + ", ".join(reads) + ",) }}"
