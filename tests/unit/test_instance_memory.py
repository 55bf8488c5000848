"""The parent's per-instance records stay compact (issue 18: 100,000-item loops).

A loop keeps one :class:`~gxo.scheduler.records.InstanceRecord` (and its attempts) per item
for the whole run, so their size bounds the parent's memory. Measured with ``tracemalloc`` on
the state machine alone (no processes): 10,000 loop items queued, dispatched and completed.
The bound, 1,000 bytes per instance, is documented in benchmarks/README.md; it was ~970 bytes
before the records lost their ``__dict__``, ~900 after (each instance keeps the namespace it
was sent with: the run journal builds its record from it, late, in the batch write).
"""

from __future__ import annotations

import gc
import random
import tracemalloc

from gxo.config.load import load_playbook_text
from gxo.dag import analyse
from gxo.scheduler.messages import AttemptFinished, AttemptStarted, Capacity
from gxo.scheduler.records import Status
from gxo.scheduler.state import SchedulerState
from gxo.wire import Done

ITEMS = 10_000
BOUND = 1_000  # bytes per instance, after the run (benchmarks/README.md)

PLAYBOOK = f"""\
schemaVersion: v1.0.0
name: big_loop
vars: {{base: {{a: 1, b: [1, 2, 3]}}}}
tasks:
  - name: each
    type: passthrough
    loop: "{{{{ range({ITEMS}) | list }}}}"
    loop_control: {{parallel: {ITEMS}}}
    params: {{value: "{{{{ item }}}} {{{{ base.a }}}}"}}
    register: all
"""


def _used() -> int:
    gc.collect()
    return tracemalloc.get_traced_memory()[0]


def test_a_loop_instance_costs_under_the_bound() -> None:
    playbook = load_playbook_text(PLAYBOOK)
    state = SchedulerState(playbook, analyse(playbook), rng=random.Random(1))
    tracemalloc.start()
    try:
        before = _used()
        state.start(0.0)
        started = _used() - before
        while batch := state.dispatch(Capacity(idle=1000, pipelined=1000)):
            for dispatch in batch:
                state.handle(AttemptStarted(dispatch.instance_id, 100), 1.0)
                state.handle(AttemptFinished(Done(dispatch.instance_id, ok=True)), 1.0)
        done = _used() - before
    finally:
        tracemalloc.stop()
    assert state.tasks["each"].status is Status.COMPLETED
    assert len(state.instances) == ITEMS
    assert state.store["all"] == [None] * ITEMS  # every item's result is still registered
    assert started / ITEMS < BOUND, f"{started / ITEMS:.0f} bytes per queued instance"
    assert done / ITEMS < BOUND, f"{done / ITEMS:.0f} bytes per completed instance"
