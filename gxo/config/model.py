"""The validated playbook: immutable msgspec Structs that every later stage reads.

The loader (``gxo.config.load``) turns YAML into these after the schema and the logical
checks pass; nothing downstream re-validates. Durations are already seconds (float), defaults
are already applied, and per-task policies are already merged with the playbook's, so the
DAG builder and the scheduler read one effective value.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

__all__ = [
    "ChannelPolicy",
    "Isolation",
    "Limits",
    "LimitsMode",
    "LoopControl",
    "OverflowStrategy",
    "Playbook",
    "RetryPolicy",
    "StatePolicy",
    "Task",
    "TaskPolicy",
]

OverflowStrategy = Literal["block", "drop_new", "drop_oldest", "error"]


class RetryPolicy(msgspec.Struct, frozen=True, kw_only=True):
    """How often and how soon a failed attempt is tried again.

    ``attempts`` counts every try, the first included. The wait before attempt ``i+1`` is
    ``delay * backoff_factor**(i-1)``, plus up to ``± jitter`` of itself, capped at
    ``max_delay`` when that is above 0. ``on_error=False`` means a failure is final.
    Unlike GXO, ``delay: 0s`` is a real zero delay.
    """

    attempts: int = 1
    delay: float = 1.0
    max_delay: float = 0.0
    backoff_factor: float = 1.0
    jitter: float = 0.0
    on_error: bool = True


class LoopControl(msgspec.Struct, frozen=True, kw_only=True):
    """``parallel``: how many iterations may run at once; ``loop_var``: the item's name."""

    parallel: int = 1
    loop_var: str = "item"


class TaskPolicy(msgspec.Struct, frozen=True, kw_only=True):
    """``skip_on_no_input``: a stream consumer whose producers sent nothing is Skipped."""

    skip_on_no_input: bool = False


class ChannelPolicy(msgspec.Struct, frozen=True, kw_only=True):
    """Bounds of each stream edge into a task: records buffered, and what to do when full."""

    buffer_size: int = 100
    overflow_strategy: OverflowStrategy = "block"


Isolation = Literal["pooled", "process"]
LimitsMode = Literal["strict", "best_effort"]


class Limits(msgspec.Struct, frozen=True, kw_only=True):
    """Hard limits on a task (gxo extension); ``None`` or 0: no limit.

    ``output``: bytes a command may write to stdout and stderr together, per attempt (checked
    by the command's reader: no fresh process needed). The others bound one attempt and need
    ``isolation: process`` (they imply it): ``memory`` (bytes, the whole process tree),
    ``cpu`` (CPU seconds per process), ``open_files`` (descriptors the task may open),
    ``processes`` (the whole tree at once), ``file_size`` (bytes, the largest file written).
    """

    output: int | None = None
    memory: int | None = None
    cpu: float | None = None
    open_files: int | None = None
    processes: int | None = None
    file_size: int | None = None

    #: The keys that need a fresh process (all but ``output``), in the order they are shown.
    PROCESS_KEYS = ("memory", "cpu", "open_files", "processes", "file_size")

    def process_limits(self) -> dict[str, float]:
        """The limits set that need ``isolation: process``, by key (empty: none)."""
        found: dict[str, float] = {}
        for key in self.PROCESS_KEYS:
            value = getattr(self, key)
            if value:
                found[key] = value
        return found


class StatePolicy(msgspec.Struct, frozen=True, kw_only=True):
    """Kept for GXO compatibility. Workers always receive copies, so both modes are safe."""

    access_mode: Literal["deep_copy", "unsafe_direct_reference"] = "deep_copy"


class Task(msgspec.Struct, frozen=True, kw_only=True):
    """One task of the playbook, with every default applied and every policy merged.

    Attributes:
        index: 0-based position in the playbook's ``tasks`` list (used in ``$.tasks[i]``).
        name: the task's id: its ``name``, or ``__task_idx_<index>`` when it has none.
        named: whether the playbook gave a name (unnamed tasks cannot be referenced).
        type: the module type, already checked to be installed.
        params: raw parameters; strings may hold templates, rendered in the worker.
        when: a template (or a literal bool) evaluated in the parent; ``None`` = always.
        loop: a literal list, a template string, or ``None`` for a single instance.
        timeout: seconds the whole task may take (every loop item, every retry and the
            waits between, from its first attempt's start), ``None`` for no timeout (GXO).
        attempt_timeout: seconds one attempt may take, ``None`` for no bound (gxo extension).
        depends_on: explicit dependencies (a gxo extension), by task name.
        tags, inputs, outputs, resources: gxo extensions for partial runs and resume
            (``--tags``), the journal's file fingerprints, and slots/capacity per instance.
    """

    index: int
    name: str
    named: bool
    type: str
    params: dict[str, Any] = msgspec.field(default_factory=dict)
    register: str | None = None
    stream_inputs: tuple[str, ...] = ()
    depends_on: tuple[str, ...] = ()
    when: str | bool | None = None
    loop: list[Any] | str | None = None
    loop_control: LoopControl = LoopControl()
    retry: RetryPolicy = RetryPolicy()
    timeout: float | None = None
    attempt_timeout: float | None = None
    ignore_errors: bool = False
    policy: TaskPolicy = TaskPolicy()
    channel_policy: ChannelPolicy = ChannelPolicy()
    state_policy: StatePolicy = StatePolicy()
    tags: tuple[str, ...] = ()
    inputs: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()
    resources: dict[str, float] = msgspec.field(default_factory=dict)
    limits: Limits = Limits()
    #: ``process`` when the playbook or the task asks for it, or a limit or ``network: false``
    #: implies it (already resolved: the scheduler and the executor read this one value).
    isolation: Isolation = "pooled"
    #: ``network: false``: every attempt in a network namespace of its own (loopback only).
    network: bool = True
    limits_mode: LimitsMode = "strict"
    #: What is shown of the commands' output while they run (gxo extension): ``stream``
    #: (relayed live as ``task | line``, as with ``-v``), ``capture`` (the default: only
    #: with ``-v``), ``quiet`` (never relayed, even with ``-v``; still in the log files).
    output: str = "capture"

    @property
    def cpus(self) -> int:
        """Worker slots one instance occupies (``resources.cpus``, default 1)."""
        return int(self.resources.get("cpus", 1))

    @property
    def path(self) -> str:
        """The task's address in the playbook, ``$.tasks[<index>]``."""
        return f"$.tasks[{self.index}]"


class Playbook(msgspec.Struct, frozen=True, kw_only=True):
    """A whole validated playbook.

    ``source`` is the file it came from (or ``<string>``); ``timeout`` is the gxo extension
    that bounds the whole run in seconds.
    """

    name: str
    schema_version: str
    tasks: tuple[Task, ...]
    vars: dict[str, Any] = msgspec.field(default_factory=dict)
    task_policy: TaskPolicy = TaskPolicy()
    channel_policy: ChannelPolicy = ChannelPolicy()
    state_policy: StatePolicy = StatePolicy()
    timeout: float | None = None
    #: ``output_capture`` in bytes (gxo extension); ``None``: the default (or the flag).
    output_capture: int | None = None
    limits: Limits = Limits()
    #: The playbook-level defaults of ``isolation``, ``network`` and ``limits_mode``.
    isolation: Isolation = "pooled"
    network: bool = True
    limits_mode: LimitsMode = "strict"
    source: str = "<string>"

    def task(self, name: str) -> Task:
        """The task with this id (raises KeyError)."""
        for task in self.tasks:
            if task.name == name:
                return task
        raise KeyError(name)
