"""A Dask cluster of processes in its own process, for the tests to connect to by address.

Prints one JSON line (the scheduler address, every Dask worker's pid, and the address of the
worker that declares a ``gpu`` resource, if asked for) once the cluster and each worker's gxo
forkserver are up, then serves until its stdin closes. Started by the tests with the
environment the Dask workers must have (secrets, the daemon setting).

``cluster.py WORKERS SLOTS [gpu|daemonic]``: WORKERS nanny-managed worker processes of SLOTS
threads (what a ``LocalCluster`` starts); with ``gpu``, the last one declares the resource
``gpu=1`` (as ``dask worker --resources gpu=1`` does), so placement by resources can be seen;
with ``daemonic``, the workers keep Dask's default ``distributed.worker.daemon: True`` (as a
user's ``dask worker`` does unless told otherwise).
"""

from __future__ import annotations

import json
import os
import sys

import dask
from distributed import Client, Nanny, Scheduler, SpecCluster

from gxo.executors.dask import CLUSTER_CONFIG
from gxo.pool.process_pool import prestart


def _start_forkserver() -> int:
    prestart()  # so the forkserver exists before the tests look at this process tree
    return os.getpid()


def main() -> None:
    workers = int(sys.argv[1]) if len(sys.argv) > 1 else 2
    slots = int(sys.argv[2]) if len(sys.argv) > 2 else 2
    gpu = len(sys.argv) > 3 and sys.argv[3] == "gpu"
    config = {**CLUSTER_CONFIG}
    if len(sys.argv) > 3 and sys.argv[3] == "daemonic":
        config["distributed.worker.daemon"] = True
    specs = {
        f"w{i}": {
            "cls": Nanny,
            "options": {
                "nthreads": slots,
                "host": "127.0.0.1",
                "resources": {"gpu": 1} if gpu and i == workers - 1 else {},
            },
        }
        for i in range(workers)
    }
    scheduler = {"cls": Scheduler, "options": {"host": "127.0.0.1", "dashboard_address": None}}
    with (
        dask.config.set(config),
        SpecCluster(workers=specs, scheduler=scheduler) as cluster,
        Client(cluster) as client,
    ):
        pids = client.run(_start_forkserver)
        info = client.scheduler_info()["workers"]
        gpus = [a for a, w in info.items() if w.get("resources", {}).get("gpu")]
        print(
            json.dumps(
                {
                    "address": cluster.scheduler_address,
                    "workers": pids,
                    "gpu": gpus[0] if gpus else "",
                }
            ),
            flush=True,
        )
        sys.stdin.read()  # serve until the test closes our stdin


if __name__ == "__main__":
    main()
