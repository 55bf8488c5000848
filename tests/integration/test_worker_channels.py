"""A worker's two channels from the parent (``gxo.pool.worker._Control``), driven by hand.

The main thread reads runs and ``Stop`` from the control socket itself, only while it is
idle (one wake-up per instance); a thread reads the notices socket and answers secrets
requests at once, even while a module runs. These tests pin what that split must keep: a
``Stop`` ends an idle worker cleanly, a ``Stop`` sent while an instance runs ends the worker
after that instance's result (runs sent after the ``Stop`` never run), and a secrets request
is answered while the module is still running (a producer waiting for every worker to know
its secrets would otherwise deadlock against a busy consumer).
"""

from __future__ import annotations

import multiprocessing
import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from gxo.pool.entry import worker_main
from gxo.pool.slot import AckSlot
from gxo.secrets.config import provider_spec
from gxo.secrets.providers import FileProvider
from gxo.secrets.redact import REDACTED
from gxo.wire import (
    Done,
    FrameReader,
    FrameWriter,
    ResolveSecrets,
    Run,
    SecretsResolved,
    Stop,
    ToParent,
    WorkerConfig,
)

FUNCS = Path(__file__).resolve().parent / "funcs" / "channels.py"
SECRET = "late-resolved-secret-value"


@dataclass
class Worker:
    """One worker process and the parent's ends of its channels."""

    process: Any
    control: socket.socket
    notices: socket.socket
    console: socket.socket
    slot: AckSlot
    reader: FrameReader = field(default_factory=lambda: FrameReader(ToParent))
    pending: list[Any] = field(default_factory=list)

    def send(self, *messages: Any, channel: socket.socket | None = None) -> None:
        writer = FrameWriter()
        for message in messages:
            writer.add(message)
        (channel or self.control).sendall(writer.take())

    def receive(self) -> Any:
        """The next message the worker sends (blocking); None at end of file."""
        while not self.pending:
            data = self.control.recv(1 << 16)
            if not data:
                return None
            self.pending.extend(self.reader.feed(data))
        return self.pending.pop(0)


@pytest.fixture
def start_worker(tmp_path: Path) -> Iterator[Any]:
    started: list[Worker] = []

    def start(config: WorkerConfig | None = None) -> Worker:
        context = multiprocessing.get_context("forkserver")
        pairs = [socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM) for _ in range(3)]
        (control, child_control), (console, child_console), (notices, child_notices) = pairs
        slot = AckSlot()
        process = context.Process(  # type: ignore[attr-defined]
            target=worker_main,
            args=(child_control, child_console, slot, config, False, child_notices),
        )
        process.start()
        for end in (child_control, child_console, child_notices):
            end.close()
        worker = Worker(process, control, notices, console, slot)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        if worker.process.exitcode is None:
            worker.process.kill()
        worker.process.join()
        worker.process.close()
        for end in (worker.control, worker.notices, worker.console, worker.slot):
            end.close()


def _run(instance_id: int, module: str, params: dict[str, Any], **namespace: Any) -> Run:
    return Run(
        instance_id=instance_id,
        task_index=instance_id,
        task_name=f"t{instance_id}",
        module=module,
        params=params,
        namespace=namespace,
    )


def _blocking(instance_id: int, fifo: Path, path: Path) -> Run:
    function = f"{FUNCS}:wait_then_read"
    kwargs = {"fifo": str(fifo), "path": str(path)}
    return _run(instance_id, "python", {"function": function, "kwargs": kwargs})


def _release(fifo: Path) -> None:
    """Let the blocked module go on (opening the fifo waits for it to be opened for reading)."""
    with open(fifo, "wb"):
        pass


def test_a_stop_ends_an_idle_worker_cleanly(start_worker: Any) -> None:
    worker = start_worker()
    worker.send(_run(1, "exec", {"command": "true"}))
    done = worker.receive()
    assert isinstance(done, Done), done
    assert done.ok, done
    worker.send(Stop())
    assert worker.receive() is None  # it closed its end: it exited
    worker.process.join()
    assert worker.process.exitcode == 0  # by itself, not by a signal


def test_a_stop_sent_during_a_run_ends_the_worker_after_that_runs_result(
    start_worker: Any, tmp_path: Path
) -> None:
    fifo, value = tmp_path / "gate", tmp_path / "value"
    os.mkfifo(fifo)
    value.write_text("plain", encoding="utf-8")
    worker = start_worker()
    never = tmp_path / "never"
    worker.send(
        _blocking(1, fifo, value), Stop(), _run(2, "exec", {"command": ["touch", str(never)]})
    )
    _release(fifo)
    done = worker.receive()
    assert isinstance(done, Done), done
    assert (done.instance_id, done.ok) == (1, True), done
    assert done.summary == {"value": "plain"}
    assert worker.receive() is None
    worker.process.join()
    assert worker.process.exitcode == 0
    assert not never.exists()  # sent after the stop: never run


def test_a_worker_answers_a_secrets_request_while_its_module_runs(
    start_worker: Any, tmp_path: Path
) -> None:
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "LATE").write_text(SECRET, encoding="utf-8")
    target, options = provider_spec(FileProvider(secrets))
    worker = start_worker(WorkerConfig(secrets_provider=target, secrets_options=options))
    fifo = tmp_path / "gate"
    os.mkfifo(fifo)
    worker.send(_blocking(1, fifo, secrets / "LATE"))
    # Another worker announced LATE (a name computed at run time): the parent asks every
    # worker to resolve it, this one too, although its module is still blocked on the fifo.
    worker.send(ResolveSecrets(7, ("LATE",)), channel=worker.notices)
    answer = worker.receive()
    assert answer == SecretsResolved(7)  # answered before the module could end
    _release(fifo)
    done = worker.receive()
    assert isinstance(done, Done), done
    assert done.ok, done
    assert done.summary == {"value": REDACTED}  # resolved into its redactor while it ran
    worker.send(Stop())
    assert worker.receive() is None
