"""Executors other than the local process pool, each implementing :class:`gxo.pool.Executor`.

- :mod:`gxo.executors.inline`: runs every instance in the calling process, on a manual
  clock, so the scheduler's loop and state machine are tested without processes or sleeps
  (tests only: nothing is crash-isolated).

- :mod:`gxo.executors.dask` (with :mod:`gxo.executors.dask_node`, its node side): runs them on
  a Dask cluster (``--executor dask``). It is imported only when asked for, so ``distributed``
  is never loaded otherwise; :mod:`gxo.executors.settings` is what the CLI and the library
  build before that.

Level 4.
"""
