"""Where gxo's per-task time goes: parent profile, parent split, state machine, codec, worker.

    python benchmarks/profile_engine.py                      # every section (about 1 minute)
    python benchmarks/profile_engine.py --section cprofile   # one section (repeatable)
    python benchmarks/profile_engine.py --tasks 2000 --prof /tmp/gxo.prof

Sections:

``cprofile``  cProfile around ``gxo.run`` of the N-task independent python no-op
              playbook (2 workers): top lines by tottime and by cumtime.
``split``     the same run without cProfile, with ``perf_counter`` wrappers on the scheduler
              state machine, the loop, the pool, the codec and the socket/selector calls;
              *exclusive* time per wrapped function (time in wrapped callees subtracted), per
              task, so the lines add up to the instrumented total. The wrappers cost about
              0.2-0.4 us per call; the instrumented and plain totals are both printed.
``state``     ``SchedulerState`` alone, driven synchronously (dispatch, handle(AttemptStarted),
              handle(AttemptFinished), tick, next_deadline per task), no processes: the
              state machine's own per-task cost, for independent tasks and for a chain.
``parent``    the parent's own work per task with no processes: the state machine fed as the
              loop feeds it, then with the run's events, the CLI's default output (and
              ``-q``), the journal and the report, layer by layer: Python and C calls per task
              (counts: independent of the machine's load) and CPU (interleaved repeats).
``clisplit``  through the installed command (``--gxo``): CPU of the gxo parent and of the
              forkserver + workers per task, default output and ``-q``.
``codec``     msgspec framing per task, parent side (encode Run; decode Ack + Done) and
              worker side (decode Run; encode Done + Ack).
``worker``    ``gxo.pool.worker.run_attempt(run, state)`` in-process, 10,000 times (timeit), for
              the no-op python Run with the params compile cache hit and missed, for a
              chain-like templated Run, and its components (module lookup, params compile,
              render, ModuleContext, convert_params, the python module's run, redaction).
              Plus ``exec /bin/true`` through the worker against bare ``subprocess.run``.
``syscalls``  ``strace -c`` (when installed) of a T(N) run and a T(1) run, parent only and
              parent + forkserver + workers (``-f``): (calls(N) - calls(1)) / (N - 1).
"""

from __future__ import annotations

import argparse
import cProfile
import functools
import inspect
import io
import os
import pstats
import resource
import selectors
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import timeit
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from run import (  # noqa: E402
    NOOP_FUNCTION,
    chain_playbook,
    exec_playbook,
    independent_playbook,
    run_engine,
    write,
)

import gxo  # noqa: E402
from gxo import wire  # noqa: E402
from gxo.pool import process_pool  # noqa: E402
from gxo.pool import worker as worker_module  # noqa: E402
from gxo.scheduler import loop, messages, report, state  # noqa: E402

# -- helpers ------------------------------------------------------------------------------------


def heading(text: str) -> None:
    print(f"\n== {text} " + "=" * max(0, 86 - len(text)))


def per_call_us(work: Callable[[], Any], number: int) -> float:
    """Best of 3 timeit repeats, in microseconds per call."""
    return min(timeit.repeat(work, number=number, repeat=3)) / number * 1e6


# -- cprofile -----------------------------------------------------------------------------------


WORKLOADS: dict[str, Callable[[int], str]] = {
    "independent": independent_playbook,
    "chain": chain_playbook,
    "exec": exec_playbook,
}


def playbooks(tmp: Path, workload: str, tasks: int) -> tuple[Any, Any]:
    """The loaded N-task and 1-task playbooks of ``workload``."""
    make = WORKLOADS[workload]
    big = gxo.load(write(tmp, f"{workload}_{tasks}.yaml", make(tasks)))
    one = gxo.load(write(tmp, f"{workload}_1.yaml", make(1)))
    return big, one


def section_cprofile(tmp: Path, tasks: int, prof: str | None, workload: str) -> None:
    heading(f"cProfile: gxo.run of {tasks} tasks ({workload}), 2 workers")
    big, one = playbooks(tmp, workload, tasks)
    run_engine(one)  # warm-up
    profile = cProfile.Profile()
    start = time.perf_counter()
    profile.enable()
    run_engine(big)
    profile.disable()
    wall = time.perf_counter() - start
    print(f"wall under cProfile: {wall:.3f} s ({wall / tasks * 1e6:.0f} us/task)")
    if prof:
        profile.dump_stats(prof)
        print(f"profile written to {prof}")
    for key in ("tottime", "cumtime"):
        out = io.StringIO()
        stats = pstats.Stats(profile, stream=out)
        stats.strip_dirs().sort_stats(key).print_stats(15)
        text = out.getvalue()
        print(f"-- top 15 by {key}")
        print(text[text.index("   ncalls") :].rstrip())


# -- split --------------------------------------------------------------------------------------


_INHERITED = object()


class Accounting:
    """Exclusive wall time and call counts of wrapped callables."""

    def __init__(self) -> None:
        self.exclusive: defaultdict[str, float] = defaultdict(float)
        self.calls: Counter[str] = Counter()
        self._stack: list[float] = []
        self._restore: list[tuple[Any, str, Any]] = []

    def wrap(self, owner: Any, name: str, label: str) -> None:
        original = vars(owner).get(name, _INHERITED)
        target = getattr(owner, name)
        exclusive, calls, stack = self.exclusive, self.calls, self._stack
        clock = time.perf_counter

        @functools.wraps(target)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            start = clock()
            stack.append(0.0)
            try:
                return target(*args, **kwargs)
            finally:
                elapsed = clock() - start
                exclusive[label] += elapsed - stack.pop()
                calls[label] += 1
                if stack:
                    stack[-1] += elapsed

        self._restore.append((owner, name, original))
        setattr(owner, name, wrapper)

    def undo(self) -> None:
        for owner, name, original in reversed(self._restore):
            if original is _INHERITED:
                delattr(owner, name)
            else:
                setattr(owner, name, original)
        self._restore.clear()


STATE_METHODS = (
    "__init__",
    "start",
    "dispatch",
    "_dispatched",
    "_next_ready",
    "is_short",
    "is_finished",
    "handle",
    "_started",
    "_outcome",
    "tick",
    "next_deadline",
    "_consider",
    "_namespace",
    "_new_instance",
    "_queue_more",
    "_instance_done",
    "_task_instances_done",
    "_end_task",
    "_release",
    "_set_status",
)
POOL_METHODS = (
    "start",
    "close",
    "submit",
    "wait",
    "_send",
    "_read_control",
    "_on_message",
    "_escalate",
    "next_deadline",
    "free_slots",
    "flush",
)


def instrument(acct: Accounting) -> None:
    # Only what exists: the core changes under these benchmarks.
    for name in STATE_METHODS:
        if hasattr(state.SchedulerState, name):
            acct.wrap(state.SchedulerState, name, f"state.{name}")
    for name in POOL_METHODS:
        if hasattr(process_pool.ProcessPool, name):
            acct.wrap(process_pool.ProcessPool, name, f"pool.{name}")
    acct.wrap(loop, "_dispatch", "loop._dispatch (own code)")
    acct.wrap(loop, "_as_input", "loop._as_input")
    acct.wrap(loop, "_timeout", "loop._timeout")
    acct.wrap(report, "build_report", "report.build_report")
    acct.wrap(wire.FrameWriter, "add", "codec FrameWriter.add (encode)")
    acct.wrap(wire.FrameWriter, "take", "codec FrameWriter.take")
    acct.wrap(wire.FrameReader, "feed", "codec FrameReader.feed (decode)")
    acct.wrap(selectors.EpollSelector, "select", "sys selector.select (epoll_wait)")
    acct.wrap(socket.socket, "send", "sys socket.send")
    acct.wrap(socket.socket, "sendall", "sys socket.sendall")
    acct.wrap(socket.socket, "recv", "sys socket.recv")
    acct.wrap(socket.socket, "setblocking", "sys socket.setblocking")


def _children_cpu() -> dict[int, float]:
    """CPU seconds (user + system) of every live descendant (forkserver, workers), by pid."""
    cpu = {}
    for child in psutil.Process().children(recursive=True):
        try:
            times = child.cpu_times()
        except psutil.Error:
            continue
        cpu[child.pid] = times.user + times.system
    return cpu


def _cpu_run(loaded: Any, at_close: dict[int, float]) -> tuple[float, float, float]:
    """(wall, parent CPU, descendants' CPU) of one engine run, in seconds."""
    at_close.clear()
    before, times0 = _children_cpu(), os.times()
    wall = run_engine(loaded).wall
    times1 = os.times()
    parent = (times1.user - times0.user) + (times1.system - times0.system)
    children = sum(cpu - before.get(pid, 0.0) for pid, cpu in at_close.items())
    return wall, parent, children


def cpu_split(big: Any, one: Any, tasks: int) -> None:
    """CPU of this process and of its descendants (read just before pool close), per task.

    Per task = (CPU(T(N)) - CPU(T(1))) / (N - 1), so worker start-up is not in it.
    """
    original_close = process_pool.ProcessPool.close
    at_close: dict[int, float] = {}

    def close(self: Any, *args: Any, **kwargs: Any) -> Any:
        at_close.update(_children_cpu())
        return original_close(self, *args, **kwargs)

    samples = []
    process_pool.ProcessPool.close = close  # type: ignore[method-assign]
    try:
        for _ in range(3):
            small = _cpu_run(one, at_close)
            large = _cpu_run(big, at_close)
            pairs = zip(large, small, strict=True)
            samples.append(tuple((a - b) / (tasks - 1) * 1e6 for a, b in pairs))
    finally:
        process_pool.ProcessPool.close = original_close  # type: ignore[method-assign]
    wall, parent, children = sorted(samples)[1]  # the median repeat by wall time
    print(
        f"per task, (T(N) - T(1)) / (N - 1), median of 3 (os.times; psutil on the workers just "
        f"before pool close; 10 ms ticks): wall {wall:.0f} us; parent CPU {parent:.0f} us; "
        f"workers + forkserver CPU {children:.0f} us; sum / {os.cpu_count()} CPUs = "
        f"{(parent + children) / (os.cpu_count() or 1):.0f} us"
    )


def section_split(tmp: Path, tasks: int, workload: str) -> None:
    heading(f"parent split: exclusive time per function, {tasks} tasks ({workload})")
    big, one = playbooks(tmp, workload, tasks)
    run_engine(one)
    plain = min(run_engine(big).wall for _ in range(2))
    cpu_split(big, one, tasks)
    acct = Accounting()
    instrument(acct)
    try:
        start = time.perf_counter()
        run_engine(big)
        total = time.perf_counter() - start
    finally:
        acct.undo()
    accounted = sum(acct.exclusive.values())
    print(
        f"plain run {plain * 1e3:.0f} ms ({plain / tasks * 1e6:.1f} us/task); "
        f"instrumented {total * 1e3:.0f} ms ({total / tasks * 1e6:.1f} us/task); "
        f"wrapped calls {sum(acct.calls.values()) / tasks:.1f} per task"
    )
    print(f"{'function':44} {'calls/task':>10} {'us/task':>8} {'share':>6}")
    groups: defaultdict[str, float] = defaultdict(float)
    for label, seconds in sorted(acct.exclusive.items(), key=lambda kv: -kv[1]):
        groups[label.split(" ")[0].split(".")[0]] += seconds
        print(
            f"{label:44} {acct.calls[label] / tasks:10.2f} {seconds / tasks * 1e6:8.2f} "
            f"{seconds / total:6.1%}"
        )
    rest = total - accounted
    label = "(not in any wrapped function)"
    print(f"{label:44} {'':10} {rest / tasks * 1e6:8.2f} {rest / total:6.1%}")
    print("groups (us/task): " + ", ".join(f"{k} {v / tasks * 1e6:.1f}" for k, v in groups.items()))
    waits = acct.calls["pool.wait"]
    print(
        f"loop iterations (pool.wait calls): {waits} = {waits / tasks:.2f} per task, "
        f"{2 * tasks / max(waits, 1):.2f} events (Ack/Done) per wait"
    )


# -- state --------------------------------------------------------------------------------------


def _is_finished(sched: Any) -> bool:
    """``is_finished()`` (today) or the older ``finished`` property."""
    finished = getattr(sched, "is_finished", None)
    return bool(finished()) if callable(finished) else bool(sched.finished)


def drive_state(loaded: Any) -> float:
    """Seconds per task for SchedulerState alone, with the loop's calls, no processes."""
    from gxo.wire import Done

    playbook, plan = loaded.playbook, loaded.plan
    one = messages.Capacity(idle=1, pipelined=1)
    start = time.perf_counter()
    sched = state.SchedulerState(playbook, plan)
    now = time.monotonic()
    sched.start(now)
    while not _is_finished(sched):
        batch = sched.dispatch(one)
        if not batch:
            raise RuntimeError("nothing ready but the run is not finished")
        instance_id = batch[0].instance_id
        sched.handle(messages.AttemptStarted(instance_id, 1), now)
        sched.handle(messages.AttemptFinished(Done(instance_id=instance_id, ok=True)), now)
        sched.tick(now)
        sched.next_deadline()
    return (time.perf_counter() - start) / len(playbook.tasks)


def section_state(tmp: Path, tasks: int) -> None:
    heading("SchedulerState alone (no processes): per-task cost")
    for name, text, count in (
        ("independent", independent_playbook(tasks), tasks),
        ("independent", independent_playbook(tasks // 5), tasks // 5),
        ("chain", chain_playbook(500), 500),
    ):
        loaded = gxo.load(write(tmp, f"state_{name}_{count}.yaml", text))
        drive_state(loaded)
        best = min(drive_state(loaded) for _ in range(3))
        print(f"{name:12} {count:6} tasks: {best * 1e6:6.1f} us/task")


# -- parent (no processes) ----------------------------------------------------------------------


def _drive_parent(loaded: Any, tmp: Path, layers: str) -> float:
    """CPU seconds (this process, every thread) per task of one run of the parent's own work,
    with no processes: the state machine fed as the loop feeds it (dispatch in batches of
    the pool's capacity, each Dispatch turned into its Run, then Started and Finished per
    instance, tick and next_deadline per wake-up), plus the ``layers`` named:

    ``events``: the run's observer and an event bus with one subscriber that does nothing;
    ``cli``: the command's default output on that bus instead (task lines through gxo's text
    handler into a file, the plain progress display); ``quiet``: the same with ``-q``;
    ``journal``: the run journal (in ``tmp``); ``report``: the report built at the end.
    """
    import logging

    from gxo import engine
    from gxo.cli import commands, output
    from gxo.events import EventBus
    from gxo.observability.logging import setup_logging
    from gxo.observability.progress import PlainProgress
    from gxo.scheduler.notify import RunObserver
    from gxo.scheduler.partial import PartialRun
    from gxo.wire import Done

    playbook, plan = loaded.playbook, loaded.plan
    tasks = len(playbook.tasks)
    bus = observer = recorder = progress = None
    sink = open(tmp / "parent-output.txt", "w")  # noqa: SIM115 - closed below
    if "events" in layers or "cli" in layers or "quiet" in layers:
        bus = EventBus(maxsize=1_000_000)
        if "cli" in layers or "quiet" in layers:
            quiet = "quiet" in layers
            setup_logging("info", "text", "run", stream=sink)
            output.configure(colour=False, quiet=quiet)
            commands._set_quiet(argparse.Namespace(quiet=quiet))
            if "buffered" in inspect.signature(output.TaskLines).parameters:  # as the CLI
                lines = output.TaskLines(playbook, buffered=True)
                bus.subscribe(lines, name="task lines", flush=lines.flush)
            else:
                bus.subscribe(output.TaskLines(playbook), name="task lines")
            if not quiet:
                progress = PlainProgress()
                bus.subscribe(progress, name="progress")
        else:
            bus.subscribe(lambda event: None, name="nothing")
        observer = RunObserver(bus, "run")
    listener: Any = observer
    options = engine.RunOptions(
        workers=2,
        state_dir=str(tmp / "state"),
        run_id=os.urandom(6).hex(),
        partial=PartialRun(journal_enabled=True),
    )
    control = None
    if "journal" in layers:
        control, recorder = engine._run_control(playbook, plan, options, 2)
        if recorder is not None:
            recorder.inner = observer
            listener = recorder
    cpu0, wall0 = time.process_time(), time.time()
    sched = state.SchedulerState(playbook, plan, listener=listener, control=control)
    if recorder is not None:
        recorder.bind(sched)
    to_run = loop._run_messages(sched, None)
    housekeeping = recorder.writer.tick if recorder is not None else None
    if observer is not None:
        observer.run_started(playbook, 2, False)
    clock = time.monotonic
    now = clock()
    sched.start(now)
    capacity = messages.Capacity(2, 16)
    stimulus = 0
    while not _is_finished(sched):
        batch = sched.dispatch(capacity, now)
        if not batch:
            raise RuntimeError("nothing ready but the run is not finished")
        runs = [to_run(d) for d in batch]
        sched.next_deadline()
        if housekeeping is not None:
            housekeeping()
        now = clock()
        for run in runs:
            stimulus += 1
            sched.handle(messages.AttemptStarted(run.instance_id, 1, stimulus), now)
            done = Done(instance_id=run.instance_id, ok=True, duration=1e-5, started_at=now)
            stimulus += 1
            sched.handle(messages.AttemptFinished(done, stimulus), now)
        stimulus += 1
        sched.tick(now, stimulus)
    if "report" in layers:
        report = _build_report(sched, wall0, now)
        if observer is not None:
            observer.run_finished(report)
    if bus is not None:
        bus.close()
    if progress is not None:
        progress.close()
    if recorder is not None:
        recorder.close(0)
    cpu = time.process_time() - cpu0
    sink.close()
    logging.getLogger("gxo").handlers.clear()
    return cpu / tasks


def _build_report(sched: Any, wall0: float, now: float) -> Any:
    return report.build_report(
        sched,
        run_id="run",
        started_wall=wall0,
        started_mono=now,
        ended_mono=time.monotonic(),
        workers=2,
        worker_restarts=0,
        exit_code=0,
    )


PARENT_LAYERS = (
    ("state machine + loop's Run messages", ""),
    ("+ events (one subscriber doing nothing)", "events"),
    ("+ default CLI output (task lines, plain progress)", "cli"),
    ("+ CLI output with -q", "quiet"),
    ("+ default CLI output + journal", "cli journal"),
    ("+ default CLI output + journal + report", "cli journal report"),
    ("state machine + report", "report"),
)


def _calls_per_task(loaded: Any, tmp: Path, layers: str) -> tuple[float, float]:
    """(Python calls, C calls) per task of one :func:`_drive_parent` run, every thread:
    counts, unlike CPU time, do not move with the machine's load."""
    import threading

    counts = [0, 0]

    def count(frame: Any, event: str, arg: Any) -> None:
        if event == "call":
            counts[0] += 1
        elif event == "c_call":
            counts[1] += 1

    threading.setprofile(count)
    sys.setprofile(count)
    try:
        _drive_parent(loaded, tmp, layers)
    finally:
        sys.setprofile(None)
        threading.setprofile(None)  # type: ignore[arg-type]
    tasks = len(loaded.playbook.tasks)
    return counts[0] / tasks, counts[1] / tasks


def section_parent(tmp: Path, tasks: int, repeats: int = 7) -> None:
    heading(f"parent's own work per task, no processes: {tasks} independent tasks")
    import gc

    loaded = gxo.load(write(tmp, f"parent_{tasks}.yaml", independent_playbook(tasks)))
    samples: dict[str, list[float]] = {layers: [] for _, layers in PARENT_LAYERS}
    for _, layers in PARENT_LAYERS:
        _drive_parent(loaded, tmp, layers)  # warm-up
    for _ in range(repeats):  # the layers interleaved, so the machine's load hits them alike
        for _, layers in PARENT_LAYERS:
            gc.collect()
            samples[layers].append(_drive_parent(loaded, tmp, layers) * 1e6)
    calls = {layers: _calls_per_task(loaded, tmp, layers) for _, layers in PARENT_LAYERS}
    load = os.getloadavg()[0]
    print(f"{'per task':52} {'py calls':>8} {'C calls':>8} {'CPU us min':>10} {'median':>7}")
    for label, layers in PARENT_LAYERS:
        values = samples[layers]
        py, c = calls[layers]
        median = sorted(values)[len(values) // 2]
        print(f"{label:52} {py:8.1f} {c:8.1f} {min(values):10.1f} {median:7.1f}")
    print(f"(CPU: this process, every thread, {repeats} interleaved repeats; load {load:.1f})")
    us = {key: min(values) for key, values in samples.items()}
    py = {key: value[0] for key, value in calls.items()}
    for what, key, base in (
        ("default CLI output", "cli", ""),
        ("CLI output with -q", "quiet", ""),
        ("events alone", "events", ""),
        ("journal", "cli journal", "cli"),
        ("report", "report", ""),
    ):
        print(
            f"{what}: {py[key] - py[base]:.1f} Python calls, "
            f"{us[key] - us[base]:.1f} us CPU (difference of minimums) per task"
        )


# -- clisplit (the installed command) -----------------------------------------------------------

#: Runs the console script's entry point, then writes this process's CPU (every thread: the
#: gxo parent) and its reaped children's (the forkserver, and through it the workers).
_CPU_WRAPPER = """
import atexit, resource, sys
out = sys.argv.pop(1)
def _report():
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    with open(out, "w") as f:
        f.write(f"{me.ru_utime + me.ru_stime} {kids.ru_utime + kids.ru_stime} "
                f"{me.ru_nvcsw} {me.ru_nivcsw}")
atexit.register(_report)
sys.argv[0] = "gxo"
from gxo.cli import console_main
console_main()
"""


def _cli_cpu(python: str, playbook: Path, tmp: Path, extra: list[str]) -> tuple[float, ...]:
    """(wall, parent CPU, forkserver + workers CPU, voluntary and involuntary context
    switches of the parent) of one ``gxo PLAYBOOK --workers 2`` process, output to a file."""
    out = tmp / "cpu.txt"
    argv = [python, "-c", _CPU_WRAPPER, str(out), str(playbook), "--workers", "2", *extra]
    with open(tmp / "clisplit-output.txt", "wb") as sink:
        start = time.perf_counter()
        subprocess.run(argv, cwd=tmp, stdout=sink, stderr=sink, check=True)
        wall = time.perf_counter() - start
    parent, children, voluntary, involuntary = out.read_text().split()
    return wall, float(parent), float(children), float(voluntary), float(involuntary)


def section_clisplit(tmp: Path, tasks: int, gxo_script: str | None, repeats: int = 3) -> None:
    """The CPU split through the installed command (``--gxo``, default: the ``gxo`` beside
    this interpreter): parent vs forkserver + workers per task, default output and ``-q``,
    ``(N run - 1 run) / (N - 1)``, median of ``repeats``. CPU seconds move with the load far
    less than wall time (not at all with the number of other processes waiting)."""
    script = Path(gxo_script or Path(sys.executable).with_name("gxo"))
    first = script.read_text(errors="replace").splitlines()[0]
    python = first[2:].strip().split()[0] if first.startswith("#!") else sys.executable
    heading(f"CPU split through the installed command ({python}): {tasks} python no-ops")
    big = write(tmp, f"clisplit_{tasks}.yaml", independent_playbook(tasks))
    one = write(tmp, "clisplit_1.yaml", independent_playbook(1))
    labels = (
        "wall",
        "parent CPU",
        "forkserver + workers CPU",
        "parent vol. switches",
        "parent invol. switches",
    )
    print(f"load average {os.getloadavg()[0]:.1f}")
    for extra in ([], ["-q"]):
        _cli_cpu(python, one, tmp, extra)
        samples = []
        for _ in range(repeats):
            small = _cli_cpu(python, one, tmp, extra)
            large = _cli_cpu(python, big, tmp, extra)
            samples.append([(b - a) / (tasks - 1) for a, b in zip(small, large, strict=True)])
        columns = list(zip(*samples, strict=True))
        shown = []
        for label, values in zip(labels, columns, strict=True):
            med = sorted(values)[len(values) // 2]
            scale, unit = (1e6, "us") if "switches" not in label else (1.0, "")
            shown.append(f"{label} {med * scale:.1f}{unit}")
        print(f"  {' '.join(extra) or 'default output':15} per task: " + ", ".join(shown))
    print(f"load average {os.getloadavg()[0]:.1f}")


# -- codec --------------------------------------------------------------------------------------


def section_codec() -> None:
    from gxo.wire import Done, FrameReader, FrameWriter, Run, ToParent, ToWorker

    ack_type = getattr(wire, "Ack", None)  # gone once acknowledgements left the wire

    heading("msgspec framing per task (FrameWriter / FrameReader)")
    run = Run(
        instance_id=1234,
        task_index=1234,
        task_name="t1234",
        module="python",
        params={"function": NOOP_FUNCTION},
        namespace={},
        playbook_dir="/tmp/gxo-bench",
    )
    done = Done(instance_id=1234, ok=True, duration=1e-5, max_rss_kib=20000)
    writer = FrameWriter()
    writer.add(run)
    run_frame = writer.take()
    writer.add(done)
    if ack_type is not None:
        writer.add(ack_type(1235))
    done_ack = writer.take()
    to_parent, to_worker = FrameReader(ToParent), FrameReader(ToWorker)

    def encode_run() -> None:
        writer.add(run)
        writer.take()

    def encode_done() -> None:
        writer.add(done)
        if ack_type is not None:
            writer.add(ack_type(1235))
        writer.take()

    what = "Done+Ack" if ack_type is not None else "Done"
    print(f"Run frame {len(run_frame)} bytes, {what} frame(s) {len(done_ack)} bytes")
    rows = [
        ("parent encode Run", encode_run),
        (f"parent decode {what}", lambda: to_parent.feed(done_ack)),
        ("worker decode Run", lambda: to_worker.feed(run_frame)),
        (f"worker encode {what}", encode_done),
    ]
    for label, work in rows:
        print(f"{label:28} {per_call_us(work, 100_000):6.2f} us")


# -- worker -------------------------------------------------------------------------------------


def section_worker(tmp: Path, number: int) -> None:
    from gxo.modules import ModuleContext, convert_params
    from gxo.modules.builtin.python import PythonModule, resolve_function
    from gxo.modules.registry import load_module
    from gxo.template import compile_value
    from gxo.wire import Run

    heading(f"worker side, in-process: gxo.pool.worker.run_attempt x {number} (best of 3)")
    wstate = worker_module._WorkerState()
    run_attempt = worker_module.run_attempt
    params = {"function": NOOP_FUNCTION}

    def make(i: int, task_params: dict[str, Any], namespace: dict[str, Any]) -> Run:
        return Run(
            instance_id=i,
            task_index=i,
            task_name=f"t{i}",
            module="python",
            params=task_params,
            namespace=namespace,
            playbook_dir=str(tmp),
        )

    same = make(0, params, {})
    result = run_attempt(same, wstate)
    if not result.ok:
        raise SystemExit(f"worker run_attempt failed: {result.reason} {result.error}")
    hit = per_call_us(lambda: run_attempt(same, wstate), number)

    def fresh_runs(template: bool) -> list[Run]:
        base = 1_000_000 + len(wstate.compiled)
        runs = []
        for i in range(base, base + number):
            if template:
                runs.append(
                    make(i, {**params, "kwargs": {"prev": f"{{{{ r{i} }}}}"}}, {f"r{i}": None})
                )
            else:
                runs.append(make(i, params, {}))
        return runs

    def run_all(runs: list[Run]) -> float:
        start = time.perf_counter()
        for item in runs:
            run_attempt(item, wstate)
        return (time.perf_counter() - start) / len(runs) * 1e6

    miss = min(run_all(fresh_runs(False)) for _ in range(3))
    chain_miss = min(run_all(fresh_runs(True)) for _ in range(3))
    templated = make(7, {**params, "kwargs": {"prev": "{{ r6 }}"}}, {"r6": None})
    run_attempt(templated, wstate)
    chain_hit = per_call_us(lambda: run_attempt(templated, wstate), number)
    print("run_attempt(run) per call:")
    print(f"  no-op, same task again (params compile cache hit)     {hit:7.1f} us")
    print(f"  no-op, a new task each call (cache miss, the benchmark) {miss:5.1f} us")
    print(f"  chain-like '{{{{ r<i> }}}}' kwarg, cache hit              {chain_hit:7.1f} us")
    print(f"  chain-like, new template each call (the chain benchmark) {chain_miss:4.1f} us")

    module_cls = load_module("python")
    compiled = compile_value(params, where="$")
    rendered = compiled.render({}, wstate.resolver)
    converted = convert_params(module_cls, rendered)
    ctx = ModuleContext(task_name="t0", instance_id=0, state={}, playbook_dir=str(tmp))
    counter = iter(range(10**9))
    tmpl_compiled = compile_value(templated.params, where="$")
    if hasattr(wstate, "render_params"):  # since s5-chain
        from gxo.template import render_paths

        params_parts = [
            ("render_params (same task again)", lambda: wstate.render_params(same)),
            (
                "render_paths(new '{{ r<i> }}' params) (first instance)",
                lambda: render_paths(
                    {**params, "kwargs": {"prev": f"{{{{ r{next(counter)} }}}}"}}, {}
                ),
            ),
        ]
    else:
        params_parts = [("params_template (cache hit)", lambda: wstate.params_template(same))]
    outcome = worker_module._Outcome(ok=True, summary=None)
    if "started_at" in inspect.signature(worker_module._redacted).parameters:

        def redacted(iid: int, out: Any, duration: float, redactor: Any) -> Any:
            return worker_module._redacted(iid, out, duration, 0.0, redactor)

    else:
        redacted = worker_module._redacted
    parts = [
        ("load_module('python')", lambda: load_module("python")),
        *params_parts,
        ("compile_value(constant params) (miss)", lambda: compile_value(params, where="$")),
        (
            "compile_value(new '{{ r<i> }}' template) (miss)",
            lambda: compile_value(
                {**params, "kwargs": {"prev": f"{{{{ r{next(counter)} }}}}"}}, where="$"
            ),
        ),
        ("render constant params", lambda: compiled.render({}, wstate.resolver)),
        ("render '{{ r6 }}' params", lambda: tmpl_compiled.render({"r6": None}, wstate.resolver)),
        (
            "ModuleContext(same task name)",
            lambda: ModuleContext(task_name="t0", instance_id=0, state={}),
        ),
        (
            "ModuleContext(new task name: new Logger)",
            lambda: ModuleContext(task_name=f"n{next(counter)}", instance_id=0, state={}),
        ),
        ("convert_params", lambda: convert_params(module_cls, rendered)),
        ("PythonModule().run (whole)", lambda: PythonModule().run(converted, ctx)),
        ("  resolve_function(file.py:noop)", lambda: resolve_function(NOOP_FUNCTION, str(tmp))),
        ("_plain(None)", lambda: worker_module._plain(None)),
        ("_redacted (getrusage + Done)", lambda: redacted(0, outcome, 1e-5, wstate.redactor)),
        ("  resource.getrusage", lambda: resource.getrusage(resource.RUSAGE_SELF)),
    ]
    print("components per call:")
    for label, work in parts:
        print(f"  {label:50} {per_call_us(work, number):7.2f} us")

    heading("exec /bin/true: worker run_attempt vs subprocess.run, sequential, 300 each")
    exec_run = Run(
        instance_id=1,
        task_index=0,
        task_name="e",
        module="exec",
        params={"command": "/bin/true"},
        namespace={},
    )
    run_attempt(exec_run, wstate)
    variants = [
        ("subprocess.run(['/bin/true'])", lambda: subprocess.run(["/bin/true"], check=False)),
        (
            "  + capture_output, stdin=DEVNULL",
            lambda: subprocess.run(
                ["/bin/true"], capture_output=True, stdin=subprocess.DEVNULL, check=False
            ),
        ),
        (
            "  + process_group=0, close_fds (exec module's call)",
            lambda: subprocess.run(
                ["/bin/true"],
                capture_output=True,
                stdin=subprocess.DEVNULL,
                process_group=0,
                close_fds=True,
                check=False,
            ),
        ),
        ("worker run_attempt(exec /bin/true)", lambda: run_attempt(exec_run, wstate)),
    ]
    for label, work in variants:
        print(f"  {label:50} {per_call_us(work, 300):7.1f} us")


# -- syscalls -----------------------------------------------------------------------------------


def _strace_counts(path: Path, playbook: Path, follow: bool) -> Counter[str]:
    argv = ["strace", "-c", "-o", str(path)]
    if follow:
        argv.append("-f")
    argv += [sys.executable, str(Path(__file__).resolve()), "--inner-run", str(playbook)]
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
    counts: Counter[str] = Counter()
    for line in path.read_text().splitlines():
        fields = line.split()
        if len(fields) >= 5 and fields[0][0].isdigit() and fields[-1] != "total":
            calls = fields[3]
            if calls.isdigit():
                counts[fields[-1]] = int(calls)
    return counts


def section_syscalls(tmp: Path, tasks: int) -> None:
    heading(f"syscalls per task: strace -c, (calls(T({tasks})) - calls(T(1))) / {tasks - 1}")
    if shutil.which("strace") is None:
        print("strace is not installed: skipped")
        return
    big = write(tmp, "sys_big.yaml", independent_playbook(tasks))
    one = write(tmp, "sys_one.yaml", independent_playbook(1))
    for follow, title in ((False, "parent only"), (True, "parent + forkserver + workers (-f)")):
        large = _strace_counts(tmp / "strace_big.txt", big, follow)
        small = _strace_counts(tmp / "strace_one.txt", one, follow)
        per_task = {
            name: (large[name] - small.get(name, 0)) / (tasks - 1)
            for name in large
            if (large[name] - small.get(name, 0)) / (tasks - 1) >= 0.05
        }
        total = sum(per_task.values())
        shown = ", ".join(
            f"{n} {v:.2f}" for n, v in sorted(per_task.items(), key=lambda kv: -kv[1])
        )
        print(f"{title}: {total:.1f} syscalls/task: {shown}")


def inner_run(playbook: str) -> None:
    """One gxo.run of ``playbook`` (the process strace watches)."""
    run_engine(gxo.load(playbook))


# -- main ---------------------------------------------------------------------------------------

SECTIONS = ("cprofile", "split", "state", "parent", "clisplit", "codec", "worker", "syscalls")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--section", choices=SECTIONS, action="append")
    parser.add_argument("--tasks", type=int, default=5000, help="tasks in the parent runs")
    parser.add_argument(
        "--workload",
        choices=sorted(WORKLOADS),
        default="independent",
        help="playbook of the cprofile and split sections",
    )
    parser.add_argument("--number", type=int, default=10_000, help="worker-side calls")
    parser.add_argument("--prof", help="write the cProfile stats to this file")
    parser.add_argument("--gxo", help="clisplit: the installed gxo console script to measure")
    parser.add_argument("--inner-run", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.inner_run:
        inner_run(args.inner_run)
        return 0
    sections = args.section or list(SECTIONS)
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, pid {os.getpid()}")
    with tempfile.TemporaryDirectory(prefix="gxo-profile-") as name:
        tmp = Path(name)
        for section in sections:
            start = time.perf_counter()
            if section == "cprofile":
                section_cprofile(tmp, args.tasks, args.prof, args.workload)
            elif section == "split":
                section_split(tmp, args.tasks, args.workload)
            elif section == "state":
                section_state(tmp, args.tasks)
            elif section == "parent":
                section_parent(tmp, args.tasks)
            elif section == "clisplit":
                section_clisplit(tmp, args.tasks, args.gxo)
            elif section == "codec":
                section_codec()
            elif section == "worker":
                section_worker(tmp, args.number)
            elif section == "syscalls":
                section_syscalls(tmp, min(args.tasks, 2000))
            print(f"({section}: {time.perf_counter() - start:.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
