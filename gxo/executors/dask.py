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
import os
import queue
import selectors
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec

from gxo.errors import UsageError
from gxo.executors.settings import DaskSettings, require_dask

require_dask()  # before anything imports distributed: a clear message, not a traceback

from gxo.executors.dask_node import (  # noqa: E402
    GxoNodePlugin,
    NodeOutcome,
    cancel_on_node,
    run_group,
    run_instance,
)
from gxo.pool.executor import ExecutorEvent, Finished, Lost, Started  # noqa: E402
from gxo.wire import Done, Run, WorkerConfig  # noqa: E402

__all__ = ["DaskExecutor", "DaskSettings", "connect", "dashboard_text", "job_script"]

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
        return distributed.Client(address, set_as_default=False), None
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


def _dashboard_address() -> str | None:
    """Serve the dashboard (on any free port) only when bokeh is there to draw it."""
    import importlib.util

    return ":0" if importlib.util.find_spec("bokeh") is not None else None


_JOBQUEUE = {"slurm": "SLURMCluster", "pbs": "PBSCluster", "lsf": "LSFCluster", "sge": "SGECluster"}


def _jobqueue_cluster(kind: str) -> Any:
    """A dask-jobqueue cluster configured the way its users already configure it."""
    name = _JOBQUEUE.get(kind)
    if name is None:
        raise UsageError(f"--dask-cluster {kind!r} is not known: use local, {', '.join(_JOBQUEUE)}")
    require_dask(jobqueue=True)
    import dask_jobqueue

    return getattr(dask_jobqueue, name)()


def job_script(kind: str) -> str:
    """The job script dask-jobqueue would submit for ``kind`` (``gxo plan --dask-cluster``)."""
    import dask

    with dask.config.set(CLUSTER_CONFIG):
        cluster = _jobqueue_cluster(kind)
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


@dataclass
class DaskExecutor:
    """The executor protocol over a Dask client (see :class:`gxo.pool.Executor`).

    Args:
        client: a ``distributed.Client``.
        worker_config: what every node's gxo workers need (secret provider and names).
        timeouts: task name -> its timeout, enforced on the node (the parent's own deadline
            stays a backstop).
        wakeup_fd: makes :meth:`wait` return early (the engine's signal pipe).
        grace: seconds between SIGTERM and SIGKILL on the node.
    """

    client: Any
    worker_config: WorkerConfig
    timeouts: Mapping[str, float | None] = field(default_factory=dict)
    wakeup_fd: int | None = None
    grace: float = 5.0
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    restarts: int = 0

    def __post_init__(self) -> None:
        self.plugin_name = f"gxo-{self.run_id}"
        self._flights: dict[int, _Flight] = {}
        self._results: queue.SimpleQueue[tuple[int, Any]] = queue.SimpleQueue()
        self._wake_read, self._wake_write = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._wake_read, selectors.EVENT_READ)
        if self.wakeup_fd is not None:
            self._selector.register(self.wakeup_fd, selectors.EVENT_READ)
        self._events: list[ExecutorEvent] = []
        self._outbox: list[Run] = []
        self.size = 0

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
        :data:`WORKER_WAIT` seconds, when a worker cannot see the playbook's directory or runs
        another gxo or Python, when a stream group is larger than every worker, or when a
        worker cannot enforce ``isolation: process`` limits (``limits``: whether a task needs
        ``network: false``, and whether any is strict; None when no task is isolated). The
        node's pool then enforces them as a local run does (a cgroup, or rlimits + watch).
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
        _warn_if_dask_reruns(self.client)
        plugin = GxoNodePlugin(self.plugin_name, 0, _encoder.encode(self.worker_config), self.grace)
        self.client.register_plugin(plugin, name=self.plugin_name)
        self.size = self.capacity()

    def _wait_for_workers(self) -> None:
        """An adaptive or batch cluster may have no worker yet: wait for one (bounded)."""
        if self.client.nthreads():
            return
        log.info("waiting up to %gs for a Dask worker to connect", WORKER_WAIT)
        try:
            self.client.wait_for_workers(1, timeout=WORKER_WAIT)
        except TimeoutError:
            raise UsageError(
                f"no Dask worker connected to {self.client.scheduler.address} within "
                f"{WORKER_WAIT:g}s: start workers, or check the cluster's job queue"
            ) from None

    def capacity(self) -> int:
        """Slots across the cluster now: one gxo worker process per Dask worker thread."""
        return int(sum(self.client.nthreads().values()))

    def close(self) -> None:
        for flight in self._flights.values():
            with contextlib.suppress(Exception):
                flight.future.cancel()
        with contextlib.suppress(Exception):
            self.client.unregister_worker_plugin(self.plugin_name)
        self._selector.close()
        for fd in (self._wake_read, self._wake_write):
            with contextlib.suppress(OSError):
                os.close(fd)

    # -- the executor protocol ---------------------------------------------------------------

    def free_slots(self, *, queue_behind: bool = False, depth: int = 2) -> int:
        """Instances :meth:`submit` would take now.

        Without ``queue_behind``, one per slot of the cluster. With it (short tasks with no
        timeout, as the loop decides), up to ``depth`` per slot, so each node has the next
        instances queued and Dask's round trip to the parent is not paid between them.
        """
        if not self.size:
            self.size = self.capacity()
        limit = self.size * depth if queue_behind else self.size
        return max(0, limit - len(self._flights))

    def submit(
        self, run: Run, *, queue_behind: bool = False, depth: int = 2, fds: Sequence[int] = ()
    ) -> bool:
        if fds:
            raise ValueError("stream pipes cannot cross Dask: submit the group (submit_group)")
        if self.free_slots(queue_behind=queue_behind, depth=depth) < 1:
            return False
        self._outbox.append(run)
        self._flights[run.instance_id] = _Flight(run, None)
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
        )
        for run in runs:
            self._track(run, future)
        return True

    def _track(self, run: Run, future: Any) -> None:
        flight = self._flights.get(run.instance_id)
        if flight is None:
            self._flights[run.instance_id] = _Flight(run, future)
        else:
            flight.future = future
        # Dask does not say when a task starts on a worker; with submissions bounded by the
        # cluster's slots it starts at once, so the attempt's clock starts now.
        self._events.append(Started(run.instance_id, 0))
        instance_id = run.instance_id

        def done(fut: Any) -> None:
            self._results.put((instance_id, fut))
            with contextlib.suppress(BlockingIOError, OSError):
                os.write(self._wake_write, b"x")

        future.add_done_callback(done)

    def flush(self) -> None:
        """Send what :meth:`submit` queued as one graph update (``client.map``): one message
        to the scheduler for many instances, instead of one each."""
        runs, self._outbox = self._outbox, []
        if not runs:
            return
        futures = self.client.map(
            run_instance,
            [self.plugin_name] * len(runs),
            [_encoder.encode(run) for run in runs],
            [self.timeouts.get(run.task_name) for run in runs],
            key=[f"gxo-{self.run_id}-{run.instance_id}-{run.attempt}" for run in runs],
            pure=False,
            retries=0,
        )
        for run, future in zip(runs, futures, strict=True):
            self._track(run, future)

    def cancel(self, instance_id: int, reason: str) -> None:
        flight = self._flights.get(instance_id)
        if flight is None or flight.cancelled:
            return
        flight.cancelled = reason
        # Where it runs is the node pool's business: every node is asked, the one running it
        # stops it (TERM, grace, KILL of its process tree) and its outcome comes back.
        self.client.run(cancel_on_node, self.plugin_name, [instance_id], reason, wait=False)

    def hurry(self) -> None:
        """A second interrupt: the nodes' grace periods still apply (documented)."""

    def wait(self, timeout: float | None) -> list[ExecutorEvent]:
        events, self._events = self._events, []
        if events:
            timeout = 0
        for key, _ in self._selector.select(timeout):
            _drain(key.fd)
        while True:
            try:
                instance_id, future = self._results.get_nowait()
            except queue.Empty:
                break
            events.extend(self._outcomes(instance_id, future))
        return events

    def _outcomes(self, instance_id: int, future: Any) -> list[ExecutorEvent]:
        flight = self._flights.get(instance_id)
        if flight is None:
            return []
        try:
            result = future.result()
        except Exception as exc:  # noqa: BLE001 - every Dask failure is a lost attempt
            return [self._lost(flight, exc)]
        outcomes = result if isinstance(result, list) else [result]
        events: list[ExecutorEvent] = []
        for outcome in outcomes:
            if outcome.instance_id == instance_id:
                events.append(self._event(flight, outcome))
        return events

    def _event(self, flight: _Flight, outcome: NodeOutcome) -> ExecutorEvent:
        del self._flights[outcome.instance_id]
        if outcome.done:
            done = _done_decoder.decode(outcome.done)
            # The node's monotonic clock means nothing here: place the start on ours.
            started = time.monotonic() - outcome.ran_for
            return Finished(msgspec.structs.replace(done, started_at=started))
        return Lost(outcome.instance_id, outcome.reason, outcome.detail, usage=outcome.usage)

    def _lost(self, flight: _Flight, exc: BaseException) -> ExecutorEvent:
        instance_id = flight.run.instance_id
        del self._flights[instance_id]
        if flight.cancelled:
            return Lost(instance_id, flight.cancelled, f"stopped ({flight.cancelled})")
        worker = getattr(exc, "last_worker", None)
        address = getattr(worker, "address", "") or "unknown"
        if type(exc).__name__ == "KilledWorker":
            self.restarts += 1
            return Lost(
                instance_id,
                f"executor_worker_lost({address})",
                f"the Dask worker {address} running this instance died: {exc}",
            )
        return Lost(instance_id, "executor_error", f"{type(exc).__name__}: {exc}")


#: Seconds ``start`` waits for a first Dask worker (an adaptive cluster may start with none).
WORKER_WAIT = float(os.environ.get("GXO_DASK_WORKER_WAIT", "120"))


def _node_facts(playbook_dir: str, limits: tuple[bool, bool] | None = None) -> dict[str, Any]:
    """Run on every Dask worker: what must match the parent for instances to run the same,
    and whether this node can enforce the playbook's ``isolation: process`` limits."""
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


def _drain(fd: int) -> None:
    try:
        while os.read(fd, 4096):
            pass
    except (BlockingIOError, InterruptedError):
        pass
