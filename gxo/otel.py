"""OpenTelemetry set-up from the environment, and the worker's span around each attempt.

Shared by the parent (:mod:`gxo.observability.tracing` builds the run's spans on top of it)
and every worker (:func:`traced_attempt`), which is why it sits at level 0: a worker traces
without importing the parent's observability.

Tracing is on with ``--otel`` or the standard variables: ``OTEL_TRACES_EXPORTER`` (``otlp``,
``console``, ``none``; several separated by commas), ``OTEL_EXPORTER_OTLP_ENDPOINT`` /
``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` (OTLP over HTTP/protobuf), ``OTEL_SERVICE_NAME`` and
``OTEL_RESOURCE_ATTRIBUTES``; ``OTEL_SDK_DISABLED=true`` turns it off whatever else is set.
``GXO_TRACES_FILE=PATH`` also appends every span, one JSON object a line, to ``PATH`` (the
parent's and every worker's: a local trace without a collector).

Nothing here imports OpenTelemetry at module level: the functions that need it import it, and
they run only when tracing is on.

Level 0: imports nothing from gxo but :mod:`gxo.wire` (for types).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import ReadableSpan
    from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
    from opentelemetry.trace import Tracer

    from gxo.wire import Done, Run

__all__ = [
    "FILE_ENV",
    "TracerProvider",
    "log_ids",
    "provider_from_env",
    "shutdown_provider",
    "traced_attempt",
    "tracing_requested",
]

log = logging.getLogger("gxo")

#: Append every span (parent and workers) as JSON lines to this file.
FILE_ENV = "GXO_TRACES_FILE"
_ENDPOINTS = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")


class TracerProvider(Protocol):
    """What gxo needs of a tracer provider (OpenTelemetry's SDK ``TracerProvider`` is one)."""

    def get_tracer(self, instrumenting_module_name: str) -> Tracer: ...


def _disabled(environ: Mapping[str, str]) -> bool:
    return environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true"


def _exporter_names(environ: Mapping[str, str], flag: bool = False) -> list[str]:
    """The exporters asked for; with no ``OTEL_TRACES_EXPORTER``, OTLP if an endpoint or
    ``--otel`` says so."""
    names = environ.get("OTEL_TRACES_EXPORTER")
    if names is None:
        return ["otlp"] if flag or any(environ.get(e) for e in _ENDPOINTS) else []
    return [n.strip().lower() for n in names.split(",") if n.strip().lower() not in ("", "none")]


def tracing_requested(flag: bool = False, environ: Mapping[str, str] | None = None) -> bool:
    """Whether a run traces: ``--otel`` or the ``OTEL_*`` variables, unless disabled."""
    env = os.environ if environ is None else environ
    if _disabled(env):
        return False
    return bool(_exporter_names(env, flag) or env.get(FILE_ENV))


#: What to install for ``otlp`` (the OpenTelemetry SDK itself is a regular dependency).
OTLP_EXTRA = "pip install 'gxo[otel]'"


class _ExporterMissing(Exception):
    """The OTLP exporter package (the ``gxo[otel]`` extra) is not installed."""


def _otlp_explicit(env: Mapping[str, str], flag: bool) -> bool:
    """``--otel`` or ``OTEL_TRACES_EXPORTER`` named OTLP (not only an inherited endpoint)."""
    named = env.get("OTEL_TRACES_EXPORTER", "")
    return flag or "otlp" in (n.strip().lower() for n in named.split(","))


def provider_from_env(
    flag: bool = False,
    environ: Mapping[str, str] | None = None,
    *,
    batch: bool = True,
    warn: bool = True,
) -> SdkTracerProvider | None:
    """A tracer provider exporting where the environment says, or None when nothing would.

    Raises :class:`ValueError` for an exporter name gxo does not know, and when OTLP was
    asked for explicitly (``--otel``, ``OTEL_TRACES_EXPORTER=otlp``) but its exporter (the
    ``gxo[otel]`` extra) is not installed. When only an endpoint variable (often inherited
    from a login environment) implies OTLP, the missing exporter is a warning (``warn``; the
    workers pass False, the parent has said it) and the run goes on without OTLP.
    """
    env = os.environ if environ is None else environ
    if _disabled(env):
        return None
    exporters: list[tuple[SpanExporter, bool]] = []
    for name in _exporter_names(env, flag):
        if name == "otlp":
            try:
                exporters.append((_otlp_exporter(env), True))
            except _ExporterMissing:
                if _otlp_explicit(env, flag):
                    raise ValueError(
                        f"the OTLP exporter is not installed: {OTLP_EXTRA} (or trace to a "
                        f"file with {FILE_ENV}=PATH, or to stdout with "
                        "OTEL_TRACES_EXPORTER=console)"
                    ) from None
                if warn:
                    endpoint = next(e for e in _ENDPOINTS if env.get(e))
                    log.warning(
                        "tracing: %s is set, but the OTLP exporter is not installed, so no "
                        "spans are sent: %s to send them, or unset %s",
                        endpoint,
                        OTLP_EXTRA,
                        endpoint,
                    )
        elif name == "console":
            from opentelemetry.sdk.trace.export import ConsoleSpanExporter

            exporters.append((ConsoleSpanExporter(), False))
        else:
            raise ValueError(
                f"OTEL_TRACES_EXPORTER={env.get('OTEL_TRACES_EXPORTER')!r}: gxo knows "
                "'otlp', 'console' and 'none'"
            )
    if env.get(FILE_ENV):
        exporters.append((_json_lines_exporter(env[FILE_ENV]), False))
    if not exporters:
        return None
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider as SdkProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    if any(remote for _, remote in exporters):
        _report_export_errors_once()
    attributes = {} if env.get("OTEL_SERVICE_NAME") else {"service.name": "gxo"}
    provider = SdkProvider(resource=Resource.create(attributes))
    for exporter, remote in exporters:
        # Remote exporters are batched (a slow collector must not slow tasks); local ones are
        # written as each span ends, so nothing is lost when a process ends abruptly.
        processor = (
            BatchSpanProcessor(exporter) if remote and batch else SimpleSpanProcessor(exporter)
        )
        provider.add_span_processor(processor)
    return provider


class _FirstErrorOnly(logging.Handler):
    """OpenTelemetry's export warnings, once: a missing collector must not flood the log."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.shown = False

    def emit(self, record: logging.LogRecord) -> None:
        if not self.shown:
            self.shown = True
            log.warning(
                "tracing: %s (spans may be lost; further export errors are not shown)",
                record.getMessage(),
            )


def _report_export_errors_once() -> None:
    otel_log = logging.getLogger("opentelemetry")
    if not any(isinstance(h, _FirstErrorOnly) for h in otel_log.handlers):
        otel_log.addHandler(_FirstErrorOnly())
        otel_log.propagate = False


def shutdown_provider(provider: SdkTracerProvider, seconds: float = 5.0) -> bool:
    """Export what is batched and shut ``provider`` down, waiting at most ``seconds``.

    An unreachable collector makes the exporter retry for a while: the run does not wait for
    it (the export goes on in a daemon thread, which ends with the process). Returns whether
    the shutdown finished in time.
    """
    thread = threading.Thread(target=provider.shutdown, name="gxo-otel-shutdown", daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        log.warning("tracing: spans not exported within %gs; is the collector running?", seconds)
        return False
    return True


def _otlp_exporter(env: Mapping[str, str]) -> SpanExporter:
    protocol = env.get(
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", env.get("OTEL_EXPORTER_OTLP_PROTOCOL", "")
    )
    if protocol.strip().lower() == "grpc":
        raise ValueError(
            "OTEL_EXPORTER_OTLP_PROTOCOL=grpc: gxo exports OTLP over http/protobuf only; "
            "set it to http/protobuf (and the endpoint to the collector's HTTP port, 4318)"
        )
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
            OTLPSpanExporter as HttpExporter,
        )
    except ImportError:
        raise _ExporterMissing from None
    http_exporter: SpanExporter = HttpExporter()
    return http_exporter


def _json_lines_exporter(path: str) -> SpanExporter:
    """Appends each span as one JSON line (``ReadableSpan.to_json``) to ``path``.

    Each batch is one ``write`` to the file opened with ``O_APPEND``, so the parent and the
    workers can share it.
    """
    from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

    class JsonLinesSpanExporter(SpanExporter):
        failed = False

        def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
            data = "".join(span.to_json(indent=None) + "\n" for span in spans).encode()
            flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC
            try:
                fd = os.open(path, flags, 0o644)
                try:
                    os.write(fd, data)
                finally:
                    os.close(fd)
            except OSError as exc:
                # A full disk or a removed directory loses spans, not the run; said once.
                if not self.failed:
                    self.failed = True
                    log.warning(
                        "tracing: cannot append to %s=%s: %s (spans are lost)",
                        FILE_ENV,
                        path,
                        exc.strerror or exc,
                    )
                return SpanExportResult.FAILURE
            return SpanExportResult.SUCCESS

    return JsonLinesSpanExporter()


# Worker side --------------------------------------------------------------------------------

_worker_provider: SdkTracerProvider | None = None
_worker_configured = False


def _worker_tracer() -> Tracer | None:
    global _worker_provider, _worker_configured  # noqa: PLW0603 - one provider per process
    if not _worker_configured:
        _worker_configured = True
        try:
            _worker_provider = provider_from_env(warn=False)
        except (ValueError, ImportError) as exc:
            log.warning("tracing in the worker is off: %s", exc)
            _worker_provider = None
        if _worker_provider is not None:
            from multiprocessing import util

            # Workers end through multiprocessing, which runs its finalizers, not atexit. The
            # pool waits a few seconds for a stopped worker: export for at most one.
            util.Finalize(
                _worker_provider, shutdown_provider, args=(_worker_provider, 1.0), exitpriority=10
            )
    return _worker_provider.get_tracer("gxo.worker") if _worker_provider is not None else None


#: ``(trace_id, span_id)`` in hex of the attempt this worker is tracing now (None: none), so
#: its log records carry them (see :func:`log_ids`).
_attempt_ids: tuple[str, str] | None = None


def log_ids() -> tuple[str, str] | None:
    """The trace and span ids of the attempt being traced in this worker, or None."""
    return _attempt_ids


def hex_ids(span: object) -> tuple[str, str]:
    """``(trace_id, span_id)`` of an OpenTelemetry span, as the W3C hex strings."""
    context = span.get_span_context()  # type: ignore[attr-defined]
    return format(context.trace_id, "032x"), format(context.span_id, "016x")


def traced_attempt(run: Run, attempt: Callable[[], Done]) -> Done:
    """Run ``attempt()`` in a span whose parent is the ``traceparent`` the parent sent."""
    tracer = _worker_tracer()
    if tracer is None:
        return attempt()
    from opentelemetry.trace import Status, StatusCode
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    context = TraceContextTextMapPropagator().extract({"traceparent": run.traceparent})
    attributes: dict[str, str | int] = {
        "gxo.task": run.task_name,
        "gxo.module": run.module,
        "gxo.instance.id": run.instance_id,
        "gxo.attempt": run.attempt,
    }
    if run.loop_index is not None:
        attributes["gxo.loop_index"] = run.loop_index
    with tracer.start_as_current_span(
        f"gxo.module {run.task_name}",
        context=context,
        attributes=attributes,
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        global _attempt_ids  # noqa: PLW0603 - one attempt at a time per worker
        _attempt_ids = hex_ids(span)
        try:
            done = attempt()
        finally:
            _attempt_ids = None
        if done.ok:
            span.set_status(Status(StatusCode.OK))
        else:
            span.set_attribute("gxo.reason", done.reason)
            span.set_status(Status(StatusCode.ERROR, done.reason))
        span.set_attribute("gxo.max_rss_kib", done.max_rss_kib)
    return done
