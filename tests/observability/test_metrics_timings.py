"""gxo_tasks_running counts tasks with an instance running in a worker; gxo_tasks_queued
counts tasks that are ready but wait (issue 12, point 4)."""

from __future__ import annotations

from prometheus_client import generate_latest

from gxo.events import InstanceFinished, InstanceStarted, RetryScheduled, RunStarted, TaskQueued
from gxo.events import TaskStatusChanged as Status
from gxo.observability.metrics import RunMetrics


def gauges(metrics: RunMetrics) -> tuple[float, float]:
    text = generate_latest(metrics.registry).decode()
    values = {}
    for line in text.splitlines():
        for name in ("gxo_tasks_running", "gxo_tasks_queued"):
            if line.startswith(name + "{"):
                values[name] = float(line.rsplit(" ", 1)[1])
    return values["gxo_tasks_running"], values["gxo_tasks_queued"]


def base() -> dict:
    return {"run_id": "r", "time": 0.0}


def started(task: str, n: int = 0) -> InstanceStarted:
    return InstanceStarted(**base(), task=task, instance_id=n, label=task, attempt=1)


def finished(task: str, n: int = 0) -> InstanceFinished:
    return InstanceFinished(
        **base(), task=task, instance_id=n, label=task, attempt=1, status="Completed"
    )


def test_ready_tasks_are_queued_until_a_worker_runs_one_of_their_instances() -> None:
    metrics = RunMetrics()
    metrics(RunStarted(**base(), playbook="p", tasks=21, workers=2))
    for k in range(21):
        metrics(TaskQueued(**base(), task=f"t{k}", instances=1))
    assert gauges(metrics) == (0, 21)
    for k in range(2):  # as the scheduler sends them: Running, then the instance started
        metrics(Status(**base(), task=f"t{k}", status="Running"))
        metrics(started(f"t{k}"))
    assert gauges(metrics) == (2, 19)  # 21 ready, 2 instances running: not 21 "running"
    metrics(finished("t0"))
    metrics(Status(**base(), task="t0", status="Completed"))
    assert gauges(metrics) == (1, 19)
    # a failed attempt waiting for its retry is queued again
    metrics(RetryScheduled(**base(), task="t1", instance_id=1, label="t1", attempt=1,
                           reason="nonzero_exit(1)", delay=1.0))  # fmt: skip
    assert gauges(metrics) == (0, 20)


def test_a_loop_task_is_running_while_any_item_runs() -> None:
    metrics = RunMetrics()
    metrics(RunStarted(**base(), playbook="p", tasks=1, workers=2))
    metrics(TaskQueued(**base(), task="fan", instances=2))
    metrics(Status(**base(), task="fan", status="Running"))
    metrics(started("fan", 0))
    metrics(started("fan", 1))
    assert gauges(metrics) == (1, 0)
    metrics(finished("fan", 0))
    assert gauges(metrics) == (1, 0)
    metrics(finished("fan", 1))
    assert gauges(metrics) == (0, 1)
    metrics(Status(**base(), task="fan", status="Completed"))
    assert gauges(metrics) == (0, 0)
