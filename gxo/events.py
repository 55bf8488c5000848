"""Typed run events and the bus that delivers them to subscribers, off the scheduler's thread.

::

    scheduler (its listener), pool callbacks         delivery thread (daemon)
    ───────────────────────────────────────          ────────────────────────
    bus.emit(event) ── append ──► bounded deque ──► every 20 ms (or half full, or closing):
                      (full: drop, count)             subscriber 1, subscriber 2, ... for each
                                                      event (an exception is caught, logged
                                                      once per subscriber, and counted);
                                                      then each subscriber's ``flush``

``emit`` never blocks and never raises: the scheduler's only cost is one ``deque.append`` per
event (no lock, no wake-up of another thread per event: on a busy run, waking the delivery
thread for each event cost the scheduler's thread more than the event itself, in lock and GIL
hand-overs), and nothing at all when nobody subscribed (the engine checks
:attr:`EventBus.active` and installs no hooks). The delivery thread wakes on a timer and hands
over everything queued since, in order. A slow subscriber delays only the delivery thread; when
the queue is full, new events are dropped and counted in :attr:`EventBus.dropped`. A
subscriber that writes (the CLI's task lines) can give a ``flush`` callback: it is called after
each batch, so what the batch made it write goes out in one write, not one per event.

Events are msgspec Structs tagged with their class name, so ``msgspec.json.encode(event)``
gives ``{"type": "TaskStatusChanged", ...}`` and :data:`Event` decodes them back. ``time`` is
wall-clock seconds (``time.time()``) when the event was emitted.

Every event of a run is built once, by :class:`gxo.scheduler.notify.RunObserver`, from what the
scheduler and the pool observed; reports, metrics, traces, progress and the CLI's task lines
are derived from these events (or from the run's final state), never counted twice.

Level 0: the events' shape and their delivery only.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any, Final

import msgspec

from gxo._util.arguments import check_whole, describe
from gxo.outputs import CapturedOutput

__all__ = [
    "Event",
    "EventBus",
    "InstanceFinished",
    "InstanceStarted",
    "RetryScheduled",
    "RunFinished",
    "RunStarted",
    "SecretAccessed",
    "StreamEdgeClosed",
    "Subscriber",
    "TaskQueued",
    "TaskStatusChanged",
    "WorkerLost",
    "WorkerStarted",
    "WorkerSlots",
    "WorkersBusy",
]

_log = logging.getLogger("gxo.events")

#: Events held for delivery before new ones are dropped.
DEFAULT_QUEUE_SIZE: Final = 10_000
#: How often the delivery thread hands over what was emitted since (seconds): what a human
#: watching task lines cannot tell from "at once", without a thread wake-up per event.
DELIVERY_INTERVAL: Final = 0.02


class _Base(msgspec.Struct, frozen=True, kw_only=True, tag_field="type", tag=True):
    #: The run this event belongs to.
    run_id: str
    #: Wall-clock seconds when the event was emitted.
    time: float


class RunStarted(_Base, frozen=True, kw_only=True):
    """The run begins: the playbook is valid and the workers are about to start."""

    playbook: str
    tasks: int
    workers: int
    dry_run: bool = False


class RunFinished(_Base, frozen=True, kw_only=True):
    """The run ended; ``status`` is the report's ``overall_status``."""

    status: str
    exit_code: int
    duration: float
    completed: int = 0
    failed: int = 0
    skipped: int = 0
    cancelled: int = 0


class TaskQueued(_Base, frozen=True, kw_only=True):
    """A task's upstream is done and its ``instances`` wait for workers. It stays ``Pending``
    until a worker starts the first of them: then it becomes ``Running``."""

    task: str
    instances: int = 0


class TaskStatusChanged(_Base, frozen=True, kw_only=True):
    """A task became ``Running`` (a worker started its first instance) or reached a terminal
    status (with its reason).

    At a terminal status, ``duration`` is the task's run time in seconds (its first
    attempt's start to its last attempt's end), ``queued`` the seconds it waited for a worker
    before that (ready to first start), ``instances`` how many instances it had (loop
    iterations) and ``attempts`` the most attempts one of them took; ``cached`` how many of
    its instances ``--resume`` restored from the journal instead of running them.
    """

    task: str
    status: str
    reason: str = ""
    error: str = ""
    ignored: bool = False
    duration: float = 0.0
    instances: int = 0
    queued: float = 0.0
    attempts: int = 0
    cached: int = 0


class InstanceStarted(_Base, frozen=True, kw_only=True):
    """An attempt of a task instance started in a worker."""

    task: str
    instance_id: int
    label: str
    attempt: int
    worker_pid: int | None = None


class InstanceFinished(_Base, frozen=True, kw_only=True):
    """A task instance reached its final status (after its last attempt).

    ``attempt`` is the number of attempts made (0: cancelled before it ever started),
    ``duration`` the last attempt's wall time in seconds, and ``summary`` what the module
    returned (redacted by its worker; kept on some failures, such as ``exec``'s output).
    ``secrets_redacted`` counts the substitutions redaction made in its attempts (a count,
    never what was masked).
    """

    task: str
    instance_id: int
    label: str
    attempt: int
    status: str
    reason: str = ""
    error: str = ""
    duration: float = 0.0
    summary: Any = None
    secrets_redacted: int = 0
    #: What its last attempt's command printed, per stream: tails, sizes, log paths
    #: (redacted by the worker; read from the log files when the worker was killed).
    outputs: list[CapturedOutput] = []
    #: Its last attempt's command, directory and exit status, when its module reported them
    #: (``exec``), also for an attempt whose worker was killed (its command file).
    command: list[str] | None = None
    cwd: str | None = None
    exit_code: int | None = None


class RetryScheduled(_Base, frozen=True, kw_only=True):
    """Attempt ``attempt`` failed with ``reason``; the next one starts in ``delay`` seconds."""

    task: str
    instance_id: int
    label: str
    attempt: int
    reason: str
    delay: float
    #: The failed attempt's error message (redacted by the worker).
    error: str = ""
    #: The attempts the task's ``retry`` allows (``attempts``).
    max_attempts: int = 0


class WorkerStarted(_Base, frozen=True, kw_only=True):
    """A worker process was started (at pool start, or to replace a lost one)."""

    pid: int


class WorkerLost(_Base, frozen=True, kw_only=True):
    """A worker process died or was killed during the run (it is replaced).

    ``instance`` is the label of the instance it was running, empty if none.
    """

    pid: int
    reason: str
    instance: str = ""


class WorkerSlots(msgspec.Struct, frozen=True, kw_only=True):
    """One executor worker's occupancy: a Dask worker (its address and host), its gxo slots
    and how many of them run an instance now."""

    address: str
    host: str = ""
    slots: int = 0
    busy: int = 0


class WorkersBusy(_Base, frozen=True, kw_only=True):
    """The executor's workers and how busy each is (on Dask: every Dask worker; sent when a
    worker's occupancy changes, at most twice a second per worker)."""

    workers: tuple[WorkerSlots, ...] = ()


class StreamEdgeClosed(_Base, frozen=True, kw_only=True):
    """One side of a stream edge is done, with that side's counters.

    Sent when the instance on that side ends: ``side`` ``out`` is the producer (it closed
    the edge: the consumer sees the end of the stream; ``blocked_seconds`` is its time
    blocked on backpressure), ``in`` the consumer (it read the edge to its end, or stopped).
    """

    producer: str
    consumer: str
    side: str
    records: int = 0
    bytes: int = 0
    drops: int = 0
    blocked_seconds: float = 0.0
    #: Producer side: records discarded because the consumer had closed its input early.
    undelivered: int = 0
    #: Consumer side: records gxo read and discarded after the module returned (drained).
    drained: int = 0


class SecretAccessed(_Base, frozen=True, kw_only=True):
    """A task instance resolved a secret. Carries the secret's name, never its value.

    Reported by the worker with the instance's result, so an attempt whose worker died
    before sending one reports none.
    """

    task: str
    instance_id: int
    label: str
    name: str


Event = (
    RunStarted
    | RunFinished
    | TaskQueued
    | TaskStatusChanged
    | InstanceStarted
    | InstanceFinished
    | RetryScheduled
    | WorkerStarted
    | WorkerLost
    | StreamEdgeClosed
    | SecretAccessed
    | WorkersBusy
)

Subscriber = Callable[[Event], object]

_STOP: Final = object()


class EventBus:
    """Delivers events to subscribers on a daemon thread, through a bounded queue.

    Args:
        maxsize: events held for delivery; when the queue is full, new events are dropped
            (and counted in :attr:`dropped`) rather than slowing the scheduler.
        logger: where subscriber failures are reported (default ``gxo.events``).

    A bus can serve several runs: :meth:`close` (which the engine calls at the end of each
    run) delivers what is queued and stops the thread; the next :meth:`emit` starts it again.
    """

    def __init__(
        self, *, maxsize: int = DEFAULT_QUEUE_SIZE, logger: logging.Logger | None = None
    ) -> None:
        check_whole("maxsize", maxsize, minimum=1, none=False)
        if logger is not None and not isinstance(logger, logging.Logger):
            raise TypeError(f"logger must be a logging.Logger or None, got {describe(logger)}")
        #: (name, callback, the event types it takes or None for every type).
        self._subscribers: list[tuple[str, Subscriber, frozenset[type[Any]] | None]] = []
        #: The event types some subscriber takes; None: every type (a subscriber without
        #: ``event_kinds``, or none at all). An emitter may skip building an event whose type
        #: is not in it: nobody would be handed it.
        self.wanted: frozenset[type[Any]] | None = None
        #: (name, callback) of the subscribers' ``flush`` callbacks.
        self._flushes: list[tuple[str, Callable[[], object]]] = []
        self._maxsize = maxsize
        #: Woken early when half full, so a burst is not dropped while the thread sleeps.
        self._high_water = max(1, maxsize // 2)
        self._queue: deque[object] = deque()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._log = logger or _log
        #: Events dropped because the queue was full.
        self.dropped = 0
        self._dropped_reported = 0
        #: Events handed to every subscriber.
        self.delivered = 0
        #: Exceptions raised by each subscriber, by subscriber name.
        self.errors: dict[str, int] = {}

    @property
    def active(self) -> bool:
        """Whether anyone subscribed; when false the engine emits nothing at all."""
        return bool(self._subscribers)

    def subscribe(
        self,
        callback: Subscriber,
        *,
        name: str | None = None,
        flush: Callable[[], object] | None = None,
    ) -> Callable[[], None]:
        """Call ``callback(event)`` for every event; returns a function that unsubscribes.

        ``name`` identifies the subscriber in error reports (default: its qualified name).
        ``flush``, if given, is called on the delivery thread after each batch of events was
        handed over (at most every :data:`DELIVERY_INTERVAL` seconds on a busy run), and
        before :meth:`flush` and :meth:`close` return: a subscriber that writes can buffer
        what a batch makes it write and write it there, once.

        A callback with an ``event_kinds`` attribute (a collection of event classes) is
        handed only events of exactly those types; when every subscriber says which it
        takes, events of no subscriber's types are not built at all (:attr:`wanted`).
        """
        if not callable(callback):  # else it would fail on every event, on another thread
            raise TypeError(f"a subscriber must be callable, got {type(callback).__name__}")
        if flush is not None and not callable(flush):
            raise TypeError(f"flush must be callable, got {type(flush).__name__}")
        label = name or getattr(callback, "__qualname__", None) or repr(callback)
        kinds = getattr(callback, "event_kinds", None)
        entry = (label, callback, None if kinds is None else frozenset(kinds))
        flush_entry = (label, flush) if flush is not None else None
        with self._lock:
            self._subscribers = [*self._subscribers, entry]
            if flush_entry is not None:
                self._flushes = [*self._flushes, flush_entry]
            self._update_wanted()

        def unsubscribe() -> None:
            with self._lock:
                self._subscribers = [s for s in self._subscribers if s is not entry]
                self._flushes = [f for f in self._flushes if f is not flush_entry]
                self._update_wanted()

        return unsubscribe

    def _update_wanted(self) -> None:
        wanted: set[type[Any]] = set()
        for _, _, kinds in self._subscribers:
            if kinds is None:
                self.wanted = None
                return
            wanted |= kinds
        self.wanted = frozenset(wanted) if self._subscribers else None

    def emit(self, event: Event) -> None:
        """Queue ``event`` for delivery; never blocks, never raises."""
        if self._thread is None:
            self._start()
        pending = self._queue
        queued = len(pending)
        if queued + 1 < self._high_water:  # the common case: one length, one append
            pending.append(event)
            return
        if queued >= self._maxsize:
            self.dropped += 1
            return
        pending.append(event)
        if not self._wake.is_set():
            self._wake.set()

    def flush(self, timeout: float = 5.0) -> None:
        """Return once every event emitted so far was handed over (waiting at most ``timeout``
        seconds): what subscribers do with them (log a task line) happens now, while the
        caller's context (a run's trace filter on the log handlers) is still in place."""
        with self._lock:
            thread, pending, wake = self._thread, self._queue, self._wake
        if thread is None:
            return
        delivered = threading.Event()
        pending.append(delivered)
        wake.set()
        delivered.wait(timeout)

    def close(self, timeout: float = 5.0) -> None:
        """Deliver the queued events (waiting at most ``timeout`` seconds), stop the thread."""
        with self._lock:
            thread, self._thread = self._thread, None
            events, wake = self._queue, self._wake
            # A thread that outlives the wait keeps its own queue; a later emit starts a
            # new thread on a new one, so the two never share (or steal) events.
            self._queue, self._wake = deque(), threading.Event()
        if thread is None:
            return
        if self.dropped > self._dropped_reported:
            self._log.warning(
                "%d events were dropped: a subscriber is slower than the run (the queue holds "
                "%d); make it faster or give the bus a larger maxsize",
                self.dropped - self._dropped_reported,
                self._maxsize,
            )
            self._dropped_reported = self.dropped
        events.append(_STOP)
        wake.set()
        thread.join(timeout)
        if thread.is_alive():
            self._log.warning(
                "event delivery did not finish within %gs (%d events still queued); "
                "a subscriber is slow or stuck",
                timeout,
                max(0, len(events) - 1),
            )

    def _start(self) -> None:
        with self._lock:
            if self._thread is not None:
                return
            thread = threading.Thread(
                target=self._deliver,
                args=(self._queue, self._wake),
                name="gxo-events",
                daemon=True,
            )
            thread.start()
            self._thread = thread

    def _deliver(self, events: deque[object], wake: threading.Event) -> None:
        while True:
            wake.wait(DELIVERY_INTERVAL)
            wake.clear()
            if not events:
                continue
            while events:
                event = events.popleft()
                if event is _STOP:
                    self._flush_subscribers()
                    return
                if type(event) is threading.Event:  # a flush() waiting for this point
                    self._flush_subscribers()
                    event.set()
                    continue
                kind = type(event)
                for name, callback, kinds in self._subscribers:
                    if kinds is not None and kind not in kinds:
                        continue  # not a type it takes (``event_kinds``)
                    try:
                        callback(event)  # type: ignore[arg-type]
                    except BaseException as exc:  # noqa: BLE001 - see _failed
                        self._failed(name, exc)
                self.delivered += 1
            self._flush_subscribers()

    def _flush_subscribers(self) -> None:
        for name, flush in self._flushes:
            try:
                flush()
            except BaseException as exc:  # noqa: BLE001 - see _failed
                self._failed(name, exc)

    def _failed(self, name: str, exc: BaseException) -> None:
        """A subscriber raised: log its first failure, count every one.

        Whatever it raised, ``SystemExit`` and ``KeyboardInterrupt`` included (a callback
        calling ``sys.exit()``): any of them escaping would end this thread, and with it the
        delivery to every other subscriber, while each :meth:`flush` and :meth:`close` of the
        run waited its whole timeout for a thread that is gone. Nothing is lost by catching
        them here: a signal's ``KeyboardInterrupt`` is raised only in the main thread.
        """
        count = self.errors.get(name, 0) + 1
        self.errors[name] = count
        if count == 1:
            self._log.error(
                "event subscriber %s raised %s: %s (further errors from it are "
                "counted, not logged)",
                name,
                type(exc).__name__,
                exc,
            )


def as_bus(events: EventBus | Iterable[Subscriber] | None) -> EventBus | None:
    """An :class:`EventBus` from a bus, a list of callbacks, or None (no events).

    Raises :class:`TypeError` naming the argument (``events``) for anything else, or a
    callback that is not callable, before the run starts.
    """
    if events is None or isinstance(events, EventBus):
        return events
    given: object = events  # what a caller passed, whatever the annotation says
    if callable(given) or isinstance(given, str | bytes) or not isinstance(given, Iterable):
        raise TypeError(
            f"events must be an EventBus or a list of callbacks, got {type(given).__name__}"
            + (" (put the callback in a list: events=[callback])" if callable(given) else "")
        )
    bus = EventBus()
    for index, callback in enumerate(events):
        if not callable(callback):
            raise TypeError(
                f"events[{index}] must be callable (a function taking an event), "
                f"got {type(callback).__name__}"
            )
        bus.subscribe(callback)
    return bus
