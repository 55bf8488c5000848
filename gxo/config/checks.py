"""Logical checks the schema cannot express, on the built model. Every problem is collected.

- ``schemaVersion`` is SemVer (no leading zeros) with major version 1;
- task names are unique, and none takes the ``__task_idx_`` prefix of unnamed tasks;
- registers are unique, need a task ``name``, and are not ``_gxo`` (a var or register may
  be named ``env``, ``namespace``... as in GXO: a Go template reads it as ``{{ .env }}``);
- ``stream_inputs`` and ``depends_on`` name other, defined (named) tasks;
- ``loop_control.loop_var`` shadows no var, register, template function or ``_gxo``;
- ``vars`` has no ``_gxo`` key;
- each ``type`` is an installed module, when the caller says which are installed;
- a task that streams (it has ``stream_inputs`` or another task streams from it) does not
  ``loop`` and has no ``retry.attempts`` above 1: a stream cannot be replayed;
- (:func:`check_stream_groups`, on the graph) a stream group does not wait for itself.

Template checks are in :mod:`gxo.config.references`; cycles are found by :mod:`gxo.dag`.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from typing import Final

from gxo.config.build import UNNAMED_PREFIX
from gxo.config.model import Playbook, Task
from gxo.config.problems import Problems, quote_list
from gxo.dag.build import STATE_ROOT, TaskTemplates
from gxo.dag.graph import Graph
from gxo.dag.groups import group_blockers, stream_groups
from gxo.template import GLOBAL_NAMES

__all__ = ["check_playbook", "check_schema_version", "check_stream_groups"]

_SEMVER: Final = re.compile(r"v?(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\Z")


def check_schema_version(version: str, problems: Problems) -> str:
    """The version with a leading ``v`` (``1.0.0`` → ``v1.0.0``); problems if not v1.x.y."""
    normalized = version if version.startswith("v") else f"v{version}"
    match = _SEMVER.match(version)
    if match is None:
        problems.add(
            ("schemaVersion",),
            f"'schemaVersion' {version!r} is not a valid version: "
            "numbers must not have leading zeros",
            'write schemaVersion: "v1.0.0"',
        )
    elif match.group(1) != "1":
        problems.add(
            ("schemaVersion",),
            f"schemaVersion {version!r} is not supported: gxo supports v1.x.y",
            'this gxo reads GXO v1 playbooks; write schemaVersion: "v1.0.0"',
        )
    return normalized


def _task_label(task: Task) -> str:
    return f"'{task.name}'" if task.named else f"task {task.index} (unnamed)"


def check_playbook(
    playbook: Playbook, problems: Problems, known_types: Collection[str] | None = None
) -> None:
    """Report every logical problem of ``playbook`` (built from possibly invalid data)."""
    tasks = playbook.tasks
    by_name: dict[str, Task] = {}
    for task in tasks:
        if not task.named:
            continue
        if task.name.startswith(UNNAMED_PREFIX):
            problems.add(
                (*_path(task), "name"),
                f"task names starting with '{UNNAMED_PREFIX}' are reserved",
                "gxo gives that id to tasks without a name; choose another name",
            )
        first = by_name.get(task.name)
        if first is None:
            by_name[task.name] = task
        else:
            problems.add(
                (*_path(task), "name"),
                f"duplicate task name '{task.name}'",
                f"task names must be unique; tasks[{first.index}] already uses it",
            )
    registers = _check_registers(playbook, problems)
    _check_streaming_tasks(playbook, problems)
    for task in tasks:
        for key, targets in (
            ("stream_inputs", task.stream_inputs),
            ("depends_on", task.depends_on),
        ):
            for position, target in enumerate(targets):
                _check_target(task, key, position, target, by_name, problems)
        if task.loop is not None:
            _check_loop_var(playbook, task, registers, problems)
        _check_file_lists(task, problems)
        if known_types is not None and task.type and task.type not in known_types:
            guess = problems.did_you_mean(task.type, known_types)
            problems.add(
                (*_path(task), "type"),
                f"unknown module type '{task.type}'",
                (guess + " " if guess else "") + "Run `gxo modules` to list the installed modules.",
            )
    if STATE_ROOT in playbook.vars:
        problems.add(
            ("vars", STATE_ROOT),
            f"'{STATE_ROOT}' is reserved for task statuses and cannot be a var",
            "rename the var",
            at="key",
        )


def _check_file_lists(task: Task, problems: Problems) -> None:
    """``inputs``/``outputs`` are file paths, not templates: a template there was taken as a
    path word for word, so a declared output was always "missing" (the task ran again on
    every ``--resume``) and a change to the files it meant was never seen."""
    for key, paths in (("inputs", task.inputs), ("outputs", task.outputs)):
        for position, path in enumerate(paths):
            if "{{" in path or "{%" in path:
                problems.add(
                    (*_path(task), key, position),
                    f"'{key}' lists file paths, not templates: {path!r}",
                    "write each file's path (relative to gxo's working directory); files that "
                    "differ per loop item or come from a var cannot be declared here",
                )


def _check_streaming_tasks(playbook: Playbook, problems: Problems) -> None:
    streaming = {name for task in playbook.tasks for name in task.stream_inputs}
    for task in playbook.tasks:
        if not task.stream_inputs:
            _warn_consumer_policies(playbook, task, problems)
        if not task.stream_inputs and not (task.named and task.name in streaming):
            continue
        if task.loop is not None:
            problems.add(
                (*_path(task), "loop"),
                f"task {_task_label(task)} streams records and cannot loop",
                "a stream connects one producer run to one consumer run; move the loop into "
                "the module (for example generate:from_list with the items)",
                at="key",
            )
        if task.retry.attempts > 1:
            problems.add(
                (*_path(task), "retry", "attempts"),
                f"task {_task_label(task)} streams records and cannot be retried "
                f"(retry.attempts is {task.retry.attempts})",
                "streams cannot be replayed: remove 'retry' or set attempts: 1",
            )


def _warn_consumer_policies(playbook: Playbook, task: Task, problems: Problems) -> None:
    """Warn about a task's own ``channel_policy`` or ``policy`` when it has no stream inputs.

    Both govern a task's inputs (the edges into it, and what it does when they carry
    nothing), so on a producer they change nothing: a user who sets ``overflow_strategy``
    on the producer would otherwise see it silently ignored. A policy that differs from the
    playbook-wide one was set on the task (an identical one would change nothing anyway).
    """
    for key, own, shared in (
        ("channel_policy", task.channel_policy, playbook.channel_policy),
        ("policy", task.policy, playbook.task_policy),
    ):
        if own != shared:  # rare: only then look for the consumers (a walk of every task)
            consumers = [o.name for o in playbook.tasks if task.name in o.stream_inputs]
            where = (
                f"set it on the tasks that stream from it: {quote_list(consumers)}"
                if consumers
                else ""
            )
            problems.warn(
                (*_path(task), key),
                f"'{key}' of task {_task_label(task)} has no effect: it applies to a task's "
                f"stream inputs, and this task has no 'stream_inputs'",
                where or "remove it, or add 'stream_inputs' to the task",
                at="key",
            )


def check_stream_groups(
    playbook: Playbook,
    graph: Graph,
    problems: Problems,
    templates: Mapping[str, TaskTemplates] | None = None,
) -> None:
    """Report stream groups that wait for one of their own members (they could never start).

    Each problem is placed where the wait is written: on the waiting task's ``depends_on``
    entry, or on its ``when``, ``loop`` or ``params`` that read the member's register or
    status (found in ``templates``), not on the member waited for.
    """
    for group in stream_groups(graph):
        for source, target, kind in group_blockers(graph, group):
            waiting = playbook.tasks[graph.index(target)]
            producer = playbook.tasks[graph.index(source)]
            problems.add(
                _wait_site(waiting, producer, kind, templates),
                f"stream group {', '.join(group)} starts all its tasks together, but a "
                f"{kind} edge {source} -> {target} makes it wait for '{source}' to end",
                "a task cannot both stream with another and wait for its result; "
                "remove the dependency or the stream",
            )


def _wait_site(
    waiting: Task, source: Task, kind: str, templates: Mapping[str, TaskTemplates] | None
) -> tuple[str | int, ...]:
    """The path of what makes ``waiting`` wait for ``source`` (its task when not found)."""
    if kind == "depends_on" and source.name in waiting.depends_on:
        return (*_path(waiting), "depends_on", waiting.depends_on.index(source.name))
    compiled = templates.get(waiting.name) if templates is not None else None
    if compiled is not None and kind in ("register", "status"):
        for field, value in (
            ("when", compiled.when),
            ("loop", compiled.loop),
            ("params", compiled.params),
        ):
            refs = value.references if value is not None else ()
            if any(_reads(ref, source, kind) for ref in refs):
                return (*_path(waiting), field)
    return _path(waiting)


def _reads(ref: tuple[str, ...], source: Task, kind: str) -> bool:
    """Whether the template reference ``ref`` reads ``source``'s register or status."""
    if kind == "register":
        return ref[0] == source.register
    return ref[0] == STATE_ROOT and (len(ref) < 3 or ref[1:3] == ("tasks", source.name))


def _path(task: Task) -> tuple[str, int]:
    return ("tasks", task.index)


def _check_registers(playbook: Playbook, problems: Problems) -> dict[str, Task]:
    """Report register problems; return each register's (first) task."""
    owners: dict[str, Task] = {}
    for task in playbook.tasks:
        register = task.register
        if register is None:
            continue
        where = (*_path(task), "register")
        if not task.named:
            problems.add(
                where,
                "'name' is required when 'register' is used",
                "add a name to the task so its result can be referred to",
                at="key",
            )
        if register == STATE_ROOT:
            problems.add(
                where,
                f"'{register}' cannot be a register name: it is reserved for task statuses",
                "choose another name",
            )
        if register in playbook.vars:
            # As in GXO (one flat state), the result replaces the var: every template that
            # reads the name waits for this task and gets its result.
            problems.warn(
                where,
                f"register '{register}' has the name of a var: templates that read "
                f"'{register}' get this task's result (after waiting for it), never the var",
                "rename the register or the var",
            )
        first = owners.get(register)
        if first is None:
            owners[register] = task
        else:
            problems.add(
                where,
                f"register '{register}' is already used by task {_task_label(first)}",
                "each register name must be unique",
            )
    return owners


def _check_target(
    task: Task, key: str, position: int, target: str, by_name: dict[str, Task], problems: Problems
) -> None:
    where = (*_path(task), key, position)
    if task.named and target == task.name:
        word = "stream from" if key == "stream_inputs" else "depend on"
        problems.add(where, f"a task cannot {word} itself ('{target}' in '{key}')")
        return
    if target not in by_name:
        guess = problems.did_you_mean(target, by_name)
        problems.add(
            where,
            f"'{key}' names task '{target}', which is not defined",
            guess
            or (f"defined tasks: {quote_list(sorted(by_name))}" if len(by_name) <= 10 else ""),
        )


def _check_loop_var(
    playbook: Playbook, task: Task, registers: dict[str, Task], problems: Problems
) -> None:
    loop_var = task.loop_control.loop_var
    where = (*_path(task), "loop_control", "loop_var")
    if loop_var == STATE_ROOT or loop_var in GLOBAL_NAMES:
        problems.add(where, f"loop_var '{loop_var}' is reserved", "choose another name")
    elif loop_var in playbook.vars:
        problems.add(
            where,
            f"loop_var '{loop_var}' shadows the var of the same name",
            "choose another loop_var so the var stays readable",
        )
    elif loop_var in registers:
        problems.add(
            where,
            f"loop_var '{loop_var}' shadows the register of task "
            f"{_task_label(registers[loop_var])}",
            "choose another loop_var so the register stays readable",
        )
