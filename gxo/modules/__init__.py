"""The module SDK: everything a gxo module, built-in or third-party, imports.

A module subclasses :class:`Module`, declares its parameters as a msgspec ``Params`` Struct
(``forbid_unknown_fields=True``) and implements ``run(params, ctx)``; it registers under the
``gxo.modules`` entry-point group. The engine converts a task's rendered params with
:func:`convert_params` before calling ``run``. Importing this package is cheap: no built-in
module is imported until a playbook uses it (see :mod:`gxo.modules.registry`).
"""

from __future__ import annotations

from gxo.modules._params import convert_params as convert_params
from gxo.modules._params import exclusive as exclusive
from gxo.modules.base import Module as Module
from gxo.modules.base import ModuleContext as ModuleContext
from gxo.modules.base import ModuleError as ModuleError
from gxo.modules.base import NoParams as NoParams
from gxo.modules.base import ParamsError as ParamsError
from gxo.modules.registry import ModuleRegistry as ModuleRegistry

__all__ = [
    "Module",
    "ModuleContext",
    "ModuleError",
    "ModuleRegistry",
    "NoParams",
    "ParamsError",
    "convert_params",
    "exclusive",
]
