"""What a loop registers: every item's own result, in item order (issue 12, point 10)."""

from __future__ import annotations

from gxo.scheduler.records import Attempt, InstanceRecord, Status
from gxo.scheduler.state import _item_result


def _loop_register(instances: list[InstanceRecord]) -> list[object]:
    return [_item_result(i) for i in instances]


def item(
    index: int, status: Status, summary: object, *, ran: bool = True, **kw: str
) -> InstanceRecord:
    inst = InstanceRecord(id=index, task="t", loop_index=index, namespace={})
    inst.status, inst.summary = status, summary
    inst.reason, inst.error = kw.get("reason", ""), kw.get("error", "")
    if ran:
        inst.attempts.append(Attempt(number=1, started_at=0.0, ended_at=1.0))
    return inst


def test_each_item_has_its_own_outcome_and_items_that_never_ran_are_null() -> None:
    got = _loop_register(
        [
            item(0, Status.COMPLETED, {"stdout": "a"}),
            item(1, Status.FAILED, {"stdout": "b", "exit_code": 2}, reason="nonzero_exit(2)",
                 error="command exited with status 2"),
            item(2, Status.FAILED, None, reason="worker_signaled(SIGKILL)", error="killed"),
            item(3, Status.CANCELLED, None, ran=False, reason="timed_out"),
            item(4, Status.COMPLETED, 42),
        ]
    )  # fmt: skip
    assert got == [
        {"stdout": "a", "failed": False, "reason": "", "error": None},
        {
            "stdout": "b",
            "exit_code": 2,
            "failed": True,
            "reason": "nonzero_exit(2)",
            "error": "command exited with status 2",
        },
        {"failed": True, "reason": "worker_signaled(SIGKILL)", "error": "killed"},
        None,
        42,  # a summary that is not a mapping is kept as the module returned it
    ]
