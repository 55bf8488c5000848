"""Executors that run task instances somewhere other than the local process pool.

``gxo.executors.dask`` runs them on a Dask cluster (``--executor dask``); it is imported
only when asked for, so ``distributed`` is never loaded otherwise.
"""
