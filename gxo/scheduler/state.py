"""The scheduler's decisions as a state machine with no I/O.

::

    inputs in (gxo.scheduler.messages)           instructions out
    ──────────────────────────────────           ────────────────
    start(now)                           ──►     roots considered; instances queued
    dispatch(capacity)                   ──►     [Dispatch, ...]: one batch the executor has
                                                 room for (a task's instances, or a whole
                                                 stream group)
    handle(AttemptStarted, now)          ──►     a deadline per attempt (attempt_timeout) and
                                                 one for the whole task (timeout), from its
                                                 first attempt's start; Kill when the run is
                                                 being interrupted or the task timed out
    handle(AttemptFinished, now)         ──►     register, dependents released or skipped;
                                                 a producer whose consumers all went away
                                                 is held (phase HELD) until they end
    handle(AttemptLost, now)             ──►     retry later, or the instance fails
    handle(InstanceReturned, now)        ──►     queued again, at the front
    tick(now)                            ──►     [Kill(id, "attempt_timed_out")] for expired
                                                 attempts, [Kill(id, "timed_out")] for every
                                                 running instance of a task whose timeout
                                                 expired; due retries queued
    interrupt(reason, now)               ──►     [Kill(id, reason)] for everything running

    notifications ──► the one Listener given at construction (task changed, instance started
    or finished, retry scheduled), which the run turns into events

Task statuses and instance phases change only through their transition tables
(:data:`TASK_TRANSITIONS`, :data:`PHASE_TRANSITIONS`); any other change is a gxo bug and
raises :class:`~gxo.errors.InternalError` at once.

Time comes in as ``now`` (monotonic seconds) and randomness (retry jitter) from an injected
``random.Random``, so retries, timeouts and failure policy are tested without processes or
sleeps. ``when`` and ``loop`` are rendered here, in the parent, against the state store;
``params`` are rendered later, in the worker.

Dependencies (edges of :class:`gxo.dag.Graph`):

- ``register``, ``depends_on``, ``stream``: wait for the upstream task to end; if it failed
  (and the failure was not ignored) or was skipped because *its* upstream failed, this task is
  Skipped with reason ``upstream_failed``; if it was cancelled, so is this one.
- ``status`` (a reference to ``_gxo.tasks.X.status``): wait for X to end, whatever the
  outcome, so a task can react to another's failure.
- ``stream``: not "run after". Tasks connected by stream edges form a *stream group* that
  starts together: the group is queued (all members at once, consecutively; dispatched as
  one :meth:`SchedulerState.dispatch` batch) when every member's other upstream edges are
  satisfied. If a member ends before the group starts, the rest of the group is Skipped:
  ``upstream_skipped`` when the member was skipped (nothing failed; their dependents run, as
  a ``when_false`` task's do), ``upstream_failed`` when it failed, was doomed or cancelled.
  A consumer's outcome never changes a producer's, except for a producer that stopped
  because every consumer went away (``consumers_gone`` from its worker): it is held until
  those consumers end, then it is ``Completed`` ``consumer_closed`` if they completed (they
  closed their inputs early on purpose) or failed with ``ignore_errors``, or ``Cancelled``
  ``consumer_failed`` if one failed, so one failure is never shown as two.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from gxo.config.model import Playbook, Task
from gxo.dag import Plan, TaskTemplates
from gxo.dag.build import loop_items, loop_value_problem
from gxo.dag.groups import stream_groups
from gxo.errors import InternalError, TemplateError
from gxo.outputs import command_facts
from gxo.scheduler.messages import (
    AttemptFinished,
    AttemptLost,
    AttemptStarted,
    Capacity,
    Dispatch,
    Input,
    InstanceReturned,
    Kill,
    Listener,
    StreamEdge,
)
from gxo.scheduler.partial import RunControl, drain_text
from gxo.scheduler.policy import (
    MAX_RETURNS,
    MAX_WORKER_DEATHS,
    SHORT_TASK_SECONDS,
    retry_delay,
    should_retry,
)
from gxo.scheduler.records import (
    TERMINAL,
    Attempt,
    InstanceRecord,
    Phase,
    Status,
    TaskRecord,
    loop_item_result,
)
from gxo.template import RenderStopped, truthy
from gxo.wire import Done, EdgeStats

if TYPE_CHECKING:
    import random

__all__ = ["PHASE_TRANSITIONS", "TASK_TRANSITIONS", "SchedulerState"]

_BLOCKING_EDGES = frozenset({"register", "depends_on"})

#: Legal task status transitions; anything else is a gxo bug and raises at once.
TASK_TRANSITIONS: frozenset[tuple[Status, Status]] = frozenset(
    {
        (Status.PENDING, Status.RUNNING),
        (Status.PENDING, Status.SKIPPED),
        (Status.PENDING, Status.CANCELLED),
        (Status.PENDING, Status.FAILED),
        (Status.PENDING, Status.COMPLETED),
        (Status.RUNNING, Status.COMPLETED),
        (Status.RUNNING, Status.FAILED),
        (Status.RUNNING, Status.CANCELLED),
        (Status.RUNNING, Status.SKIPPED),  # skip_on_no_input: the worker saw no input
    }
)


#: Legal instance phase transitions, likewise.
PHASE_TRANSITIONS: frozenset[tuple[Phase, Phase]] = frozenset(
    {
        (Phase.WAITING, Phase.QUEUED),  # loop_control.parallel let it in; a group is ready
        (Phase.WAITING, Phase.DONE),  # cancelled before it was queued
        (Phase.QUEUED, Phase.DISPATCHED),  # handed to the executor
        (Phase.QUEUED, Phase.DONE),  # cancelled before it was dispatched
        (Phase.DISPATCHED, Phase.RUNNING),  # the executor started it
        (Phase.DISPATCHED, Phase.QUEUED),  # returned unstarted: dispatched again
        (Phase.DISPATCHED, Phase.DONE),  # returned unstarted, and not dispatched again
        (Phase.RUNNING, Phase.QUEUED),  # returned: its worker died before writing its slot
        (Phase.RUNNING, Phase.DONE),  # its last attempt ended
        (Phase.RUNNING, Phase.RETRY_WAIT),  # an attempt failed; the next waits its delay
        (Phase.RETRY_WAIT, Phase.QUEUED),  # the delay is over
        (Phase.RETRY_WAIT, Phase.DONE),  # cancelled while waiting
        (Phase.RUNNING, Phase.HELD),  # a producer whose consumers all closed: wait for them
        (Phase.HELD, Phase.DONE),  # its consumers ended: consumer_closed or consumer_failed
    }
)


#: ``PHASE_TRANSITIONS`` by phase: the phases an instance may move to from each.
_NEXT_PHASES: dict[Phase, frozenset[Phase]] = {
    phase: frozenset(to for frm, to in PHASE_TRANSITIONS if frm is phase) for phase in Phase
}


class _NoListener:
    """The listener of a state nobody listens to."""

    def task_queued(self, record: TaskRecord) -> None:
        pass

    def task_changed(self, record: TaskRecord) -> None:
        pass

    def instance_started(self, inst: InstanceRecord) -> None:
        pass

    def instance_finished(self, inst: InstanceRecord) -> None:
        pass

    def retry_scheduled(self, inst: InstanceRecord, delay: float) -> None:
        pass


class SchedulerState:
    """Every task's status and every instance's progress for one run.

    Args:
        playbook: the validated playbook.
        plan: its DAG and the compiled templates of each task.
        listener: told of every task and instance change (default: nobody).
        variables: the initial state (the playbook's ``vars`` with ``--var`` overrides).
        dry_run: passed to every instance.
        rng: source of retry jitter.
    """

    def __init__(
        self,
        playbook: Playbook,
        plan: Plan,
        *,
        listener: Listener | None = None,
        variables: Mapping[str, Any] | None = None,
        dry_run: bool = False,
        rng: random.Random | None = None,
        control: RunControl | None = None,
        ended: Callable[[InstanceRecord], None] | None = None,
        release_finished: bool = False,
        settle: Callable[[], None] | None = None,
    ) -> None:
        self.playbook = playbook
        #: Called before the state does slow work of its own (rendering a ``when`` or a
        #: ``loop``, asking the journal whether an instance can be restored): a listener that
        #: holds notifications (:class:`gxo.scheduler.notify.HeldEvents`) passes them on
        #: first, so what ended is never reported late by that work.
        self._settle = settle
        #: Called with every instance that ended, while the state still has all of it (the
        #: run's spool of instance details for the report, :mod:`gxo.journal.spool`).
        self._ended = ended
        #: Forget a loop's iterations once they ended (and ``ended`` had them): the parent
        #: keeps counts, not records, so a 100,000-item loop does not grow it (issue 18).
        self._release_finished = release_finished
        #: Labels of the last released iterations: a worker's last lines may come after its
        #: instance ended (the output relay names them).
        self._ended_labels: dict[int, str] = {}
        #: Partial runs, resume, fail-fast, deadline, resources (see gxo.scheduler.partial);
        #: ``control`` is None when none of them needs a look at dispatch time.
        self.run_control = control or RunControl()
        self.control = control if control is not None and control.active else None
        #: Set with ``interrupted`` when the run drains (nothing new starts, running instances
        #: finish) rather than stops.
        self.draining = False
        self._kills: list[Kill] = []
        self.graph = plan.graph
        self.templates = plan.templates
        self.dry_run = dry_run
        #: Retry jitter's source; made at the first retry (random: off a run's start-up).
        self._rng = rng
        self.store: dict[str, Any] = dict(playbook.vars if variables is None else variables)
        self.tasks: dict[str, TaskRecord] = {t.name: TaskRecord(t) for t in playbook.tasks}
        self.instances: dict[int, InstanceRecord] = {}
        self.interrupted = ""
        self._listener: Listener = listener if listener is not None else _NoListener()
        self._ready: deque[int] = deque()
        self._next_id = 0
        #: Heap of (time, sequence, instance id): retries and attempt timeouts, checked lazily.
        self._timers: list[tuple[float, int, int]] = []
        #: Heap of (time, sequence, task name): task timeouts (the whole task), likewise.
        self._task_timers: list[tuple[float, int, str]] = []
        self._timer_seq = 0
        #: Moving average of attempt durations per module type (``is_short``).
        self._type_recent: dict[str, float] = {}
        self._open_tasks = len(self.tasks)
        self._status_refs = {t.name: plan.templates[t.name].status_refs() for t in playbook.tasks}
        for task in playbook.tasks:
            self.tasks[task.name].waiting_on = sum(
                1 for e in plan.graph.upstream(task.name) if e.kind != "stream"
            )
        #: Task name -> its stream group (members in playbook order), for grouped tasks only.
        self.groups: dict[str, tuple[str, ...]] = {}
        for group in stream_groups(plan.graph):
            for name in group:
                self.groups[name] = group
        #: Members of a group that are ready to start, with their namespaces.
        self._group_ready: dict[tuple[str, ...], dict[str, dict[str, Any]]] = {}
        self._wiring = {name: self._stream_wiring(name) for name in self.groups}
        #: Producers whose consumers all went away, held until those consumers end.
        self._held: dict[int, Done] = {}

    # -- queries -----------------------------------------------------------------------------

    @property
    def rng(self) -> random.Random:
        """The source of retry jitter (the ``rng`` given, else one of its own)."""
        if self._rng is None:
            import random

            self._rng = random.Random()
        return self._rng

    def is_finished(self) -> bool:
        """Every task has reached a terminal status."""
        return self._open_tasks == 0

    @property
    def failed(self) -> bool:
        """Some task failed and its failure was not ignored (the run exits 1)."""
        for record in self.tasks.values():  # a loop, not any(generator): read a few times
            if record.status is Status.FAILED and not record.ignored:  # at the end, O(tasks)
                return True
        return False

    @property
    def stoppable(self) -> bool:
        """Whether a stop (a signal, the run timeout) still has something to stop: the run
        is not stopped yet, or only drains (SIGUSR1/2, --deadline, fail-fast), which lets
        its running instances go on."""
        return not self.interrupted or self.draining

    @property
    def work_left(self) -> bool:
        """Some task was not done because the run drained or hit ``--deadline`` (exit 75)."""
        for record in self.tasks.values():
            if record.status is Status.CANCELLED and record.reason in ("drained", "deadline"):
                return True
        return False

    def next_deadline(self) -> float | None:
        """The earliest time ``tick`` has something to do (a retry or a timeout)."""
        timers, task_timers = self._timers, self._task_timers
        if not timers and not task_timers:
            return None  # no retry, no timeout: the common case, once per wake-up
        while timers and not self._timer_live(timers[0]):
            heapq.heappop(timers)
        while task_timers and not self._task_timer_live(task_timers[0]):
            heapq.heappop(task_timers)
        due = [heap[0][0] for heap in (timers, task_timers) if heap]
        return min(due) if due else None

    def label_of(self, instance_id: int) -> str | None:
        """``task`` or ``task[3]``: a live instance's label, or a recently released one's."""
        inst = self.instances.get(instance_id)
        return inst.label if inst is not None else self._ended_labels.get(instance_id)

    def status_of(self, task: str) -> Status:
        return self.tasks[task].status

    def is_short(self, task: Task, threshold: float) -> bool:
        """Whether the task's instances are known to run under ``threshold`` seconds.

        Known from the task's own finished attempts, or, before it has any, from a moving
        average of its module type's recent attempts: a worker's cold first attempt or one
        slow outlier moves it for a while, a long-running task stops the guess at once.
        """
        record = self.tasks[task.name]
        if record.duration_count:
            return record.duration_total / record.duration_count < threshold
        recent = self._type_recent.get(task.type)
        return recent is not None and recent < threshold

    # -- events ------------------------------------------------------------------------------

    def start(self, now: float) -> None:
        """Begin the run: every task without upstream edges is considered at once.

        Tasks the command line left out end first, ``Skipped``, in reverse dependency order
        (so none is considered for running on the way), their registers restored from the
        journal when a selected task reads them.
        """
        selection = self.run_control.selection
        if selection is not None and selection.skipped:
            for name in reversed(self.graph.topological_order()):
                reason = selection.skipped.get(name)
                record = self.tasks[name]
                if reason is None or record.status is not Status.PENDING:
                    continue
                restored, value = self.run_control.restored_register(record.task)
                if restored and record.task.register is not None:
                    self.store[record.task.register] = value
                self._end_task(record, Status.SKIPPED, reason, selection.why.get(name, ""), now)
        for task in self.playbook.tasks:
            record = self.tasks[task.name]
            # ready_at: an upstream that ended here (a false ``when``) already released it.
            pending = record.status is Status.PENDING and record.ready_at is None
            if record.waiting_on == 0 and pending:
                self._consider(record, now)

    def dispatch(self, capacity: Capacity, now: float = 0.0) -> list[Dispatch]:
        """The next batch to hand to the executor, within ``capacity`` (empty: nothing fits).

        A batch is consecutive ready instances (as many as there is room for: short tasks
        may also queue behind others, see :meth:`is_short`) of tasks that are alike in that
        respect (a task's instances, or many independent tasks: one call, not one per task),
        or every member of the next stream group, which needs that many idle workers at once.
        Call again after submitting a batch: capacity has changed.

        With a :class:`RunControl`, an instance the journal can restore completes here
        instead of being dispatched (a stream group only as a whole), one that would not fit
        before the deadline is cancelled, and an instance whose resources are taken waits
        (and so does everything behind it: a large task is not starved).
        """
        control = self.control
        # The journal alone needs no look at each instance here (its fingerprint is taken
        # when its record is written); --resume, --deadline and resources do.
        admits = control if control is not None and control.decides_dispatch else None
        if admits is not None and self._settle is not None:
            self._settle()  # fingerprints (files hashed with --checksum) may take a while
        while True:
            first = self._next_ready()
            if first is None:
                return []
            record = self.tasks[first.task]
            group = self.groups.get(first.task)
            if group is not None:
                if capacity.idle < len(group):
                    return []  # a stream group starts on that many idle workers at once
                if control is not None:
                    if self._group_done_here(control, group, now):
                        continue
                    if not control.can_hold([self.tasks[name].task for name in group]):
                        return []
                taken = self._take_group(first)
                members = [self._dispatched(inst) for inst in taken]
                self._next_ready()  # drops the members from the head of the queue
                if control is not None:
                    for member in taken:
                        control.hold(member.id, self.tasks[member.task].task)
                        control.ran.add(member.task)
                return members
            short = self._may_queue_behind(record.task)
            room = capacity.pipelined if short else capacity.idle
            batch: list[Dispatch] = []
            ready = self._ready
            blocked = False
            current = first.task
            while len(batch) < room:
                inst = self._next_ready()
                if inst is None:
                    break
                if inst.task != current:  # the next task joins the batch if it is alike
                    if inst.task in self.groups:
                        break
                    if self._may_queue_behind(self.tasks[inst.task].task) is not short:
                        break
                    current = inst.task
                if admits is not None:
                    admitted = self._admit(admits, inst, now)
                    if admitted is None:
                        blocked = True
                        break
                    if not admitted:
                        continue  # completed or cancelled here; _next_ready drops it
                ready.popleft()
                batch.append(self._dispatched(inst, queue_behind=short))
            if batch or blocked or admits is None or room <= 0:
                return batch

    def _may_queue_behind(self, task: Task) -> bool:
        """Whether the task's instances may wait behind others on a busy worker."""
        return (
            task.isolation == "pooled"  # a fresh process per attempt never queues behind
            and task.timeout is None
            and task.attempt_timeout is None
            and self.is_short(task, SHORT_TASK_SECONDS)
        )

    def _restored(self, control: RunControl, inst: InstanceRecord, now: float) -> bool:
        """Fingerprint ``inst`` (its journal record needs it) and, when ``--resume`` reuses
        its journaled run, complete it with that run's value; whether it was restored."""
        task = self.tasks[inst.task].task
        control.fingerprint(inst.id, task, inst.namespace)
        decision = control.reuse(inst.id, task, inst.loop_index)
        if decision is None or not decision.resume or decision.entry is None:
            return False
        self._instance_done(inst, Status.COMPLETED, "resumed", "", decision.entry.value, now)
        return True

    def _admit(self, control: RunControl, inst: InstanceRecord, now: float) -> bool | None:
        """Dispatch ``inst`` (True), or it was done here (False: restored from the journal,
        or cancelled by the deadline), or not yet (None: its resources are taken)."""
        if self._restored(control, inst, now):
            return False
        task = self.tasks[inst.task].task
        if not control.fits(inst.id, task, now):
            if control.past_deadline(now):
                self.interrupt("deadline", now, kill=False)
            text = drain_text("deadline")
            if inst.phase is Phase.QUEUED:
                self._instance_done(inst, Status.CANCELLED, "deadline", text, None, now)
            return False
        if not control.can_hold((task,)):
            return None
        control.hold(inst.id, task)
        control.ran.add(task.name)
        return True

    def _group_done_here(self, control: RunControl, group: tuple[str, ...], now: float) -> bool:
        """Restore the whole group from the journal, or cancel it for the deadline."""
        queued = [
            i for name in group for i in self.tasks[name].instances if i.phase is Phase.QUEUED
        ]
        decisions = []
        for inst in queued:
            task = self.tasks[inst.task].task
            control.fingerprint(inst.id, task, inst.namespace)
            decisions.append(control.reuse(inst.id, task, None))
        entries = [d.entry if d is not None and d.resume else None for d in decisions]
        if queued and all(entry is not None for entry in entries):
            for inst, entry in zip(queued, entries, strict=True):
                value = entry.value if entry is not None else None
                self._instance_done(inst, Status.COMPLETED, "resumed", "", value, now)
            return True
        if not all(control.fits(i.id, self.tasks[i.task].task, now) for i in queued):
            if control.past_deadline(now):
                self.interrupt("deadline", now, kill=False)
            for inst in queued:
                if inst.phase is Phase.QUEUED:
                    text = drain_text("deadline")
                    self._instance_done(inst, Status.CANCELLED, "deadline", text, None, now)
            return True
        return False

    def _take_kills(self, stimulus_id: int) -> list[Kill]:
        """Kills decided while taking an input (``--fail-fast-kill``), for that input."""
        if not self._kills:
            return []
        kills, self._kills = self._kills, []
        return [kill._replace(stimulus_id=stimulus_id) for kill in kills]

    def _release_slots(self, instance_id: int) -> None:
        """An attempt ended or never started: its resources are free again."""
        if self.control is not None:
            self.control.release(instance_id)

    def _next_ready(self) -> InstanceRecord | None:
        """The instance at the head of the queue (stale entries are dropped first)."""
        ready = self._ready
        instances = self.instances
        while ready:
            inst = instances.get(ready[0])
            if inst is not None and inst.phase is Phase.QUEUED:
                return inst
            ready.popleft()
        return None

    def _take_group(self, first: InstanceRecord) -> list[InstanceRecord]:
        """Every queued instance of ``first``'s stream group (queued right behind it)."""
        taken = [first]
        for name in self.groups[first.task]:
            if name != first.task:
                taken += [i for i in self.tasks[name].instances if i.phase is Phase.QUEUED]
        return taken

    def _dispatched(self, inst: InstanceRecord, *, queue_behind: bool = False) -> Dispatch:
        """``inst`` leaves the queue for the executor: the instruction that runs it."""
        if Phase.DISPATCHED not in _NEXT_PHASES[inst.phase]:  # ``_move``, inlined when legal
            self._move(inst, Phase.DISPATCHED)
        inst.phase = Phase.DISPATCHED
        task = self.tasks[inst.task].task
        inputs, outputs = self._wiring.get(task.name, _NO_STREAMS)
        return Dispatch(
            inst.id,
            task,
            inst.namespace,
            len(inst.attempts) + 1,
            inst.loop_index,
            inst.task if inst.loop_index is None else inst.label,
            queue_behind,
            inputs,
            outputs,
            bool(inputs) and task.policy.skip_on_no_input,
        )

    def _stream_wiring(self, name: str) -> tuple[tuple[str, ...], tuple[StreamEdge, ...]]:
        inputs = tuple(e.source for e in self.graph.upstream(name) if e.kind == "stream")
        outputs = []
        for edge in self.graph.downstream(name):
            if edge.kind == "stream":
                policy = self.tasks[edge.target].task.channel_policy
                outputs.append(
                    StreamEdge(edge.target, policy.buffer_size, policy.overflow_strategy)
                )
        return inputs, tuple(outputs)

    def handle(self, event: Input, now: float) -> list[Kill]:
        """Take one input from the executor (through the loop); the kills it calls for."""
        if isinstance(event, AttemptFinished):
            return self.attempt_finished(event.outcome, event.stimulus_id, now)
        if isinstance(event, AttemptStarted):
            return self.attempt_started(event.instance_id, event.pid, event.stimulus_id, now)
        if isinstance(event, AttemptLost):
            kills = self._lost(event, now)
        else:
            kills = self._returned(event, now)
        return kills + self._take_kills(event.stimulus_id) if self._kills else kills

    # The loop's path for the two inputs of every instance: ``handle`` without the message
    # built for it and the type tests (the executor's event already says which it is).

    def attempt_finished(self, done: Done, stimulus_id: int, now: float) -> list[Kill]:
        """``handle(AttemptFinished(done, stimulus_id), now)``."""
        self._outcome(done, now)
        return self._take_kills(stimulus_id) if self._kills else []

    def attempt_started(
        self, instance_id: int, pid: int, stimulus_id: int, now: float
    ) -> list[Kill]:
        """``handle(AttemptStarted(instance_id, pid, stimulus_id), now)``."""
        kills = self._started(instance_id, pid, stimulus_id, now)
        return kills + self._take_kills(stimulus_id) if self._kills else kills

    def _started(self, instance_id: int, pid: int, stimulus_id: int, now: float) -> list[Kill]:
        """A worker acknowledged the instance and is running it."""
        inst = self.instances[instance_id]
        if Phase.RUNNING not in _NEXT_PHASES[inst.phase]:  # ``_move``, inlined when legal
            self._move(inst, Phase.RUNNING)
        inst.phase = Phase.RUNNING
        attempts = inst.attempts
        attempts.append(Attempt(len(attempts) + 1, now, worker_pid=pid))
        record = self.tasks[inst.task]
        if record.status is Status.PENDING:
            # A task is Running from its first instance's start on a worker, not from when it
            # was queued: its status, clock and gxo_tasks_running agree with what runs.
            if (record.status, Status.RUNNING) not in TASK_TRANSITIONS:  # ``_set_status``
                self._set_status(record, Status.RUNNING)  # raises
            record.status = Status.RUNNING
            record.started_at = now
            self._listener.task_changed(record)
        task = record.task
        limit = task.attempt_timeout
        inst.deadline = now + limit if limit else None
        if inst.deadline is not None:
            self._add_timer(inst.deadline, inst)
        if task.timeout and record.deadline is None:
            # GXO's timeout bounds the whole task: every item and retry, from this start.
            record.deadline = now + task.timeout
            self._timer_seq += 1
            heapq.heappush(self._task_timers, (record.deadline, self._timer_seq, record.name))
        self._listener.instance_started(inst)
        if self.interrupted and not self.draining and not inst.killing:
            inst.killing = self.interrupted
            return [Kill(instance_id, self.interrupted, stimulus_id)]
        if record.timed_out and not inst.killing:
            inst.killing = "timed_out"  # dispatched before the task's timeout, started after
            return [Kill(instance_id, "timed_out", stimulus_id)]
        return []

    def _outcome(self, done: Done, now: float) -> None:
        """The worker reported the attempt's outcome."""
        inst = self.instances[done.instance_id]
        if self.control is not None:
            self.control.release(inst.id)  # its resources are free again
        record = self.tasks[inst.task]
        attempt = inst.attempts[-1]
        attempt.ended_at = now
        if done.started_at:
            attempt.started_at = done.started_at  # the worker's own clock reading: exact
        attempt.module_duration = done.duration
        attempt.max_rss_kib = done.max_rss_kib
        if done.outputs:
            attempt.outputs = list(done.outputs)
        attempt.processes_killed = done.leftovers_killed
        if isinstance(done.summary, dict):  # exec's command, directory and exit status
            attempt.command, attempt.cwd, attempt.exit_code = command_facts(done.summary)
        attempt.usage = done.usage
        record.duration_total += done.duration
        record.duration_count += 1
        if done.streams:
            inst.streams = _with_input_strategy(
                done.streams, record.task.channel_policy.overflow_strategy
            )
        inst.secrets_redacted += done.secrets_redacted
        for name in done.secrets_accessed:
            if name not in inst.secrets_accessed:
                inst.secrets_accessed.append(name)
        module = record.task.type
        previous = self._type_recent.get(module)
        self._type_recent[module] = (
            done.duration if previous is None else 0.7 * previous + 0.3 * done.duration
        )
        if done.ok and done.skipped:
            attempt.reason = done.reason
            self._instance_done(inst, Status.SKIPPED, done.reason, done.error, None, now)
            return
        if done.ok:
            attempt.reason = ""
            self._instance_done(inst, Status.COMPLETED, "", "", done.summary, now)
            return
        if done.reason == "template_error" and self._reads_stand_in(record.task):
            # In a dry run upstream summaries are stand-ins, so params that read them may not
            # render; nothing would run anyway, so say so instead of failing the task.
            summary = {"dry_run": True, "rendered": False, "error": done.error}
            reason = "dry_run_unrendered"
            self._instance_done(inst, Status.COMPLETED, reason, done.error, summary, now)
            return
        attempt.reason, attempt.error = done.reason, done.error
        inst.traceback = done.traceback
        if done.reason == "consumers_gone" and inst.task in self.groups:
            self._hold_producer(inst, done, now)
            return
        self._attempt_failed(inst, done.reason, done.error, done.summary, now, retry=done.retry)

    def _lost(self, event: AttemptLost, now: float) -> list[Kill]:
        """The instance's worker died or was killed while running it.

        ``event.outputs``: what its command printed before that; ``event.processes_killed``:
        how many processes it had started were killed with it.
        """
        inst = self.instances[event.instance_id]
        self._release_slots(inst.id)
        reason, detail = event.reason, event.detail
        outputs, processes_killed = event.outputs, event.processes_killed
        attempt = inst.attempt
        attempt.ended_at = now
        attempt.outputs = list(outputs)
        attempt.processes_killed = processes_killed
        attempt.command = None if event.command is None else list(event.command)
        attempt.cwd, attempt.exit_code = event.cwd, event.exit_code
        attempt.usage = event.usage
        task = self.tasks[inst.task].task
        if reason == "attempt_timed_out":
            limit = _seconds(task.attempt_timeout)
            error = f"attempt timed out after {limit} (attempt {attempt.number})"
        elif reason == "timed_out":
            error = (
                f"stopped: the task's timeout ({_seconds(task.timeout)}) expired during "
                f"attempt {attempt.number}"
            )
        elif reason == "fail_fast":
            error = "stopped by --fail-fast-kill after another task failed"
        elif reason in ("interrupted", "run_timed_out"):
            error = "stopped because the run was interrupted"
            if reason == "run_timed_out":
                limit = _seconds(self.playbook.timeout)
                error = f"stopped because the playbook timeout ({limit}) expired"
        else:
            inst.worker_deaths += 1
            error = detail
        if processes_killed and reason in ("timed_out", "interrupted", "run_timed_out"):
            error += f"; {processes_killed} process(es) it started were killed"
        attempt.reason, attempt.error = reason, error
        self._attempt_failed(inst, reason, error, None, now)
        return []

    def _returned(self, event: InstanceReturned, now: float) -> list[Kill]:
        """A worker died before starting the instance: queue it again, first in line."""
        inst = self.instances[event.instance_id]
        self._release_slots(inst.id)
        inst.returns += 1
        if inst.attempts and inst.attempts[-1].ended_at is None:
            inst.attempts.pop()  # it was about to start, but never did
        inst.deadline = None
        if self.interrupted:
            error = _unstarted_text(inst, self.interrupted)
            self._instance_done(inst, Status.CANCELLED, self.interrupted, error, None, now)
        elif self.tasks[inst.task].timed_out:
            limit = _seconds(self.tasks[inst.task].task.timeout)
            message = f"not run: the task's timeout ({limit}) expired"
            self._instance_done(inst, Status.FAILED, "timed_out", message, None, now)
        elif inst.task in self.groups:
            # Its pipes went with the dead worker: it cannot start apart from its group.
            message = "the worker died before starting this streaming task"
            self._instance_done(inst, Status.FAILED, "worker_lost", message, None, now)
        elif inst.returns > MAX_RETURNS:
            message = f"{inst.returns} workers died before they could start this instance"
            self._instance_done(inst, Status.FAILED, "worker_lost", message, None, now)
        else:
            self._move(inst, Phase.QUEUED)
            self._ready.appendleft(inst.id)
        return []

    def tick(self, now: float, stimulus_id: int = 0) -> list[Kill]:
        """Queue due retries and stop attempts and tasks whose timeout expired."""
        kills: list[Kill] = []
        timers = self._timers
        while timers and timers[0][0] <= now:
            timer = heapq.heappop(timers)
            if not self._timer_live(timer):
                continue
            inst = self.instances[timer[2]]
            if inst.phase is Phase.RETRY_WAIT:
                inst.retry_at = None
                self._move(inst, Phase.QUEUED)
                self._ready.append(inst.id)
            else:
                inst.killing = "attempt_timed_out"
                kills.append(Kill(inst.id, "attempt_timed_out", stimulus_id))
        task_timers = self._task_timers
        while task_timers and task_timers[0][0] <= now:
            task_timer = heapq.heappop(task_timers)
            if self._task_timer_live(task_timer):
                kills += self._task_timed_out(self.tasks[task_timer[2]], now, stimulus_id)
        return kills

    def _task_timer_live(self, timer: tuple[float, int, str]) -> bool:
        record = self.tasks[timer[2]]
        return (
            record.deadline == timer[0] and not record.timed_out and record.status not in TERMINAL
        )

    def _task_timed_out(self, record: TaskRecord, now: float, stimulus_id: int) -> list[Kill]:
        """The task's ``timeout`` expired: stop what runs; what has not run never will."""
        record.timed_out = True
        kills: list[Kill] = []
        text = f"not run: the task's timeout ({_seconds(record.task.timeout)}) expired"
        for inst in record.instances:
            if inst.phase is Phase.RUNNING and inst.killing != "timed_out":
                if not inst.killing:
                    kills.append(Kill(inst.id, "timed_out", stimulus_id))
                inst.killing = inst.killing or "timed_out"
            elif inst.phase in (Phase.WAITING, Phase.QUEUED, Phase.RETRY_WAIT):
                self._instance_done(inst, Status.FAILED, "timed_out", text, None, now)
        self._end_uncreated(record, Status.FAILED, "timed_out", text, now)
        return kills

    def _timer_live(self, timer: tuple[float, int, int]) -> bool:
        """Timers are never removed early; one is live while its instance still waits on it."""
        when, _, inst_id = timer
        inst = self.instances.get(inst_id)
        if inst is None:
            return False  # it ended and was released
        if inst.phase is Phase.RETRY_WAIT:
            return inst.retry_at == when
        return inst.phase is Phase.RUNNING and inst.deadline == when and not inst.killing

    def _add_timer(self, when: float, inst: InstanceRecord) -> None:
        self._timer_seq += 1
        heapq.heappush(self._timers, (when, self._timer_seq, inst.id))

    def interrupt(
        self, reason: str, now: float, stimulus_id: int = 0, *, kill: bool = True
    ) -> list[Kill]:
        """Stop the run: nothing new starts, running instances are killed.

        ``reason`` is ``interrupted`` (a signal) or ``run_timed_out`` (the playbook timeout),
        or one of the reasons that drain: ``drained`` (SIGUSR1/2), ``deadline``,
        ``fail_fast``. With ``kill=False`` running instances finish (a drain). A run that
        drains can still be stopped (a signal, the run timeout): its running instances are
        then killed too, and what the drain had already cancelled keeps its reason.
        """
        if self.interrupted and not (self.draining and kill):
            return []
        if not kill and not self.interrupted:
            self._restore_queued(now)
        self.interrupted = reason
        self.draining = not kill
        kills: list[Kill] = []
        for record in self.tasks.values():
            if record.status is Status.PENDING and record.ready_at is None:
                self._end_task(record, Status.CANCELLED, reason, _interrupt_text(reason), now)
        for inst in list(self.instances.values()):
            if inst.phase in (Phase.WAITING, Phase.QUEUED, Phase.RETRY_WAIT):
                error = _unstarted_text(inst, reason)
                self._instance_done(inst, Status.CANCELLED, reason, error, None, now)
            elif kill and inst.phase is Phase.RUNNING and not inst.killing:
                inst.killing = reason
                kills.append(Kill(inst.id, reason, stimulus_id))
        for record in self.tasks.values():
            if record.created < record.total:
                self._end_uncreated(record, Status.CANCELLED, reason, drain_text(reason), now)
        return kills

    def _restore_queued(self, now: float) -> None:
        """Before a drain cancels what did not start: complete the queued instances the
        journal restores (``--resume``), and those their ends queue, as dispatch would have.

        Restoring starts nothing, and an instance waiting for a busy worker, or a drain or
        ``--deadline`` reached at the start, cancelled them: the run then exited 75 for work
        that was already done, and a job script requeued it for nothing. A stream group is
        left to be cancelled (it is restored only whole, at its dispatch).
        """
        control = self.control
        if control is None or control.resumer is None:
            return
        progress = True
        while progress:
            progress = False
            queued = [i for i in self.instances.values() if i.phase is Phase.QUEUED]
            for inst in queued:
                if inst.phase is not Phase.QUEUED or inst.task in self.groups:
                    continue
                if self._restored(control, inst, now):
                    progress = True

    def drain(self, reason: str, now: float) -> None:
        """Start nothing new; running instances finish (SIGUSR1/2, ``--deadline``)."""
        self.interrupt(reason, now, kill=False)

    # -- producers whose consumers went away (DESIGN §15, "Streams that end early") -------------

    def _hold_producer(self, inst: InstanceRecord, done: Done, now: float) -> None:
        """Every consumer of ``inst`` closed its input: decide once they have all ended."""
        inst.deadline = None  # its worker is free; no timeout applies any more
        self._move(inst, Phase.HELD)
        self._held[inst.id] = done
        self._settle_producer(inst, now)

    def _settle_producers_of(self, consumer: str, now: float) -> None:
        """``consumer`` ended: settle the held producers that were waiting for it."""
        if not self._held:
            return
        for edge in self.graph.upstream(consumer):
            if edge.kind == "stream":
                for inst in self.tasks[edge.source].instances:
                    if inst.id in self._held:
                        self._settle_producer(inst, now)

    def _settle_producer(self, inst: InstanceRecord, now: float) -> None:
        consumers = [
            self.tasks[e.target] for e in self.graph.downstream(inst.task) if e.kind == "stream"
        ]
        if any(c.status not in TERMINAL for c in consumers):
            return
        done = self._held.pop(inst.id)
        lost = sum(e.undelivered for e in done.streams if e.side == "out")
        count = f"{lost} record(s) were not delivered"
        attempt = inst.attempt
        stopped = inst.killing if inst.killing in ("interrupted", "run_timed_out") else ""
        stopped = stopped or self.interrupted
        if stopped:
            attempt.reason = stopped
            self._instance_done(inst, Status.CANCELLED, stopped, done.error, None, now)
            return
        # A failure its task ignores (``ignore_errors``) does not stop the producer's
        # dependents: for the producer, that consumer only stopped reading early.
        failed = [
            c
            for c in consumers
            if c.status is Status.CANCELLED or (c.status is Status.FAILED and not c.ignored)
        ]
        if failed:
            first = failed[0]
            error = (
                f"stopped because its consumer {first.name!r} ended {first.status.value} "
                f"({first.reason}); {count}"
            )
            attempt.reason, attempt.error = "consumer_failed", error
            self._instance_done(inst, Status.CANCELLED, "consumer_failed", error, None, now)
            return
        names = ", ".join(repr(c.name) for c in consumers)
        error = f"its consumer(s) {names} closed their input early; {count}"
        ignored = [c for c in consumers if c.status is Status.FAILED]
        if ignored:
            error = (
                f"its consumer {ignored[0].name!r} failed ({ignored[0].reason}; ignored: "
                f"ignore_errors) before reading everything; {count}"
            )
        summary = done.summary
        if summary is None:
            summary = {"consumer_closed": True, "records_undelivered": lost}
        attempt.reason, attempt.error = "consumer_closed", error
        self._instance_done(inst, Status.COMPLETED, "consumer_closed", error, summary, now)

    # -- task life ---------------------------------------------------------------------------

    def _consider(self, record: TaskRecord, now: float) -> None:
        """All upstream edges are satisfied: skip, fail, or expand into instances."""
        if self.interrupted:
            error = drain_text(self.interrupted)
            self._end_task(record, Status.CANCELLED, self.interrupted, error, now)
            return
        if record.doomed_reason:
            self._end_task(record, *_doom_status(record), now)
            self._abort_group(record, now)
            return
        task = record.task
        control = self.control
        if control is not None and control.resumer is not None:  # stale: not to be reused
            ran = control.ran
            if any(e.source in ran for e in self.graph.upstream(task.name) if e.kind != "stream"):
                ran.add(task.name)  # what changed upstream may change what it does
                control.stale.add(task.name)
        templates = self.templates[task.name]
        namespace = self._namespace(task, templates) if templates.state_names else {}
        if self._settle is not None and (templates.when is not None or templates.loop is not None):
            self._settle()  # a template rendered here may take long (up to --render-timeout)
        try:
            if task.when is not None and not self._evaluate_when(task, templates, namespace):
                self._end_task(record, Status.SKIPPED, "when_false", "'when' was false", now)
                self._abort_group(record, now)
                return
            items = None if task.loop is None else self._loop_items(task, templates, namespace)
        except TemplateError as exc:
            # In a dry run, when/loop may read stand-in summaries: not evaluated, not failed.
            status, reason = (
                (Status.SKIPPED, "dry_run_unresolved")
                if self._reads_stand_in(task)
                else (Status.FAILED, "template_error")
            )
            if isinstance(exc, RenderStopped):  # a signal stopped the render: see gxo.template
                status, reason = Status.CANCELLED, "interrupted"
            self._end_task(record, status, reason, str(exc), now)
            self._abort_group(record, now)
            return
        group = self.groups.get(task.name)
        if group is not None:
            if items is not None:  # refused at validation; kept for playbooks built by hand
                error = "a task in a stream group cannot loop (streams cannot be replayed)"
                self._end_task(record, Status.FAILED, "invalid_stream_task", error, now)
                self._abort_group(record, now)
                return
            self._group_member_ready(group, record, namespace, now)
            return
        record.ready_at = now  # Running only once a worker starts an instance (_started)
        if items is None:
            record.total = 1
            self._new_instance(record, None, namespace)
        else:
            if not items:
                self._end_task(record, Status.COMPLETED, "", "", now, register=[])
                return
            # Items become instances as they may queue (_queue_more), not all here.
            record.items, record.base, record.total = items, namespace, len(items)
            if task.register is not None:
                record.register = [None] * len(items)
        self._listener.task_queued(record)
        self._queue_more(record, now)

    def _group_member_ready(
        self, group: tuple[str, ...], record: TaskRecord, namespace: dict[str, Any], now: float
    ) -> None:
        """Hold a ready member until the whole group is ready, then queue every member."""
        ready = self._group_ready.setdefault(group, {})
        ready[record.name] = namespace
        if len(ready) < len(group):
            return
        del self._group_ready[group]
        members = [self.tasks[name] for name in group]
        for member in members:
            member.ready_at = now
            member.total = 1
            self._new_instance(member, None, ready[member.name])
            self._listener.task_queued(member)
        for member in members:  # consecutive in the queue: ``dispatch`` takes them together
            inst = member.instances[-1]
            self._move(inst, Phase.QUEUED)
            inst.ready_at = now
            self._ready.append(inst.id)

    def _abort_group(self, record: TaskRecord, now: float) -> None:
        """A member ended before its group started: the rest of the group cannot run."""
        group = self.groups.get(record.name)
        if group is None:
            return
        self._group_ready.pop(group, None)
        error = f"stream group member {record.name!r} did not start ({record.reason})"
        # Nothing failed when the member was skipped (``when_false``, a dry run's unresolved
        # ``when``): say so, and let the group's dependents run as a skipped task's do.
        skipped = record.status is Status.SKIPPED and record.reason != "upstream_failed"
        reason = "upstream_skipped" if skipped else "upstream_failed"
        for name in group:
            other = self.tasks[name]
            if other.status is Status.PENDING and other.ready_at is None:
                self._end_task(other, Status.SKIPPED, reason, error, now)

    def _reads_stand_in(self, task: Task) -> bool:
        """A dry run, and ``task`` reads the register of a task that did not really run.

        Its template error may then come from a stand-in summary (a real run has the real
        one); one that reads only vars, items and real outcomes fails as in a real run.
        """
        if not self.dry_run:
            return False
        for edge in self.graph.upstream(task.name):
            if edge.kind == "register":
                upstream = self.tasks[edge.source]
                if upstream.status is Status.COMPLETED or upstream.reason.startswith("dry_run"):
                    return True
        return False

    def _evaluate_when(self, task: Task, templates: TaskTemplates, ns: dict[str, Any]) -> bool:
        if isinstance(task.when, bool):
            return task.when
        assert templates.when is not None
        return truthy(templates.when.render(ns))

    def _loop_items(
        self, task: Task, templates: TaskTemplates, ns: dict[str, Any]
    ) -> list[Any] | None:
        if task.loop is None:
            return None
        value = task.loop if templates.loop is None else templates.loop.render(ns)
        items = loop_items(value)
        if items is None:
            message, hint = loop_value_problem(task, value)
            raise TemplateError(message, f"{task.path}.loop", hint)
        return items

    def _new_instance(
        self, record: TaskRecord, index: int | None, namespace: dict[str, Any]
    ) -> InstanceRecord:
        inst = InstanceRecord(
            id=self._next_id, task=record.task.name, loop_index=index, namespace=namespace
        )
        inst.status = Status.RUNNING
        self._next_id += 1
        self.instances[inst.id] = inst
        record.instances.append(inst)
        record.created += 1
        return inst

    def _next_item(self, record: TaskRecord) -> InstanceRecord:
        """The loop's next item as an instance (WAITING), with its own namespace."""
        index = record.created
        items, base = record.items, record.base
        assert items is not None
        assert base is not None
        inst = self._new_instance(
            record, index, {**base, record.task.loop_control.loop_var: items[index]}
        )
        if record.created == record.total:
            record.items = record.base = None  # every item is an instance now
        return inst

    def _queue_more(self, record: TaskRecord, now: float) -> None:
        """Queue waiting instances while ``loop_control.parallel`` allows.

        O(1) per call, amortised: a loop's items become instances in order, here, as they
        may queue; outside an interrupt every created instance was queued, so the active ones
        are ``created - done_count``. A task without a loop has its one instance, WAITING.
        """
        if record.task.loop is None:
            for inst in record.instances:
                if inst.phase is Phase.WAITING:  # always legal: ``_move`` not needed
                    inst.phase = Phase.QUEUED
                    inst.ready_at = now
                    self._ready.append(inst.id)
            return
        limit = record.task.loop_control.parallel
        active = record.created - record.done_count
        while active < limit and record.created < record.total:
            inst = self._next_item(record)
            self._move(inst, Phase.QUEUED)
            inst.ready_at = now
            self._ready.append(inst.id)
            active += 1

    def _end_uncreated(
        self, record: TaskRecord, status: Status, reason: str, error: str, now: float
    ) -> None:
        """The loop's items not yet instances end unrun (an interrupt, the task's timeout).

        Ended here in a loop, not through ``_instance_done``: that would recurse once per
        item (it ends the rest of an interrupted task itself).
        """
        while record.created < record.total:
            inst = self._next_item(record)
            inst.status, inst.reason, inst.error = status, reason, error
            self._move(inst, Phase.DONE)
            record.done_count += 1
            self._listener.instance_finished(inst)
            self._ended_here(record, inst)
        if record.done_count == record.total and record.status not in TERMINAL:
            self._task_instances_done(record, now)

    def _attempt_failed(
        self,
        inst: InstanceRecord,
        reason: str,
        error: str,
        summary: Any,
        now: float,
        *,
        retry: bool = True,
    ) -> None:
        record = self.tasks[inst.task]
        policy = record.task.retry
        if inst.killing in ("interrupted", "run_timed_out", "fail_fast"):
            self._instance_done(inst, Status.CANCELLED, inst.killing, error, summary, now)
            return
        inst.killing = ""
        if record.timed_out:  # the task's timeout expired: no retry
            self._instance_done(inst, Status.FAILED, "timed_out", error, summary, now)
            return
        again = should_retry(policy, len(inst.attempts), reason, inst.worker_deaths, retry=retry)
        if again and self.draining:
            # Another attempt would be new work: not its own failure, so Cancelled.
            self._instance_done(inst, Status.CANCELLED, self.interrupted, error, summary, now)
            return
        if again and not self.interrupted:
            self._move(inst, Phase.RETRY_WAIT)
            inst.deadline = None
            inst.retry_at = now + retry_delay(policy, len(inst.attempts), self.rng)
            self._add_timer(inst.retry_at, inst)
            self._listener.retry_scheduled(inst, inst.retry_at - now)
            return
        if (
            retry
            and reason.startswith("worker_")
            and inst.worker_deaths >= MAX_WORKER_DEATHS
            and len(inst.attempts) < policy.attempts
            and policy.on_error
        ):  # retry.attempts allowed more: say why it stopped (before the crash's output)
            head, output, tail = error.partition("; its last output:")
            error = (
                f"{head}; not retried again: it killed {inst.worker_deaths} worker processes "
                f"(at most {MAX_WORKER_DEATHS}, whatever retry.attempts says){output}{tail}"
            )
        self._instance_done(inst, Status.FAILED, reason, error, summary, now)

    def _instance_done(
        self,
        inst: InstanceRecord,
        status: Status,
        reason: str,
        error: str,
        summary: Any,
        now: float,
    ) -> None:
        record = self.tasks[inst.task]
        record.done_count += 1
        inst.status, inst.reason, inst.error, inst.summary = status, reason, error, summary
        if Phase.DONE not in _NEXT_PHASES[inst.phase]:  # ``_move``, inlined when legal
            self._move(inst, Phase.DONE)
        inst.phase = Phase.DONE
        inst.deadline = inst.retry_at = None
        self._listener.instance_finished(inst)
        self._ended_here(record, inst)
        if self.interrupted:
            for other in list(record.instances):
                if other.phase in (Phase.WAITING, Phase.QUEUED, Phase.RETRY_WAIT):
                    other.status, other.reason = Status.CANCELLED, self.interrupted
                    other.error = _unstarted_text(other, self.interrupted)
                    self._move(other, Phase.DONE)
                    record.done_count += 1
                    self._listener.instance_finished(other)
                    self._ended_here(record, other)
            if record.created < record.total:
                error = drain_text(self.interrupted)
                self._end_uncreated(record, Status.CANCELLED, self.interrupted, error, now)
        elif not record.timed_out and record.created < record.total:
            self._queue_more(record, now)  # a loop's items not yet instances (else no-op)
        if record.done_count == record.total and record.status not in TERMINAL:
            self._task_instances_done(record, now)
        if status is Status.FAILED and not record.task.ignore_errors:
            self._fail_fast(now)

    def _ended_here(self, record: TaskRecord, inst: InstanceRecord) -> None:
        """Count an instance that ended; hand it to the spool; release a loop iteration."""
        record.note_ended(inst)
        if record.register is not None and inst.loop_index is not None:
            record.register[inst.loop_index] = _item_result(inst)
        if self._ended is not None:
            self._ended(inst)
        if self._release_finished and inst.loop_index is not None:
            self.instances.pop(inst.id, None)
            labels = self._ended_labels
            labels[inst.id] = inst.label
            if len(labels) > _ENDED_LABELS:
                del labels[next(iter(labels))]
            live = record.instances
            # Compact in bulk (amortised O(1)): at most half of the list has ended.
            if 2 * (record.done_count - (record.created - len(live))) > len(live):
                record.instances = [i for i in live if i.phase is not Phase.DONE]

    def _fail_fast(self, now: float) -> None:
        """``--fail-fast``: the first failure that is not ignored drains (or stops) the run."""
        control = self.run_control
        if control.fail_fast and not self.interrupted:
            self._kills += self.interrupt("fail_fast", now, kill=control.fail_fast_kill)

    def _task_instances_done(self, record: TaskRecord, now: float) -> None:
        counts, firsts, total = record.counts, record.firsts, record.total
        if record.timed_out:
            error = f"timed out after {_seconds(record.task.timeout)} (the whole task"
            if record.task.loop is not None:
                done = counts.get(Status.COMPLETED, 0)
                error += f": {done} of {total} iterations completed"
            self._end_task(record, Status.FAILED, "timed_out", error + ")", now)
            return
        failed = firsts.get(Status.FAILED)
        if failed is not None:
            error = failed.error
            if record.task.loop is not None:
                count = counts[Status.FAILED]
                error = f"{failed.label}: {error}" + (
                    f" (and {count - 1} more iteration(s) failed)" if count > 1 else ""
                )
            self._end_task(record, Status.FAILED, failed.reason, error, now)
            return
        cancelled = firsts.get(Status.CANCELLED)
        if cancelled is not None:
            error = cancelled.error
            if record.task.loop is not None and error:  # which item, as for a failure
                done = counts.get(Status.COMPLETED, 0)
                error = f"{cancelled.label}: {error} ({done} of {total} iterations completed)"
            self._end_task(record, Status.CANCELLED, cancelled.reason, error, now)
            return
        skipped = firsts.get(Status.SKIPPED)
        if skipped is not None and counts[Status.SKIPPED] == total:
            self._end_task(record, Status.SKIPPED, skipped.reason, skipped.error, now)
            return
        reason = error = ""
        if record.task.loop is None:
            only = record.instances[0]
            register: Any = only.summary
            if only.reason == "consumer_closed":
                reason, error = only.reason, only.error
        else:
            register = record.register
        if not reason and total and record.resumed == total:
            reason = "resumed"
        self._end_task(record, Status.COMPLETED, reason, error, now, register=register)

    def _end_task(
        self,
        record: TaskRecord,
        status: Status,
        reason: str,
        error: str,
        now: float,
        *,
        register: Any = None,
    ) -> None:
        """Give the task its terminal status, fill its register, release its dependents."""
        if (record.status, status) not in TASK_TRANSITIONS:  # ``_set_status``, inlined
            self._set_status(record, status)  # raises
        record.status = status
        record.reason, record.error, record.ended_at = reason, error, now
        if record.started_at is None:
            record.started_at = now
        task = record.task
        if status is Status.FAILED and task.ignore_errors:
            record.ignored = True
        if task.register is not None:
            value = self._register_value(record, register)
            if value is not _NOTHING:
                self.store[task.register] = value
        self._open_tasks -= 1
        self._listener.task_changed(record)
        for edge in self.graph.downstream(task.name):
            self._release(self.tasks[edge.target], record, edge.kind, now)
        if status is Status.FAILED and not record.ignored:
            self._fail_fast(now)
        if self._held:
            self._settle_producers_of(task.name, now)

    def _register_value(self, record: TaskRecord, value: Any) -> Any:
        if record.status is Status.COMPLETED:
            return value
        # A Skipped task registers nothing, as in GXO: a template that reads its register
        # fails (undefined variable); read _gxo.tasks.<name>.status to branch on a skip.
        if record.status is Status.FAILED and record.ignored:
            if record.task.loop is not None:
                return record.register
            summary = record.instances[0].summary if record.instances else None
            base: dict[str, Any] = dict(summary) if isinstance(summary, dict) else {}
            base.update(failed=True, reason=record.reason, error=record.error)
            return base
        return _NOTHING

    def _release(self, downstream: TaskRecord, upstream: TaskRecord, kind: str, now: float) -> None:
        if downstream.status is not Status.PENDING or downstream.ready_at is not None:
            return  # already queued (or ended)
        if kind == "stream":
            return  # a stream edge is not waited for: the group starts together
        if kind in _BLOCKING_EDGES and not downstream.doomed_reason:
            if upstream.status is Status.CANCELLED:
                downstream.doomed_by, downstream.doomed_reason = upstream.name, "cancelled"
            elif (upstream.status is Status.FAILED and not upstream.ignored) or (
                upstream.status is Status.SKIPPED and upstream.reason == "upstream_failed"
            ):
                downstream.doomed_by, downstream.doomed_reason = upstream.name, "upstream_failed"
        downstream.waiting_on -= 1
        if downstream.waiting_on == 0:
            self._consider(downstream, now)

    def _set_status(self, record: TaskRecord, status: Status) -> None:
        if (record.status, status) not in TASK_TRANSITIONS:
            raise InternalError(
                f"task {record.name!r}: illegal status change {record.status} -> {status}"
            )
        record.status = status

    @staticmethod
    def _move(inst: InstanceRecord, phase: Phase) -> None:
        if phase not in _NEXT_PHASES[inst.phase]:
            raise InternalError(
                f"instance {inst.label!r}: illegal phase change {inst.phase} -> {phase}"
            )
        inst.phase = phase

    # -- state views -------------------------------------------------------------------------

    def _namespace(self, task: Task, templates: TaskTemplates) -> dict[str, Any]:
        """The copy of the state this task's templates reference, and nothing else."""
        namespace: dict[str, Any] = {}
        store = self.store
        for name in templates.state_names:
            if name == "_gxo":
                namespace["_gxo"] = {"tasks": self._statuses(self._status_refs[task.name])}
            elif name in store:
                namespace[name] = store[name]
        return namespace

    def _statuses(self, names: Iterable[str] | None) -> dict[str, dict[str, str]]:
        chosen = self.tasks if names is None else names
        return {n: {"status": self.tasks[n].status.value} for n in chosen if n in self.tasks}

    def validate(self) -> None:
        """Check the invariants that must hold between events (used by tests)."""
        open_tasks = sum(1 for r in self.tasks.values() if r.status not in TERMINAL)
        assert open_tasks == self._open_tasks, (open_tasks, self._open_tasks)
        for record in self.tasks.values():
            assert sum(record.counts.values()) == record.done_count, record.name
            live = [i for i in record.instances if i.phase is not Phase.DONE]
            released = record.created - len(record.instances)
            done_here = len(record.instances) - len(live)
            assert released + done_here == record.done_count, record.name
            assert record.created <= record.total, record.name
            if record.task.loop is not None:  # a loop's items wait uncreated, not WAITING
                assert not any(i.phase is Phase.WAITING for i in live), record.name
            if record.status in TERMINAL:
                assert record.done_count == record.total, record.name
                assert not live, record.name
            if record.status is Status.PENDING and record.ready_at is None:
                assert not record.instances, record.name
            if record.status is Status.RUNNING:
                assert record.attempts_total or any(i.attempts for i in live), record.name
        for inst_id in self._ready:
            inst = self.instances.get(inst_id)
            assert inst is None or inst.phase in (Phase.QUEUED, Phase.DONE)


_NOTHING: Any = object()
#: Labels of released iterations remembered for late output lines.
_ENDED_LABELS = 256
#: The stream wiring of a task outside any stream group.
_NO_STREAMS: tuple[tuple[str, ...], tuple[StreamEdge, ...]] = ((), ())


def _item_result(inst: InstanceRecord) -> Any:
    """One loop item's entry in the loop's register (:func:`loop_item_result`).

    An item that never ran (cancelled before its first attempt) is null; ``error`` is null
    when the item did not fail. An item restored from the journal has the entry its own run
    gave it (reason ``""``): ``resumed`` says why its *status* is Completed, it is not part of
    its result, and a register that differed from the first run's would change the
    fingerprint of every task reading it, so ``--resume`` would run them again.
    """
    if not inst.attempts and inst.status is not Status.COMPLETED:
        return None
    completed = inst.status is Status.COMPLETED
    return loop_item_result(
        inst.summary,
        failed=inst.status is Status.FAILED,
        reason="" if inst.reason == "resumed" else inst.reason,
        error=inst.error if inst.error and not completed else None,
    )


def _doom_status(record: TaskRecord) -> tuple[Status, str, str]:
    if record.doomed_reason == "cancelled":
        return Status.CANCELLED, "cancelled", f"upstream task {record.doomed_by!r} was cancelled"
    return (
        Status.SKIPPED,
        "upstream_failed",
        f"upstream task {record.doomed_by!r} did not complete",
    )


def _interrupt_text(reason: str) -> str:
    return drain_text(reason)


def _unstarted_text(inst: InstanceRecord, reason: str) -> str:
    """Why ``inst``, which was not running, was cancelled; with its last failure if it was
    waiting to be retried (else that failure would be shown nowhere)."""
    text = drain_text(reason)
    if inst.phase is not Phase.RETRY_WAIT or not inst.attempts:
        return text
    last = inst.attempts[-1]
    text = text.replace("not started:", "not retried:", 1)
    return f"{text} (attempt {last.number} failed: {last.reason}: {last.error})"


def _seconds(value: float | None) -> str:
    if value is None:
        return "?"
    return f"{value:g}s"


def _with_input_strategy(edges: Iterable[EdgeStats], strategy: str) -> list[EdgeStats]:
    """A worker's edge counters, the input edges given the consumer's ``overflow_strategy``.

    The strategy is the consumer's ``channel_policy``, which only its producers' writers
    apply: the consumer's reader does not know it, so its ``in`` counters come back with the
    default ``block``. The parent knows the task's policy, so the report's ``in`` side shows
    the strategy of the edge as the ``out`` side does.
    """
    out = list(edges)
    for edge in out:
        if edge.side == "in":
            edge.strategy = strategy
    return out
