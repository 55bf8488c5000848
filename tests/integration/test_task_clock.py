"""A task's clock and its status ``Running`` start when a worker starts its first instance,
not when it becomes ready (issue 12, point 4): with more tasks than workers, the report's
task durations, the HTML Tasks table, the status events and ``gxo_tasks_running`` agree
with what actually runs."""

from __future__ import annotations

import re
import threading
from pathlib import Path

from prometheus_client import generate_latest

import gxo
from gxo.events import Event, TaskQueued, TaskStatusChanged
from gxo.observability.metrics import RunMetrics

TASKS = 6
WORKERS = 2

BOOK = "schemaVersion: v1.0.0\nname: clock\ntasks:\n" + "".join(
    f"  - name: t{k}\n    type: exec\n    params: {{command: sleep, args: ['0.3']}}\n"
    for k in range(TASKS)
)


def _gauge(metrics: RunMetrics, name: str) -> float:
    for line in generate_latest(metrics.registry).decode().splitlines():
        if line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    return 0.0  # not set yet (before the run's first event)


class _Watcher:
    """Follows the events: tasks Running at once, and the metrics' gauges after each one."""

    def __init__(self) -> None:
        self.metrics = RunMetrics()
        self.lock = threading.Lock()
        self.running: set[str] = set()
        self.most_running = 0
        self.most_gauge_running = 0.0
        self.most_gauge_queued = 0.0
        self.queued: list[str] = []

    def __call__(self, event: Event) -> None:
        with self.lock:
            self.metrics(event)
            if isinstance(event, TaskQueued):
                self.queued.append(event.task)
            elif isinstance(event, TaskStatusChanged):
                if event.status == "Running":
                    self.running.add(event.task)
                else:
                    self.running.discard(event.task)
            self.most_running = max(self.most_running, len(self.running))
            self.most_gauge_running = max(
                self.most_gauge_running, _gauge(self.metrics, "gxo_tasks_running")
            )
            self.most_gauge_queued = max(
                self.most_gauge_queued, _gauge(self.metrics, "gxo_tasks_queued")
            )


def test_more_tasks_than_workers_each_task_counts_its_own_run_time(tmp_path: Path) -> None:
    path = tmp_path / "clock.yaml"
    path.write_text(BOOK)
    watcher = _Watcher()
    result = gxo.run(path, workers=WORKERS, events=[watcher], state_dir=tmp_path / ".gxo")
    assert result.ok
    # Every task was queued at the start; no more than WORKERS were ever Running at once,
    # and the gauges said the same (the issue saw gxo_tasks_running read 21 with 2 running).
    assert sorted(watcher.queued) == sorted(f"t{k}" for k in range(TASKS))
    assert watcher.most_running <= WORKERS
    assert watcher.most_gauge_running <= WORKERS
    assert watcher.most_gauge_queued >= TASKS - WORKERS

    report = result.report
    waited = 0
    for name, task in report.task_results.items():
        (inst,) = task.instances
        (attempt,) = inst.attempts
        # The task's clock starts with its first attempt: its duration is that attempt's
        # (not the time it sat in the queue), and its start is the attempt's start.
        assert task.start_time == inst.start_time == attempt.start_time, name
        assert task.ready_time is not None
        assert task.start_time is not None
        assert task.ready_time <= task.start_time, name
        assert abs(task.duration - attempt.duration) < 0.05, (name, task.duration)
        assert task.duration < 0.3 + 1.0, (name, task.duration)
        queued = (task.start_time - task.ready_time).total_seconds()
        assert abs(task.queued_duration - queued) < 0.01, name
        waited += task.queued_duration >= 0.25
    assert waited >= TASKS - WORKERS - 1  # the later tasks waited for a worker

    # The HTML report's Tasks table shows the same run and queued times.
    from gxo.observability.html_report import render_html

    page = render_html(report)
    for name, task in report.task_results.items():
        row = re.search(rf'<tr id="task-{name}">(.*?)</tr>', page)
        assert row is not None, name
        cells = re.findall(r'<td class="num">([^<]*)</td>', row.group(1))
        assert cells[0] == f"{task.duration:.3f}s", (name, cells)
        assert cells[1] == f"{task.queued_duration:.3f}s", (name, cells)
