"""gxo.pool.isolation in-process: what is restored, and which modules count as the user's."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

from gxo.pool.isolation import ProcessState


@contextlib.contextmanager
def recorded() -> Iterator[ProcessState]:
    """Record the state in the test's own phase (pytest changes ``PYTEST_CURRENT_TEST``
    between phases), and put it back whatever the test did."""
    state = ProcessState()
    try:
        yield state
    finally:
        state.restore()
        state.close()


def test_nothing_changed_reports_nothing() -> None:
    with recorded() as state:
        assert state.restore() == []


def test_environment_cwd_umask_and_signals_are_put_back(tmp_path: Path) -> None:
    with recorded() as state:
        _change_and_check(state, tmp_path)


def _change_and_check(state: ProcessState, tmp_path: Path) -> None:
    cwd, umask = os.getcwd(), os.umask(0o022)
    os.umask(umask)
    handler = signal.getsignal(signal.SIGUSR2)
    os.environ["GXO_ISOLATION_TEST"] = "leaked"
    removed = next(iter(os.environ))
    saved = os.environ.pop(removed)
    os.chdir(tmp_path)
    os.umask(0o077)
    signal.signal(signal.SIGUSR2, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR2})

    changed = state.restore()

    assert set(changed) == {"environment", "cwd", "umask", "signals"}
    assert "GXO_ISOLATION_TEST" not in os.environ
    assert os.environ[removed] == saved
    assert os.getcwd() == cwd
    assert os.umask(umask) == umask
    assert signal.getsignal(signal.SIGUSR2) == handler
    assert signal.SIGUSR2 not in signal.pthread_sigmask(signal.SIG_BLOCK, [])


def test_a_closed_standard_fd_is_reopened() -> None:
    before = os.fstat(0)
    with recorded() as state:
        os.close(0)
        assert state.restore() == ["fds"]
    after = os.fstat(0)
    assert (after.st_dev, after.st_ino) == (before.st_dev, before.st_ino)


def test_only_the_users_modules_are_forgotten(tmp_path: Path) -> None:
    with recorded() as state:
        _import_and_check(state, tmp_path)


def _import_and_check(state: ProcessState, tmp_path: Path) -> None:
    (tmp_path / "gxo_isolation_user_mod.py").write_text("VALUE = []\n")
    sys.path.insert(0, str(tmp_path))
    import gxo_isolation_user_mod  # type: ignore[import-not-found]

    gxo_isolation_user_mod.VALUE.append(1)
    library = "json.tool" if "json.tool" not in sys.modules else "xml.dom.minidom"
    __import__(library)  # a standard-library module imported on demand stays imported

    changed = state.restore()

    assert set(changed) == {"sys", "modules"}
    assert "gxo_isolation_user_mod" not in sys.modules
    assert library in sys.modules
    assert str(tmp_path) not in sys.path
    assert state.forgotten == 1
