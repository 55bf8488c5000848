"""The ``gxo`` command's forkserver is a fork of gxo itself (:func:`gxo.pool.helpers.prestart`
with ``fork``), taken before gxo imports multiprocessing: no second interpreter starts up.

Each case runs a real process: the ``gxo`` command, or a fresh interpreter (the forkserver is
the process's).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

TASK = """
import json, os, stat, sys


def fds(pid):
    found = []
    for name in os.listdir(f"/proc/{pid}/fd"):
        try:
            found.append(os.readlink(f"/proc/{pid}/fd/{name}"))
        except OSError:  # the listing's own descriptor
            pass
    return found


def look(out):
    server = os.getppid()  # the worker's parent: the forkserver
    with open(f"/proc/{server}/stat") as file:
        gxo = int(file.read().rsplit(")", 1)[1].split()[1])
    tmp = os.environ["TMPDIR"]
    dirs = {
        name: [oct(stat.S_IMODE(os.stat(os.path.join(tmp, name)).st_mode)),
               sorted(os.listdir(os.path.join(tmp, name)))]
        for name in os.listdir(tmp)
    }
    with open(out, "w") as file:
        json.dump({
            "server": server,
            "server_cmdline": open(f"/proc/{server}/cmdline", "rb").read().decode(),
            "gxo": gxo,
            "gxo_cmdline": open(f"/proc/{gxo}/cmdline", "rb").read().decode(),
            "dirs": dirs,
            "fds": fds(server) + fds(os.getpid()),
        }, file)
"""

PLAYBOOK = """\
schemaVersion: v1.0.0
name: forked
tasks:
  - name: t
    type: python
    params:
      function: "{tasks}:look"
      kwargs: {{out: "{out}"}}
"""


def test_the_gxo_commands_forkserver_is_a_fork_of_gxo_and_leaves_nothing(tmp_path: Path) -> None:
    """The workers' parent is a child of gxo with gxo's own command line (a fork, not a
    ``python -c "from multiprocessing.forkserver import main ..."``); its socket is in a
    directory only the user may enter, removed with it; it is reaped before gxo exits. A
    descriptor gxo inherited from its caller reaches neither it nor the workers (as with
    multiprocessing's, which is passed only its own)."""
    (tmp_path / "tasks.py").write_text(TASK)
    out = tmp_path / "out.json"
    (tmp_path / "one.yaml").write_text(PLAYBOOK.format(tasks=tmp_path / "tasks.py", out=out))
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("TEMP", "TMP")}
    inherited_r, inherited_w = os.pipe()
    inherited = os.readlink(f"/proc/self/fd/{inherited_w}")
    try:
        with subprocess.Popen(
            [sys.executable, "-m", "gxo", "one.yaml", "--workers", "2"],
            cwd=tmp_path,
            env={**env, "TMPDIR": str(tmp)},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            pass_fds=(inherited_w,),
        ) as proc:
            _, stderr = proc.communicate(timeout=60)
    finally:
        os.close(inherited_r)
        os.close(inherited_w)
    assert proc.returncode == 0, stderr
    found = json.loads(out.read_text())
    assert found["gxo"] == proc.pid  # the workers' parent is gxo's child...
    assert found["server_cmdline"] == found["gxo_cmdline"]  # ... and a fork of it
    assert "multiprocessing.forkserver" not in found["server_cmdline"]
    assert inherited not in found["fds"]
    ((name, (mode, entries)),) = found["dirs"].items()
    assert name.startswith("gxo-")
    assert mode == "0o700"
    assert entries == ["fs"]
    assert os.listdir(tmp) == []  # the directory went with the forkserver
    try:
        os.kill(found["server"], 0)
    except ProcessLookupError:
        pass  # reaped by gxo before it exited
    else:
        raise AssertionError("the forkserver outlived gxo")


THREADED = """
import threading
from multiprocessing import forkserver
from gxo.pool.helpers import prestart, stop_helpers
from gxo.pool.process_pool import ProcessPool

release = threading.Event()
thread = threading.Thread(target=release.wait)
thread.start()
try:
    prestart(templates=False, single_pool=True, fork=True)
    pool = ProcessPool(1)
    pool.start()  # a worker of the forkserver: it has started by now
    pid = forkserver._forkserver._forkserver_pid
    print(open(f"/proc/{pid}/cmdline", "rb").read().decode())
    pool.close()
finally:
    stop_helpers()
    release.set()
    thread.join()
"""


def test_a_process_with_threads_spawns_its_forkserver_as_multiprocessing_does() -> None:
    """Forking a process that runs threads is not safe: then the forkserver is a new
    interpreter, started by multiprocessing."""
    done = subprocess.run(
        [sys.executable, "-c", THREADED],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "from multiprocessing.forkserver import main" in done.stdout


AHEAD = """
import os, sys, time
from gxo.pool import entry
from gxo.pool.executor import Finished
from gxo.pool.helpers import forkserver_ready, prestart, stop_helpers
from gxo.pool.process_pool import ProcessPool
from gxo.wire import Run, WorkerConfig

prestart(templates=False, single_pool=True, fork=True)
assert forkserver_ready(60), "the forked forkserver never said it was ready"
ahead_config = WorkerConfig(log_level=int(sys.argv[1]))
assert entry.start_ahead(ahead_config)
assert not entry.start_ahead(ahead_config)  # one at most
ahead = entry._ahead[0][1][0].pid
started = []
if sys.argv[2] == "pool":
    config = WorkerConfig(log_level=30)
    pool = ProcessPool(1, worker_config=config, on_worker_started=started.append)
    try:
        pool.start()
        run = Run(instance_id=1, task_index=0, task_name="t", module="exec",
                  params={"command": "true"}, namespace={})
        assert pool.submit(run)
        pool.flush()
        events = []
        deadline = time.monotonic() + 30
        while not any(isinstance(e, Finished) for e in events):
            assert time.monotonic() < deadline, events
            events += pool.wait(1.0)
    finally:
        pool.close()
stop_helpers()
print(started == [ahead], os.path.exists(f"/proc/{ahead}"), entry._ahead == [])
"""


def _ahead(log_level: int, mode: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", AHEAD, str(log_level), mode],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_a_worker_started_ahead_is_the_pools_first_worker_when_its_config_is_the_pools() -> None:
    """The worker started before the pool (the same config) is the one the pool starts,
    reported started by it, and runs the pool's instance; reaped when the pool closes."""
    assert _ahead(30, "pool") == "True False True"


def test_a_worker_started_ahead_with_another_config_is_stopped_and_reaped() -> None:
    """The pool wants other settings (here the log level): it starts a worker of its own,
    and the one started ahead is stopped and reaped, never used."""
    assert _ahead(10, "pool") == "False False True"


def test_a_worker_started_ahead_of_a_pool_that_never_came_is_reaped_by_stop_helpers() -> None:
    """The run ended before its pool started (a usage error, an interrupt): stop_helpers
    stops and reaps the worker before the forkserver."""
    assert _ahead(30, "none") == "False False True"


POOL_WITHOUT_MULTIPROCESSING = """
import os, sys, time
from gxo.pool.executor import Finished, Lost
from gxo.pool.helpers import forkserver_ready, prestart, stop_helpers
from gxo.pool.process_pool import ProcessPool
from gxo.wire import Run

prestart(templates=False, single_pool=True, fork=True)
assert forkserver_ready(60), "the forked forkserver never said it was ready"
pool = ProcessPool(2)
try:
    pool.start()
    pids = [w.pid for w in pool._workers]
    runs = [
        Run(instance_id=1, task_index=0, task_name="dies", module="python",
            params={"function": sys.argv[1] + ":die"}, namespace={}),
        Run(instance_id=2, task_index=1, task_name="lives", module="exec",
            params={"command": "true"}, namespace={}),
    ]
    for run in runs:
        assert pool.submit(run)
    pool.flush()
    events = []
    deadline = time.monotonic() + 30
    while len([e for e in events if isinstance(e, (Finished, Lost))]) < 2:
        assert time.monotonic() < deadline, events
        events += pool.wait(1.0)
finally:
    pool.close()
stop_helpers()
lost = [e.reason for e in events if isinstance(e, Lost)]
done = [e.done.instance_id for e in events if isinstance(e, Finished)]
alive = [pid for pid in pids if os.path.exists(f"/proc/{pid}")]
print(lost, done, alive, "multiprocessing" in sys.modules)
"""


def test_a_pool_of_the_forked_forkserver_starts_its_workers_without_multiprocessing(
    tmp_path: Path,
) -> None:
    """The gxo command's pool asks the forkserver it forked for every worker without
    importing multiprocessing (pickle, tempfile, subprocess: ~15 ms of its start-up); a
    worker that dies is still seen with its exit status (the forkserver's report on the
    worker's sentinel, as multiprocessing reads it), and every worker is reaped."""
    (tmp_path / "tasks.py").write_text("import os\n\ndef die():\n    os._exit(3)\n")
    done = subprocess.run(
        [sys.executable, "-c", POOL_WITHOUT_MULTIPROCESSING, str(tmp_path / "tasks.py")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "['worker_exited(3)'] [2] [] False"


NOT_READY_YET = """
import os, sys, time
from gxo.pool import entry
from gxo.pool.executor import Finished
from gxo.pool.helpers import prestart, stop_helpers
from gxo.pool.process_pool import ProcessPool
from gxo.wire import Run, WorkerConfig

prestart(templates=False, single_pool=True, fork=True)
config = WorkerConfig(log_level=30)
asked = entry.start_ahead(config)  # the forkserver is still importing its preload
started = []
pool = ProcessPool(1, worker_config=config, on_worker_started=started.append)
try:
    pool.start()
    run = Run(instance_id=1, task_index=0, task_name="t", module="exec",
              params={"command": "true"}, namespace={})
    assert pool.submit(run)
    pool.flush()
    events = []
    deadline = time.monotonic() + 30
    while not any(isinstance(e, Finished) for e in events):
        assert time.monotonic() < deadline, events
        events += pool.wait(1.0)
finally:
    pool.close()
stop_helpers()
print(asked, len(started), entry._ahead == [])
"""


def test_the_first_worker_is_asked_for_before_the_forked_forkserver_is_ready() -> None:
    """The request does not wait for the forkserver's preload: it is sent at once, the
    forkserver forks the worker when its preload is done, and the pool takes that worker
    (reading its pid then) and runs an instance on it."""
    done = subprocess.run(
        [sys.executable, "-c", NOT_READY_YET],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "True 1 True"


def test_a_forkserver_that_dies_after_taking_a_request_is_an_eof_not_a_wait_for_ever(
    tmp_path: Path,
) -> None:
    """A forkserver killed between taking a worker's request and answering it (a module
    killed it) closes every end it was sent: the pid read must then end with EOF (so the
    pool starts the worker another way), which it can only if this process holds no copy
    of the child's end of the answer's pipe. It held one until the read returned, so the
    run waited for ever."""
    import socket
    import threading

    from gxo.pool.entry import _launch_forked

    address = str(tmp_path / "server")
    alive_r, alive_w = os.pipe()
    tracker_r, tracker_w = os.pipe()
    outcome: list[BaseException | None] = []

    def launch() -> None:
        try:
            _launch_forked(address, alive_r, tracker_w, None, False)
            outcome.append(None)
        except BaseException as exc:  # noqa: BLE001 - the test reads what it was
            outcome.append(exc)

    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(address)
        server.listen(1)
        thread = threading.Thread(target=launch, daemon=True)
        thread.start()
        connection, _ = server.accept()
        with connection:  # the request taken, as the forkserver takes it, then it dies
            _, fds, _, _ = socket.recv_fds(connection, 1, 16)
            for fd in fds:
                os.close(fd)
        thread.join(timeout=30)
    for fd in (alive_r, alive_w, tracker_r, tracker_w):
        os.close(fd)
    assert not thread.is_alive(), "the pid read waited for an answer that cannot come"
    assert len(outcome) == 1
    assert isinstance(outcome[0], EOFError | BrokenPipeError)
