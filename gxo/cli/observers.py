"""What ``gxo execute`` attaches to a run for observability, from its command-line flags.

Each piece is imported only when its flag asks for it: a plain run loads none of
prometheus_client, OpenTelemetry or rich.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from typing import TYPE_CHECKING

import msgspec

from gxo._util.outputs import check_output_paths, save_output
from gxo.errors import UsageError
from gxo.events import EventBus

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider
    from prometheus_client import CollectorRegistry

    from gxo.observability.metrics import MetricsServer
    from gxo.observability.progress import LiveProgress, PlainProgress
    from gxo.report import ExecutionReport

__all__ = ["ObservabilityOptions", "Observers"]


log = logging.getLogger("gxo")


class ObservabilityOptions(msgspec.Struct):
    """The observability flags of ``gxo execute``."""

    metrics_file: str | None = None
    metrics_port: int | None = None
    metrics_addr: str = "127.0.0.1"
    #: ``--otel``; the ``OTEL_*`` variables may turn tracing on without it.
    otel: bool = False
    #: Show progress: live on a terminal (text logs), else lines every ``progress_interval``.
    progress: bool = False
    progress_interval: float = 10.0
    log_format: str = "text"
    #: Whether the live display is coloured (``--color`` and ``NO_COLOR``, as the task lines).
    colour: bool = True
    #: ``--html-report FILE``: the HTML page of the run, written when it ends.
    html_report: str | None = None


def _is_terminal(stream: object) -> bool:
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty()) if isatty is not None else False
    except ValueError:  # closed
        return False


def _missing_dependency(what: str, package: str, exc: ImportError) -> str:
    """A regular dependency of gxo that cannot be imported: a broken install, not a gxo bug."""
    return (
        f"{what} needs {package}, a dependency of gxo, which cannot be imported ({exc}); "
        f"install it (pip install {package}) or reinstall gxo"
    )


class Observers:
    """The subscribers, servers and exporters ``gxo execute``'s flags ask for.

    :meth:`start` subscribes the progress display to the run's bus and prepares the metrics
    registry (and its HTTP server) and the tracer provider, which the command hands to
    :func:`gxo.run` like any library user; :meth:`finish` writes the files and stops the rest.
    The run's metrics and spans are wired in one place, :func:`gxo.api.run`.
    """

    def __init__(self, opts: ObservabilityOptions) -> None:
        self.opts = opts
        #: Where the run counts its metrics (``--metrics-file``/``--metrics-port``).
        self.registry: CollectorRegistry | None = None
        self.server: MetricsServer | None = None
        self.tracer_provider: SdkTracerProvider | None = None
        self.progress: LiveProgress | PlainProgress | None = None
        #: finish() was called: a later call writes nothing again.
        self._written = False

    def start(self, bus: EventBus) -> None:
        """Check the paths, subscribe the progress display to ``bus``, start the servers."""
        opts = self.opts
        check_output_paths(
            [("--metrics-file", opts.metrics_file), ("--html-report", opts.html_report)]
        )
        self._tracing()
        self._progress(bus)
        if opts.metrics_file is not None or opts.metrics_port is not None:
            try:
                from prometheus_client import CollectorRegistry
            except ImportError as exc:
                flag = "--metrics-file" if opts.metrics_file is not None else "--metrics-port"
                raise UsageError(_missing_dependency(flag, "prometheus-client", exc)) from None

            self.registry = CollectorRegistry()
            if opts.metrics_port is not None:
                from gxo.observability.metrics import MetricsServer

                try:
                    self.server = MetricsServer(self.registry, opts.metrics_port, opts.metrics_addr)
                except OSError as exc:
                    raise UsageError(
                        f"--metrics-port: cannot listen on {opts.metrics_addr}:"
                        f"{opts.metrics_port}: {exc.strerror or exc}; choose another port "
                        "(0 picks a free one)"
                    ) from None
                log.info("serving metrics at %s", self.server.url)

    def _tracing(self) -> None:
        from gxo.otel import tracing_requested

        if not tracing_requested(self.opts.otel):
            return
        from gxo.otel import provider_from_env

        try:
            self.tracer_provider = provider_from_env(self.opts.otel)
        except ValueError as exc:
            raise UsageError(f"tracing: {exc}") from None
        except ImportError as exc:
            raise UsageError(_missing_dependency("tracing", "opentelemetry-sdk", exc)) from None

    def _progress(self, bus: EventBus) -> None:
        if not self.opts.progress:
            return
        if self.opts.log_format == "text" and _is_terminal(sys.stderr):
            from gxo.observability.progress import LiveProgress

            live = LiveProgress(colour=self.opts.colour)
            bus.subscribe(live, name="progress")
            live.start()
            self.progress = live
        else:
            from gxo.observability.progress import PlainProgress

            plain = PlainProgress(self.opts.progress_interval)
            bus.subscribe(plain, name="progress")
            self.progress = plain

    def finish(self, report: ExecutionReport | None, *, write: bool = True) -> None:
        """Write what the flags asked for (unless ``write`` is false: the run was refused at
        its start, and its files are written as a run that never started) and stop the
        servers. Safe to call more than once: only the first call writes."""
        write, self._written = write and not self._written, True
        if self.progress is not None:
            progress, self.progress = self.progress, None
            # After SIGHUP the terminal may be gone (EIO): the files below still get written.
            with contextlib.suppress(OSError):
                progress.close()
        try:
            if write and self.registry is not None and self.opts.metrics_file is not None:
                from gxo.observability.metrics import write_textfile

                path, registry = self.opts.metrics_file, self.registry
                save_output("metrics", path, lambda: write_textfile(path, registry))
            if write and self.opts.html_report is not None and report is not None:
                from gxo.observability.html_report import write_html

                html, done = self.opts.html_report, report
                save_output("HTML report", html, lambda: write_html(html, done))
        finally:
            if self.server is not None:
                self.server.stop()
                self.server = None
            if self.tracer_provider is not None:
                from gxo.otel import shutdown_provider

                shutdown_provider(self.tracer_provider)  # exports what is batched
                self.tracer_provider = None
