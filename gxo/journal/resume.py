"""Deciding what ``--resume`` reuses, and predicting it without running (``gxo journal``).

:class:`JournalIndex` reads a journal's records into lookups: the latest completed instance
per (task, fingerprint), each task's latest registered value, recorded durations.
:class:`Resumer` decides one instance: reuse it (status ``Completed``, reason ``resumed``) or
run it, and says why in words. The rules:

- ``--force TASK`` runs the task, and everything downstream of it runs too;
- an instance runs when no completed record has its fingerprint (the message names the part
  that changed since the task's last record: definition, rendered params, state read, module
  version, input files);
- an instance whose registered value had a secret redacted runs (it cannot be restored
  faithfully);
- an instance runs when a declared output is missing, or changed since it was written;
- a task runs when any task upstream of it (any edge kind) runs in this run: what changed
  upstream may change what it does even when its own inputs look the same;
- a stream group is reused whole or runs whole (records cannot be replayed).

:func:`predict` applies the same rules to the whole playbook, restoring registers from the
journal as it goes, for ``gxo journal`` and ``gxo execute --dry-run --resume``.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Literal

from gxo.dag.build import loop_items, loop_value_problem
from gxo.errors import TemplateError
from gxo.journal.fingerprint import MISSING, Fingerprint, Fingerprinter
from gxo.journal.store import Entry, InstanceEntry, TaskEntry, has_redacted
from gxo.scheduler.records import loop_item_result
from gxo.template.compiled import truthy

if TYPE_CHECKING:
    from gxo.config.model import Playbook, Task
    from gxo.dag import Plan, TaskTemplates
    from gxo.dag.select import Selection

__all__ = [
    "Decision",
    "JournalIndex",
    "Prediction",
    "Resumer",
    "has_redacted",
    "predict",
]

_PART_WORDS: Final = {
    "definition": "the task's definition in the playbook",
    "params": "its rendered params",
    "state": "the state it reads (vars, registers, statuses or its loop item)",
    "module": "the module's version (or the python function's source)",
    "inputs": "an input file",
}


class JournalIndex:
    """Lookups over a journal's records (later records win)."""

    def __init__(self, entries: Iterable[Entry] = ()) -> None:
        self.instances: dict[tuple[str, str], InstanceEntry] = {}
        self.latest: dict[tuple[str, int | None], InstanceEntry] = {}
        self.tasks: dict[str, TaskEntry] = {}
        #: Each (task, output path)'s run and signature as the task's latest completed
        #: instance left it (see :meth:`Resumer.decide`).
        self.outputs: dict[tuple[str, str], tuple[str, str]] = {}
        self._durations: dict[str, list[float]] = {}
        for entry in entries:
            if isinstance(entry, InstanceEntry):
                self.add_instance(entry)
            elif isinstance(entry, TaskEntry):
                self.tasks[entry.task] = entry

    def add_instance(self, entry: InstanceEntry) -> None:
        """Index one completed instance."""
        self.instances[entry.task, entry.fingerprint] = entry
        self.latest[entry.task, entry.loop_index] = entry
        self._durations.setdefault(entry.task, []).append(entry.duration)
        for path, signature in entry.outputs.items():
            self.outputs[entry.task, path] = (entry.run, signature)

    def __len__(self) -> int:
        return len(self.instances)

    def duration(self, task: str, fingerprint: str | None = None) -> float | None:
        """The recorded run time of this instance, else the task's mean, else None."""
        if fingerprint is not None:
            found = self.instances.get((task, fingerprint))
            if found is not None:
                return found.duration
        recorded = self._durations.get(task)
        return sum(recorded) / len(recorded) if recorded else None


@dataclass(frozen=True)
class Decision:
    """Reuse the instance (``resume``) or run it, and why, in words."""

    resume: bool
    why: str
    entry: InstanceEntry | None = None


class Resumer:
    """Decides instances against one journal index."""

    def __init__(
        self,
        index: JournalIndex,
        fingerprinter: Fingerprinter,
        *,
        force: Collection[str] = (),
    ) -> None:
        self.index = index
        self.fingerprinter = fingerprinter
        self.force = frozenset(force)

    def decide(self, task: Task, fingerprint: Fingerprint, loop_index: int | None) -> Decision:
        """Whether this instance can be reused from the journal."""
        if task.name in self.force:
            return Decision(False, "--force names it")
        entry = self.index.instances.get((task.name, fingerprint.value))
        if entry is None:
            return Decision(False, self._changed(task, fingerprint, loop_index))
        if entry.redacted and task.register is not None:
            return Decision(
                False,
                "its registered value had a secret redacted, so it cannot be restored faithfully",
            )
        if task.outputs:
            # Unchanged: as this instance left it, or as the task's latest instance left it in
            # the same run. A loop's items share its outputs (they are not templated), and
            # each leaves the file otherwise: compared with its own record only, every item
            # but the last ran again on every --resume, and so every item on the next one.
            now = self.fingerprinter.signatures(task.outputs)
            latest = self.index.outputs
            for path, signature in now.items():
                if signature == MISSING:
                    return Decision(False, f"its output {path!r} is missing")
                if signature != entry.outputs.get(path) and latest.get((task.name, path)) != (
                    entry.run,
                    signature,
                ):
                    return Decision(False, f"its output {path!r} changed since it was written")
        return Decision(True, f"completed in run {entry.run} with the same fingerprint", entry)

    def _changed(self, task: Task, fingerprint: Fingerprint, loop_index: int | None) -> str:
        previous = self.index.latest.get((task.name, loop_index))
        if previous is None:
            return "the journal has no completed run of it"
        now, before = fingerprint.parts, previous.parts
        changed = [
            part
            for part, digest in now.items()
            if before.get(part) != digest
            # Params that read no state have the definition's digest as their params and
            # state digests (gxo.journal.fingerprint): they changed only with it.
            and not (
                part in ("params", "state")
                and digest == now.get("definition")
                and before.get(part) == before.get("definition")
            )
        ]
        if not changed:
            return "the journal has no completed run of it with this fingerprint"
        words = [_PART_WORDS.get(part, part) for part in changed]
        return "changed since run " + previous.run + ": " + ", ".join(words)

    def restorable(self, task: Task) -> TaskEntry | None:
        """The task's last registered value, when it can stand in for running it."""
        entry = self.index.tasks.get(task.name)
        if entry is None or entry.redacted or task.name in self.force:
            return None
        if entry.definition != self.fingerprinter.definition(task):
            return None
        return entry


Action = Literal["resume", "run", "skip"]


@dataclass
class Prediction:
    """What a resumed run would do with one task, and why."""

    task: str
    action: Action
    why: str
    #: Per instance (a loop has several): its label and its decision.
    instances: list[tuple[str, Decision]] = field(default_factory=list)


def _label(task: Task, index: int | None, item: Any) -> str:
    if index is None:
        return task.name
    return f"{task.name}[{index}]"


def predict(
    playbook: Playbook,
    plan: Plan,
    resumer: Resumer,
    selection: Selection | None = None,
) -> list[Prediction]:
    """What ``gxo execute --resume`` would do with each task, in dependency order.

    Registers of reused tasks are restored from the journal as the walk goes, so a task that
    reads them is fingerprinted as the real run would. What cannot be known without running
    (a ``when`` or ``loop`` that reads the result of a task that runs) is said so.
    """
    must_run: set[str] = set()
    while True:
        predictions = _walk(playbook, plan, resumer, selection, must_run)
        grouped = _mixed_groups(plan, predictions)
        if not grouped - must_run:
            return predictions
        must_run |= grouped


def _mixed_groups(plan: Plan, predictions: list[Prediction]) -> set[str]:
    """Members of stream groups where some member runs: the whole group must run."""
    action = {p.task: p.action for p in predictions}
    graph = plan.graph
    result: set[str] = set()
    for name, what in action.items():
        if what != "run":
            continue
        stack = [name]
        seen = {name}
        while stack:
            current = stack.pop()
            for edge in (*graph.upstream(current), *graph.downstream(current)):
                if edge.kind != "stream":
                    continue
                other = edge.source if edge.target == current else edge.target
                if other not in seen:
                    seen.add(other)
                    stack.append(other)
        result |= {other for other in seen if action.get(other) == "resume"}
    return result


def _walk(
    playbook: Playbook,
    plan: Plan,
    resumer: Resumer,
    selection: Selection | None,
    must_run: set[str],
) -> list[Prediction]:
    graph = plan.graph
    store: dict[str, Any] = dict(playbook.vars)
    status: dict[str, str] = {}
    unknown: set[str] = set()  # registers whose value only a real run would give
    ran: set[str] = set()
    predictions: list[Prediction] = []
    for name in graph.topological_order():
        task = playbook.task(name)
        prediction = _predict_task(
            task, plan, resumer, selection, must_run, store, status, unknown, ran
        )
        predictions.append(prediction)
        if prediction.action == "run":
            ran.add(name)
            status[name] = "Completed"
            if task.register is not None:
                unknown.add(task.register)
    return predictions


def _predict_task(
    task: Task,
    plan: Plan,
    resumer: Resumer,
    selection: Selection | None,
    must_run: set[str],
    store: dict[str, Any],
    status: dict[str, str],
    unknown: set[str],
    ran: set[str],
) -> Prediction:
    name = task.name
    graph = plan.graph
    if selection is not None and not selection.runs(name):
        status[name] = "Skipped"
        why = f"{selection.skipped[name]}: {selection.why.get(name, '')}".rstrip(": ")
        if name in selection.restore and task.register is not None:
            entry = resumer.restorable(task)
            if entry is not None:
                store[task.register] = entry.value
                why += f"; its register is restored from run {entry.run}"
        return Prediction(name, "skip", why)
    if name in resumer.force:
        return Prediction(name, "run", "--force names it")
    upstream_ran = next(
        (e.source for e in graph.upstream(name) if e.source in ran and e.kind != "stream"), None
    )
    if upstream_ran is not None:
        return Prediction(name, "run", f"upstream task {upstream_ran!r} runs")
    if name in must_run:
        return Prediction(name, "run", "a task of its stream group runs (a group runs whole)")
    templates = plan.templates[name]
    if unknown & templates.state_names:
        return Prediction(name, "run", "it reads a register that only a real run gives")
    namespace = _namespace(templates, store, status, plan.graph.nodes)
    try:
        if not _when(task, templates, namespace):
            status[name] = "Skipped"
            if task.register is not None:
                store[task.register] = {"skipped": True, "reason": "when_false"}
            return Prediction(name, "skip", "when_false: 'when' is false")
        items = _items(task, templates, namespace)
    except TemplateError as exc:
        return Prediction(name, "run", f"its when/loop cannot be evaluated: {exc}")
    instances: list[tuple[str, Decision]] = []
    if items is None:
        fingerprint = resumer.fingerprinter.instance(task, namespace)
        instances.append((_label(task, None, None), resumer.decide(task, fingerprint, None)))
    else:
        var = task.loop_control.loop_var
        for index, item in enumerate(items):
            fingerprint = resumer.fingerprinter.instance(task, {**namespace, var: item})
            decision = resumer.decide(task, fingerprint, index)
            instances.append((_label(task, index, item), decision))
    runs = [(label, d) for label, d in instances if not d.resume]
    if runs:
        label, decision = runs[0]
        why = decision.why if items is None else f"{len(runs)} of {len(instances)} "
        if items is not None:
            why += f"iteration(s) run ({label}: {decision.why})"
        return Prediction(name, "run", why, instances)
    status[name] = "Completed"
    if task.register is not None:
        values = [d.entry.value for _, d in instances if d.entry is not None]
        if items is None:
            store[task.register] = values[0]
        else:  # the list the scheduler builds, or what reads it would not be fingerprinted alike
            store[task.register] = [
                loop_item_result(value, failed=False, reason="", error=None) for value in values
            ]
    first = instances[0][1] if instances else None
    why = first.why if first is not None else "its loop is empty"
    return Prediction(name, "resume", why, instances)


def _when(task: Task, templates: TaskTemplates, namespace: Mapping[str, Any]) -> bool:
    if task.when is None or isinstance(task.when, bool):
        return task.when is not False
    assert templates.when is not None
    return truthy(templates.when.render(namespace))


def _items(task: Task, templates: TaskTemplates, namespace: Mapping[str, Any]) -> list[Any] | None:
    """The loop's items (None for a task without a loop); as SchedulerState._loop_items."""
    if task.loop is None:
        return None
    value = task.loop if templates.loop is None else templates.loop.render(namespace)
    items = loop_items(value)
    if items is None:
        message, hint = loop_value_problem(task, value)
        raise TemplateError(message, f"{task.path}.loop", hint)
    return items


def _namespace(
    templates: TaskTemplates,
    store: Mapping[str, Any],
    status: Mapping[str, str],
    every_task: Iterable[str],
) -> dict[str, Any]:
    """What the scheduler sends an instance: the state its templates read, nothing else.

    Must match ``SchedulerState._namespace`` exactly, or fingerprints would never match.
    """
    namespace: dict[str, Any] = {}
    for name in templates.state_names:
        if name == "_gxo":
            refs = templates.status_refs()
            chosen = every_task if refs is None else [n for n in every_task if n in refs]
            namespace["_gxo"] = {"tasks": {n: {"status": status.get(n, "Pending")} for n in chosen}}
        elif name in store:
            namespace[name] = store[name]
    return namespace
