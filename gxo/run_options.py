"""How to run a playbook: :class:`RunOptions` (with :class:`RunCancel`, which stops the run),
and :func:`worker_setup`, the set-up every worker of the run gets.

Apart from :mod:`gxo.engine` so that :func:`gxo.api.run` builds the one options object
before it imports the engine: the ``gxo`` command's first worker is started from these
options while the engine, the pool and the scheduler are still being imported, and the
engine's pool takes that worker only if it would have set one up the same way
(:func:`worker_setup`, used by both). Light: what it imports at run time a run has imported
by then. Level 5 (DESIGN §10), beside the engine.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Protocol

import msgspec

from gxo.events import EventBus
from gxo.outputs import DEFAULT_OUTPUT_CAPTURE, DEFAULT_RESULT_LIMIT
from gxo.pool.helpers import DEFAULT_START_METHOD
from gxo.pool.relay import DEFAULT_LOG_RATE
from gxo.scheduler.partial import PartialRun

if TYPE_CHECKING:
    from gxo.config.model import Playbook
    from gxo.dag import Plan
    from gxo.executors.settings import DaskSettings
    from gxo.otel import TracerProvider
    from gxo.wire import WorkerConfig

    class Interruptible(Protocol):
        """What :class:`RunCancel` stops: the engine's signal handling of the run."""

        def interrupt(self, signum: int) -> None: ...

        def drain_now(self, why: str, then: str = ...) -> None: ...


__all__ = ["RunCancel", "RunOptions", "worker_setup"]


class RunOptions(msgspec.Struct):
    """How to run a playbook: what :func:`gxo.api.run` was given, as data."""

    workers: int | None = None
    dry_run: bool = False
    start_method: str = DEFAULT_START_METHOD
    #: Seconds between SIGTERM and SIGKILL when an instance is stopped.
    grace: float = 5.0
    #: Where run events go; nothing is emitted unless it has subscribers. Closed (drained,
    #: at most ``events_drain`` seconds) at the end of the run.
    events: EventBus | None = None
    events_drain: float = 5.0
    #: Where the lines workers print go (``<logger>.output``); default the ``gxo`` logger.
    logger: logging.Logger | None = None
    run_id: str = msgspec.field(default_factory=lambda: os.urandom(6).hex())
    #: Read secrets from files in this directory (one file per secret) instead of the
    #: environment.
    secrets_dir: str | os.PathLike[str] | None = None
    #: Prepended to every secret name before it is looked up (``APP_`` + ``DB_PASSWORD``).
    secrets_prefix: str = ""
    #: Keep the core-file limit gxo was started with; by default workers and their commands
    #: get ``RLIMIT_CORE`` 0 (a core file can hold secrets).
    core_dumps: bool = False
    #: Where instances run: ``local`` (this machine's process pool) or ``dask`` (a cluster,
    #: reached as ``dask`` says).
    executor: str = "local"
    dask: DaskSettings | None = None
    #: Trace the run (a span per run and per task instance) with this OpenTelemetry tracer
    #: provider; workers trace their attempts as children, exporting as their environment's
    #: ``OTEL_*`` variables say. None: no tracing, and OpenTelemetry is not imported.
    tracer_provider: TracerProvider | None = None
    #: Targets, fail-fast, journal and resume, deadline, resources (issue 16).
    partial: PartialRun = msgspec.field(default_factory=PartialRun)
    #: The run directory (``--state-dir``; DESIGN §15): attempt logs go to
    #: ``<state_dir>/runs/<run_id>/``, the journal to ``<state_dir>/journal/``; None:
    #: ``$GXO_STATE_DIR``, else ``.gxo`` in the current directory.
    state_dir: str | os.PathLike[str] | None = None
    #: ``--output-capture``: bytes of each stream kept in its log file per attempt; None:
    #: the playbook's ``output_capture``, else 1 GiB.
    output_capture: int | None = None
    #: ``--result-limit``: the largest encoded result a task may return.
    result_limit: int = DEFAULT_RESULT_LIMIT
    #: ``--record-limit``: the largest encoded stream record; 0: the default (16 MiB).
    record_limit: int = 0
    #: ``--log-rate``: lines a second relayed from each worker to the log (0: no limit).
    log_rate: float = DEFAULT_LOG_RATE
    # -- library surface (issue 15) -----------------------------------------------------------
    #: A secrets provider object (``gxo.secrets.SecretProvider``); wins over secrets_dir/prefix.
    secrets_provider: object | None = None
    #: Module types given in code: type name -> ``"pkg.mod:Class"`` (a ModuleRegistry's).
    modules: Mapping[str, str] = msgspec.field(default_factory=dict)
    #: Keywords whose ``key=value`` forms workers mask (empty: off).
    redact_keywords: tuple[str, ...] = ()
    #: Cancels the run from any thread (``gxo.start``'s handle).
    control: RunCancel | None = None
    #: ``-v``: 1 relays every line commands print while they run (``task | line``); 2 also
    #: logs each instance's rendered params. Both redacted in the worker.
    verbose: int = 0


class RunCancel:
    """Stops a run from any thread, as a first Ctrl-C does: nothing new starts, running
    instances get SIGTERM then SIGKILL after the grace period, the report says interrupted.
    Or drains it, as SIGUSR1 does: nothing new starts, running instances finish."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._signals: Interruptible | None = None
        self.cancelled = False
        self.draining = False

    def cancel(self) -> None:
        """Ask the run to stop (again: kill at once). Safe before it started or after it ended."""
        with self._lock:
            self.cancelled = True
            if self._signals is not None:
                self._signals.interrupt(signal.SIGINT)

    def drain(self) -> None:
        """Ask the run to drain, as SIGUSR1 does to ``gxo execute`` (which a run outside the
        main thread cannot be sent): nothing new starts, running instances finish, and the
        exit code is 75 when work remains. Safe before it started or after it ended."""
        with self._lock:
            self.draining = True
            if self._signals is not None:
                self._signals.drain_now("drain() was called on the run handle")

    def _attach(self, signals: Interruptible | None) -> None:
        with self._lock:
            self._signals = signals
            if signals is not None and self.draining:
                signals.drain_now("drain() was called on the run handle")
            if signals is not None and self.cancelled:
                signals.interrupt(signal.SIGINT)


def worker_setup(
    options: RunOptions, playbook: Playbook, plan: Plan, run_dir: Callable[[], str]
) -> WorkerConfig:
    """What every worker of the run is given (:func:`gxo.secrets.config.worker_config`).

    One function for the engine's pool and for the worker the ``gxo`` command starts ahead
    of it (``gxo.api``): the pool takes that worker only if both built equal
    configurations. ``run_dir``: the run directory's absolute path, asked for unless the run
    is a dry run (the engine's creates it). Raises :class:`~gxo.errors.UsageError` for a
    secrets setting that cannot work.
    """
    from gxo.secrets.config import worker_config

    return worker_config(
        (t.params for t in plan.templates.values()),
        directory=options.secrets_dir,
        prefix=options.secrets_prefix,
        provider=options.secrets_provider,
        log_level=logging.getLogger("gxo").getEffectiveLevel(),
        core_dumps=options.core_dumps,
        modules=options.modules,
        redact_keywords=options.redact_keywords,
        run_dir="" if options.dry_run else run_dir(),
        output_capture=next(
            (v for v in (options.output_capture, playbook.output_capture) if v is not None),
            DEFAULT_OUTPUT_CAPTURE,
        ),
        result_limit=options.result_limit,
        log_rate=options.log_rate,
        record_limit=options.record_limit,
        verbose=options.verbose,
    )
