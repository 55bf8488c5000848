"""What ``--executor dask`` needs to know, importable without Dask installed.

The CLI and the library build a :class:`DaskSettings` from flags or arguments before anything
heavy is imported; :func:`require_dask` turns a missing ``gxo[dask]`` extra into a usage error
that names the install command, instead of an import traceback.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass

from gxo.errors import UsageError

__all__ = ["DaskSettings", "require_dask"]


@dataclass(frozen=True)
class DaskSettings:
    """How to reach a cluster (the ``--dask-*`` flags, as data)."""

    #: ``tcp://host:8786`` of a running scheduler (or ``DASK_SCHEDULER_ADDRESS``).
    scheduler: str = ""
    #: ``local`` (a LocalCluster gxo starts) or a dask-jobqueue kind: slurm, pbs, lsf, sge.
    cluster: str = ""
    #: Dask workers of a local cluster.
    workers: int = 2
    #: gxo worker processes per Dask worker (its threads) of a local cluster.
    slots: int = 1
    #: Jobs to submit for a jobqueue cluster.
    jobs: int = 1


def require_dask(jobqueue: bool = False) -> None:
    """Raise :class:`UsageError` naming the extra to install when Dask is not importable."""
    for module, extra in (("dask", "dask"), ("distributed", "dask")):
        if _missing(module):
            raise UsageError(
                f"--executor dask needs Dask: pip install 'gxo[{extra}]' "
                "(and 'gxo[jobqueue]' for SLURM, PBS, LSF or SGE clusters)"
            )
    if jobqueue and _missing("dask_jobqueue"):
        raise UsageError("this cluster kind needs dask-jobqueue: pip install 'gxo[jobqueue]'")


def _missing(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is None
    except (ImportError, ValueError):  # a module set to None in sys.modules, a broken package
        return True
