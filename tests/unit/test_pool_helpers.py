"""When the forkserver is stopped (:mod:`gxo.pool.helpers`): as soon as its pool closes for
the ``gxo`` command (``single_pool``), and only by ``stop_helpers`` otherwise.

Each case runs in a fresh interpreter: the forkserver and these settings are the process's.
"""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import os, sys
from multiprocessing import forkserver
from gxo.pool.helpers import prestart, stop_helpers
from gxo.pool.process_pool import ProcessPool

prestart(templates=False, single_pool=sys.argv[1] == "single")
server = forkserver._forkserver
pool = ProcessPool(1)
pool.start()
started = server._forkserver_pid
pool.close()
after_close = server._forkserver_pid
if sys.argv[1] == "single":
    os.waitpid(started, 0)  # it exits by itself: its pipe was closed when the pool closed
stop_helpers()
try:
    os.kill(started, 0)
    alive = True
except ProcessLookupError:
    alive = False
print(started is not None, after_close == started, alive)
"""


def _run(mode: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, mode],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_a_single_pool_forkserver_is_told_to_exit_when_its_pool_closes() -> None:
    # Released at close (no longer the process's forkserver), reaped by stop_helpers.
    assert _run("single") == "True False False"


def test_otherwise_the_forkserver_outlives_the_pool_until_stop_helpers() -> None:
    # A library caller's next pool reuses it; stop_helpers still reaps it.
    assert _run("shared") == "True True False"
