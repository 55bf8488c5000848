"""Limit enforcement building blocks, on real processes: cgroups, rlimits, the tree watch and
network namespaces. Each test starts real children and waits for their exit status."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from gxo.pool import cgroups
from gxo.pool.netns import network_isolation_supported
from gxo.pool.rlimits import TreeWatch, signal_limit

SUPPORT = cgroups.probe()
needs_cgroups = pytest.mark.skipif(
    not SUPPORT.usable, reason=f"this machine cannot create cgroups: {SUPPORT.why}"
)

MiB = 1 << 20


def _python(code: str, **kwargs: object) -> subprocess.Popen[bytes]:
    return subprocess.Popen(  # type: ignore[call-overload,no-any-return]
        [sys.executable, "-c", textwrap.dedent(code)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        **kwargs,
    )


# A child that waits on stdin before it starts, so the test can move it into a cgroup first
# (as the pool moves an attempt's fresh process before it sends the instance).
HOG = """
    import sys
    sys.stdin.readline()
    chunks = []
    for _ in range(64):
        chunks.append(bytearray(16 << 20))  # 16 MiB, touched: resident
        for i in range(0, len(chunks[-1]), 4096):
            chunks[-1][i] = 1
    print("survived")
"""


@needs_cgroups
def test_memory_limit_kills_the_hog_inside_its_cgroup_only() -> None:
    with cgroups.AttemptCgroup.create(SUPPORT, f"gxo-test-{os.getpid()}", memory=64 * MiB) as cg:
        proc = _python(HOG, stdin=subprocess.PIPE)
        cg.add(proc.pid)
        assert proc.pid in cg.pids()
        out, _ = proc.communicate(b"go\n", timeout=60)
        usage = cg.usage()
    assert proc.returncode == -signal.SIGKILL
    assert b"survived" not in out
    assert usage.oom_kills >= 1
    assert 32 * MiB < usage.memory_peak <= 64 * MiB + MiB


@needs_cgroups
def test_process_limit_refuses_forks_and_removal_kills_the_rest() -> None:
    storm = """
        import os, sys, time
        sys.stdin.readline()
        made = refused = 0
        for _ in range(200):
            try:
                if os.fork() == 0:
                    time.sleep(600)
                    os._exit(0)
                made += 1
            except OSError:
                refused += 1
        print(made, refused, flush=True)
        time.sleep(600)
    """
    cg = cgroups.AttemptCgroup.create(SUPPORT, f"gxo-test-pids-{os.getpid()}", processes=10)
    try:
        proc = _python(storm, stdin=subprocess.PIPE)
        cg.add(proc.pid)
        assert proc.stdin is not None
        assert proc.stdout is not None
        proc.stdin.write(b"go\n")
        proc.stdin.flush()
        made, refused = (int(x) for x in proc.stdout.readline().split())
        assert made == 9  # the limit counts the storm's own process too
        assert refused == 200 - 9
        assert len(cg.pids()) == 10
        assert cg.usage().pids_refused >= refused
    finally:
        cg.remove()  # kills the whole tree, double-forked or not
    assert proc.wait(timeout=10) == -signal.SIGKILL
    assert not cg.dirs
    proc.stdin.close()
    proc.stdout.close()
    assert proc.stderr is not None
    proc.stderr.close()


def test_probe_explains_why_when_no_hierarchy_is_usable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cgroups, "CGROUP_ROOT", tmp_path)
    support = cgroups.probe()
    assert not support.usable
    assert "not mounted" in support.why
    assert "no memory hierarchy" in support.why
    with pytest.raises(OSError, match="cgroups cannot be used here"):
        cgroups.AttemptCgroup.create(support, "x", memory=MiB)


def _limited(code: str, **limits: object) -> subprocess.CompletedProcess[bytes]:
    """Run ``code`` in a fresh Python that applies ``limits`` to itself first, as an attempt's
    fresh process does before any module code runs."""
    setup = f"from gxo.pool.rlimits import apply_rlimits\napply_rlimits(**{limits!r})\n"
    return subprocess.run(
        [sys.executable, "-c", setup + textwrap.dedent(code)],
        capture_output=True,
        timeout=60,
        check=False,
    )


def test_cpu_rlimit_ends_a_spin_with_sigxcpu() -> None:
    done = _limited("while True: pass", cpu=1)
    assert done.returncode == -signal.SIGXCPU
    assert signal_limit(signal.SIGXCPU) == "cpu"


def test_file_size_rlimit_stops_a_large_write(tmp_path: Path) -> None:
    # A command inherits the limit and dies of SIGXFSZ; Python ignores SIGXFSZ, so a Python
    # module sees EFBIG instead (both are reported as limit_exceeded(file_size)).
    code = f"""
        import subprocess
        cmd = "head -c 10485760 /dev/zero > {tmp_path / "by-command"}"
        print(subprocess.run(["/bin/sh", "-c", cmd]).returncode)
        try:
            with open({str(tmp_path / "by-python")!r}, "wb") as f:
                f.write(b"x" * (10 << 20))
        except OSError as exc:
            print(exc.errno)
    """
    done = _limited(code, file_size=MiB)
    shell_status, python_errno = done.stdout.split()
    assert int(shell_status) == 128 + signal.SIGXFSZ  # the shell reports its child's signal
    assert int(python_errno) == 27  # EFBIG
    assert (tmp_path / "by-command").stat().st_size == MiB
    assert (tmp_path / "by-python").stat().st_size == MiB
    assert signal_limit(signal.SIGXFSZ) == "file_size"


def test_open_files_rlimit_counts_only_what_the_task_opens() -> None:
    code = """
        import os
        fds = []
        try:
            for _ in range(1000):
                fds.append(os.open("/dev/null", os.O_RDONLY))
        except OSError as exc:
            print(len(fds), exc.errno)
    """
    done = _limited(code, open_files=64)
    opened, err = done.stdout.split()
    assert int(err) == 24  # EMFILE
    assert 64 <= int(opened) <= 64 + 32


def test_tree_watch_sums_memory_and_processes_of_the_whole_tree() -> None:
    tree = """
        import os, sys, time
        children = []
        for _ in range(3):
            pid = os.fork()
            if pid == 0:
                block = bytearray(32 << 20)
                for i in range(0, len(block), 4096):
                    block[i] = 1
                os.write(1, b"r")
                time.sleep(600)
                os._exit(0)
        sys.stdin.readline()
    """
    proc = _python(tree, stdin=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        assert proc.stdout.read(3) == b"rrr"  # every child holds its 32 MiB
        watch = TreeWatch(proc.pid, memory=64 * MiB, processes=10)
        assert watch.check() == "memory"
        assert watch.peak_rss > 96 * MiB
        assert watch.peak_processes == 4
        assert TreeWatch(proc.pid, processes=3).check() == "processes"
        assert TreeWatch(proc.pid, memory=1 << 40, processes=4).check() is None
    finally:
        for child in __import__("psutil").Process(proc.pid).children(recursive=True):
            child.kill()
        proc.kill()
        proc.communicate()


def test_network_namespace_has_loopback_only() -> None:
    why = network_isolation_supported()
    if why:
        pytest.skip(f"this machine refuses network namespaces: {why}")
    code = """
        import socket
        from gxo.pool.netns import isolate_network
        isolate_network()
        server = socket.socket(); server.bind(("127.0.0.1", 0)); server.listen()
        client = socket.create_connection(server.getsockname(), timeout=5)
        print("loopback ok")
        with open("/proc/net/route") as routes:
            print("routes", len(routes.read().splitlines()) - 1)  # minus the header line
        print(sorted(name for _, name in socket.if_nameindex()))
    """
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, timeout=60, check=True
    )
    lines = done.stdout.decode().splitlines()
    assert lines[0] == "loopback ok"
    assert lines[1] == "routes 0"  # no route leads out of the namespace
    assert lines[2] == "['lo']"
