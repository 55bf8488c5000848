"""OpenTelemetry traces: a span per run and per task instance, and the worker's span inside it.

::

    parent (engine)                                   worker process
    ───────────────                                   ──────────────
    span "gxo.run <playbook>"
     └─ span "gxo.task <instance label>"   ──Run.traceparent (W3C)──►  span "gxo.module <task>"
          started when the instance is first dispatched,               (one per attempt; its
          ended by its InstanceFinished event (bus thread)              parent is the instance)

When tracing is on, and how the provider is configured from the ``OTEL_*`` variables, is
:mod:`gxo.otel` (shared with the workers, which trace their attempts with
:func:`gxo.otel.traced_attempt`).

Workers configure their own provider from the same environment (as they inherited it) and
export their spans themselves. Span attributes are names, labels, statuses and reasons the
parent already logs (redacted by the workers); never a parameter or a secret value.

Nothing here imports OpenTelemetry at module level: the functions that need it import it, and
they run only when tracing is on.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

from gxo.events import Event, InstanceFinished, InstanceStarted, RetryScheduled, RunFinished

if TYPE_CHECKING:
    from opentelemetry.trace import Span

    from gxo.otel import TracerProvider
    from gxo.report import ExecutionReport
    from gxo.scheduler.messages import Dispatch

__all__ = ["RunTracer"]


def _ns(seconds: float) -> int:
    return int(seconds * 1e9)


class RunTracer:
    """The parent's spans of one run; subscribe it to the run's event bus.

    :meth:`traceparent` is called by the scheduler's loop when it builds each ``Run``
    message (its thread); the events arrive on the bus's thread; a lock keeps the two apart.
    """

    def __init__(self, provider: TracerProvider, run_id: str) -> None:
        from opentelemetry import trace
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        self._trace = trace
        self._propagator = TraceContextTextMapPropagator()
        self.tracer = provider.get_tracer("gxo")
        self.run_id = run_id
        self._lock = threading.Lock()
        self._run_span: Span | None = None
        self._spans: dict[int, Span] = {}
        self._attempts: dict[int, int] = {}
        #: Instance label -> its span's (trace_id, span_id), for log records about it.
        self._label_ids: dict[str, tuple[str, str]] = {}

    def log_ids(self, label: str | None) -> tuple[str, str] | None:
        """``(trace_id, span_id)`` for a log record: the instance ``label``'s span when it
        has one, else the run's (None before the run's span started)."""
        from gxo.otel import hex_ids

        if label is not None:
            found = self._label_ids.get(label)
            if found is not None:
                return found
        return hex_ids(self._run_span) if self._run_span is not None else None

    def start_run(self, playbook: str, tasks: int, workers: int, dry_run: bool) -> None:
        self._run_span = self.tracer.start_span(
            f"gxo.run {playbook}",
            attributes={
                "gxo.run_id": self.run_id,
                "gxo.playbook": playbook,
                "gxo.tasks": tasks,
                "gxo.workers": workers,
                "gxo.dry_run": dry_run,
            },
        )

    def _instance_span(self, instance_id: int, task: str, label: str, start: int | None) -> Span:
        span = self._spans.get(instance_id)
        if span is None:
            context = (
                self._trace.set_span_in_context(self._run_span)
                if self._run_span is not None
                else None
            )
            span = self.tracer.start_span(
                f"gxo.task {label}",
                context=context,
                start_time=start,
                attributes={
                    "gxo.run_id": self.run_id,
                    "gxo.task": task,
                    "gxo.instance.id": instance_id,
                    "gxo.instance.label": label,
                },
            )
            self._spans[instance_id] = span
            from gxo.otel import hex_ids

            self._label_ids[label] = hex_ids(span)
        return span

    def traceparent(self, dispatch: Dispatch) -> str:
        """The W3C ``traceparent`` of the dispatched instance's span (started now if it is
        its first attempt); the loop sends it with the instance's ``Run``."""
        with self._lock:
            span = self._instance_span(
                dispatch.instance_id, dispatch.task.name, dispatch.label, None
            )
        carrier: dict[str, str] = {}
        self._propagator.inject(carrier, context=self._trace.set_span_in_context(span))
        return carrier.get("traceparent", "")

    def __call__(self, event: Event) -> None:
        """Update or end spans from one run event (on the bus's thread)."""
        with self._lock:
            if isinstance(event, InstanceStarted):
                span = self._instance_span(event.instance_id, event.task, event.label, None)
                self._attempts[event.instance_id] = event.attempt
                span.add_event(
                    "attempt started",
                    {"gxo.attempt": event.attempt, "gxo.worker_pid": event.worker_pid or 0},
                    timestamp=_ns(event.time),
                )
            elif isinstance(event, RetryScheduled):
                span = self._instance_span(event.instance_id, event.task, event.label, None)
                span.add_event(
                    "retry scheduled",
                    {
                        "gxo.attempt": event.attempt,
                        "gxo.reason": event.reason,
                        "gxo.delay": event.delay,
                    },
                    timestamp=_ns(event.time),
                )
            elif isinstance(event, InstanceFinished):
                start = _ns(event.time)
                span = self._instance_span(event.instance_id, event.task, event.label, start)
                del self._spans[event.instance_id]
                self._end(span, event.status, event.reason, event.error, event.attempt, event.time)
            elif isinstance(event, RunFinished) and self._run_span is not None:
                span, self._run_span = self._run_span, None
                span.set_attribute("gxo.exit_code", event.exit_code)
                span.set_attribute("gxo.tasks.failed", event.failed)
                self._end(span, event.status, "", "", None, event.time)

    def _end(
        self, span: Span, status: str, reason: str, error: str, attempts: int | None, when: float
    ) -> None:
        from opentelemetry.trace import Status, StatusCode

        span.set_attribute("gxo.status", status)
        if reason:
            span.set_attribute("gxo.reason", reason)
        if attempts is not None:
            span.set_attribute("gxo.attempts", attempts)
        if status == "Failed":
            span.set_status(Status(StatusCode.ERROR, f"{reason}: {error}" if error else reason))
        elif status == "Completed":
            span.set_status(Status(StatusCode.OK))
        span.end(end_time=max(_ns(when), _start_ns(span)))

    def close(self, report: ExecutionReport | None) -> None:
        """End what the events did not (events dropped, or the run raised)."""
        with self._lock:
            now = time.time()
            statuses: dict[int, tuple[str, str, str, int]] = {}
            if report is not None and self._spans:  # spans the events did not end
                from gxo.report import task_instances

                for name in report.task_results:
                    for inst in task_instances(report, name):
                        statuses[inst.instance_id] = (
                            inst.status,
                            inst.reason,
                            inst.error,
                            len(inst.attempts),
                        )
            for instance_id, span in self._spans.items():
                status, reason, error, attempts = statuses.get(
                    instance_id, ("Cancelled", "interrupted", "", 0)
                )
                self._end(span, status, reason, error, attempts, now)
            self._spans.clear()
            if self._run_span is not None:
                span, self._run_span = self._run_span, None
                status = report.overall_status if report is not None else "Failed"
                self._end(span, status, "", report.error if report else "", None, now)


def _start_ns(span: Span) -> int:
    start = getattr(span, "start_time", None)
    return start if isinstance(start, int) else 0
