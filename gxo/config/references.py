"""Compile every template of a playbook and check what each one refers to.

Templates are compiled once here (``when`` and a string ``loop`` without ``secret()``;
``params`` at any depth, with it); the compiled values are handed on to
:func:`gxo.dag.analyse`, which infers the edges from them. A template is a problem when:

- it does not compile (every broken template is reported, not only the first of a task);
- it reads a name that is not a var, a register, ``_gxo`` or (in ``params`` of a looping
  task) the loop variable: ``undefined variable 'x'``, with the close matches as a hint,
  so a typo is caught by ``gxo validate`` rather than half-way through a run;
- it reads the task's own register or its own ``_gxo.tasks.<self>`` status;
- it reads ``_gxo.tasks.<x>`` for an ``x`` that is not a defined task, or ``_gxo.<y>`` for
  anything but ``tasks``;
- it is a ``loop`` string with no template in it (it could never give a list), or a
  ``loop`` template that reads only vars and renders to neither a list nor a mapping.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

from gxo.config.model import Playbook, Task
from gxo.config.problems import Path, Problems, format_path, parse_path
from gxo.dag.build import (
    STATE_ROOT,
    TaskTemplates,
    loop_items,
    loop_value_problem,
    loop_variable,
    task_templates,
)
from gxo.errors import TemplateError
from gxo.secrets.providers import check_name
from gxo.template import CompiledValue, compile_value
from gxo.template.budget import run_bounded
from gxo.template.compiled import secret_names

__all__ = ["check_templates"]


def _leaves(value: Any, path: Path) -> Iterator[tuple[Path, str]]:
    """Every string inside ``value`` that may hold a template, with its path, in order."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _leaves(item, (*path, key))
    elif isinstance(value, list):
        for position, item in enumerate(value):
            yield from _leaves(item, (*path, position))


class _Checker:
    def __init__(self, playbook: Playbook, problems: Problems) -> None:
        self.playbook = playbook
        self.problems = problems
        self.tasks = {task.name: task for task in playbook.tasks if task.named}
        self.registers: dict[str, Task] = {}
        for task in playbook.tasks:
            if task.register is not None:
                self.registers.setdefault(task.register, task)
        self.variables = playbook.vars

    # -- compiling ------------------------------------------------------------------------------

    def report(self, error: TemplateError, fallback: Path) -> None:
        where = parse_path(error.where) if error.where else ()
        if len(where) < len(fallback) or where[: len(fallback)] != fallback:
            where = fallback
        self.problems.add(where, error.message, error.hint)

    def compile_one(self, value: Any, path: Path, *, allow_secret: bool) -> CompiledValue | None:
        try:
            where = format_path(path) if len(path) != 3 else f"$.tasks[{path[1]}].{path[2]}"
            return compile_value(value, where=where, allow_secret=allow_secret)
        except TemplateError as error:
            self.report(error, path)
            return None

    def compile_params(self, task: Task) -> CompiledValue:
        path: Path = (*_task_path(task), "params")
        try:
            return compile_value(task.params, where=f"{task.path}.params")
        except TemplateError:
            pass
        # Report every broken template, then analyse the ones that compiled.
        good: dict[str, str] = {}
        for leaf_path, text in _leaves(task.params, path):
            if self.compile_one(text, leaf_path, allow_secret=True) is not None:
                good[format_path(leaf_path)] = text
        return compile_value(good, where=format_path(path))

    def run(self) -> dict[str, TaskTemplates]:
        compiled: dict[str, TaskTemplates] = {}
        for task in self.playbook.tasks:
            base = _task_path(task)
            when = loop = None
            if isinstance(task.when, str):
                when = self.compile_one(task.when, (*base, "when"), allow_secret=False)
            if isinstance(task.loop, str):
                loop = self.compile_one(task.loop, (*base, "loop"), allow_secret=False)
                if loop is not None and loop.is_constant:
                    self.problems.add(
                        (*base, "loop"),
                        "'loop' must be a list, or a template that gives a list, "
                        f"got the plain string {task.loop!r}",
                        'write a literal list (loop: [a, b]) or a template (loop: "{{ my_list }}")',
                    )
                elif loop is not None:
                    self.check_loop_value(task, loop, (*base, "loop"))
            elif isinstance(task.loop, list):
                self.check_literal_loop(task, (*base, "loop"))
            params = self.compile_params(task)
            if params.uses_secret:
                self.check_secret_names(task)
            for field, value in (("when", when), ("loop", loop), ("params", params)):
                if value is not None:
                    self.check_names(task, field, value)
            # The first task of a name wins (a duplicate is reported; cycles are sought
            # among the first of each name).
            compiled.setdefault(task.name, task_templates(task, when, loop, params))
        return compiled

    def check_loop_value(self, task: Task, loop: CompiledValue, path: Path) -> None:
        """A ``loop`` template that reads only vars gives the same value at load as in the
        run: when that is not a list or a mapping the task could never run, so say it now.
        A template that cannot be rendered here (an error, over the render budget) is left
        to the run, which reports it in the task's own words."""
        names = loop.top_level_names
        if any(name not in self.variables or name in self.registers for name in names):
            return
        try:
            value = run_bounded(lambda: loop.render(self.variables))
        except Exception:  # noqa: BLE001 - the run renders it again and reports its error
            return
        if loop_items(value) is None:
            message, hint = loop_value_problem(task, value)
            self.problems.add(path, message, hint)

    def check_literal_loop(self, task: Task, path: Path) -> None:
        """A literal ``loop`` list is data (never rendered): a ``secret()`` call in one of its
        strings would reach the command as template text, so it is refused like in ``when``."""
        for leaf_path, text in _leaves(task.loop, path):
            if "secret" not in text or not _is_template(text):
                continue
            try:
                compiled = compile_value(text, where=format_path(leaf_path))
            except TemplateError:
                continue  # not a template gxo can read: it stays plain text
            if compiled.uses_secret:
                self.problems.add(
                    leaf_path,
                    "secret() cannot be used in 'loop': the loop items are decided by the "
                    "scheduler, which never sees secret values (and a literal list is not "
                    "rendered, so the template text itself would be the item)",
                    "loop over names and read the secret in params, for example "
                    'params: {env: {TOKEN: "{{ secret(item) }}"}}',
                )

    def check_secret_names(self, task: Task) -> None:
        """A literal ``secret('NAME')`` with a name no provider can hold fails at load, not
        when the task's turn comes."""
        for leaf_path, text in _leaves(task.params, (*_task_path(task), "params")):
            if "secret" not in text or not _is_template(text):
                continue
            try:
                leaf = compile_value(text, where=format_path(leaf_path))
            except TemplateError:
                continue  # reported already
            for name in sorted(secret_names(leaf)):
                try:
                    check_name(name)
                except TemplateError as error:
                    self.problems.add(leaf_path, error.message, error.hint)

    # -- references ----------------------------------------------------------------------------

    def locate(self, task: Task, field: str, wanted: str | tuple[str, ...]) -> Path:
        """The path of the first string in ``field`` that reads ``wanted`` (a name or a ref)."""
        path: Path = (*_task_path(task), field)
        if field != "params":
            return path
        for leaf_path, text in _leaves(task.params, path):
            try:
                leaf = compile_value(text, where=format_path(leaf_path))
            except TemplateError:
                continue
            found = (
                wanted in leaf.top_level_names and wanted not in leaf.guarded_names
                if isinstance(wanted, str)
                else wanted in leaf.references
            )
            if found:
                return leaf_path
        return path

    def check_names(self, task: Task, field: str, value: CompiledValue) -> None:
        loop_var = loop_variable(task) if field == "params" else None
        for name in sorted(value.top_level_names):
            if name == STATE_ROOT:
                continue
            owner = self.registers.get(name)
            if owner is not None:
                if owner is task:
                    self.problems.add(
                        self.locate(task, field, name),
                        f"a task cannot use its own registered result '{name}'",
                        "the result is registered only after the task has finished",
                    )
                elif owner.loop is not None:
                    self.check_loop_register(task, field, value, owner)
                continue
            if name in self.variables or name == loop_var or name in value.guarded_names:
                continue
            self.problems.add(
                self.locate(task, field, name),
                f"undefined variable '{name}'",
                self.undefined_hint(task, field, name),
            )
        if STATE_ROOT in value.top_level_names:
            # A constant `index ._gxo.tasks "a-b" "status"` also reads `_gxo.tasks` itself (the
            # map handed to index): only a read with no task named at all is unnamed.
            named = any(ref[0] == STATE_ROOT and len(ref) >= 3 for ref in value.references)
            for ref in sorted(value.references):
                if ref[0] == STATE_ROOT and not (named and len(ref) < 3):
                    self.check_status_ref(task, field, ref)

    def check_loop_register(
        self, task: Task, field: str, value: CompiledValue, owner: Task
    ) -> None:
        """``{{ .reg.stdout }}`` where ``reg`` is the register of a looping task: it holds a
        list (one result per item), which has no such field. GXO registered the last
        iteration's summary instead, so GXO playbooks read it so; say it at load, with the
        spelling that reads an item."""
        name = owner.register
        for ref in sorted(value.references):
            if ref[0] != name or len(ref) < 2 or ref[1].isdigit():
                continue
            field_name = ref[1]
            self.problems.add(
                self.locate(task, field, ref),
                f"'{name}' is the register of task '{owner.name}', which loops: it holds a "
                f"list with one result per item, which has no '{field_name}'",
                f"read an item's: {{{{ (index .{name} 0).{field_name} }}}}, or in Jinja "
                f"{{{{ {name}[0].{field_name} }}}} and the last item's "
                f"{{{{ ({name} | last).{field_name} }}}} (GXO registered only the last "
                "iteration's result)",
            )
            return

    def check_status_ref(self, task: Task, field: str, ref: tuple[str, ...]) -> None:
        shown = _show_ref(ref)
        if len(ref) >= 2 and ref[1] != "tasks":
            self.problems.add(
                self.locate(task, field, ref),
                f"'{shown}' does not exist: {STATE_ROOT} has only 'tasks'",
                f"task statuses are read as {STATE_ROOT}.tasks.<name>.status",
            )
        elif len(ref) < 3 and not task.depends_on:
            # `index ._gxo.tasks .name "status"`, `range ._gxo.tasks`: which task is known
            # only when the template renders, so no edge is inferred (GXO inferred none).
            self.problems.warn(
                self.locate(task, field, ref),
                f"'{shown}' is read without naming a task, so this task waits for none: a "
                "status read may still be Pending or Running",
                f"name the task ({STATE_ROOT}.tasks.<name>.status, or in a Go template "
                f'index .{STATE_ROOT}.tasks "<name>" "status"), or list it in depends_on',
            )
        elif len(ref) >= 3:
            target = ref[2]
            if task.named and target == task.name:
                self.problems.add(
                    self.locate(task, field, ref),
                    f"a task cannot depend on its own status ('{shown}')",
                    "a task's status is not final while it runs; remove the reference",
                )
            elif target not in self.tasks:
                guess = self.problems.did_you_mean(target, self.tasks)
                self.problems.add(
                    self.locate(task, field, ref),
                    f"'{shown}' names task '{target}', which is not defined",
                    guess or "only named tasks can be referred to",
                )

    def undefined_hint(self, task: Task, field: str, name: str) -> str:
        if task.loop is not None and name == task.loop_control.loop_var:
            return (
                f"the loop variable '{name}' is only available in params: '{field}' is "
                "evaluated once, before the loop"
            )
        if field == "params" and name == task.loop_control.loop_var:
            return f"'{name}' is defined only in tasks with a 'loop'"
        if field == "params" and task.loop is not None and name == "item":
            return f"this task's loop variable is '{task.loop_control.loop_var}' (loop_var)"
        if name in self.tasks:
            return (
                f"'{name}' is a task, not a variable: read its result through its 'register' "
                f"name, or its status as {STATE_ROOT}.tasks.{name}.status"
            )
        loop_var = loop_variable(task) if field == "params" else None
        known = itertools.chain(self.variables, self.registers, [loop_var] if loop_var else [])
        guess = self.problems.did_you_mean(name, known)
        if guess:
            return guess
        example = _GO_CALLS.get(name)
        if example is not None:
            # `{{ printf }}` alone is Jinja to gxo (no Go form in it): a Go function
            # named without its arguments.
            return f"'{name}' is a Go template function: give it its arguments, {example}"
        return f"define it under 'vars', pass --var {name}=..., or register it from a task"


#: Go template functions, and a call of each, for a name written alone (``{{ printf }}``).
_GO_CALLS: dict[str, str] = {
    "eq": "{{ eq .a .b }}",
    "ne": "{{ ne .a .b }}",
    "lt": "{{ lt .a .b }}",
    "le": "{{ le .a .b }}",
    "gt": "{{ gt .a .b }}",
    "ge": "{{ ge .a .b }}",
    "len": "{{ len .list }}",
    "index": '{{ index .map "key" }}',
    "print": "{{ print .a }}",
    "printf": '{{ printf "%s" .a }}',
    "println": "{{ println .a }}",
}


def _show_ref(ref: tuple[str, ...]) -> str:
    """``("_gxo", "tasks", "a-b", "status")`` → ``_gxo.tasks['a-b'].status``."""
    text = ref[0]
    for part in ref[1:]:
        text += f".{part}" if part.isidentifier() else f"[{part!r}]"
    return text


def _is_template(text: str) -> bool:
    return "{{" in text or "{%" in text or "{#" in text


def _task_path(task: Task) -> Path:
    return ("tasks", task.index)


def check_templates(playbook: Playbook, problems: Problems) -> dict[str, TaskTemplates]:
    """Compile and check every template; return each task's compiled templates by name."""
    return _Checker(playbook, problems).run()
