"""multiprocessing's resource tracker, started only when a process registers a resource.

Every process multiprocessing's forkserver starts is handed the write end of the resource
tracker's pipe, so ``ForkServer.ensure_running`` starts the tracker, a whole interpreter
(about 30 ms of CPU), before the forkserver: on two CPUs it competes with the ``gxo`` command
and the forkserver while both start up, and the command waits for its exit at the end. Yet
neither gxo's parent nor its workers ever register a resource (gxo shares memory through a
``memfd``, :mod:`gxo.pool.slot`); only a task's own code may, with a named semaphore of a
``spawn``/``forkserver`` context or ``multiprocessing.shared_memory``.

So the pipe the workers get is :class:`TrackerRelay`'s: a thread of this process reads it.
What multiprocessing writes there on its own (``PROBE`` lines, one per process started) is
dropped; the first other line (a ``REGISTER``) starts the real tracker, exactly as
multiprocessing starts it, and from then on everything read is passed to it. The tracker then
does what it always did: when the last writer has gone (gxo's :func:`stop` at the end), it
unlinks what was registered and never unregistered, with its warning. It is started with
SIGHUP, SIGUSR1 and SIGUSR2 blocked (this thread blocks them), so neither a closed terminal
nor a drain signal sent to gxo's whole process group kills it.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import threading

#: ``typing.TYPE_CHECKING`` without importing typing: see :mod:`gxo.pool`.
TYPE_CHECKING = False

if TYPE_CHECKING:
    from typing import Any

__all__ = ["TrackerRelay"]

#: What ``ResourceTracker.ensure_running`` writes to check that the tracker is alive.
_PROBE = b"PROBE:0:noop"


class TrackerRelay:
    """Stands in for the resource tracker's process until a resource is registered.

    ``fd`` is the write end of the pipe to give multiprocessing as the tracker's
    (``ResourceTracker._fd``); :meth:`stop` closes it and ends the relay, and the real tracker
    with it if one was started.
    """

    def __init__(self) -> None:
        self._read, self.fd = os.pipe()
        self._wake_read, self._wake = os.pipe()
        self._tracker: Any = None  # multiprocessing's ResourceTracker, once started
        self._thread = threading.Thread(target=self._relay, name="gxo-resource-relay", daemon=True)
        self._thread.start()

    @property
    def tracker_pid(self) -> int | None:
        """The real tracker's pid, once a registration started it."""
        tracker = self._tracker
        pid: int | None = None if tracker is None else tracker._pid
        return pid

    def stop(self, timeout: float) -> int | None:
        """Close this process's end, wait until the relay has read everything every other
        writer sent (they have exited by now; at most ``timeout`` seconds, for one that a
        worker's orphan may keep open), and end it. Returns the real tracker's pid, or None if
        none was started: the caller reaps it (it exits once its pipe is closed)."""
        os.close(self.fd)
        self._thread.join(timeout)
        if self._thread.is_alive():
            os.write(self._wake, b"x")  # stop waiting for the writers left
            self._thread.join()
        for fd in (self._wake, self._wake_read):
            os.close(fd)
        return self.tracker_pid

    def _relay(self) -> None:
        # Blocked in this thread, and so in the tracker it may start (a blocked signal stays
        # blocked across exec): SIGHUP, and SIGUSR1/SIGUSR2 (gxo drains on them), must not
        # end the tracker (multiprocessing makes it ignore only SIGINT and SIGTERM).
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2})
        poller = select.poll()
        poller.register(self._read, select.POLLIN)
        poller.register(self._wake_read, select.POLLIN)
        pending = b""
        try:
            while True:
                ready = {fd for fd, _ in poller.poll()}
                if self._wake_read in ready:  # the writers left get no more time: drain, end
                    os.set_blocking(self._read, False)
                    with contextlib.suppress(BlockingIOError):
                        while data := os.read(self._read, 65536):
                            pending = self._pass_on(pending + data)
                    break
                data = os.read(self._read, 65536)
                if not data:  # every writer has closed its end
                    break
                pending = self._pass_on(pending + data)
        finally:
            os.close(self._read)
            if self._tracker is not None:
                os.close(self._tracker._fd)  # the tracker cleans up and exits

    def _pass_on(self, data: bytes) -> bytes:
        """Give ``data`` to the tracker (started at the first line that is not a probe);
        returns what must wait for more (an incomplete line, while there is no tracker)."""
        if self._tracker is None:
            complete, _, rest = data.rpartition(b"\n")
            lines = [line for line in complete.split(b"\n") if line and line != _PROBE]
            if not lines:
                return rest
            from multiprocessing import resource_tracker

            self._tracker = resource_tracker.ResourceTracker()
            self._tracker.ensure_running()
            data = b"".join(line + b"\n" for line in lines) + rest
        view = memoryview(data)
        while view:
            view = view[os.write(self._tracker._fd, view) :]
        return b""
