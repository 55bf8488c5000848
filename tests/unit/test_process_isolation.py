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


def test_timers_a_task_left_armed_are_cancelled() -> None:
    """An interval timer one task left armed fired in the next one on the same worker (see
    tests/integration/test_crash_isolation.py); one armed when the state was recorded (here
    pytest-timeout's, if any) is left alone."""
    real = signal.getitimer(signal.ITIMER_REAL)
    with recorded() as state:
        signal.setitimer(signal.ITIMER_VIRTUAL, 60.0)
        signal.setitimer(signal.ITIMER_PROF, 60.0, 1.0)
        assert state.restore() == ["timers"]
        assert signal.getitimer(signal.ITIMER_VIRTUAL) == (0.0, 0.0)
        assert signal.getitimer(signal.ITIMER_PROF) == (0.0, 0.0)
        assert state.restore() == []
    assert (signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)) == (real == (0.0, 0.0))


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


def _user_module(tmp_path: Path, name: str) -> None:
    (tmp_path / f"{name}.py").write_text("VALUE = 1\n")
    sys.path.insert(0, str(tmp_path))
    __import__(name)


def test_user_modules_are_forgotten_instance_after_instance(tmp_path: Path) -> None:
    """The check looks only at what was imported since the last one; every round finds its
    own user module, and a round that imported nothing reports nothing."""
    with recorded() as state:
        for round_ in range(3):
            _user_module(tmp_path, f"gxo_isolation_round_{round_}")
            assert "modules" in state.restore()
            assert f"gxo_isolation_round_{round_}" not in sys.modules
            assert state.restore() == []
        assert state.forgotten == 3


def test_a_user_module_imported_before_a_known_one_is_imported_again_is_forgotten(
    tmp_path: Path,
) -> None:
    """A known module removed and imported again comes last in ``sys.modules``: the user's
    module imported before it is still found."""
    with recorded() as state:
        _user_module(tmp_path, "gxo_isolation_before_reimport")
        known = "json.decoder" if "json.decoder" in sys.modules else "email.utils"
        __import__(known)
        state.restore()  # email.utils, if imported on demand, is known from now on
        _user_module(tmp_path, "gxo_isolation_before_reimport")
        saved = sys.modules.pop(known)
        sys.modules[known] = saved  # removed and put back: now after the user's module
        assert "modules" in state.restore()
        assert "gxo_isolation_before_reimport" not in sys.modules
        assert sys.modules[known] is saved


def test_user_modules_are_forgotten_when_a_task_removed_the_mark(tmp_path: Path) -> None:
    """A task that clears entries of ``sys.modules`` (gxo's mark among them) still has its
    modules forgotten: every name is compared then."""
    from gxo.pool import isolation

    with recorded() as state:
        _user_module(tmp_path, "gxo_isolation_no_mark")
        del sys.modules[isolation._MARK]
        assert "modules" in state.restore()
        assert "gxo_isolation_no_mark" not in sys.modules
        assert isolation._MARK in sys.modules  # put back, last
        assert next(reversed(sys.modules)) == isolation._MARK
        _user_module(tmp_path, "gxo_isolation_after_mark")
        assert "modules" in state.restore()
        assert "gxo_isolation_after_mark" not in sys.modules
