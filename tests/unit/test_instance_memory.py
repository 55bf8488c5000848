"""The parent's per-instance memory stays bounded (issue 18: 100,000-item loops).

Measured with ``tracemalloc`` on the state machine alone (no processes): 10,000 loop items
queued, dispatched and completed.

- A run (``SchedulerState(ended=spooler, release_finished=True)``, what ``gxo.engine``
  does) writes each ended iteration to the spool and forgets it: what stays per item is its
  16-byte place in the spool's index, its entry in the register the playbook asked for, and
  the loop's own item list: under :data:`RELEASED_BOUND` (100) bytes per item, ~27 without
  a register and ~36 with one; with ``parallel`` as large as the loop, ~66 (the instance
  table's dict keeps its largest size). The peak while the loop renders is ~90 (the rendered
  list and its copy: the playbook's data). The bound is documented in benchmarks/README.md.
- A state that keeps its records (the default, for tests and the library's state API)
  keeps one :class:`~gxo.scheduler.records.InstanceRecord` and its attempts per item: ~900
  bytes, under :data:`BOUND` (1,000).
"""

from __future__ import annotations

import gc
import random
import tracemalloc

import pytest

from gxo.config.load import load_playbook_text
from gxo.dag import analyse
from gxo.journal.spool import InstanceSpool
from gxo.scheduler.messages import AttemptFinished, AttemptStarted, Capacity
from gxo.scheduler.records import Status
from gxo.scheduler.report import Spooler
from gxo.scheduler.state import SchedulerState
from gxo.wire import Done

ITEMS = 10_000
BOUND = 1_000  # bytes per instance, after the run, records kept (benchmarks/README.md)
RELEASED_BOUND = 100  # bytes per instance, after the run, ended iterations spooled

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


def _released_run(items: int, parallel: int) -> tuple[SchedulerState, int, int]:
    """Run a loop of ``items`` through a releasing state; (state, peak, after) bytes."""
    playbook = load_playbook_text(
        PLAYBOOK.replace(str(ITEMS), str(items)).replace(
            f"parallel: {items}", f"parallel: {parallel}"
        )
    )
    spooler = Spooler(InstanceSpool(""))
    state = SchedulerState(
        playbook, analyse(playbook), rng=random.Random(1), ended=spooler, release_finished=True
    )
    tracemalloc.start()
    try:
        before = _used()
        state.start(0.0)
        while batch := state.dispatch(Capacity(idle=1000, pipelined=1000)):
            for dispatch in batch:
                state.handle(AttemptStarted(dispatch.instance_id, 100), 1.0)
                state.handle(AttemptFinished(Done(dispatch.instance_id, ok=True)), 1.0)
        peak = tracemalloc.get_traced_memory()[1] - before
        done = _used() - before
    finally:
        tracemalloc.stop()
        spooler.spool.close()
    assert spooler.count == items  # every iteration is in the spool
    return state, peak, done


@pytest.mark.parametrize("parallel", [1, ITEMS])
def test_a_run_forgets_ended_iterations(parallel: int) -> None:
    state, _, done = _released_run(ITEMS, parallel)
    record = state.tasks["each"]
    assert record.status is Status.COMPLETED
    assert not state.instances  # none left in the state
    assert not [i for i in record.instances if i.loop_index is not None]
    assert record.counts == {Status.COMPLETED: ITEMS}
    assert state.store["all"] == [None] * ITEMS  # the register the playbook asked for stays
    assert done / ITEMS < RELEASED_BOUND, f"{done / ITEMS:.0f} bytes per ended iteration"


def test_the_state_of_a_run_does_not_grow_with_the_loop_beyond_its_data() -> None:
    # parallel 1 (the default): the state holds one live instance at a time, so twice the
    # items cost only twice the per-item data above (register, spool index, the item list).
    _, peak_small, small = _released_run(ITEMS, 1)
    _, peak_large, large = _released_run(2 * ITEMS, 1)
    assert (large - small) / ITEMS < RELEASED_BOUND
    assert (peak_large - peak_small) / ITEMS < RELEASED_BOUND
