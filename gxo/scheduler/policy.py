"""Pure policy decisions: how long to wait before a retry, and whether to retry at all."""

from __future__ import annotations

from typing import TYPE_CHECKING

from gxo.config.model import RetryPolicy
from gxo.reasons import is_retriable

if TYPE_CHECKING:
    import random

__all__ = [
    "MAX_RETURNS",
    "MAX_WORKER_DEATHS",
    "SHORT_TASK_SECONDS",
    "retry_delay",
    "should_retry",
]

#: A task instance whose module killed its worker this many times is not tried again, even if
#: ``retry.attempts`` allows more: one bad module must not churn the pool for ever.
MAX_WORKER_DEATHS = 3

#: Instances of a task whose mean run time is under this may queue behind another instance
#: on a busy worker, so the worker starts them without waiting for a round trip.
SHORT_TASK_SECONDS = 0.005

#: An instance handed back this many times by workers that died before starting it fails
#: with reason ``worker_lost`` (something outside the instance keeps killing workers).
MAX_RETURNS = 3


def retry_delay(policy: RetryPolicy, attempt: int, rng: random.Random) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1-based).

    ``delay * backoff_factor**(attempt-1)``, then ``± jitter`` of itself, floored at 0, then
    capped at ``max_delay`` when that is set. The cap applies last, so jitter never pushes a
    wait past it.
    """
    wait = policy.delay * policy.backoff_factor ** (attempt - 1)
    if policy.jitter:
        wait += wait * policy.jitter * rng.uniform(-1.0, 1.0)
    wait = max(0.0, wait)
    if policy.max_delay > 0:
        wait = min(wait, policy.max_delay)
    return wait


def should_retry(
    policy: RetryPolicy, attempt: int, reason: str, worker_deaths: int, *, retry: bool = True
) -> bool:
    """Whether a failed attempt ``attempt`` is tried again.

    Not when the task's ``retry`` is used up, when the reason is one another attempt cannot
    fix (:func:`gxo.reasons.is_retriable`), when the module said so (``retry=False``: a
    ``ModuleError(..., retry=False)``), or when the instance keeps killing its workers.
    """
    if not retry or not policy.on_error or attempt >= policy.attempts:
        return False
    if reason.startswith("worker_") and worker_deaths >= MAX_WORKER_DEATHS:
        return False
    return is_retriable(reason)
