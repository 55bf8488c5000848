"""A Dask LocalCluster of processes in its own process, for the tests to connect to by address.

Prints one JSON line (the scheduler address and every Dask worker's pid) once the cluster and
each worker's gxo forkserver are up, then serves until its stdin closes. Started by the tests
with the environment the Dask workers must have (secrets, the daemon setting).
"""

from __future__ import annotations

import json
import os
import sys

import dask
from distributed import Client, LocalCluster

from gxo.executors.dask import CLUSTER_CONFIG
from gxo.pool.process_pool import prestart


def _start_forkserver() -> int:
    prestart()  # so the forkserver exists before the tests look at this process tree
    return os.getpid()


def main() -> None:
    workers = int(sys.argv[1]) if len(sys.argv) > 1 else 2
    slots = int(sys.argv[2]) if len(sys.argv) > 2 else 2
    with (
        dask.config.set(CLUSTER_CONFIG),
        LocalCluster(
            n_workers=workers, threads_per_worker=slots, processes=True, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        pids = client.run(_start_forkserver)
        print(json.dumps({"address": cluster.scheduler_address, "workers": pids}), flush=True)
        sys.stdin.read()  # serve until the test closes our stdin


if __name__ == "__main__":
    main()
