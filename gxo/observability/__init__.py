"""Observability of a run, each piece fed from the run's events or its final report.

- :mod:`~gxo.observability.logging`: logging set-up (text or JSON), with redaction;
- :mod:`~gxo.observability.progress`: the live progress display and plain progress lines;
- :mod:`~gxo.observability.metrics`: Prometheus metrics from the events, a server, a textfile;
- :mod:`~gxo.observability.tracing`: the run's spans from the events (the OpenTelemetry
  set-up shared with the workers is :mod:`gxo.otel`);
- :mod:`~gxo.observability.html_report`: the HTML page of a report.

Level 4: nothing here is imported unless a run asks for it.
"""

__all__ = ["LOG_FORMATS", "LOG_LEVELS"]

#: ``--log-level`` and ``--log-format`` choices, here so the command's parser (``gxo --help``)
#: reads them without importing the logging set-up.
LOG_LEVELS = ("debug", "info", "warning", "error")
LOG_FORMATS = ("text", "json")
