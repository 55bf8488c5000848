"""Prometheus metrics of a run, fed from the event bus (a subscriber, never counters in the core).

::

    engine ─► EventBus ─► RunMetrics(event) ─► prometheus_client registry
                                                 ├─► MetricsServer   (--metrics-port: scraped
                                                 │                    while the run goes on)
                                                 └─► write_textfile  (--metrics-file: at the end,
                                                                      temp file + rename)

Every metric is derived from the events, once (stream edges from the producer side's
``StreamEdgeClosed`` event, when the producing instance ends; ``gxo_workers`` from
``RunStarted``: the worker processes the run started with). An event the bus dropped (it logs
how many) is missing from the metrics too.

``prometheus_client`` is imported only when this module is: a run that asks for no metrics
never loads it.
"""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from gxo._util.outputs import write_atomic
from gxo.events import (
    Event,
    InstanceFinished,
    InstanceStarted,
    RetryScheduled,
    RunFinished,
    RunStarted,
    SecretAccessed,
    StreamEdgeClosed,
    TaskQueued,
    TaskStatusChanged,
    WorkerLost,
    WorkerStarted,
)

if TYPE_CHECKING:
    from gxo.report import ExecutionReport

__all__ = [
    "DURATION_BUCKETS",
    "MetricsServer",
    "RunMetrics",
    "not_run_metrics",
    "write_textfile",
]

#: Seconds: from a no-op task (a millisecond) to a long build step (an hour).
DURATION_BUCKETS = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    300.0,
    900.0,
    3600.0,
)

_FINAL = frozenset({"Completed", "Failed", "Skipped", "Cancelled"})


class RunMetrics:
    """The metrics of one run, in their own registry; call it with each event.

    Every metric carries a ``playbook`` label, so textfiles of several playbooks can sit side
    by side in node-exporter's directory.
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self._playbook = ""
        self._lock = threading.Lock()
        #: Tasks queued or running, not yet at a final status (TaskQueued .. final status).
        self._open: set[str] = set()
        #: Task -> its instances running in a worker now (tasks_running counts these tasks).
        self._attempting: dict[str, int] = {}
        self.run_info = Gauge(
            "gxo_run_info",
            "The run: playbook, run id, gxo version",
            ["playbook", "run_id"],
            registry=r,
        )
        self.tasks_total = Gauge("gxo_tasks", "Tasks in the playbook", ["playbook"], registry=r)
        self.workers = Gauge(
            "gxo_workers", "Worker processes the run started with", ["playbook"], registry=r
        )
        self.tasks = Counter(
            "gxo_tasks_finished",
            "Tasks that reached a final status (Completed, Failed, Skipped, Cancelled)",
            ["playbook", "status", "reason"],
            registry=r,
        )
        self.tasks_running = Gauge(
            "gxo_tasks_running",
            "Tasks with at least one instance running in a worker now",
            ["playbook"],
            registry=r,
        )
        self.tasks_queued = Gauge(
            "gxo_tasks_queued",
            "Tasks ready to run (their upstream done) with no instance running now: waiting "
            "for a worker, or between retries",
            ["playbook"],
            registry=r,
        )
        self.instances = Counter(
            "gxo_instances_finished",
            "Task instances (one per loop item) that reached a final status",
            ["playbook", "task", "status"],
            registry=r,
        )
        self.instances_running = Gauge(
            "gxo_instances_running",
            "Task instances running in a worker now",
            ["playbook"],
            registry=r,
        )
        self.attempts = Counter(
            "gxo_attempts_started", "Attempts started in a worker", ["playbook", "task"], registry=r
        )
        self.durations = Histogram(
            "gxo_instance_duration_seconds",
            "Wall time of each instance's last attempt",
            ["playbook", "task", "status"],
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.retries = Counter(
            "gxo_retries",
            "Attempts that failed and were retried",
            ["playbook", "task", "reason"],
            registry=r,
        )
        self.workers_started = Counter(
            "gxo_workers_started", "Worker processes started", ["playbook"], registry=r
        )
        self.worker_restarts = Counter(
            "gxo_worker_restarts",
            "Worker processes lost during the run (each is replaced)",
            ["playbook", "reason"],
            registry=r,
        )
        self.run_duration = Gauge(
            "gxo_run_duration_seconds", "Wall time of the run", ["playbook"], registry=r
        )
        self.run_exit_code = Gauge(
            "gxo_run_exit_code",
            "The run's exit code (0 ok, 1 failed, 130/143 interrupted)",
            ["playbook"],
            registry=r,
        )
        self.run_success = Gauge(
            "gxo_run_success",
            "1 when the run completed, 0 when it failed",
            ["playbook"],
            registry=r,
        )
        self.run_end = Gauge(
            "gxo_run_end_timestamp_seconds",
            "When the run ended (Unix time)",
            ["playbook"],
            registry=r,
        )
        self.secrets_accessed = Counter(
            "gxo_secrets_accessed",
            "Secrets resolved, by task and secret name (a count; never a value)",
            ["task", "name"],
            registry=r,
        )
        self.secrets_redacted = Counter(
            "gxo_secrets_redacted",
            "Substitutions redaction made in a task's results, errors and output (a count)",
            ["task"],
            registry=r,
        )
        edge = ["playbook", "producer", "consumer"]
        self.stream_records = Counter(
            "gxo_stream_records", "Records sent on a stream edge (producer side)", edge, registry=r
        )
        self.stream_bytes = Counter(
            "gxo_stream_bytes", "Bytes sent on a stream edge (producer side)", edge, registry=r
        )
        self.stream_drops = Counter(
            "gxo_stream_dropped_records",
            "Records dropped by a stream edge's overflow strategy",
            edge,
            registry=r,
        )
        self.stream_blocked = Counter(
            "gxo_stream_blocked_seconds",
            "Time the producer spent blocked on a full stream edge",
            edge,
            registry=r,
        )

    def __call__(self, event: Event) -> None:
        """Count one event (called on the event bus's delivery thread)."""
        with self._lock:
            self._observe(event)

    def _observe(self, event: Event) -> None:
        pb = self._playbook
        if isinstance(event, RunStarted):
            self._playbook = pb = event.playbook
            self._open.clear()
            self._attempting.clear()
            self.run_info.labels(pb, event.run_id).set(1)
            self.tasks_total.labels(pb).set(event.tasks)
            self.workers.labels(pb).set(event.workers)
        elif isinstance(event, TaskQueued | TaskStatusChanged):
            self._task_event(pb, event)
        elif isinstance(event, InstanceStarted):
            self.attempts.labels(pb, event.task).inc()
            self.instances_running.labels(pb).inc()
            self._attempting[event.task] = self._attempting.get(event.task, 0) + 1
            self._task_gauges(pb)
        elif isinstance(event, InstanceFinished):
            self.instances.labels(pb, event.task, event.status).inc()
            if event.attempt > 0:
                self.instances_running.labels(pb).dec()
                self.durations.labels(pb, event.task, event.status).observe(event.duration)
                self._attempt_ended(pb, event.task)
            if event.secrets_redacted:
                self.secrets_redacted.labels(event.task).inc(event.secrets_redacted)
        elif isinstance(event, SecretAccessed):
            self.secrets_accessed.labels(event.task, event.name).inc()
        elif isinstance(event, RetryScheduled):
            self.retries.labels(pb, event.task, event.reason).inc()
            self.instances_running.labels(pb).dec()
            self._attempt_ended(pb, event.task)
        elif isinstance(event, WorkerStarted):
            self.workers_started.labels(pb).inc()
        elif isinstance(event, WorkerLost):
            self.worker_restarts.labels(pb, event.reason).inc()
        elif isinstance(event, StreamEdgeClosed):
            if event.side == "out":
                labels = (pb, event.producer, event.consumer)
                self.stream_records.labels(*labels).inc(event.records)
                self.stream_bytes.labels(*labels).inc(event.bytes)
                self.stream_drops.labels(*labels).inc(event.drops)
                self.stream_blocked.labels(*labels).inc(event.blocked_seconds)
        elif isinstance(event, RunFinished):
            self._run_finished(pb, event)

    def _run_finished(self, pb: str, event: RunFinished) -> None:
        self.tasks_running.labels(pb).set(0)
        self.tasks_queued.labels(pb).set(0)
        self.instances_running.labels(pb).set(0)
        self._attempting.clear()
        self.run_duration.labels(pb).set(event.duration)
        self.run_exit_code.labels(pb).set(event.exit_code)
        self.run_success.labels(pb).set(1 if event.status == "Completed" else 0)
        self.run_end.labels(pb).set(event.time)

    def _task_event(self, pb: str, event: TaskQueued | TaskStatusChanged) -> None:
        """A task was queued, became Running, or reached its final status."""
        if isinstance(event, TaskQueued) or event.status == "Running":
            self._open.add(event.task)
        elif event.status in _FINAL:
            self.tasks.labels(pb, event.status, event.reason).inc()
            self._open.discard(event.task)
            self._attempting.pop(event.task, None)
        self._task_gauges(pb)

    def _attempt_ended(self, pb: str, task: str) -> None:
        left = self._attempting.get(task, 0) - 1
        if left > 0:
            self._attempting[task] = left
        else:
            self._attempting.pop(task, None)
        self._task_gauges(pb)

    def _task_gauges(self, pb: str) -> None:
        """A task counts as running while one of its instances runs in a worker; a task
        that is queued (its upstream done) or between retries, with none running, is queued."""
        running = sum(1 for task in self._attempting if task in self._open)
        self.tasks_running.labels(pb).set(running)
        self.tasks_queued.labels(pb).set(len(self._open) - running)


def not_run_metrics(report: ExecutionReport) -> CollectorRegistry:
    """The metrics of a run that never started (``report``: an invalid playbook's, or one
    refused at its start): those of a run with no task and no worker that ended as the report
    says (``Failed``, exit code 2), so a scraper finds the run and its exit code."""
    metrics = RunMetrics()
    end = report.end_time.timestamp() if report.end_time is not None else 0.0
    run_id, pb = report.run_id, report.playbook_name
    metrics(RunStarted(run_id=run_id, time=end, playbook=pb, tasks=0, workers=0))
    status, code = report.overall_status, report.exit_code
    finished = RunFinished(
        run_id=run_id, time=end, status=status, exit_code=code, duration=report.duration
    )
    metrics(finished)
    return metrics.registry


def write_textfile(path: str | os.PathLike[str], registry: CollectorRegistry) -> None:
    """Write the exposition text to ``path`` atomically (node-exporter's textfile collector).

    The text goes to a temporary file in the same directory (a name without ``.prom``, which
    the collector ignores), renamed over ``path``: a collector never reads half a file.
    Raises :class:`OSError`; no temporary file is left behind.
    """
    write_atomic(path, generate_latest(registry))


class MetricsServer:
    """Serves ``/metrics`` over HTTP during a run (``--metrics-port``); :meth:`stop` ends it."""

    def __init__(self, registry: CollectorRegistry, port: int, addr: str = "127.0.0.1") -> None:
        from prometheus_client import start_http_server

        server: Any
        server, self._thread = start_http_server(port, addr=addr, registry=registry)
        self._server = server
        self.addr = addr
        #: The bound port (the one asked for, or the free one chosen for port 0).
        self.port: int = int(server.server_address[1])

    @property
    def url(self) -> str:
        host = f"[{self.addr}]" if ":" in self.addr else self.addr
        return f"http://{host}:{self.port}/metrics"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5.0)
