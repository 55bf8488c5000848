"""The cap on how fast the lines workers print are relayed to gxo's log.

A module that logs 200,000 lines would otherwise make the parent format and write every one
of them (a run about 15 times slower, with nothing said). Each worker gets a token bucket:
``rate`` lines a second, with a burst of as many; lines past it are counted, not relayed, and
when the instance ends one line says how many were dropped. The last lines of a worker are
still kept for its crash report whatever the rate.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Final

__all__ = [
    "DEFAULT_LOG_RATE",
    "NOTICE_PREFIX",
    "LINE_LIMIT",
    "LogRateFilter",
    "RateLimit",
    "dropped_notice",
    "limit_log_rate",
    "report_dropped_logs",
]

#: Default ``--log-rate``: lines a second relayed from each worker.
DEFAULT_LOG_RATE: Final = 1000
#: An unterminated line longer than this (bytes) is relayed as it is, in pieces.
LINE_LIMIT: Final = 64 * 1024


class RateLimit:
    """A token bucket: ``allow()`` is true at most ``rate`` times a second (0: always)."""

    __slots__ = ("_clock", "_stamp", "_tokens", "dropped", "rate")

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.dropped = 0
        self._clock = clock
        self._tokens = float(rate)
        self._stamp = clock()

    def allow(self) -> bool:
        if not self.rate:
            return True
        now = self._clock()
        self._tokens = min(self.rate, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now
        if self._tokens >= 1:
            self._tokens -= 1
            return True
        self.dropped += 1
        return False

    def take_dropped(self) -> int:
        """How many lines were dropped since the last call."""
        dropped, self.dropped = self.dropped, 0
        return dropped


def dropped_notice(count: int, rate: float) -> str:
    return (
        f"[gxo: {count} line(s) of output not shown: more than {rate:g} a second "
        "(--log-rate); a command's whole output is in its log file in the run directory]"
    )


#: The logger of the worker's own notices, which the log rate limit always lets through.
NOTICE_LOGGER: Final = "gxo.relay"
#: How such a notice starts on the console (the worker's log format): relayed whatever the rate.
NOTICE_PREFIX: Final = f"WARNING {NOTICE_LOGGER}: "


class LogRateFilter(logging.Filter):
    """Drops log records past the rate in the worker, before they are redacted and written.

    Writing a record to the console costs a system call and a wake-up of the parent, so the
    bound is applied where records are made, not only where they are relayed.
    """

    def __init__(self, rate: float) -> None:
        super().__init__()
        self.limit = RateLimit(rate)

    def filter(self, record: logging.LogRecord) -> bool:
        return record.name == NOTICE_LOGGER or self.limit.allow()


def limit_log_rate(rate: float) -> LogRateFilter | None:
    """Put a :class:`LogRateFilter` first on every handler of the root logger (the worker's)."""
    if not rate:
        return None
    limiter = LogRateFilter(rate)
    for handler in logging.getLogger().handlers:
        handler.filters.insert(0, limiter)
    return limiter


def report_dropped_logs(limiter: LogRateFilter | None) -> None:
    """Log how many records of the attempt that just ended were dropped (if any)."""
    if limiter is None:
        return
    dropped = limiter.limit.take_dropped()
    if dropped:
        logging.getLogger(NOTICE_LOGGER).warning(
            "%d log record(s) of this task were dropped: more than %g a second (--log-rate)",
            dropped,
            limiter.limit.rate,
        )
