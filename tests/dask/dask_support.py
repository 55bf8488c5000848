"""A real Dask cluster of processes for the Dask executor's tests (no mocks).

The helpers of the integration tests (process markers, the functions directory) are shared
rather than copied: their directory is put on the import path here.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "integration"))
#: A secret only the Dask workers' environment holds: the gxo parent never has it.
CANARY = "NOLEAK-dask-7f3a9c21e5"


@dataclass
class Cluster:
    address: str
    workers: dict[str, int]
    process: subprocess.Popen[str]
    #: The worker that declares the resource ``gpu=1`` ("" if none does).
    gpu: str = ""


def start_cluster(
    workers: int = 2, slots: int = 2, *, gpu: bool = False, daemonic: bool = False
) -> Cluster:
    env = {**os.environ, "GXO_DASK_CANARY": CANARY, "PYTHONPATH": str(HERE.parent.parent)}
    process = subprocess.Popen(
        [sys.executable, str(HERE / "cluster.py"), str(workers), str(slots)]
        + (["gpu"] if gpu else [])
        + (["daemonic"] if daemonic else []),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line:
        process.wait()
        raise RuntimeError(f"the test cluster did not start (exit {process.returncode})")
    info = json.loads(line)
    return Cluster(info["address"], info["workers"], process, info.get("gpu", ""))


def stop_cluster(cluster: Cluster) -> None:
    assert cluster.process.stdin is not None
    assert cluster.process.stdout is not None
    with contextlib.suppress(BrokenPipeError):  # the cluster was killed by the test
        cluster.process.stdin.close()
    cluster.process.wait(timeout=60)
    cluster.process.stdout.close()
