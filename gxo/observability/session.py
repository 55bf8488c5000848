"""What ``gxo execute`` attaches to a run for observability, from its command-line flags.

Each piece is imported only when its flag asks for it: a plain run loads none of
prometheus_client, OpenTelemetry or rich.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from gxo.errors import UsageError
from gxo.events import EventBus

if TYPE_CHECKING:
    from gxo.engine import RunOptions
    from gxo.observability.metrics import MetricsServer, RunMetrics
    from gxo.report import ExecutionReport

__all__ = ["ObservabilityOptions", "ObservabilitySession"]

log = logging.getLogger("gxo")


@dataclass
class ObservabilityOptions:
    """The observability flags of ``gxo execute``."""

    metrics_file: str | None = None
    metrics_port: int | None = None
    metrics_addr: str = "127.0.0.1"


class ObservabilitySession:
    """Subscribers and servers of one run: :meth:`attach` before it, :meth:`finish` after."""

    def __init__(self, opts: ObservabilityOptions) -> None:
        self.opts = opts
        self.metrics: RunMetrics | None = None
        self.server: MetricsServer | None = None

    def attach(self, options: RunOptions) -> None:
        """Subscribe to the run's event bus (creating one if needed) and start servers."""
        opts = self.opts
        if opts.metrics_file is not None or opts.metrics_port is not None:
            if opts.metrics_file is not None:
                directory = os.path.dirname(os.path.abspath(opts.metrics_file))
                if not os.path.isdir(directory):
                    raise UsageError(
                        f"--metrics-file: directory {directory!r} does not exist; "
                        "create it or choose another path"
                    )
            from gxo.observability.metrics import MetricsServer, RunMetrics

            self.metrics = RunMetrics()
            self._bus(options).subscribe(self.metrics, name="metrics")
            if opts.metrics_port is not None:
                try:
                    self.server = MetricsServer(
                        self.metrics.registry, opts.metrics_port, opts.metrics_addr
                    )
                except OSError as exc:
                    raise UsageError(
                        f"--metrics-port: cannot listen on {opts.metrics_addr}:"
                        f"{opts.metrics_port}: {exc.strerror or exc}; choose another port "
                        "(0 picks a free one)"
                    ) from None
                log.info("serving metrics at %s", self.server.url)

    @staticmethod
    def _bus(options: RunOptions) -> EventBus:
        if options.events is None:
            options.events = EventBus()
        return options.events

    def finish(self, report: ExecutionReport | None) -> None:
        """Write what the flags asked for and stop the servers; safe to call once, always."""
        try:
            if self.metrics is not None and report is not None:
                self.metrics.observe_report(report)
                if self.opts.metrics_file is not None:
                    from gxo.observability.metrics import write_textfile

                    write_textfile(self.opts.metrics_file, self.metrics.registry)
        finally:
            if self.server is not None:
                self.server.stop()
                self.server = None
