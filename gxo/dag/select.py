"""Which tasks a partial run runs: targets, ``--tags``, ``--skip`` and ``--skip-tags``.

``gxo execute PLAYBOOK TASK...`` runs the named tasks and everything they need, nothing else,
as ``make target`` does. What a task needs is its upstream closure over every edge kind
(register, status, stream, ``depends_on``). A stream group runs as one unit (its tasks start
together and are wired to each other), so selecting one member selects the whole group, and
then what the group needs.

``--skip GLOB`` and ``--skip-tags TAG`` then remove tasks. Removed tasks, and tasks outside the
closure, end ``Skipped`` with reason ``not_selected``: a ``depends_on`` edge or a status read
on such a task is satisfied (it is Skipped, like a ``when: false`` task). A task that needs a
removed task's *data* cannot run without it: reading its register is fine only when
``--resume`` can restore that register from the journal (``restorable``), and reading its
stream never is. Such a task, and in turn what needs its data, ends ``Skipped`` with reason
``upstream_not_selected``.

This is a pure function of the playbook, its graph and the options, so ``gxo journal``,
``--dry-run`` and the scheduler all agree on it.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from gxo.dag.graph import Graph
from gxo.errors import UsageError

if TYPE_CHECKING:
    from gxo.config.model import Playbook

__all__ = ["Selection", "check_forced", "select_tasks"]

#: Edge kinds that carry data: the downstream task cannot run without its upstream's result.
_DATA_EDGES = frozenset({"register", "stream"})


@dataclass(frozen=True)
class Selection:
    """The outcome of selecting tasks.

    ``skipped`` maps each task that will not run to its reason (``not_selected`` or
    ``upstream_not_selected``) and ``why`` to a sentence a person reads; ``restore`` holds the
    not-selected tasks whose registers a selected task reads (``--resume`` must restore them
    from the journal). Every other task runs.
    """

    skipped: Mapping[str, str] = field(default_factory=dict)
    why: Mapping[str, str] = field(default_factory=dict)
    restore: frozenset[str] = frozenset()

    @property
    def partial(self) -> bool:
        """Whether anything is left out."""
        return bool(self.skipped)

    def runs(self, name: str) -> bool:
        """Whether the task ``name`` is selected to run."""
        return name not in self.skipped


def _stream_group_closure(graph: Graph, chosen: set[str], removed: Collection[str]) -> set[str]:
    """``chosen`` plus everything it needs (upstream, any kind) and whole stream groups."""
    result = set(chosen)
    stack = list(chosen)
    while stack:
        name = stack.pop()
        neighbours = [edge.source for edge in graph.upstream(name)]
        neighbours += [e.target for e in graph.downstream(name) if e.kind == "stream"]
        for other in neighbours:
            if other not in result and other not in removed:
                result.add(other)
                stack.append(other)
    return result


def _unknown_task(name: str, known: Iterable[str]) -> UsageError:
    import difflib  # only for a message: not at start-up

    close = difflib.get_close_matches(name, list(known), n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else "; `gxo list PLAYBOOK` lists them"
    return UsageError(f"no task named {name!r} in the playbook{hint}")


def check_forced(force: Iterable[str], graph: Graph) -> None:
    """Refuse a ``--force`` name that is no task's (a typo would silently restore it all)."""
    for name in force:
        if name not in graph:
            raise UsageError(f"--force: {_unknown_task(name, graph.nodes)}")


def _matching(names: Iterable[str], pattern: str) -> list[str]:
    return [name for name in names if fnmatch.fnmatchcase(name, pattern)]


def _is_glob(text: str) -> bool:
    return any(char in text for char in "*?[")


def select_tasks(
    playbook: Playbook,
    graph: Graph,
    *,
    targets: Iterable[str] = (),
    tags: Iterable[str] = (),
    skip: Iterable[str] = (),
    skip_tags: Iterable[str] = (),
    restorable: Collection[str] = frozenset(),
) -> Selection:
    """Which tasks run, and why each other one does not.

    ``targets`` are task names (a glob such as ``build_*`` names every task it matches);
    ``tags`` select every task that carries one of them. With neither, every task is a
    target. ``skip`` globs and ``skip_tags`` remove tasks. ``restorable`` are the tasks whose
    registers the journal can restore (``--resume``).

    Raises :class:`UsageError` for a target that names no task, a tag no task carries, or a
    ``--skip`` glob that matches nothing (a typo would otherwise silently run everything).
    """
    names = graph.nodes
    targets, tags, skip, skip_tags = list(targets), list(tags), list(skip), list(skip_tags)
    known_tags = {tag for task in playbook.tasks for tag in task.tags}
    for tag in (*tags, *skip_tags):
        if tag not in known_tags:
            listed = ", ".join(sorted(known_tags)) or "none"
            raise UsageError(f"no task has the tag {tag!r} (tags in the playbook: {listed})")
    removed: set[str] = set()
    for pattern in skip:
        found = _matching(names, pattern)
        if not found:
            raise UsageError(f"--skip {pattern!r} matches no task; `gxo list PLAYBOOK` lists them")
        removed.update(found)
    wanted_tags = set(skip_tags)
    removed.update(t.name for t in playbook.tasks if wanted_tags.intersection(t.tags))
    seeds: set[str] = set()
    for target in targets:
        if _is_glob(target):
            found = _matching(names, target)
            if not found:
                raise UsageError(f"{target!r} matches no task; `gxo list PLAYBOOK` lists them")
            seeds.update(found)
        elif target in graph:
            seeds.add(target)
        else:
            raise _unknown_task(target, names)
    if tags:
        wanted = set(tags)
        seeds.update(t.name for t in playbook.tasks if wanted.intersection(t.tags))
    if targets or tags:
        closure = _stream_group_closure(graph, seeds - removed, removed)
    else:
        closure = set(names) - removed
    skipped: dict[str, str] = {}
    why: dict[str, str] = {}
    for name in names:
        if name not in closure:
            skipped[name] = "not_selected"
            why[name] = (
                "removed by --skip/--skip-tags"
                if name in removed
                else "not a target, and no target needs it"
            )
    restore: set[str] = set()
    order = graph.topological_order()
    changed = True
    while changed:  # a skipped stream-group member can skip tasks earlier in the order
        changed = False
        for name in order:
            if name not in skipped:
                reason = _data_missing(graph, name, skipped, restorable, restore)
                if reason:
                    skipped[name], why[name] = "upstream_not_selected", reason
                    changed = True
    readers = {n: [e.target for e in graph.downstream(n) if e.kind == "register"] for n in restore}
    restore = {n for n in restore if any(target not in skipped for target in readers[n])}
    return Selection(skipped, why, frozenset(restore))


def _data_missing(
    graph: Graph,
    name: str,
    skipped: Mapping[str, str],
    restorable: Collection[str],
    restore: set[str],
) -> str:
    """Why ``name`` cannot run for lack of a skipped task's data ("" when it can run)."""
    for edge in graph.upstream(name):
        source = edge.source
        if edge.kind not in _DATA_EDGES or source not in skipped:
            continue
        if edge.kind == "stream":
            return f"streams from {source!r}, which does not run"
        if skipped[source] == "not_selected" and source in restorable:
            restore.add(source)
            continue
        return f"reads the register of {source!r}, which does not run"
    for edge in graph.downstream(name):
        if edge.kind == "stream" and edge.target in skipped:
            return f"streams to {edge.target!r}, which does not run (a stream group runs whole)"
    return ""
