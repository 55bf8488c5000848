"""The relay standing in for multiprocessing's resource tracker (:mod:`gxo.pool.tracker`)."""

from __future__ import annotations

import os
import time

from gxo.pool.tracker import TrackerRelay


def test_probes_start_no_tracker() -> None:
    relay = TrackerRelay()
    for _ in range(10_000):  # more than a pipe holds: the relay keeps reading
        os.write(relay.fd, b"PROBE:0:noop\n")
    assert relay.stop(5.0) is None


def test_a_writer_left_holding_the_pipe_delays_the_stop_by_the_timeout_only() -> None:
    relay = TrackerRelay()
    orphan = os.dup(relay.fd)  # as a worker's orphan would hold it
    try:
        started = time.monotonic()
        assert relay.stop(0.2) is None
        assert 0.2 <= time.monotonic() - started < 5.0
    finally:
        os.close(orphan)


def test_a_registration_starts_the_tracker_which_cleans_up_when_the_relay_stops() -> None:
    import _posixshmem

    name = f"/gxo-relay-test-{os.getpid()}"
    os.close(_posixshmem.shm_open(name, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600))
    relay = TrackerRelay()
    # The first line that is not a probe arrives in two writes, as the relay may read it.
    os.write(relay.fd, b"PROBE:0:noop\nREGISTER:" + name.encode() + b":shared")
    os.write(relay.fd, b"_memory\n")
    pid = relay.stop(5.0)
    assert pid is not None
    _, status = os.waitpid(pid, 0)  # it exits once its pipe is closed, after cleaning up
    assert os.waitstatus_to_exitcode(status) == 0
    assert not os.path.exists(f"/dev/shm{name}"), "the tracker did not unlink the segment"
