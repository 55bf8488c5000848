"""Run a playbook's instances on a Dask cluster: the parent keeps the scheduler, Dask places
and carries instances, a gxo pool on each Dask worker runs them.

::

    parent (scheduler, state, report)                       Dask worker (one per slot group)
    DaskExecutor.submit(Run) ── client.submit(run_instance) ──►  GxoNodePlugin → NodePool
          ▲                                                       gxo worker processes
          └── wait(): done callbacks → queue + wake-up pipe ◄──── NodeOutcome (redacted Done
                                                                   or how it was lost)

Only what the local pool would send crosses Dask: encoded :class:`Run` messages (raw params
and the referenced state, never a secret value: secrets are resolved on the node) and
:class:`NodeOutcome` results (a redacted ``Done`` or a loss reason). Dask's own recovery is
turned off for gxo's tasks (``retries=0``, and ``allowed-failures: 0`` on clusters gxo
starts), so no instance ever runs twice behind gxo's back: a Dask worker that dies makes its
running attempts ``Lost`` (``executor_worker_lost(<address>)``), and gxo's ``retry`` decides.

``distributed`` is imported only when this module is (``--executor dask``); without the
``gxo[dask]`` extra the CLI says what to install.

Level 4 (executors): implements the executor protocol the scheduler loop drives; knows
nothing of the scheduler's decisions.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import queue
import selectors
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import msgspec

from gxo._util.fds import drain
from gxo.errors import UsageError
from gxo.executors.settings import DaskSettings, require_dask

require_dask()  # before anything imports distributed: a clear message, not a traceback

from gxo.executors.dask_node import (  # noqa: E402
    GxoNodePlugin,
    GxoRunWatch,
    NodeOutcome,
    cancel_on_node,
    run_batch,
    run_group,
    run_instance,
)
from gxo.pool.executor import ExecutorEvent, Finished, Lost, Started  # noqa: E402
from gxo.report import InstanceReport  # noqa: E402
from gxo.wire import Done, Run, WorkerConfig  # noqa: E402

__all__ = [
    "DaskExecutor",
    "DaskSettings",
    "Placement",
    "WorkerLoad",
    "connect",
    "dashboard_text",
    "dask_resources",
    "job_script",
]

log = logging.getLogger("gxo")
_encoder = msgspec.msgpack.Encoder()
_done_decoder = msgspec.msgpack.Decoder(Done)

#: Dask settings gxo needs on any cluster it starts itself (DESIGN §12).
CLUSTER_CONFIG = {
    # Nanny-started workers are daemonic by default and could not start gxo's processes.
    "distributed.worker.daemon": False,
    # A task on a worker that died is not rerun by Dask: gxo's retry policy decides.
    "distributed.scheduler.allowed-failures": 0,
}


def connect(settings: DaskSettings) -> tuple[Any, Any]:
    """Return (client, cluster or None) for the settings; the caller closes both."""
    import dask
    import distributed

    address = settings.scheduler or os.environ.get("DASK_SCHEDULER_ADDRESS", "")
    if address:
        try:
            # A malformed address fails here: a Client that fails on one hangs the exit for
            # a minute (its __del__ waits to close), then prints a traceback.
            from distributed.comm.addressing import resolve_address

            resolve_address(address)
            return distributed.Client(address, set_as_default=False), None
        except (OSError, ValueError) as exc:  # refused, timed out (an OSError), bad address
            raise UsageError(
                f"cannot connect to the Dask scheduler at {address} "
                f"({' '.join(str(exc).split()) or type(exc).__name__}): check --dask-scheduler "
                "(or DASK_SCHEDULER_ADDRESS), that the scheduler runs and that this machine "
                "can reach it (TLS and other security settings come from Dask's configuration)"
            ) from None
    kind = settings.cluster or "local"
    with dask.config.set(CLUSTER_CONFIG):
        if kind == "local":
            cluster = distributed.LocalCluster(
                n_workers=settings.workers,
                threads_per_worker=settings.slots or 1,
                processes=True,
                dashboard_address=_dashboard_address(),
            )
        else:
            cluster = _jobqueue_cluster(kind)
            cluster.scale(jobs=settings.jobs)
    return distributed.Client(cluster, set_as_default=False), cluster


@contextlib.contextmanager
def dask_logging(*, debug: bool) -> Iterator[Callable[[], None]]:
    """Dask's log lines in this process during a run; yields ``hush``, to call once the
    scheduler is lost.

    Dask's INFO lines (and, as a scheduler vanishes, a closed stream's traceback) would
    interleave with gxo's own account of the run: its handlers stay at WARNING for the whole
    run, as a LocalCluster sets them for its own life, whether or not gxo started the
    cluster; with gxo's --log-level debug (``debug``), Dask logs as its configuration says.
    Once the scheduler is lost, gxo has said so: ``hush`` leaves only CRITICAL, so Dask's
    errors about reconnecting are not shown either.
    """
    from distributed.utils import silence_logging_cmgr

    with contextlib.ExitStack() as quiet:
        quiet.enter_context(silence_logging_cmgr(logging.DEBUG if debug else logging.WARNING))

        def hush() -> None:
            if not debug:
                quiet.enter_context(silence_logging_cmgr(logging.CRITICAL))

        yield hush


def dashboard_text(client: Any) -> str:
    """``, dashboard http://…`` for the start line, when the cluster serves one (bokeh)."""
    import importlib.util

    if importlib.util.find_spec("bokeh") is None:
        return ""
    try:
        link = str(client.dashboard_link)
    except Exception:  # noqa: BLE001 - no dashboard is not an error
        return ""
    return f", dashboard {link}" if link else ""


def _dashboard_address() -> str:
    """Any free port: the scheduler serves HTTP (its dashboard when bokeh is there to draw
    it, health and metrics without) even when given None, and then on Dask's default 8787,
    with a UserWarning on gxo's stderr whenever another cluster already has that port."""
    return ":0"


_JOBQUEUE = {"slurm": "SLURMCluster", "pbs": "PBSCluster", "lsf": "LSFCluster", "sge": "SGECluster"}


def _jobqueue_cluster(kind: str, *, for_script: bool = False) -> Any:
    """A dask-jobqueue cluster configured the way its users already configure it.

    Its job script exports gxo's daemon setting after the user's own prologue: CLUSTER_CONFIG
    is this process's configuration, and a job's Dask worker reads its node's (a nanny's
    daemonic worker cannot start gxo's processes). Given as arguments, not configuration:
    jobs are made (``scale``, ``close``) long after this returns. ``for_script``: only to
    print the script, so its scheduler's dashboard takes any free port, not Dask's 8787 (a
    UserWarning on stderr whenever another cluster has that one).
    """
    name = _JOBQUEUE.get(kind)
    if name is None:
        raise UsageError(f"--dask-cluster {kind!r} is not known: use local, {', '.join(_JOBQUEUE)}")
    require_dask(jobqueue=True)
    import dask
    import dask_jobqueue  # its defaults join Dask's configuration here

    section = f"jobqueue.{kind}"
    prologue = dask.config.get(f"{section}.job-script-prologue", None) or dask.config.get(
        f"{section}.env-extra", None
    )
    options: dict[str, Any] = {
        "job_script_prologue": [*(prologue or []), "export DASK_DISTRIBUTED__WORKER__DAEMON=False"]
    }
    if for_script:
        scheduler = dask.config.get(f"{section}.scheduler-options", None) or {}
        options["scheduler_options"] = {**scheduler, "dashboard_address": ":0"}
    try:
        return getattr(dask_jobqueue, name)(**options)
    except ValueError as exc:  # its check of the configuration (cores, memory, ...)
        raise UsageError(
            f"--dask-cluster {kind}: dask-jobqueue cannot make a job from its configuration: "
            f"{' '.join(str(exc).split())}; set it in ~/.config/dask/jobqueue.yaml (or the file "
            f"DASK_CONFIG names), or with variables such as DASK_JOBQUEUE__{kind.upper()}__CORES=8 "
            f"and DASK_JOBQUEUE__{kind.upper()}__MEMORY=24GB"
        ) from None


def job_script(kind: str) -> str:
    """The job script dask-jobqueue would submit for ``kind`` (``gxo plan --dask-cluster``)."""
    import dask

    with dask.config.set(CLUSTER_CONFIG):
        cluster = _jobqueue_cluster(kind, for_script=True)
        try:
            return str(cluster.job_script())
        finally:
            cluster.close()


@dataclass
class _Flight:
    """An instance (or a stream group's member) submitted to Dask."""

    run: Run
    #: None until :meth:`DaskExecutor.flush` sends it.
    future: Any
    cancelled: str = ""
    queue_behind: bool = False


class Placement(NamedTuple):
    """Where one attempt ran: the node's host name, the Dask worker's address, the gxo
    worker process's pid on that node."""

    host: str
    worker: str
    pid: int


class WorkerLoad(NamedTuple):
    """One Dask worker's gxo slots and how many are busy now (its node pool's last word)."""

    address: str
    host: str
    slots: int
    busy: int


#: Called with (instance id or None, lines) for what a node's instance printed (redacted).
OutputHandler = Callable[[int | None, str], None]


@dataclass
class DaskExecutor:
    """The executor protocol over a Dask client (see :class:`gxo.pool.Executor`).

    Args:
        client: a ``distributed.Client``.
        worker_config: what every node's gxo workers need (secret provider and names).
        timeouts: task name -> its timeout, enforced on the node (the parent's own deadline
            stays a backstop).
        resources: task name -> the Dask worker resources one instance takes
            (:func:`dask_resources` of the task's ``resources``).
        wakeup_fd: makes :meth:`wait` return early (the engine's signal pipe).
        grace: seconds between SIGTERM and SIGKILL on the node.
        on_output: lines the nodes' instances printed (``-v``, module output), as locally.
        on_scheduler_lost: called once when the connection to the Dask scheduler is lost
            (the engine stops the run); every attempt in flight then ends ``Lost``.
        on_load: called with every worker's :class:`WorkerLoad` when one's occupancy
            changed (the progress display).
    """

    client: Any
    worker_config: WorkerConfig
    timeouts: Mapping[str, float | None] = field(default_factory=dict)
    resources: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    wakeup_fd: int | None = None
    grace: float = 5.0
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    restarts: int = 0
    on_output: OutputHandler | None = None
    on_scheduler_lost: Callable[[], None] | None = None
    on_load: Callable[[list[WorkerLoad]], None] | None = None

    def __post_init__(self) -> None:
        self.plugin_name = f"gxo-{self.run_id}"
        self._flights: dict[int, _Flight] = {}
        #: (instance ids, Dask result or the exception it raised), filled on Dask's loop.
        self._results: queue.SimpleQueue[tuple[tuple[int, ...], Any]] = queue.SimpleQueue()
        self._ready: list[tuple[tuple[int, ...], Any]] = []
        self._ready_lock = threading.Lock()
        self._fetching = False
        #: Node events (printed lines, occupancy), filled on Dask's loop.
        self._node_events: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._wake_read, self._wake_write = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._wake_read, selectors.EVENT_READ)
        if self.wakeup_fd is not None:
            self._selector.register(self.wakeup_fd, selectors.EVENT_READ)
        self._events: list[ExecutorEvent] = []
        self._outbox: list[_Flight] = []
        #: Short instances held back until they fill a batch (while the cluster is busy).
        self._short: list[_Flight] = []
        self.size = 0
        #: (instance id, attempt) -> (index in ``_places``, pid): where it ran, for the
        #: report (a 20,000-instance run keeps 20,000 small tuples, not 20,000 strings).
        self._placements: dict[tuple[int, int], tuple[int, int]] = {}
        self._places: list[tuple[str, str]] = []
        self._place_index: dict[tuple[str, str], int] = {}
        #: Dask worker address -> its slots and busy slots (for the progress display).
        self.loads: dict[str, WorkerLoad] = {}
        #: The scheduler's address once the connection to it was lost ("" while connected).
        self.scheduler_lost = ""
        self._subscribed = False
        #: The node plugin was registered (a run refused at start never registers it, and
        #: removing it then would log an error on the scheduler: gxo's own terminal).
        self._registered = False

    # -- lifecycle ---------------------------------------------------------------------------

    def start(
        self,
        *,
        playbook_dir: str = "",
        largest_group: int = 0,
        limits: tuple[bool, bool] | None = None,
    ) -> None:
        """Check the cluster can run this playbook, then start a gxo pool on every worker.

        Raises :class:`UsageError` (nothing has run) when no worker connects within
        :data:`WORKER_WAIT` seconds, when a worker cannot see the playbook's directory, runs
        another gxo or Python, or is a daemonic process (it could not start gxo's), when a
        stream group is larger than every worker, or when a task needs a resource no
        connected worker offers, or when a worker cannot enforce
        ``isolation: process`` limits (``limits``: whether a task needs ``network: false``, and
        whether any is strict; None when no task is isolated). The node's pool then enforces
        them as a local run does (a cgroup, or rlimits + watch).
        """
        self._wait_for_workers()
        _check_nodes(self.client, playbook_dir, limits)
        slots = self.client.nthreads()
        if largest_group and largest_group > max(slots.values()):
            raise UsageError(
                f"a stream group of {largest_group} tasks runs on one Dask worker, and the "
                f"largest has {max(slots.values())} threads: start workers with "
                f"--nthreads {largest_group} or more (--dask-slots for a local cluster)"
            )
        _check_resources(self.client, self.resources)
        _warn_if_dask_reruns(self.client)
        self.client.subscribe_topic(self.plugin_name, self._on_node_event)
        self._subscribed = True
        self._watch_client()
        plugin = GxoNodePlugin(self.plugin_name, 0, _encoder.encode(self.worker_config), self.grace)
        self.client.register_plugin(plugin, name=self.plugin_name)
        self._registered = True
        self.size = self.capacity()
        info = self.client.scheduler_info()["workers"]
        for address, threads in self.client.nthreads().items():
            host = str(info.get(address, {}).get("host", ""))
            self.loads[address] = WorkerLoad(address, host, int(threads), 0)

    def _watch_client(self) -> None:
        """Have the scheduler close this run's node pools if gxo dies without doing so."""
        watch = GxoRunWatch(self.plugin_name, str(self.client.id))
        try:
            self.client.register_plugin(watch, name=watch.name)
        except Exception as exc:  # noqa: BLE001 - a scheduler without gxo still runs the run
            log.warning(
                "the Dask scheduler cannot watch this run (%s): if gxo is killed, the gxo "
                "processes it started on the Dask workers run on until those workers restart",
                " ".join(str(exc).split())[:200] or type(exc).__name__,
            )

    def _wait_for_workers(self) -> None:
        """An adaptive or batch cluster may have no worker yet: wait for one (bounded)."""
        wait = worker_wait()
        if self.client.nthreads():
            return
        log.info("waiting up to %gs for a Dask worker to connect", wait)
        try:
            self.client.wait_for_workers(1, timeout=wait)
        except TimeoutError:
            raise UsageError(
                f"no Dask worker connected to {self.client.scheduler.address} within "
                f"{wait:g}s: start workers, or check the cluster's job queue"
            ) from None

    def capacity(self) -> int:
        """Slots across the cluster now: one gxo worker process per Dask worker thread."""
        return int(sum(self.client.nthreads().values()))

    def close(self) -> None:
        if not self.scheduler_lost and self.client.status == "running":
            futures = [f.future for f in self._flights.values() if f.future is not None]
            with contextlib.suppress(Exception):
                if futures:
                    self.client.cancel(futures)
            if self._subscribed:
                with contextlib.suppress(Exception):
                    self.client.unsubscribe_topic(self.plugin_name)
            if self._registered:
                with contextlib.suppress(Exception):
                    self.client.unregister_worker_plugin(self.plugin_name)
        self._drain_node_events()
        self._selector.close()
        for fd in (self._wake_read, self._wake_write):
            with contextlib.suppress(OSError):
                os.close(fd)

    # -- the executor protocol ---------------------------------------------------------------

    def free_slots(self, *, queue_behind: bool = False, depth: int = 2) -> int:
        """Instances :meth:`submit` would take now.

        Without ``queue_behind``, one per slot of the cluster. With it (short tasks with no
        timeout, as the loop decides), up to ``depth`` per slot and at least two batches
        (:data:`BATCH`) per slot, so each slot has the next batch waiting on Dask when one
        ends and the round trip to the parent is not paid between them.
        """
        if self.scheduler_lost:
            return 0
        if not self.size:
            self.size = self.capacity()
        limit = self.size * max(depth, 2 * BATCH) if queue_behind else self.size
        return max(0, limit - len(self._flights))

    def submit(
        self, run: Run, *, queue_behind: bool = False, depth: int = 2, fds: Sequence[int] = ()
    ) -> bool:
        if fds:
            raise ValueError("stream pipes cannot cross Dask: submit the group (submit_group)")
        if self.free_slots(queue_behind=queue_behind, depth=depth) < 1:
            return False
        flight = _Flight(run, None, queue_behind=queue_behind)
        self._outbox.append(flight)
        self._flights[run.instance_id] = flight
        return True

    def submit_group(self, runs: Sequence[Run]) -> bool:
        """A stream group as one Dask task: its members run together on one node."""
        if self.free_slots() < len(runs):
            return False
        future = self.client.submit(
            run_group,
            self.plugin_name,
            [_encoder.encode(run) for run in runs],
            [self.timeouts.get(run.task_name) for run in runs],
            key=f"gxo-{self.run_id}-group-{runs[0].instance_id}-{runs[0].attempt}",
            pure=False,
            retries=0,
            resources=_sum_resources(self.resources.get(run.task_name) for run in runs),
        )
        flights = []
        for run in runs:
            flight = _Flight(run, future)
            self._flights[run.instance_id] = flight
            flights.append(flight)
        self._track(flights, future)
        return True

    def flush(self) -> None:
        """Send what :meth:`submit` queued as one graph update per kind of Dask task.

        Short instances (``queue_behind``) go in batches (:func:`run_batch`: one Dask task
        for up to :data:`BATCH` of them); while every slot has a batch's worth sent, they are
        held until they fill one, so Dask's per-task cost is paid once per batch. The
        others, and those that need Dask resources, go one Dask task each (``client.map``:
        one message to the scheduler for many tasks).
        """
        flights, self._outbox = self._outbox, []
        singles: dict[tuple[tuple[str, float], ...], list[_Flight]] = {}
        short = self._short
        for flight in flights:
            wanted = self.resources.get(flight.run.task_name)
            if flight.queue_behind and not wanted:
                short.append(flight)
            else:
                singles.setdefault(tuple(sorted((wanted or {}).items())), []).append(flight)
        sent = len(self._flights) - len(short)
        if short and (len(short) >= BATCH or sent < self.size * BATCH):
            self._short = []
            self._send_batches(short)
        for needs, group in singles.items():
            futures = self.client.map(
                run_instance,
                [self.plugin_name] * len(group),
                [_encoder.encode(f.run) for f in group],
                [self.timeouts.get(f.run.task_name) for f in group],
                key=[f"gxo-{self.run_id}-{f.run.instance_id}-{f.run.attempt}" for f in group],
                pure=False,
                retries=0,
                resources=dict(needs) or None,
            )
            for flight, future in zip(group, futures, strict=True):
                flight.future = future
                self._track([flight], future)

    def _send_batches(self, flights: list[_Flight]) -> None:
        size = max(1, min(BATCH, -(-len(flights) // max(1, self.size))))
        if len(flights) >= BATCH:
            size = BATCH
        chunks = [flights[i : i + size] for i in range(0, len(flights), size)]
        futures = self.client.map(
            run_batch,
            [self.plugin_name] * len(chunks),
            [[_encoder.encode(f.run) for f in chunk] for chunk in chunks],
            [[self.timeouts.get(f.run.task_name) for f in chunk] for chunk in chunks],
            key=[
                f"gxo-{self.run_id}-batch-{chunk[0].run.instance_id}-{chunk[0].run.attempt}"
                for chunk in chunks
            ],
            pure=False,
            retries=0,
        )
        for chunk, future in zip(chunks, futures, strict=True):
            for flight in chunk:
                flight.future = future
            self._track(chunk, future)

    def _track(self, flights: list[_Flight], future: Any) -> None:
        # Dask does not say when a task starts on a worker; with submissions bounded by the
        # cluster's slots it starts at once, so the attempt's clock starts now.
        self._events.extend(Started(f.run.instance_id, 0) for f in flights)
        ids = tuple(f.run.instance_id for f in flights)
        future.add_done_callback(lambda fut: self._done(ids, fut))

    def _done(self, ids: tuple[int, ...], future: Any) -> None:
        """A Dask task ended (Dask's callback thread): fetch its result on Dask's loop, in one
        request with the others that ended meanwhile (never one blocking call per result)."""
        with self._ready_lock:
            self._ready.append((ids, future))
            if self._fetching:
                return
            self._fetching = True
        self.client.loop.add_callback(self._fetch)

    async def _fetch(self) -> None:
        while True:
            with self._ready_lock:
                ready, self._ready = self._ready, []
                if not ready:
                    self._fetching = False
                    return
            finished = [(ids, f) for ids, f in ready if f.status == "finished"]
            others = [(ids, f) for ids, f in ready if f.status != "finished"]
            if finished:
                try:
                    values = await self.client.gather([f for _, f in finished], asynchronous=True)
                    for (ids, _), value in zip(finished, values, strict=True):
                        self._results.put((ids, value))
                except Exception:  # noqa: BLE001 - one of them failed: ask one by one
                    others += finished
            for ids, future in others:
                try:
                    value = await self.client.gather([future], asynchronous=True)
                    self._results.put((ids, value[0]))
                except BaseException as exc:  # noqa: BLE001 - every Dask failure is a loss
                    self._results.put((ids, exc))
            self._wake()

    def _wake(self) -> None:
        with contextlib.suppress(BlockingIOError, OSError):
            os.write(self._wake_write, b"x")

    def _on_node_event(self, event: Any) -> None:
        """A node pool's event (Dask's loop): lines printed, or its occupancy."""
        self._node_events.put(event[1] if isinstance(event, tuple) else event)
        self._wake()

    def cancel(self, instance_id: int, reason: str) -> None:
        flight = self._flights.get(instance_id)
        if flight is None or flight.cancelled:
            return
        flight.cancelled = reason
        if self.scheduler_lost:
            # Nothing can reach the nodes any more: the attempt is over as far as gxo knows.
            del self._flights[instance_id]
            self._events.append(
                Lost(
                    instance_id,
                    reason,
                    f"the connection to the Dask scheduler {self.scheduler_lost} was lost",
                )
            )
            return
        # Where it runs is the node pool's business: every node is asked, the one running it
        # stops it (TERM, grace, KILL of its process tree) and its outcome comes back.
        self.client.run(
            cancel_on_node,
            self.plugin_name,
            [(instance_id, flight.run.attempt)],
            reason,
            wait=False,
        )

    def hurry(self) -> None:
        """A second interrupt: the nodes' grace periods still apply (documented)."""

    def wind_down(self) -> None:
        """Nothing to do: the nodes' pools live as long as the cluster's workers."""

    def wait(self, timeout: float | None) -> list[ExecutorEvent]:
        events, self._events = self._events, []
        if events:
            timeout = 0
        elif not self.scheduler_lost:
            # A lost connection with nothing in flight has no future to report it: look.
            timeout = STATUS_CHECK if timeout is None else min(timeout, STATUS_CHECK)
        for key, _ in self._selector.select(timeout):
            drain(key.fd)
        self._drain_node_events()
        while True:
            try:
                ids, value = self._results.get_nowait()
            except queue.Empty:
                break
            events.extend(self._outcomes(ids, value))
        if not self.scheduler_lost and self.client.status not in ("running", "newly-created"):
            self._lose_scheduler()
        events.extend(self._events)
        self._events = []
        return events

    def _drain_node_events(self) -> None:
        changed = False
        while True:
            try:
                message = self._node_events.get_nowait()
            except queue.Empty:
                break
            if not isinstance(message, dict):
                continue
            lines = message.get("lines")
            if lines is not None:
                if self.on_output is not None:
                    for instance_id, text in lines:
                        self.on_output(instance_id, text)
                continue
            address = str(message.get("worker", ""))
            if address:
                self.loads[address] = WorkerLoad(
                    address,
                    str(message.get("host", "")),
                    int(message.get("slots", 0)),
                    int(message.get("busy", 0)),
                )
                changed = True
        if changed and self.on_load is not None:
            self.on_load(sorted(self.loads.values()))

    def _lose_scheduler(self) -> None:
        """The connection to the scheduler is gone: stop the run (the engine decides how)."""
        if self.scheduler_lost:
            return
        self.scheduler_lost = str(getattr(self.client.scheduler, "address", "")) or "?"
        log.error(
            "lost the connection to the Dask scheduler %s: stopping the run; the instances "
            "it was running are cancelled, completed ones are kept in the journal: run again "
            "with --resume once the cluster is back",
            self.scheduler_lost,
        )
        # Every attempt in flight now waits for the engine's stop (an interrupt): each is
        # cancelled then and ends Lost with the interrupt's reason (see :meth:`cancel`).
        # Those never sent are reported started, so the stop finds them running.
        unsent, self._outbox, self._short = [*self._outbox, *self._short], [], []
        self._events.extend(
            Started(f.run.instance_id, 0) for f in unsent if f.run.instance_id in self._flights
        )
        if self.on_scheduler_lost is not None:
            self.on_scheduler_lost()

    def _outcomes(self, ids: tuple[int, ...], value: Any) -> list[ExecutorEvent]:
        if isinstance(value, BaseException):
            if _connection_lost(value):
                self._lose_scheduler()
            if self.scheduler_lost:
                # Not a failure of these attempts: they end when the engine's stop cancels
                # them (or already did).
                return []
            return [self._lost(self._flights[i], value) for i in ids if i in self._flights]
        outcomes = value if isinstance(value, list) else [value]
        events: list[ExecutorEvent] = []
        for outcome in outcomes:
            flight = self._flights.get(outcome.instance_id)
            if flight is not None and outcome.instance_id in ids:
                events.append(self._event(flight, outcome))
        return events

    def _event(self, flight: _Flight, outcome: NodeOutcome) -> ExecutorEvent:
        del self._flights[outcome.instance_id]
        if outcome.worker:
            self._place(flight, outcome.host, outcome.worker, outcome.pid)
        if outcome.done:
            done = _done_decoder.decode(outcome.done)
            # The node's monotonic clock means nothing here: place the start on ours.
            started = time.monotonic() - outcome.ran_for
            return Finished(msgspec.structs.replace(done, started_at=started))
        return Lost(
            outcome.instance_id,
            outcome.reason,
            outcome.detail,
            outputs=tuple(outcome.outputs),
            processes_killed=outcome.processes_killed,
            usage=outcome.usage,
        )

    def _place(self, flight: _Flight, host: str, worker: str, pid: int) -> None:
        place = (host, worker)
        index = self._place_index.get(place)
        if index is None:
            index = self._place_index[place] = len(self._places)
            self._places.append(place)
        self._placements[flight.run.instance_id, flight.run.attempt] = (index, pid)

    def place_entry(self, entry: InstanceReport) -> None:
        """Fill where each attempt of an instance that ended ran, and forget it: the parent
        keeps no per-attempt record once the instance is in the run's spool (issue 17)."""
        for attempt in entry.attempts:
            found = self._placements.pop((entry.instance_id, attempt.number), None)
            if found is not None:
                attempt.host, attempt.executor_worker = self._places[found[0]]
                attempt.worker_pid = found[1] or attempt.worker_pid

    def where(self, instance_id: int, attempt: int) -> Placement | None:
        """Where that attempt ran, if a node reported it."""
        found = self._placements.get((instance_id, attempt))
        if found is None:
            return None
        host, worker = self._places[found[0]]
        return Placement(host, worker, found[1])

    def _lost(self, flight: _Flight, exc: BaseException) -> ExecutorEvent:
        instance_id = flight.run.instance_id
        del self._flights[instance_id]
        if flight.cancelled:
            return Lost(instance_id, flight.cancelled, f"stopped ({flight.cancelled})")
        worker = getattr(exc, "last_worker", None)
        address = getattr(worker, "address", "") or "unknown"
        if type(exc).__name__ == "KilledWorker":
            self.restarts += 1
            if address in self.loads:
                self._place(flight, self.loads[address].host, address, 0)
            return Lost(
                instance_id,
                f"executor_worker_lost({address})",
                f"the Dask worker {address} running this instance died: {exc}",
            )
        return Lost(instance_id, "executor_error", f"{type(exc).__name__}: {exc}")


#: Most short instances one Dask task carries (:func:`run_batch`).
BATCH = 8
#: Seconds between two looks at the client's connection while nothing is in flight.
STATUS_CHECK = 1.0


def dask_resources(resources: Mapping[str, float]) -> dict[str, float]:
    """The Dask worker resources one instance of a task takes: its ``resources`` by name,
    ``cpus`` included when above 1 (one slot is what every instance takes anyway)."""
    return {k: float(v) for k, v in resources.items() if not (k == "cpus" and v <= 1)}


def _sum_resources(parts: Any) -> dict[str, float] | None:
    """What a stream group's members take together (they run at once on one worker)."""
    total: dict[str, float] = {}
    for part in parts:
        for name, amount in (part or {}).items():
            total[name] = total.get(name, 0.0) + amount
    return total or None


def _connection_lost(exc: BaseException) -> bool:
    """Dask cancels every future when the client loses its scheduler."""
    return getattr(exc, "reason", "") == "scheduler-connection-lost"


def _check_resources(client: Any, resources: Mapping[str, Mapping[str, float]]) -> None:
    """Refuse (before anything runs) a task needing a resource no connected worker offers:
    Dask would keep it waiting for ever."""
    if not any(resources.values()):
        return
    offered: dict[str, float] = {}
    for info in client.scheduler_info()["workers"].values():
        for name, amount in (info.get("resources") or {}).items():
            offered[name] = max(offered.get(name, 0.0), float(amount))
    problems = []
    for task, wanted in resources.items():
        for name, amount in wanted.items():
            if offered.get(name, 0.0) + 1e-9 < amount:
                have = (
                    f"the most a worker offers is {offered[name]:g}"
                    if name in offered
                    else "no connected worker offers it"
                )
                problems.append(f"task {task!r} needs {amount:g} of {name!r}: {have}")
    if problems:
        declared = ", ".join(f"{k}={v:g}" for k, v in sorted(offered.items())) or "none"
        raise UsageError(
            "the Dask cluster cannot run this playbook:\n  "
            + "\n  ".join(problems)
            + f"\n  (resources the workers declare: {declared}; a worker declares them with "
            "dask worker --resources 'gpu=1 cpus=8', the Dask setting "
            "distributed.worker.resources, or worker_extra_args in dask-jobqueue)"
        )


#: Seconds ``start`` waits for a first Dask worker (an adaptive cluster may start with none),
#: unless ``GXO_DASK_WORKER_WAIT`` says otherwise (:func:`worker_wait`).
WORKER_WAIT = 120.0


def worker_wait() -> float:
    """``GXO_DASK_WORKER_WAIT`` (seconds), else :data:`WORKER_WAIT`; a value that is not a
    finite number of seconds is a usage error (read at run start, not at import)."""
    text = os.environ.get("GXO_DASK_WORKER_WAIT", "").strip()
    if not text:
        return WORKER_WAIT
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not math.isfinite(seconds) or seconds < 0:
        raise UsageError(
            f"GXO_DASK_WORKER_WAIT={text!r}: expected the seconds to wait for a first Dask "
            f"worker, such as {WORKER_WAIT:g}"
        )
    return seconds


def _node_facts(playbook_dir: str, limits: tuple[bool, bool] | None = None) -> dict[str, Any]:
    """Run on every Dask worker: what must match the parent for instances to run the same,
    and whether this node can enforce the playbook's ``isolation: process`` limits."""
    import multiprocessing
    import platform

    from gxo._version import __version__

    enforcement = ""
    if limits is not None:
        from gxo.pool.enforce import LimitsUnenforceable, choose_enforcement

        need_network, strict = limits
        try:
            chosen, _ = choose_enforcement(need_network=need_network, strict=strict)
            enforcement = chosen.describe()
        except LimitsUnenforceable as exc:
            enforcement = f"!{exc}"
    return {
        "gxo": __version__,
        "python": platform.python_version(),
        "sees_playbook_dir": not playbook_dir or os.path.isdir(playbook_dir),
        "limits": enforcement,
        # A nanny's worker is daemonic by default and may not start gxo's worker processes.
        "daemon": multiprocessing.current_process().daemon,
    }


def _check_nodes(client: Any, playbook_dir: str, limits: tuple[bool, bool] | None = None) -> None:
    """Files a playbook refers to must be on a filesystem the workers share, and the workers
    must run the gxo and Python the parent runs (module code and messages must agree)."""
    import platform

    from gxo._version import __version__

    problems = []
    for address, facts in client.run(_node_facts, playbook_dir, limits).items():
        enforced = facts.get("limits", "")
        if enforced.startswith("!"):
            problems.append(f"{address}: {enforced[1:]}")
        elif enforced:
            log.info("%s enforces isolation: process limits by %s", address, enforced)
        if facts["gxo"] != __version__:
            problems.append(f"{address} runs gxo {facts['gxo']}, this process {__version__}")
        if facts["python"].rsplit(".", 1)[0] != platform.python_version().rsplit(".", 1)[0]:
            problems.append(
                f"{address} runs Python {facts['python']}, this process {platform.python_version()}"
            )
        if facts.get("daemon"):
            problems.append(
                f"{address} is a daemonic process and cannot start gxo's worker processes: "
                "start the Dask workers with the Dask setting distributed.worker.daemon: False "
                "(DASK_DISTRIBUTED__WORKER__DAEMON=False)"
            )
        if not facts["sees_playbook_dir"]:
            problems.append(
                f"{address} cannot see {playbook_dir}: the playbook's directory must be on a "
                "filesystem shared with the workers"
            )
    if problems:
        raise UsageError("the Dask cluster cannot run this playbook:\n  " + "\n  ".join(problems))


def _warn_if_dask_reruns(client: Any) -> None:
    """Say so when the cluster would rerun a task after a worker loss (gxo cannot stop it)."""
    try:
        allowed = client.run_on_scheduler(_allowed_failures)
    except Exception:  # noqa: BLE001 - a scheduler that will not say is not an error
        return
    if allowed:
        log.warning(
            "this Dask scheduler reruns a task after %d worker losses "
            "(distributed.scheduler.allowed-failures): an instance whose worker dies may run "
            "again behind gxo's back; start the scheduler with allowed-failures: 0",
            allowed,
        )


def _allowed_failures(dask_scheduler: Any = None) -> int:
    return int(getattr(dask_scheduler, "allowed_failures", 0))
