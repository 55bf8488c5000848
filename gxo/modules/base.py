"""The contract a gxo module implements, and the context it runs with.

A module is a class with a ``name`` (the playbook's ``type``), a ``Params`` msgspec Struct
that describes and validates its parameters, and a ``run`` method called inside a worker
process with the rendered, converted parameters. Whatever ``run`` returns (JSON-compatible
data) is the task's summary, stored under ``register``. To fail, raise :class:`ModuleError`;
any other exception also fails the task (reason ``module_raised``), and so does a crash.
"""

from __future__ import annotations

import logging
import types
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

import msgspec

from gxo.errors import GxoError

if TYPE_CHECKING:
    from gxo.modules.capture import CaptureSettings
    from gxo.outputs import CapturedOutput
    from gxo.streams import Streams

__all__ = [
    "Module",
    "ModuleContext",
    "ModuleError",
    "NoParams",
    "ParamsError",
]


class NoParams(msgspec.Struct, forbid_unknown_fields=True):
    """Parameters of a module that takes none."""


P = TypeVar("P", bound=msgspec.Struct)


class ModuleError(GxoError):
    """Raised by a module to fail its task with a clear message.

    Args:
        message: what went wrong, for the report and the logs.
        reason: the machine-readable reason shown in the report (``module_failed`` unless a
            module has a more precise one, such as ``nonzero_exit(2)``). A third-party
            module may use its own name; :mod:`gxo.reasons` lists gxo's.
        summary: data to keep even though the task failed (``exec`` keeps stdout, stderr and
            exit_code); an ignored failure registers it.
        retry: False when another attempt cannot succeed (a bad input file, a refused
            credential): the task's ``retry`` is not used, whatever the reason.
    """

    def __init__(
        self,
        message: str,
        *,
        reason: str = "module_failed",
        summary: Any = None,
        retry: bool = True,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason
        self.summary = summary
        self.retry = retry


class ParamsError(ModuleError):
    """The parameters do not fit the module's ``Params`` (reason ``bad_params``)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, reason="bad_params")


class ModuleContext:
    """What a running module may use besides its parameters.

    Attributes:
        task_name: the task's id.
        instance_id: unique per task instance within the run.
        attempt: 1 for the first try, 2 for the first retry, ...
        loop_index: the iteration's position in the loop, ``None`` outside a loop.
        dry_run: when true the module must not change anything; it reports what it would do.
        log: a logger whose records are tagged with the task and redacted before they leave.
        state: a read-only copy of the state the task's templates reference, and the keys
            its module declares in ``reads_state``; read-only at every depth (mappings are
            read-only views, lists are tuples).
        playbook_dir: the directory of the playbook file (relative paths in params that
            name files of the playbook, such as ``python``'s ``file.py:function``, start here).
        capture: how a command's output is kept (log files, caps); see
            :mod:`gxo.modules.capture` (given as the settings, or as a function that makes
            them when a module first reads them). A module that runs commands appends what
            it captured to ``outputs`` and counts the processes it had to kill in
            ``leftovers_killed``.

    Streams (see ``docs/streams.md``): ``ctx.inputs`` iterates the records of every stream
    input (fan-in), ``ctx.input(name)`` those of one producer, ``ctx.emit(record)`` and
    ``ctx.emit_many(records)`` send to every output (fan-out); outputs are ended when ``run``
    returns. A producer that failed or died mid-stream makes the input iterator raise a
    :class:`gxo.streams.StreamError`, and the task fails even if the module catches it.
    Inputs the module did not read to their end are drained (read and discarded, counted)
    after ``run`` returns, so their producers complete; to stop them early instead, call
    ``ctx.close_inputs()``.
    """

    def __init__(
        self,
        *,
        task_name: str,
        instance_id: int,
        attempt: int = 1,
        loop_index: int | None = None,
        dry_run: bool = False,
        log: logging.Logger | None = None,
        state: Mapping[str, Any] | None = None,
        taint: Callable[[str], None] | None = None,
        playbook_dir: str = "",
        streams: Streams | None = None,
        capture: CaptureSettings | Callable[[], CaptureSettings] | None = None,
    ) -> None:
        self.task_name = task_name
        self.instance_id = instance_id
        self.attempt = attempt
        self.loop_index = loop_index
        self.dry_run = dry_run
        self._log = log
        #: What ``state`` is made from on first read (most modules never read it).
        self._raw_state = state
        self._state: Mapping[str, Any] | None = None
        self._taint = taint
        self.playbook_dir = playbook_dir
        self._streams = streams
        #: The settings, or what makes them on first use (only modules that run commands
        #: read them: a worker does not build them for the others).
        self._capture: CaptureSettings | Callable[[], CaptureSettings] | None = capture
        self.outputs: list[CapturedOutput] = []
        self.leftovers_killed = 0
        if streams is not None:  # straight to the writers: no extra call per record
            self.emit = streams.emit  # type: ignore[method-assign]
            self.emit_many = streams.emit_many  # type: ignore[method-assign]

    @property
    def state(self) -> Mapping[str, Any]:
        """The state the module may read, read-only at every depth (see the class)."""
        state = self._state
        if state is None:
            state = self._state = frozen(self._raw_state or {})
            self._raw_state = None
        return state

    @property
    def capture(self) -> CaptureSettings:
        """How a command's output is kept (see :mod:`gxo.modules.capture`)."""
        # Imported here: the parent imports this module for the registry and never captures
        # (capture pulls in the redactor); a worker has it from the forkserver's preload.
        from gxo.modules.capture import CaptureSettings

        capture = self._capture
        if not isinstance(capture, CaptureSettings):
            capture = self._capture = CaptureSettings() if capture is None else capture()
        return capture

    @capture.setter
    def capture(self, settings: CaptureSettings) -> None:
        self._capture = settings

    @property
    def log(self) -> logging.Logger:
        """``gxo.task.<task name>``, created on first use (most modules never log)."""
        if self._log is None:
            self._log = logging.getLogger(f"gxo.task.{self.task_name}")
        return self._log

    # -- streams -----------------------------------------------------------------------------

    @property
    def has_streams(self) -> bool:
        """Whether the task has stream inputs or outputs."""
        s = self._streams
        return s is not None and bool(s.readers or s.writers)

    @property
    def has_inputs(self) -> bool:
        return self._streams is not None and bool(self._streams.readers)

    @property
    def has_outputs(self) -> bool:
        return self._streams is not None and bool(self._streams.writers)

    @property
    def input_names(self) -> tuple[str, ...]:
        """The producers this task reads, in ``stream_inputs`` order."""
        return () if self._streams is None else self._streams.input_names

    @property
    def inputs(self) -> Iterator[Any]:
        """Every record of every stream input, as they arrive (empty without inputs)."""
        return iter(()) if self._streams is None else self._streams.records()

    def input(self, producer: str) -> Iterator[Any]:
        """The records sent by ``producer``, in order (raises KeyError for another name)."""
        if self._streams is None:
            raise KeyError(f"no stream input from {producer!r} (the task has no stream inputs)")
        return self._streams.input(producer)

    def input_batches(self) -> Iterator[list[Any]]:
        """Records of every input in lists, as they arrived (faster than one at a time)."""
        return iter(()) if self._streams is None else self._streams.batches()

    def forward_inputs(self) -> int:
        """Send every input record to every output, unchanged; returns how many.

        Faster than ``emit_many`` over ``inputs``: batches are passed on still encoded when
        nothing needs to look at them.
        """
        return 0 if self._streams is None else self._streams.forward()

    @property
    def record_limit(self) -> int:
        """The largest encoded record an output may carry (``--record-limit``); 0 without
        stream outputs. A module that builds a record piece by piece (``exec`` reading a
        line) can stop at this size instead of holding more."""
        s = self._streams
        return s.record_limit if s is not None and s.writers else 0

    def close_inputs(self) -> None:
        """Stop reading every stream input now (like ``head`` closing its pipe).

        The producers are told at their next write and end ``Completed`` with reason
        ``consumer_closed``, counting the records they could not deliver; records not yet
        read are discarded. Without it, unread inputs are drained when ``run`` returns.
        Reading the inputs afterwards yields nothing.
        """
        if self._streams is not None:
            self._streams.close_inputs()

    def emit(self, record: Any) -> None:
        """Send ``record`` to every stream output (a no-op without outputs)."""
        if self._streams is not None:
            self._streams.emit(record)

    def emit_many(self, records: Iterable[Any]) -> None:
        """Send each record to every stream output."""
        if self._streams is not None:
            self._streams.emit_many(records)

    def mark_secret(self, value: str) -> None:
        """Treat ``value`` as a secret: it is redacted from everything that leaves the worker."""
        if self._taint is not None:
            self._taint(value)


def frozen(value: Any) -> Any:
    """``value`` read-only at every depth: mappings become read-only views, lists and
    tuples tuples, sets frozensets (``ctx.state``: a module cannot change what it was sent)."""
    if isinstance(value, Mapping):
        return types.MappingProxyType({k: frozen(v) for k, v in value.items()})
    if isinstance(value, list | tuple):
        return tuple(frozen(v) for v in value)
    if isinstance(value, set | frozenset):
        return frozenset(value)
    return value


class Module(Generic[P]):
    """Base class of every module, built-in or third-party.

    Subclasses set ``name`` and ``Params`` and implement :meth:`run`. ``Params`` should be
    declared with ``forbid_unknown_fields=True`` so a typo in a playbook is an error.
    ``supports_dry_run`` says that ``run`` honours ``ctx.dry_run``. ``reads_state`` names
    the state keys (vars, registers) the module reads from ``ctx.state`` without a template
    referencing them (GXO's ``StateReader``): they are sent with each instance, and a task
    registering one runs before (honoured for classes given to ``gxo.run(modules=...)``).
    """

    name: ClassVar[str]
    Params: ClassVar[type[msgspec.Struct]] = NoParams
    supports_dry_run: ClassVar[bool] = False
    reads_state: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def prepare_params(cls, raw: dict[str, Any]) -> dict[str, Any]:
        """The rendered parameters, normalised before they are checked against ``Params``.

        The default returns ``raw`` unchanged. ``exec`` uses it to print non-string values
        in its argv and environment as text, as GXO does. Raise :class:`ParamsError` to
        reject a value. Must not modify ``raw``.
        """
        return raw

    def run(self, params: P, ctx: ModuleContext) -> Any:
        """Do the work and return the summary (JSON-compatible data)."""
        raise NotImplementedError
