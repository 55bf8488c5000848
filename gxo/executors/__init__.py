"""Executors other than the local process pool, each implementing :class:`gxo.pool.Executor`.

- :mod:`gxo.executors.inline`: runs every instance in the calling process, on a manual
  clock, so the scheduler's loop and state machine are tested without processes or sleeps
  (tests only: nothing is crash-isolated).

A second real backend (a Dask cluster) belongs here too: it implements the same protocol and
touches neither the scheduler nor the pool.

Level 4.
"""
