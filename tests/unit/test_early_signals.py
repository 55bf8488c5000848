"""gxo._util.early_signals: a drain signal before the run is kept for it, once."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator

import pytest

from gxo._util import early_signals


@pytest.fixture
def restored() -> Iterator[None]:
    saved = {signum: signal.getsignal(signum) for signum in early_signals.DRAIN_SIGNALS}
    yield
    for signum, handler in saved.items():
        signal.signal(signum, handler)
    early_signals.take_pending()


def test_a_signal_is_kept_once_and_a_new_command_starts_clean(restored: None) -> None:
    early_signals.catch_early()
    assert early_signals.take_pending() is None
    os.kill(os.getpid(), signal.SIGUSR2)  # handled in this (main) thread before kill returns
    os.kill(os.getpid(), signal.SIGUSR1)
    assert early_signals.take_pending() == signal.SIGUSR2  # the first one
    assert early_signals.take_pending() is None
    os.kill(os.getpid(), signal.SIGUSR1)  # after a run: kept, but the next command drops it
    early_signals.catch_early()
    assert early_signals.take_pending() is None
