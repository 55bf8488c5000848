"""The node side of the Dask executor: a gxo process pool inside each Dask worker.

A Dask task never runs module code in the Dask worker's own process. The parent registers a
:class:`GxoNodePlugin` on the cluster; on each Dask worker it starts an ordinary gxo
:class:`~gxo.pool.process_pool.ProcessPool` (worker processes from a forkserver, one instance at
a time each), driven by one thread. A Dask task (:func:`run_instance`, :func:`run_group`) hands
its instance to that pool and blocks until the pool reports the outcome, so everything that
holds locally holds on the node: a segfault, ``os._exit`` or an OOM kill fails only that
instance and the Dask worker survives; a timeout kills the instance's whole process tree on the
node; secrets are resolved and redacted in the node's gxo worker before the result is returned.

What crosses Dask (task arguments, results, keys) is the same msgpack the local pool sends:
a :class:`~gxo.wire.Run` (raw parameters and the referenced state, never a secret
value) and a redacted :class:`~gxo.wire.Done`, or the reason the instance was lost. Short
instances travel in batches (:func:`run_batch`: one Dask task for several instances, queued
behind each other on the node's gxo workers), so Dask's per-task cost is paid once per batch.

Beside the results, each node pool publishes Dask events on the run's topic (the plugin's
name), which the parent subscribes to: the lines its instances print (already redacted by the
gxo worker that printed them: ``-v`` and module output, as locally) and its occupancy (busy
slots out of its slots, at most twice a second), for the live progress display.

Dask workers started by a nanny are daemonic processes, and multiprocessing refuses to start
children from one; the parent starts its ``LocalCluster`` with ``distributed.worker.daemon:
False`` and the plugin checks it on other clusters, with a clear error.

Level 4 (executors): imports pool and wire types, never the scheduler.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

import msgspec
from distributed import SchedulerPlugin, WorkerPlugin

from gxo.outputs import CapturedOutput
from gxo.pool.executor import Finished, Lost, Returned, Started, stream_pipes
from gxo.pool.process_pool import ProcessPool
from gxo.wire import AttemptUsage, Done, Run, WorkerConfig

__all__ = [
    "GxoNodePlugin",
    "GxoRunWatch",
    "NodeOutcome",
    "cancel_on_node",
    "node_pool",
    "run_batch",
    "run_group",
    "run_instance",
]

#: Instances one gxo worker of a node may hold at once from batches (one running, the rest
#: queued behind it, so it starts the next without a round trip).
NODE_DEPTH = 8
#: Seconds between two occupancy events of one node (a change is sent at most this often).
OCCUPANCY_INTERVAL = 0.5

_encoder = msgspec.msgpack.Encoder()
_run_decoder = msgspec.msgpack.Decoder(Run)


class NodeOutcome(msgspec.Struct, array_like=True, frozen=True):
    """What one instance came to on the node, as the parent needs it.

    ``done`` is the encoded, redacted :class:`Done` when the worker process reported one;
    otherwise ``reason``/``detail`` say how it was lost (the same reasons as locally:
    ``worker_signaled(SIGSEGV)``, ``timed_out``, …). ``ran_for`` is how long before the
    result the attempt started, by the node's clock, so the parent can place the start time
    on its own clock.
    """

    instance_id: int
    done: bytes = b""
    reason: str = ""
    detail: str = ""
    ran_for: float = 0.0
    host: str = ""
    pid: int = 0
    #: The Dask worker's address (``tcp://10.0.0.7:40123``).
    worker: str = ""
    #: A lost attempt: what its command printed before the end (redacted tails and the log
    #: files on the node), and how many processes were killed with it.
    outputs: list[CapturedOutput] = []
    processes_killed: int = 0
    #: ``isolation: process``: what a lost attempt used (a finished one has it in ``done``).
    usage: AttemptUsage | None = None


@dataclass
class _Request:
    run: Run
    fds: Sequence[int]
    timeout: float | None
    future: Future[NodeOutcome]
    sent_at: float = 0.0
    started_at: float | None = None
    pid: int = 0
    #: A batch member: it may wait behind others on a busy gxo worker.
    queue_behind: bool = False


#: Publishes one event on the run's topic (``Worker.log_event``, bound to the topic).
Emit = Callable[[Any], None]


class NodePool:
    """A gxo process pool and the thread that drives it, shared by the Dask tasks of one run.

    Dask tasks call :meth:`run` from the Dask worker's threads; only the driver thread touches
    the pool (it is single-threaded by design, like the parent's scheduler loop).
    """

    def __init__(
        self,
        slots: int,
        config: WorkerConfig,
        grace: float,
        *,
        emit: Emit | None = None,
        address: str = "",
    ) -> None:
        self._wake_read, self._wake_write = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._emit = emit
        self.pool = ProcessPool(
            slots,
            wakeup_fd=self._wake_read,
            grace=grace,
            worker_config=config,
            on_output=self._on_output if emit is not None else None,
            log_rate=config.log_rate,
        )
        self.slots = slots
        self.address = address
        self.host = _hostname()
        self._inbox: queue.SimpleQueue[_Request | tuple[int, int, str] | None] = queue.SimpleQueue()
        self._requests: dict[int, _Request] = {}
        #: (instance, attempt) -> reason: stopped before its Dask task reached this node.
        self._cancelled: dict[tuple[int, int], str] = {}
        self._lines: list[list[Any]] = []
        self._busy_sent = 0
        self._busy_sent_at = 0.0
        self.pool.start()
        self._thread = threading.Thread(target=self._drive, name="gxo-node-pool", daemon=True)
        self._thread.start()

    # -- called from Dask task threads -------------------------------------------------------

    def run(self, run: Run, *, timeout: float | None, fds: Sequence[int] = ()) -> NodeOutcome:
        """Run one attempt on this node and wait for its outcome."""
        return self.submit(run, timeout=timeout, fds=fds).result()

    def submit(
        self,
        run: Run,
        *,
        timeout: float | None,
        fds: Sequence[int] = (),
        queue_behind: bool = False,
    ) -> Future[NodeOutcome]:
        future: Future[NodeOutcome] = Future()
        self._inbox.put(_Request(run, fds, timeout, future, queue_behind=queue_behind))
        self._wake()
        return future

    def cancel(self, instance_id: int, attempt: int, reason: str) -> None:
        self._inbox.put((instance_id, attempt, reason))
        self._wake()

    def close(self) -> None:
        self._inbox.put(None)
        self._wake()
        self._thread.join(30)
        with contextlib.suppress(OSError):
            os.close(self._wake_write)
        with contextlib.suppress(OSError):
            os.close(self._wake_read)

    def _wake(self) -> None:
        with contextlib.suppress(BlockingIOError, OSError):
            os.write(self._wake_write, b"x")

    # -- the driver thread -------------------------------------------------------------------

    def _drive(self) -> None:
        try:
            while True:
                if not self._take_inbox():
                    return
                self._dispatch()
                self._expire()
                for event in self.pool.wait(self._next_timeout()):
                    self._on_event(event)
                self._publish()
        finally:
            self.pool.close()
            for request in self._requests.values():
                if not request.future.done():
                    request.future.set_result(
                        NodeOutcome(
                            request.run.instance_id,
                            reason="executor_worker_lost",
                            detail="the gxo pool on this Dask worker was closed",
                        )
                    )

    def _take_inbox(self) -> bool:
        while True:
            try:
                item = self._inbox.get_nowait()
            except queue.Empty:
                return True
            if item is None:
                return False
            if isinstance(item, tuple):
                instance_id, attempt, reason = item
                request = self._requests.get(instance_id)
                if request is not None and request.run.attempt == attempt:
                    self.pool.cancel(instance_id, reason)
                else:  # its Dask task may still be on its way here (a batch, a queue)
                    self._cancelled[instance_id, attempt] = reason
                continue
            reason = self._cancelled.pop((item.run.instance_id, item.run.attempt), "")
            if reason:
                _close_fds(item.fds)
                item.future.set_result(
                    NodeOutcome(
                        item.run.instance_id,
                        reason=reason,
                        detail=f"stopped ({reason}) before it started",
                        host=self.host,
                        worker=self.address,
                    )
                )
                continue
            self._requests[item.run.instance_id] = item
            item.sent_at = -1.0  # not yet handed to the pool

    def _dispatch(self) -> None:
        for request in self._requests.values():
            if request.sent_at >= 0:
                continue
            if request.fds:
                # A stream group on a node needs its members at once: grow for them, as the
                # local engine does for a group larger than the pool.
                if self.pool.free_slots() < 1:
                    self.pool.grow(1)
                if not self.pool.submit(request.run, fds=request.fds):
                    break
            elif not self.pool.submit(
                request.run, queue_behind=request.queue_behind, depth=NODE_DEPTH
            ):
                break
            request.sent_at = time.monotonic()
        self.pool.flush()

    def _expire(self) -> None:
        now = time.monotonic()
        for request in self._requests.values():
            if (
                request.timeout is not None
                and request.started_at is not None
                and now >= request.started_at + request.timeout
            ):
                self.pool.cancel(request.run.instance_id, "timed_out")
                request.timeout = None  # cancelled once; the pool's ladder does the rest

    def _next_timeout(self) -> float | None:
        now = time.monotonic()
        ends = [
            r.started_at + r.timeout
            for r in self._requests.values()
            if r.timeout is not None and r.started_at is not None
        ]
        if self._emit is not None and self._busy() != self._busy_sent:
            ends.append(self._busy_sent_at + OCCUPANCY_INTERVAL)
        return max(0.0, min(ends) - now) if ends else None

    # -- events for the parent (lines printed, occupancy) -------------------------------------

    def _on_output(self, instance_id: int | None, line: str) -> None:
        """A line (or a batch of lines) a gxo worker printed, redacted by that worker."""
        self._lines.append([instance_id, line])

    def _busy(self) -> int:
        return sum(1 for r in self._requests.values() if r.started_at is not None)

    def _publish(self) -> None:
        """Send what the parent shows live: printed lines at once, occupancy when it changed
        (at most every :data:`OCCUPANCY_INTERVAL` seconds)."""
        if self._emit is None:
            return
        if self._lines:
            lines, self._lines = self._lines, []
            self._emit({"lines": lines})
        busy = self._busy()
        now = time.monotonic()
        if busy != self._busy_sent and now >= self._busy_sent_at + OCCUPANCY_INTERVAL:
            self._busy_sent, self._busy_sent_at = busy, now
            self._emit(
                {"worker": self.address, "host": self.host, "busy": busy, "slots": self.slots}
            )

    def _on_event(self, event: Started | Finished | Lost | Returned) -> None:
        if isinstance(event, Started):
            request = self._requests.get(event.instance_id)
            if request is not None:
                request.started_at = time.monotonic()
                request.pid = event.pid
            return
        if isinstance(event, Returned):
            request = self._requests.get(event.instance_id)
            if request is not None:
                request.sent_at = -1.0  # it never started: hand it to a fresh worker
            return
        instance_id = event.done.instance_id if isinstance(event, Finished) else event.instance_id
        request = self._requests.pop(instance_id, None)
        if request is None:
            return
        now = time.monotonic()
        ran_for = now - (request.started_at if request.started_at is not None else now)
        host = self.host
        if isinstance(event, Finished):
            done: Done = event.done
            if done.started_at:
                ran_for = now - done.started_at
            outcome = NodeOutcome(
                instance_id,
                done=_encoder.encode(done),
                ran_for=ran_for,
                host=host,
                pid=request.pid,
                worker=self.address,
            )
        else:
            outcome = NodeOutcome(
                instance_id,
                reason=event.reason,
                detail=event.detail,
                ran_for=ran_for,
                host=host,
                pid=request.pid,
                worker=self.address,
                outputs=list(event.outputs),
                processes_killed=event.processes_killed,
                usage=event.usage,
            )
        request.future.set_result(outcome)


def _hostname() -> str:
    return os.uname().nodename


def _close_fds(fds: Sequence[int]) -> None:
    for fd in fds:
        with contextlib.suppress(OSError):
            os.close(fd)


class GxoNodePlugin(WorkerPlugin):
    """Starts a gxo pool on every Dask worker for one gxo run; closes it when removed.

    Registered by the parent under ``name``; pickled to the workers, so it must stay
    importable by name there (gxo installed on the nodes, the same version: checked at run
    start).
    """

    def __init__(self, name: str, slots: int, config: bytes, grace: float) -> None:
        self.name = name
        self.slots = slots
        self.config = config
        self.grace = grace
        self.pool: NodePool | None = None

    def setup(self, worker: Any) -> None:
        if multiprocessing.current_process().daemon:
            raise RuntimeError(
                "this Dask worker is a daemonic process and cannot start gxo's worker "
                "processes: start the cluster with the Dask setting "
                "distributed.worker.daemon: False (DASK_DISTRIBUTED__WORKER__DAEMON=False)"
            )
        config = msgspec.msgpack.decode(self.config, type=WorkerConfig)
        slots = self.slots or max(1, int(getattr(worker, "state", worker).nthreads))
        topic = self.name

        def emit(message: Any) -> None:
            worker.log_event(topic, message)

        self.pool = NodePool(slots, config, self.grace, emit=emit, address=str(worker.address))

    def teardown(self, worker: Any) -> None:
        if self.pool is not None:
            self.pool.close()
            self.pool = None


class GxoRunWatch(SchedulerPlugin):
    """On the scheduler: when the gxo run's client goes away and its worker plugin is still
    registered (gxo was killed, so it could not remove it), remove that plugin, so every node
    closes the run's pool: its gxo worker processes, and what they run, end as they do locally
    when gxo dies. Without it they ran on, and every worker joining later started a pool."""

    def __init__(self, worker_plugin: str, client: str) -> None:
        self.name = f"{worker_plugin}-watch"
        self.worker_plugin = worker_plugin
        self.client = client
        self._removing: set[asyncio.Task[None]] = set()

    def remove_client(self, scheduler: Any, client: str) -> None:
        if client != self.client:
            return
        scheduler.remove_plugin(name=self.name)
        if self.worker_plugin not in scheduler.worker_plugins:
            return  # the run removed it itself

        async def remove() -> None:
            with contextlib.suppress(Exception):  # removed meanwhile
                await scheduler.unregister_worker_plugin(None, self.worker_plugin)

        task = asyncio.get_running_loop().create_task(remove())
        self._removing.add(task)
        task.add_done_callback(self._removing.discard)


def node_pool(plugin_name: str) -> NodePool:
    """This Dask worker's pool for the run ``plugin_name`` (called inside a Dask task)."""
    from distributed import get_worker

    plugin = get_worker().plugins.get(plugin_name)
    if not isinstance(plugin, GxoNodePlugin) or plugin.pool is None:
        raise RuntimeError(f"gxo's worker plugin {plugin_name!r} is not set up on this worker")
    return plugin.pool


def run_instance(plugin_name: str, run: bytes, timeout: float | None) -> NodeOutcome:
    """A Dask task: run one attempt of one instance on this node's gxo pool."""
    return node_pool(plugin_name).run(_run_decoder.decode(run), timeout=timeout)


def run_batch(
    plugin_name: str, runs: list[bytes], timeouts: list[float | None]
) -> list[NodeOutcome]:
    """A Dask task: run several independent instances on this node, queued behind each other
    on its gxo workers (short instances: one Dask task, one result message for all)."""
    pool = node_pool(plugin_name)
    futures = [
        pool.submit(_run_decoder.decode(run), timeout=timeout, queue_behind=True)
        for run, timeout in zip(runs, timeouts, strict=True)
    ]
    return [future.result() for future in futures]


def run_group(
    plugin_name: str, runs: list[bytes], timeouts: list[float | None]
) -> list[NodeOutcome]:
    """A Dask task: run a stream group's members together on this node, pipes between them.

    The pipes are made here, on the node, so the records never leave it; the members run in
    the node's gxo worker processes exactly as a local stream group does.
    """
    pool = node_pool(plugin_name)
    decoded = [_run_decoder.decode(r) for r in runs]
    futures = [
        pool.submit(run, timeout=timeout, fds=fds)
        for run, timeout, fds in zip(decoded, timeouts, stream_pipes(decoded), strict=True)
    ]
    return [future.result() for future in futures]


async def cancel_on_node(
    plugin_name: str, instances: list[tuple[int, int]], reason: str, dask_worker: Any = None
) -> int:
    """Run on every Dask worker by the parent: stop these attempts (instance id, attempt)
    where they run, or as soon as their Dask task reaches the node.

    A coroutine, so ``client.run(..., wait=False)`` runs it in the worker's event loop
    without waiting for a thread (``NodePool.cancel`` only queues and wakes the driver).
    Dask passes the worker as ``dask_worker``.
    """
    plugin = dask_worker.plugins.get(plugin_name) if dask_worker is not None else None
    if not isinstance(plugin, GxoNodePlugin) or plugin.pool is None:
        return 0
    for instance_id, attempt in instances:
        plugin.pool.cancel(instance_id, attempt, reason)
    return len(instances)
