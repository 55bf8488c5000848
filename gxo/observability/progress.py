"""Progress of a run, driven by the event bus: a live display on a terminal, lines otherwise.

- :class:`LiveProgress` (stderr is a terminal): a ``rich`` live panel with the done, running
  and failed counts, the iterations of each running loop that ended, and the running task
  instances with their elapsed time; log lines keep scrolling above it. ``rich`` is imported
  only when this display is shown.
- :class:`PlainProgress` (not a terminal: CI logs, files): one line every ``interval``
  seconds through the ``gxo.progress`` logger, ``progress: 3/10 tasks done, 2 running
  (build, test), many: 108/500 iterations, 1 failed``, so ``--log-format json`` makes it a
  record and ``--quiet`` hides it.

On an executor with several workers (Dask), both also show each worker's occupancy: busy
slots out of its slots (``WorkersBusy`` events).

Both count tasks (not instances) as done, running and failed, as the summary does.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TextIO

import msgspec

from gxo.events import (
    Event,
    InstanceFinished,
    InstanceStarted,
    RetryScheduled,
    RunFinished,
    RunStarted,
    TaskStatusChanged,
    WorkersBusy,
    WorkerSlots,
)

if TYPE_CHECKING:
    from rich.console import Console, ConsoleOptions, RenderableType, RenderResult
    from rich.live import Live

__all__ = ["LiveProgress", "PlainProgress", "ProgressState", "occupancy"]

progress_log = logging.getLogger("gxo.progress")

#: Seconds between two plain progress lines.
DEFAULT_INTERVAL = 10.0


class ProgressState(msgspec.Struct):
    """Counts of a run as its events arrive (fed on the bus thread, read on others)."""

    playbook: str = ""
    total: int = 0
    done: int = 0
    failed: int = 0
    skipped: int = 0
    cancelled: int = 0
    started_at: float = msgspec.field(default_factory=time.monotonic)
    #: Running instance label -> monotonic time its current attempt started.
    running: dict[str, float] = msgspec.field(default_factory=dict)
    running_tasks: set[str] = msgspec.field(default_factory=set)
    #: A running task with several instances (a loop) -> [its instances ended, its instances].
    iterations: dict[str, list[int]] = msgspec.field(default_factory=dict)
    #: The executor's workers and their busy slots (Dask), from the last ``WorkersBusy``.
    workers: tuple[WorkerSlots, ...] = ()
    finished: bool = False
    lock: threading.Lock = msgspec.field(default_factory=threading.Lock)

    def apply(self, event: Event) -> None:
        apply = _APPLY.get(type(event))
        if apply is not None:  # events that change no count (TaskQueued...) cost one lookup
            with self.lock:
                apply(self, event)

    def line(self) -> str:
        """``3/10 tasks done, 2 running (a, b), 1 failed, 12s``."""
        with self.lock:
            ended = self.done + self.failed + self.skipped + self.cancelled
            parts = [f"{ended}/{self.total} tasks done"]
            if self.running:
                names = sorted(self.running)
                shown = ", ".join(names[:5]) + (f" +{len(names) - 5}" if len(names) > 5 else "")
                parts.append(f"{len(names)} running ({shown})")
            else:
                parts.append("0 running")
            parts.extend(self.iterations_shown())
            if self.failed:
                parts.append(f"{self.failed} failed")
            if self.skipped:
                parts.append(f"{self.skipped} skipped")
            if self.cancelled:
                parts.append(f"{self.cancelled} cancelled")
            if self.workers:
                parts.append(occupancy(self.workers))
            parts.append(f"{time.monotonic() - self.started_at:.0f}s")
            return ", ".join(parts)

    def iterations_shown(self, shown: int = 3) -> list[str]:
        """``many: 108/500 iterations`` per running loop (the first ``shown``); under lock."""
        loops = list(self.iterations.items())
        texts = [f"{task}: {ended}/{total} iterations" for task, (ended, total) in loops[:shown]]
        if len(loops) > shown:
            texts.append(f"+{len(loops) - shown} loops")
        return texts


def _run_started(state: ProgressState, event: RunStarted) -> None:
    state.playbook, state.total = event.playbook, event.tasks
    state.started_at = time.monotonic()


def _task_status(state: ProgressState, event: TaskStatusChanged) -> None:
    status = event.status
    if status == "Running":
        state.running_tasks.add(event.task)
        if event.instances > 1 and event.task not in state.iterations:
            state.iterations[event.task] = [0, event.instances]
        return
    state.running_tasks.discard(event.task)
    state.iterations.pop(event.task, None)
    if status == "Completed":
        state.done += 1
    elif status == "Failed":
        state.failed += 1
    elif status == "Skipped":
        state.skipped += 1
    elif status == "Cancelled":
        state.cancelled += 1


def _instance_started(state: ProgressState, event: InstanceStarted) -> None:
    state.running[event.label] = time.monotonic()


def _instance_ended(state: ProgressState, event: InstanceFinished) -> None:
    state.running.pop(event.label, None)
    counts = state.iterations.get(event.task)
    if counts is not None:
        counts[0] += 1


def _retry_scheduled(state: ProgressState, event: RetryScheduled) -> None:
    state.running.pop(event.label, None)


def _workers_busy(state: ProgressState, event: WorkersBusy) -> None:
    state.workers = event.workers


def _run_finished(state: ProgressState, event: RunFinished) -> None:
    state.finished = True
    state.running.clear()
    state.running_tasks.clear()
    state.iterations.clear()


#: What each kind of event changes (by exact type: looked up once per event, on the bus
#: thread, several times per task).
_APPLY: dict[type[Any], Callable[[ProgressState, Any], None]] = {
    RunStarted: _run_started,
    TaskStatusChanged: _task_status,
    InstanceStarted: _instance_started,
    InstanceFinished: _instance_ended,
    RetryScheduled: _retry_scheduled,
    WorkersBusy: _workers_busy,
    RunFinished: _run_finished,
}


def occupancy(workers: tuple[WorkerSlots, ...], shown: int = 4) -> str:
    """``slots 5/8 busy (10.0.0.7:40123 3/4, 10.0.0.8:40991 2/4)``: the busiest first."""
    busy = sum(w.busy for w in workers)
    slots = sum(w.slots for w in workers)
    ranked = sorted(workers, key=lambda w: (-w.busy, w.address))
    each = ", ".join(f"{_short(w.address)} {w.busy}/{w.slots}" for w in ranked[:shown])
    more = f" +{len(ranked) - shown} workers" if len(ranked) > shown else ""
    return f"slots {busy}/{slots} busy ({each}{more})"


class _Current:
    """What :class:`LiveProgress` shows, rendered from its state each time rich draws it."""

    __slots__ = ("progress",)

    def __init__(self, progress: LiveProgress) -> None:
        self.progress = progress

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield self.progress.render()


def _short(address: str) -> str:
    """``tcp://10.0.0.7:40123`` -> ``10.0.0.7:40123``."""
    return address.split("://", 1)[-1]


class PlainProgress:
    """A progress line every ``interval`` seconds (from the first event to :meth:`close`)."""

    def __init__(
        self, interval: float = DEFAULT_INTERVAL, logger: logging.Logger | None = None
    ) -> None:
        self.interval = interval
        self.state = ProgressState()
        self._log = logger or progress_log
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    #: The bus hands it only the events that change the display.
    event_kinds = frozenset(_APPLY)

    def __call__(self, event: Event) -> None:
        apply = _APPLY.get(type(event))  # ProgressState.apply, without a call per event
        if apply is None:
            return
        with self.state.lock:
            apply(self.state, event)
        if type(event) is RunStarted and self._thread is None:
            self._thread = threading.Thread(target=self._tick, name="gxo-progress", daemon=True)
            self._thread.start()

    def _tick(self) -> None:
        while not self._stop.wait(self.interval):
            if self.state.finished:
                return
            self._log.info("progress: %s", self.state.line())

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5.0)
            self._thread = None


class LiveProgress:
    """A ``rich`` live display on ``console`` (stderr by default) while the run lasts.

    :meth:`start` before the run, :meth:`close` after it. Records of the ``gxo`` logger are
    printed above the display while it is shown.
    """

    def __init__(
        self,
        console: Console | None = None,
        refresh_per_second: float = 4,
        *,
        colour: bool | None = None,
    ) -> None:
        """``colour`` (for the default console on stderr): None lets rich decide from the
        environment; False draws no colour nor style at all (``--color never``), True colour
        even with ``NO_COLOR`` set (``--color always``)."""
        from rich.console import Console
        from rich.live import Live

        self.state = ProgressState()
        if console is None:
            if colour is None:
                console = Console(stderr=True)
            else:
                console = Console(
                    stderr=True, color_system="auto" if colour else None, no_color=not colour
                )
        self.console = console
        self.live: Live = Live(
            # Not a snapshot: rich keeps the last renderable it was handed and draws it again
            # under every line printed above the display, so a task's line was followed by the
            # counts of the last refresh (up to 1/refresh_per_second old: "starting the
            # workers" under the first task lines). This one renders the state when drawn.
            _Current(self),
            console=self.console,
            refresh_per_second=refresh_per_second,
            transient=True,
            redirect_stdout=False,
            redirect_stderr=True,
        )
        self._handlers: list[tuple[logging.StreamHandler[Any], TextIO]] = []

    #: The bus hands it only the events that change the display.
    event_kinds = frozenset(_APPLY)

    def __call__(self, event: Event) -> None:
        self.state.apply(event)

    def start(self) -> None:
        import sys

        original = sys.stderr
        self.live.start()
        proxy = sys.stderr
        if proxy is original:
            return
        # The gxo handler holds the real stderr: send its records through rich's proxy, which
        # prints them above the display.
        for handler in logging.getLogger("gxo").handlers:
            if isinstance(handler, logging.StreamHandler) and handler.stream is original:
                self._handlers.append((handler, original))
                handler.setStream(proxy)

    def close(self) -> None:
        for handler, stream in self._handlers:
            handler.setStream(stream)
        self._handlers.clear()
        self.live.stop()

    def render(self) -> RenderableType:
        """The display: a title line with the counts, then one row per running instance."""
        from rich.console import Group
        from rich.table import Table
        from rich.text import Text

        state = self.state
        with state.lock:
            if not state.playbook:
                return Text("gxo: starting the workers", style="dim")
            ended = state.done + state.failed + state.skipped + state.cancelled
            running = sorted(state.running.items(), key=lambda kv: kv[1])
            now = time.monotonic()
            title = Text.assemble(
                (f"{state.playbook or 'gxo'} ", "bold"),
                f"{ended}/{state.total} tasks done  ",
                (f"{state.done} ok", "green"),
                "  ",
                (f"{len(running)} running", "cyan"),
                "  ",
                (f"{state.failed} failed", "red" if state.failed else "dim"),
                (f"  {state.skipped} skipped" if state.skipped else "", "dim"),
                (f"  {state.cancelled} cancelled" if state.cancelled else "", "magenta"),
                f"  {now - state.started_at:.0f}s",
            )
            workers = sorted(state.workers, key=lambda w: (-w.busy, w.address))
            loops = state.iterations_shown()
        table = Table(box=None, show_header=False, padding=(0, 1, 0, 2))
        table.add_column("instance", style="cyan", no_wrap=True)
        table.add_column("elapsed", justify="right")
        limit = 15
        # A label too long for the terminal is cut here: left to rich, the table squeezed the
        # elapsed column out of sight instead.
        room = max(8, self.console.width - 16)
        for label, started in running[:limit]:
            shown = label if len(label) <= room else label[: room - 1] + "…"
            table.add_row(shown, f"{now - started:.1f}s")
        if len(running) > limit:
            table.add_row(f"... and {len(running) - limit} more", "")
        parts: list[RenderableType] = [title]
        if loops:
            parts.append(Text("  " + "  ".join(loops), style="dim"))
        if workers:
            load = Table(box=None, show_header=False, padding=(0, 1, 0, 2))
            load.add_column("worker", style="magenta", no_wrap=True)
            load.add_column("slots", no_wrap=True)
            for w in workers[:8]:
                bar = "#" * w.busy + "." * max(0, w.slots - w.busy)
                load.add_row(_short(w.address), f"{bar} {w.busy}/{w.slots}")
            if len(workers) > 8:
                load.add_row(f"... and {len(workers) - 8} more workers", "")
            parts.append(load)
        if running:
            parts.append(table)
        return Group(*parts) if len(parts) > 1 else title
