"""gxo: run YAML playbooks as a DAG of crash-isolated worker processes.

The public names below are the library API: :mod:`gxo.api` is the only way in (the ``gxo``
command uses it like any other caller); the module SDK lives in :mod:`gxo.modules`, its
conformance check in :mod:`gxo.modules.testing`. Names are imported on first use, so
``import gxo`` (and the ``gxo`` command's start-up) stays cheap.

The layers (DESIGN §10; ``tests/unit/test_layers.py`` enforces them: a module imports only
its own level and below, lazy and ``TYPE_CHECKING`` imports included)::

    6  gxo.api (the door), gxo.cli (a caller of gxo.run)
    5  gxo.engine                   private wiring of one run
    4  gxo.scheduler.{loop,notify,report,journaling}, gxo.observability, gxo.executors
    3  gxo.config.load (the loader), gxo.scheduler.{messages,policy,records,state,partial},
       gxo.pool, gxo.journal
    2  gxo.dag, gxo.modules
    1  gxo.template, gxo.config (the model), gxo.secrets, gxo.streams
    0  gxo.errors, gxo.reasons, gxo.wire, gxo.events, gxo.report, gxo.otel
"""

from __future__ import annotations

import importlib

from gxo._version import __version__

#: ``typing.TYPE_CHECKING`` without importing typing (with re, enum, contextlib: ~15 ms of
#: ``gxo --version``); mypy treats any constant of this name as true.
TYPE_CHECKING = False

if TYPE_CHECKING:
    from typing import Any

    from gxo.api import MemoryStateStore as MemoryStateStore
    from gxo.api import PartialRun as PartialRun
    from gxo.api import RunHandle as RunHandle
    from gxo.api import RunResult as RunResult
    from gxo.api import SecretsConfig as SecretsConfig
    from gxo.api import StateStore as StateStore
    from gxo.api import load as load
    from gxo.api import run as run
    from gxo.api import start as start
    from gxo.api import validate as validate
    from gxo.config import Playbook as Playbook
    from gxo.errors import GxoError as GxoError
    from gxo.errors import InternalError as InternalError
    from gxo.errors import PlaybookError as PlaybookError
    from gxo.errors import UsageError as UsageError
    from gxo.events import Event as Event
    from gxo.events import EventBus as EventBus
    from gxo.executors.settings import DaskSettings as DaskSettings
    from gxo.modules.registry import ModuleRegistry as ModuleRegistry
    from gxo.report import ExecutionReport as ExecutionReport
    from gxo.report import TaskResult as TaskResult
    from gxo.secrets.providers import SecretProvider as SecretProvider

__all__ = [
    "DaskSettings",
    "Event",
    "EventBus",
    "ExecutionReport",
    "GxoError",
    "InternalError",
    "MemoryStateStore",
    "ModuleRegistry",
    "PartialRun",
    "Playbook",
    "PlaybookError",
    "RunHandle",
    "RunResult",
    "SecretProvider",
    "SecretsConfig",
    "StateStore",
    "TaskResult",
    "UsageError",
    "__version__",
    "load",
    "run",
    "start",
    "validate",
]

#: Public name -> the module that defines it (imported lazily by ``__getattr__``).
_LAZY = {
    "DaskSettings": "gxo.executors.settings",
    "Event": "gxo.events",
    "EventBus": "gxo.events",
    "ExecutionReport": "gxo.report",
    "GxoError": "gxo.errors",
    "InternalError": "gxo.errors",
    "MemoryStateStore": "gxo.api",
    "ModuleRegistry": "gxo.modules.registry",
    "RunHandle": "gxo.api",
    "SecretProvider": "gxo.secrets.providers",
    "PartialRun": "gxo.api",
    "Playbook": "gxo.config",
    "PlaybookError": "gxo.errors",
    "RunResult": "gxo.api",
    "SecretsConfig": "gxo.api",
    "StateStore": "gxo.api",
    "TaskResult": "gxo.report",
    "UsageError": "gxo.errors",
    "load": "gxo.api",
    "run": "gxo.api",
    "start": "gxo.api",
    "validate": "gxo.api",
}


#: The subpackages docs/api.md names as ``gxo.<name>.…`` after a bare ``import gxo``
#: (``limits=gxo.config.InputLimits(...)``, ``gxo.events.InstanceStarted``): imported on first
#: use like the names above; before, only once something else had imported them.
_SUBMODULES = frozenset({"config", "events", "modules", "report", "secrets", "template"})


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f"gxo.{name}")  # the import binds it here too
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'gxo' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return list(__all__)
