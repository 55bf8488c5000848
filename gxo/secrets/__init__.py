"""Secrets: resolve them in the worker, taint every value, redact before anything leaves.

- :mod:`~gxo.secrets.providers`: where values come from (environment, files, a mapping).
- :mod:`~gxo.secrets.redact`: the :class:`Redactor` that masks values and their encodings.
- :mod:`~gxo.secrets.resolver`: :class:`SecretResolver`, the ``secret()``/``env()`` template
  functions, which taint what they resolve.
- :mod:`~gxo.secrets.output`: a worker's stdout, stderr and logging, redacted on their way to
  the parent.
- :mod:`~gxo.secrets.config`: what every worker is told when it starts (where values come
  from, which names the playbook uses).
"""

from __future__ import annotations

from gxo.secrets.providers import EnvProvider as EnvProvider
from gxo.secrets.providers import FileProvider as FileProvider
from gxo.secrets.providers import MappingProvider as MappingProvider
from gxo.secrets.providers import SecretProvider as SecretProvider
from gxo.secrets.redact import REDACTED as REDACTED
from gxo.secrets.redact import Redactor as Redactor
from gxo.secrets.resolver import SecretResolver as SecretResolver

__all__ = [
    "REDACTED",
    "EnvProvider",
    "FileProvider",
    "MappingProvider",
    "Redactor",
    "SecretProvider",
    "SecretResolver",
]
