"""An executor that runs each instance in the calling process, with a manual clock (for tests).

::

    loop ── submit(Run) ──► InlineExecutor ── Started (at once) ──► loop
    loop ── wait(t) ──────► runs what was submitted (gxo.pool.worker.in_process), in order:
                            Finished(Done) or, if cancelled first, Lost(reason)
                            nothing to run: the clock jumps ``t`` ahead (a retry delay passes
                            in no time); nothing to run and no ``t``: a deadlock, raised

It is the :class:`~gxo.pool.Executor` protocol with nothing else: no process, no pipe (but the
stream pipes of a group, whose members run in threads so records can flow), no sleep. A module
that crashes takes the test process with it, and an instance cannot be stopped while it runs;
crash isolation and timeouts are the real pool's, tested on it.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence

from gxo.errors import InternalError
from gxo.pool.executor import ExecutorEvent, Finished, Lost, Started, submit_with_pipes
from gxo.pool.worker import in_process
from gxo.wire import Done, Run, WorkerConfig

__all__ = ["InlineExecutor", "ManualClock"]


class ManualClock:
    """Monotonic seconds that move only when told to (pass it as the loop's ``clock``)."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += max(0.0, seconds)


class InlineExecutor:
    """Runs instances in this process when the loop waits; time is a :class:`ManualClock`.

    Args:
        workers: how many instances may be submitted at once without queueing behind others
            (what ``free_slots`` reports, as a pool of that many workers would).
        clock: the clock the loop reads; waiting with nothing to run advances it.
        worker_config: the secrets set-up, as a worker gets it.
    """

    def __init__(
        self,
        workers: int = 2,
        *,
        clock: ManualClock | None = None,
        worker_config: WorkerConfig | None = None,
    ) -> None:
        if workers < 1:
            raise ValueError("an executor needs at least one worker")
        self.size = workers
        self.clock = clock if clock is not None else ManualClock()
        self._attempt: Callable[[Run, list[int] | None], Done] = in_process(worker_config)
        self._submitted: list[tuple[Run, list[int]]] = []
        self._cancelled: dict[int, str] = {}
        self._events: list[ExecutorEvent] = []
        #: Every run submitted, in order (for tests to look at).
        self.runs: list[Run] = []

    def free_slots(self, *, queue_behind: bool = False, depth: int = 2) -> int:
        room = self.size * (depth if queue_behind else 1)
        return max(0, room - len(self._submitted))

    def submit(
        self, run: Run, *, queue_behind: bool = False, depth: int = 2, fds: Sequence[int] = ()
    ) -> bool:
        self._submitted.append((run, list(fds)))
        self.runs.append(run)
        self._events.append(Started(run.instance_id, os.getpid()))
        return True

    def submit_group(self, runs: Sequence[Run]) -> bool:
        """A stream group: its pipes are made here and travel with the runs."""
        return submit_with_pipes(self, runs)

    def flush(self) -> None:
        pass

    def cancel(self, instance_id: int, reason: str) -> None:
        if any(run.instance_id == instance_id for run, _ in self._submitted):
            self._cancelled[instance_id] = reason

    def hurry(self) -> None:
        pass

    def wind_down(self) -> None:
        pass

    def wait(self, timeout: float | None) -> list[ExecutorEvent]:
        if self._events:  # what submit started, before anything ran (as the pool does)
            started, self._events = self._events, []
            return started
        if not self._submitted:
            if timeout is None:
                raise InternalError("the loop waits for an executor that has nothing to run")
            self.clock.advance(timeout)
            return []
        submitted, self._submitted = self._submitted, []
        cancelled = self._cancelled
        for run, fds in submitted:
            if run.instance_id in cancelled:
                for fd in fds:  # it never runs: its stream partners see the edge end
                    os.close(fd)
        streaming = [
            (run, fds)
            for run, fds in submitted
            if (run.inputs or run.outputs) and run.instance_id not in cancelled
        ]
        results = dict(_run_together(self._attempt, streaming)) if streaming else {}
        events: list[ExecutorEvent] = []
        for run, fds in submitted:
            reason = cancelled.pop(run.instance_id, None)
            if reason is not None:
                events.append(Lost(run.instance_id, reason, f"stopped ({reason})"))
                continue
            done = results.get(run.instance_id)
            events.append(Finished(done if done is not None else self._attempt(run, fds)))
        return events


def _run_together(
    attempt: Callable[[Run, list[int] | None], Done], runs: list[tuple[Run, list[int]]]
) -> list[tuple[int, Done]]:
    """Run the members of stream groups at the same time (threads), so records can flow."""
    results: list[tuple[int, Done]] = []
    lock = threading.Lock()

    def one(run: Run, fds: list[int]) -> None:
        done = attempt(run, fds)
        with lock:
            results.append((run.instance_id, done))

    threads = [threading.Thread(target=one, args=item, daemon=True) for item in runs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results
