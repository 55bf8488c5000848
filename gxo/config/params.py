"""Check each task's ``params`` against its module's ``Params`` at load (DESIGN §15).

Why a module of its own: a misspelt or missing parameter used to surface only when the task's
turn came, hours into a run. This stage runs for ``gxo validate`` and before every run: a
missing required parameter and a literal value of the wrong type are problems (exit 2, with
``file:line:column`` and the ``$.tasks[i].params...`` path); an unknown parameter is a warning
with a "did you mean" (GXO ignores parameters a module does not read, and so do gxo's
workers), and a problem with ``strict``. Templated strings stand in for values of the declared
type (:func:`gxo.modules._params.check_params`).

Where the check runs: built-in modules are gxo's own code and are checked in this process;
a third-party module's ``Params`` is checked in a short-lived worker process
(:mod:`gxo.modules._check`), so the parent never imports module code it does not own.
"""

from __future__ import annotations

import re
from collections.abc import Collection

from gxo.config.model import Playbook, Task
from gxo.config.problems import Part, Problems
from gxo.modules._check import Request, check_in_worker
from gxo.modules._params import ParamIssue
from gxo.modules._params import check_params as check_task_params
from gxo.modules.registry import BUILTIN_MODULES, KnownTypes, load_module

__all__ = ["check_params"]

_TASK_KEYS = frozenset(Task.__struct_fields__) | {"policy_ref"}
_GUESS = re.compile(r"\(did you mean '([^']+)'\?\)")
_MISSING = re.compile(r"missing required parameter '([^']+)'")


def check_params(
    playbook: Playbook, problems: Problems, known_types: Collection[str], *, strict: bool
) -> None:
    """Report the parameter problems of every task whose module type is installed."""
    # A task whose params already have a problem, or that has an unknown key (a misspelt
    # ``params``: its parameters would all look missing), is not checked again.
    skip = {
        path[1]
        for path in problems.paths_with_problems(3)
        if path[0] == "tasks" and (path[2] == "params" or path[2] not in _TASK_KEYS)
    }
    builtin: list[tuple[Task, list[ParamIssue]]] = []
    third_party: list[Task] = []
    # Tasks often repeat their params (a generated playbook, a chain's function): the check
    # is run once per module type and distinct params. The key is the params' repr: for the
    # plain data a playbook holds (str keys; str, int, float, bool, None, lists, dicts) it
    # tells apart everything the check does (1, 1.0 and True; nan and None; key order).
    checked: dict[tuple[str, str], list[ParamIssue]] = {}
    for task in playbook.tasks:
        if not task.type or task.index in skip:
            continue
        if task.type in BUILTIN_MODULES:
            key = (task.type, repr(task.params))
            issues = checked.get(key)
            if issues is None:
                issues = check_task_params(load_module(task.type).Params, task.params)
                checked[key] = issues
            builtin.append((task, issues))
        elif task.type in known_types:
            third_party.append(task)
    for task, issues in builtin:
        _report(task, issues, problems, strict)
    if not third_party:
        return
    try:
        # Module types given in code (a ModuleRegistry's) are imported there as in workers.
        modules = known_types.extra if isinstance(known_types, KnownTypes) else None
        answers = check_in_worker(
            [Request(task.type, task.params) for task in third_party], modules
        )
    except RuntimeError as exc:
        problems.warn(
            ("tasks",),
            f"the params of tasks using third-party modules were not checked: {exc}",
            "they are checked when each task runs",
            at="key",
        )
        return
    for task, answer in zip(third_party, answers, strict=True):
        if answer.error:
            given = modules.get(task.type) if modules else None
            problems.add(
                ("tasks", task.index, "type"),
                answer.error,
                "fix or reinstall the package that provides the module"
                if given is None
                else f"{task.type}={given} was given by --module (or a registry): the class "
                "must be importable by that name on the Python path",
            )
        else:
            _report(task, answer.issues, problems, strict)


def _report(task: Task, issues: list[ParamIssue], problems: Problems, strict: bool) -> None:
    listing = f"`gxo modules` lists the parameters of {task.type} with their types"
    guesses = {  # misspelt name -> the parameter it resembles
        _GUESS.search(issue.message).group(1): issue.path[-1]  # type: ignore[union-attr]
        for issue in issues
        if issue.unknown and _GUESS.search(issue.message)
    }
    for issue in issues:
        parts: list[Part] = ["tasks", task.index, "params"]
        for part in issue.path:
            if part == "...":
                break  # some value of a mapping (msgspec does not say which)
            parts.append(part)
        if not issue.unknown:
            missing = _MISSING.fullmatch(issue.message)
            given = guesses.get(missing.group(1)) if missing is not None else None
            hint = ""
            if missing is not None and given is not None:
                hint = f"{given!r} is given: did you mean {missing.group(1)!r}? "
            problems.add(parts, issue.message, hint + listing)
            continue
        message, _, guess = issue.message.partition(" (did you mean ")
        message = f"{message} for {task.type}"
        guess = f"did you mean {guess.removesuffix(')')} " if guess else ""
        if strict:
            problems.add(parts, message, f"{guess}{listing}".strip(), at="key")
        else:
            problems.warn(
                parts,
                message,
                f"{guess}the module does not read it, so it is ignored when the task runs; "
                f"{listing}; --strict makes this an error",
                at="key",
            )
