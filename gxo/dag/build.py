"""Playbook → :class:`Plan`: the dependency graph and each task's compiled templates.

One entry point, :func:`analyse`, returns both, because edges are inferred from the same
compiled templates the scheduler later renders. :func:`build_graph` is ``analyse(p).graph``.

Edges into a task come from (see :mod:`gxo.dag.graph` for the kinds):

- each name in ``depends_on`` (``depends_on``) and in ``stream_inputs`` (``stream``);
- every template reference, in ``when``, a string ``loop``, and ``params`` at any depth,
  whose first element is another task's ``register`` (``register``) — ``{{ reg.stdout }}``
  counts, not only ``{{ reg }}`` (GXO needed an exact match, its bug 19) — or that is
  ``_gxo.tasks.<name>...`` for another task (``status``).

References are taken from ``CompiledValue.references`` and kept only when their first
element is in ``top_level_names`` (so ``{% for x in ... %}`` locals never count). In
``params``, the loop variable of a looping task is not state and makes no edge.
Self-references make no edge (the loader reports them), nor do references to names that
are not tasks or registers (vars). The playbook is expected to be validated already
(:func:`gxo.config.load.load_plan` calls :func:`analyse` as its last check and returns the
plan it built with the playbook).

Level 2 (DESIGN §10): below ``gxo.config.load``, above ``gxo.template`` and the model.
"""

from __future__ import annotations

import contextlib
import gc
import re
from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final

import msgspec

from gxo.dag.graph import EDGE_KINDS, Edge, EdgeKind, Graph
from gxo.template import CompiledValue, compile_value

if TYPE_CHECKING:
    from gxo.config.model import Playbook, Task

__all__ = [
    "STATE_ROOT",
    "Plan",
    "TaskTemplates",
    "analyse",
    "build_graph",
    "compile_task",
    "gc_paused",
    "loop_items",
    "loop_value_problem",
    "loop_variable",
    "task_templates",
]

#: The state key under which task statuses live: ``_gxo.tasks.<name>.status``.
STATE_ROOT: Final = "_gxo"

_KIND_ORDER: Final = {kind: position for position, kind in enumerate(EDGE_KINDS)}


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while a playbook-sized structure is built.

    Loading and analysing a playbook allocate hundreds of thousands of small containers and
    no reference cycles; on a 10,000-task playbook the collector's passes over them cost more
    than the work itself and make it grow faster than linearly. Reference counting still
    frees everything as usual. Nested use is fine.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class TaskTemplates(msgspec.Struct, frozen=True):
    """A task's compiled templates, and the state its templates read.

    ``when`` and ``loop`` are None when the task has none, or when they are not templates
    (a boolean ``when``, a literal list ``loop``). ``state_names`` are the top-level state
    names the task's templates reference (vars, registers, ``_gxo``): what a worker must be
    sent. The loop variable of a looping task is not one of them.
    """

    when: CompiledValue | None
    loop: CompiledValue | None
    params: CompiledValue
    state_names: frozenset[str]

    def status_refs(self) -> frozenset[str] | None:
        """Task names whose status the templates read (``_gxo.tasks.X.status``); None when
        they read ``_gxo`` as a whole. The scheduler sends those statuses; the journal
        fingerprints them."""
        names: set[str] = set()
        for compiled in (self.when, self.loop, self.params):
            if compiled is None:
                continue
            for ref in compiled.references:
                if ref[0] != "_gxo":
                    continue
                if len(ref) < 3 or ref[1] != "tasks":
                    return None
                names.add(ref[2])
        return frozenset(names)


class Plan(msgspec.Struct, frozen=True):
    """The graph of a playbook and, by task name, its compiled templates."""

    graph: Graph
    templates: Mapping[str, TaskTemplates]


#: ``{{ name }}`` or GXO's ``{{ .name }}``: the loop template names one value, used in hints.
_ONE_NAME: Final = re.compile(r"\{\{-?\s*\.?([A-Za-z_][\w.]*)\s*-?\}\}")


def loop_items(value: Any) -> list[Any] | None:
    """The items a ``loop`` that gave ``value`` iterates (a mapping: ``{key, value}`` items),
    or None when ``value`` cannot be looped over (see :func:`loop_value_problem`)."""
    if isinstance(value, Mapping):
        return [{"key": k, "value": v} for k, v in value.items()]
    if isinstance(value, list | tuple):
        return list(value)
    return None


def loop_value_problem(task: Task, value: Any) -> tuple[str, str]:
    """The message and hint for a ``loop`` that gave ``value``, neither a list nor a mapping,
    in the playbook's terms (a string, a number), not Python's type names."""
    match = _ONE_NAME.fullmatch(task.loop.strip()) if isinstance(task.loop, str) else None
    name = match.group(1) if match else None
    if isinstance(value, str):
        got = f"a string {value!r:.60}"
        split = f"{name}.split(',')" if name else "my_string.split(',')"
        lines = split.replace("split(',')", "splitlines()")
        hint = (
            f'write a YAML list (loop: [a, b]), or split the string: loop: "{{{{ {split} }}}}" '
            f'(one item per line: "{{{{ {lines} }}}}")'
        )
    elif isinstance(value, bool):
        got = f"a boolean ({'true' if value else 'false'})"
        hint = "write a YAML list (loop: [a, b]) or a template that gives one"
    elif isinstance(value, int | float):
        got = f"a number ({value!r})"
        count = f"range({name})" if name and isinstance(value, int) else "range(n)"
        hint = (
            f'write a YAML list (loop: [a, b]), or count from 0 to n-1: loop: "{{{{ {count} }}}}"'
        )
    elif value is None:
        got = "null"
        hint = "write a YAML list (loop: [a, b]) or a template that gives one"
    else:
        got = "a value that is not a list"
        hint = "write a YAML list (loop: [a, b]) or a template that gives one"
    return f"'loop' must give a list or a mapping, got {got}", hint


def loop_variable(task: Task) -> str | None:
    """The name the loop item has in ``params``, or None when the task does not loop."""
    return task.loop_control.loop_var if task.loop is not None else None


def task_templates(
    task: Task, when: CompiledValue | None, loop: CompiledValue | None, params: CompiledValue
) -> TaskTemplates:
    """Bundle already-compiled templates of ``task`` and work out its ``state_names``."""
    if when is None and loop is None and task.loop is None:
        return TaskTemplates(when, loop, params, params.top_level_names)  # a frozenset
    names = set(params.top_level_names)
    loop_var = loop_variable(task)
    if loop_var is not None:
        names.discard(loop_var)
    for value in (when, loop):
        if value is not None:
            names.update(value.top_level_names)
    return TaskTemplates(when, loop, params, frozenset(names))


def compile_task(task: Task) -> TaskTemplates:
    """Compile ``task``'s templates (raises :class:`gxo.errors.TemplateError`).

    ``when`` and ``loop`` are rendered in the parent, so they may not call ``secret()``.
    """
    when = (
        compile_value(task.when, where=f"{task.path}.when", allow_secret=False)
        if isinstance(task.when, str)
        else None
    )
    loop = (
        compile_value(task.loop, where=f"{task.path}.loop", allow_secret=False)
        if isinstance(task.loop, str)
        else None
    )
    params = compile_value(task.params, where=f"{task.path}.params")
    return task_templates(task, when, loop, params)


def _edges_into(
    task: Task,
    templates: TaskTemplates,
    registers: Mapping[str, str],
    index: Mapping[str, int],
) -> list[Edge]:
    name = task.name
    found: dict[tuple[str, EdgeKind], None] = {}
    for source in task.depends_on:
        found[source, "depends_on"] = None
    for source in task.stream_inputs:
        found[source, "stream"] = None
    fields = (
        (templates.when, None),
        (templates.loop, None),
        (templates.params, loop_variable(task)),
    )
    for value, skip in fields:
        if value is None or not value.top_level_names:
            continue
        top = value.top_level_names
        for ref in value.references:
            head = ref[0]
            if head not in top or head == skip:
                continue  # a template-local name, or the loop item
            if head == STATE_ROOT:
                if len(ref) >= 3 and ref[1] == "tasks" and ref[2] in index:
                    found[ref[2], "status"] = None
            else:
                owner = registers.get(head)
                if owner is not None:
                    found[owner, "register"] = None
    for head in templates.state_names:  # what the module reads besides its templates
        owner = registers.get(head)
        if owner is not None:
            found.setdefault((owner, "register"), None)
    if not found:
        return []
    edges = [
        Edge(source, name, kind) for source, kind in found if source != name and source in index
    ]
    if len(edges) > 1:
        edges.sort(key=lambda edge: (index[edge.source], _KIND_ORDER[edge.kind]))
    return edges


def analyse(playbook: Playbook, templates: Mapping[str, TaskTemplates] | None = None) -> Plan:
    """The plan of a validated playbook.

    ``templates`` may hold already-compiled templates by task name (the loader passes the
    ones it compiled while validating); the others are compiled here.
    """
    with gc_paused():
        return _analyse(playbook, templates)


def _analyse(playbook: Playbook, templates: Mapping[str, TaskTemplates] | None) -> Plan:
    index = {task.name: task.index for task in playbook.tasks}
    registers: dict[str, str] = {}
    for task in playbook.tasks:
        if task.register is not None:
            registers.setdefault(task.register, task.name)
    compiled: dict[str, TaskTemplates] = {}
    edges: list[Edge] = []
    for task in playbook.tasks:
        known = templates.get(task.name) if templates is not None else None
        current = known if known is not None else compile_task(task)
        compiled[task.name] = current
        edges.extend(_edges_into(task, current, registers, index))
    graph = Graph((task.name for task in playbook.tasks), edges)
    return Plan(graph, MappingProxyType(compiled))


def build_graph(playbook: Playbook) -> Graph:
    """The dependency graph of a validated playbook (``analyse(playbook).graph``)."""
    return analyse(playbook).graph
