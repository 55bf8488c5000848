"""What a run does beyond "run everything, keep going": the scheduler's partial-run controls.

One object, :class:`RunControl`, carries what the command line asked for and the bookkeeping
it needs, so the state machine consults it at a few points and stays readable:

- which tasks are not selected (:mod:`gxo.dag.select`), ended ``Skipped`` at the start, their
  registers restored from the journal when a selected task reads them;
- ``--resume``: when an instance is about to be dispatched, its fingerprint is compared with
  the journal's (:mod:`gxo.journal`); a match completes it at once (reason ``resumed``, its
  registered value restored). A task whose upstream ran in this run is never reused;
- ``--fail-fast`` / ``--fail-fast-kill``: the first failure that is not ignored drains the run
  (or stops it);
- ``--deadline``: an instance whose recorded run time would not fit before the deadline is not
  started (``Cancelled(deadline)``); at the deadline minus the grace the run drains;
- ``resources``: ``cpus: N`` takes N of the ``--workers`` slots, other names take from the
  capacity given with ``--resource``; an instance is dispatched only when its share is free.

No I/O happens here except reading the ``inputs:`` files' signatures for a fingerprint.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import msgspec

from gxo._util.arguments import check_flag, check_mapping, check_number, describe
from gxo.errors import UsageError

if TYPE_CHECKING:
    from gxo.config.model import Playbook, Task
    from gxo.dag.select import Selection
    from gxo.journal import Decision, Fingerprint, Fingerprinter, JournalIndex, Resumer

__all__ = ["PartialRun", "RunControl", "check_capacity", "drain_text"]


def drain_text(reason: str) -> str:
    """The error of a task that was not started because of ``reason``."""
    return {
        "fail_fast": "not started: --fail-fast, after another task failed",
        "drained": "not started: the run was drained (SIGUSR1/SIGUSR2)",
        "deadline": "not started: it would not finish before --deadline",
        "run_timed_out": "not started: the playbook timeout expired",
    }.get(reason, "not started: the run was interrupted")


@dataclass(frozen=True)
class PartialRun:
    """What a run does beyond "run everything, keep going" (``gxo execute``'s options for
    targets, fail-fast, the journal and resume, the deadline and resources), as data.

    Passed to :func:`gxo.run` as ``partial=``. The library writes no journal unless
    ``journal_enabled`` (``gxo execute`` does, unless ``--no-journal``), and lets a stream
    group larger than ``workers`` start extra processes unless ``oversubscribe=False``
    (``gxo execute`` refuses it unless ``--oversubscribe``).
    """

    #: Run only these tasks (names or globs) and what they need; and/or the tasks with tags.
    targets: Sequence[str] = ()
    tags: Sequence[str] = ()
    #: Leave out tasks by name glob or by tag (Skipped, not_selected).
    skip: Sequence[str] = ()
    skip_tags: Sequence[str] = ()
    #: Run these again even when the journal says they are done (and what depends on them).
    force: Sequence[str] = ()
    fail_fast: bool = False
    fail_fast_kill: bool = False
    resume: bool = False
    #: Write the run journal: to ``journal``, or <state_dir>/journal/<stem>-<hash>.jsonl
    #: (the state directory is the run's, ``RunOptions.state_dir``).
    #: A playbook that is not a file has no default journal.
    journal_enabled: bool = False
    journal: str | os.PathLike[str] | None = None
    checksum: bool = False
    #: Wall-clock time (``time.time()``) after which nothing that would not finish starts.
    deadline: float | None = None
    oversubscribe: bool = True
    #: Consumable capacity for tasks' ``resources`` (``--resource NAME=N``).
    resources: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        """A wrong type is a :class:`TypeError` naming the field, when the object is made: a
        ``str`` for a list of names was read as its letters (``targets="build"``: "no task
        named 'u'"), and a ``deadline`` of the wrong type failed deep in the run's set-up."""
        for name in ("targets", "tags", "skip", "skip_tags", "force"):
            names: object = getattr(self, name)
            if isinstance(names, str | bytes) or not isinstance(names, Collection):
                hint = f" (one: {name}=[{names!r}])" if isinstance(names, str) else ""
                raise TypeError(
                    f"PartialRun.{name} must be a list of names, got {describe(names)}{hint}"
                )
            for item in names:
                if not isinstance(item, str):
                    raise TypeError(f"PartialRun.{name} must hold strings, got {describe(item)}")
        for name in (
            "fail_fast",
            "fail_fast_kill",
            "resume",
            "journal_enabled",
            "checksum",
            "oversubscribe",
        ):
            check_flag(f"PartialRun.{name}", getattr(self, name))
        journal: object = self.journal
        if journal is not None and not isinstance(journal, str | os.PathLike):
            raise TypeError(f"PartialRun.journal must be a path or None, got {describe(journal)}")
        check_number("PartialRun.deadline", self.deadline, unit="seconds since the epoch")
        check_mapping("PartialRun.resources", self.resources)
        for resource, amount in self.resources.items():
            check_number(f"PartialRun.resources[{resource!r}]", amount, unit="units", none=False)

    @property
    def selects(self) -> bool:
        """Whether tasks are chosen (targets, tags, skips)."""
        return bool(self.targets or self.tags or self.skip or self.skip_tags)


class RunControl(msgspec.Struct):
    """The options of a partial, fail-fast, resumable, time-bounded or resource-bounded run."""

    selection: Selection | None = None
    #: ``--resume``: decides instances against the journal.
    resumer: Resumer | None = None
    #: Set when the journal is written (or ``--resume``): every dispatched instance gets a
    #: fingerprint, so its record can be written when it completes.
    fingerprinter: Fingerprinter | None = None
    #: The journal's records, for run times (``--deadline``) even without ``--resume``.
    index: JournalIndex | None = None
    fail_fast: bool = False
    fail_fast_kill: bool = False
    #: Monotonic time of ``--deadline``, and the grace kept before it.
    deadline: float | None = None
    grace: float = 0.0
    #: Worker slots (``--workers``) and consumable capacity (``--resource``); accounting is
    #: on only when some task asks for more than one slot or for another resource.
    slots: int = 0
    capacity: Mapping[str, float] = msgspec.field(default_factory=dict)
    accounting: bool = False

    #: The journal found the state directory unwritable and warned for it and the run
    #: directory under it (which then stays quiet: DESIGN §15 "warns once").
    state_dir_unwritable: bool = False
    fingerprints: dict[int, Fingerprint] = msgspec.field(default_factory=dict)
    #: Tasks whose results are new in this run: an instance was dispatched, or an upstream
    #: task's results are new (what changed upstream may change what it does).
    ran: set[str] = msgspec.field(default_factory=set)
    #: Tasks that must not be reused: an upstream task's results are new.
    stale: set[str] = msgspec.field(default_factory=set)
    _held: dict[int, Mapping[str, float]] = msgspec.field(default_factory=dict)
    _used: dict[str, float] = msgspec.field(default_factory=dict)

    @property
    def active(self) -> bool:
        """Whether anything needs a look at dispatch time."""
        return bool(
            self.resumer or self.fingerprinter or self.deadline is not None or self.accounting
        )

    @property
    def decides_dispatch(self) -> bool:
        """Whether each instance needs a look before it is dispatched: ``--resume`` may
        restore it, ``--deadline`` cancel it, resources hold it back. The journal alone does
        not: an instance's fingerprint is taken when its record is written."""
        return self.resumer is not None or self.deadline is not None or self.accounting

    # -- selection and restore ---------------------------------------------------------------

    def restored_register(self, task: Task) -> tuple[bool, Any]:
        """``(True, value)`` when a not-selected task's register is restored from the journal."""
        selection, resumer = self.selection, self.resumer
        if selection is None or resumer is None or task.name not in selection.restore:
            return False, None
        entry = resumer.restorable(task)
        return (False, None) if entry is None else (True, entry.value)

    # -- resume ------------------------------------------------------------------------------

    def fingerprint(self, instance_id: int, task: Task, namespace: Mapping[str, Any]) -> None:
        """Compute and keep the instance's fingerprint (when the journal is on)."""
        if self.fingerprinter is not None and instance_id not in self.fingerprints:
            self.fingerprints[instance_id] = self.fingerprinter.instance(task, namespace)

    def reuse(self, instance_id: int, task: Task, loop_index: int | None) -> Decision | None:
        """The journal's decision for this instance, or None without ``--resume``."""
        resumer = self.resumer
        fingerprint = self.fingerprints.get(instance_id)
        if resumer is None or fingerprint is None or task.name in self.stale:
            return None
        return resumer.decide(task, fingerprint, loop_index)

    # -- deadline ----------------------------------------------------------------------------

    def past_deadline(self, now: float) -> bool:
        """At or after the deadline minus the grace: nothing may start any more."""
        return self.deadline is not None and now >= self.deadline - self.grace

    def fits(self, instance_id: int, task: Task, now: float) -> bool:
        """Whether the instance's recorded run time fits before the deadline.

        An instance with no record fits until the deadline minus the grace.
        """
        if self.deadline is None:
            return True
        if self.past_deadline(now):
            return False
        if self.index is None:
            return True
        fingerprint = self.fingerprints.get(instance_id)
        expected = self.index.duration(task.name, fingerprint.value if fingerprint else None)
        return expected is None or now + expected <= self.deadline

    # -- slots and resources -----------------------------------------------------------------

    def demand(self, task: Task) -> dict[str, float]:
        """What one instance takes: ``cpus`` slots (at least 1) and its other resources."""
        wanted = dict(task.resources)
        wanted["cpus"] = float(task.cpus)
        return wanted

    def can_hold(self, tasks: Collection[Task]) -> bool:
        """Whether instances of ``tasks`` (one each) fit in what is free now."""
        if not self.accounting:
            return True
        needed: dict[str, float] = {}
        for task in tasks:
            for name, amount in self.demand(task).items():
                needed[name] = needed.get(name, 0.0) + amount
        for name, amount in needed.items():
            limit = float(self.slots) if name == "cpus" else self.capacity.get(name, 0.0)
            used = self._used.get(name, 0.0)
            if used > 0 and used + amount > limit + 1e-9:
                return False
        return True

    def hold(self, instance_id: int, task: Task) -> None:
        """The instance was dispatched: its share is taken until its attempt ends."""
        if not self.accounting or instance_id in self._held:
            return
        wanted = self.demand(task)
        self._held[instance_id] = wanted
        for name, amount in wanted.items():
            self._used[name] = self._used.get(name, 0.0) + amount

    def release(self, instance_id: int) -> None:
        """The instance's attempt ended (or never started): give its share back."""
        wanted = self._held.pop(instance_id, None)
        if wanted:
            for name, amount in wanted.items():
                self._used[name] -= amount

    def in_use(self, name: str = "cpus") -> float:
        """How much of a resource running instances hold (for tests and the progress line)."""
        return self._used.get(name, 0.0)


def check_capacity(
    playbook: Playbook,
    groups: Collection[tuple[str, ...]],
    workers: int,
    *,
    oversubscribe: bool,
    capacity: Mapping[str, float],
) -> None:
    """Refuse (:class:`UsageError`, exit 2) what cannot run within ``--workers``/``--resource``.

    - a task whose ``resources.cpus`` is more than ``--workers`` could never start;
    - a stream group runs all its tasks at once: more tasks (or cpus) than workers needs
      ``--oversubscribe`` (it then starts extra processes);
    - a task needing a resource no ``--resource`` declared, or more of it than declared.
    """
    problems: list[str] = []
    for task in playbook.tasks:
        if task.cpus > workers:
            problems.append(
                f"task {task.name!r} ($.tasks[{task.index}].resources.cpus) needs {task.cpus} "
                f"worker slots but --workers is {workers}: lower resources.cpus or raise "
                "--workers"
            )
        for name, amount in task.resources.items():
            if name == "cpus":
                continue
            if name not in capacity:
                problems.append(
                    f"task {task.name!r} needs the resource {name!r}, which no --resource "
                    f"declares: add --resource {name}=N"
                )
            elif amount > capacity[name]:
                problems.append(
                    f"task {task.name!r} needs {amount:g} of {name!r} but --resource gives "
                    f"{capacity[name]:g}"
                )
    if not oversubscribe:
        by_name = {task.name: task for task in playbook.tasks}
        for group in groups:
            needed = sum(by_name[name].cpus for name in group)
            if needed > workers:
                problems.append(
                    f"stream group {', '.join(group)} runs {len(group)} tasks at once "
                    f"({needed} worker slots) but --workers is {workers}: raise --workers, or "
                    "pass --oversubscribe to start extra worker processes for it"
                )
    if problems:
        raise UsageError("cannot run this playbook as asked:\n  " + "\n  ".join(problems))
