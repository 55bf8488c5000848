"""What every worker is told about secrets when it starts: where values come from, which names.

The names are every literal ``secret('NAME')`` of the playbook's params: each worker resolves
them into its redactor, so a value resolved by one task is masked in any other task's worker.
The parent never reads a value.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from gxo.errors import UsageError
from gxo.secrets.providers import EnvProvider, FileProvider
from gxo.template import CompiledValue
from gxo.template.compiled import secret_names
from gxo.wire import WorkerConfig

__all__ = ["worker_config"]


def worker_config(
    params: Iterable[CompiledValue],
    *,
    directory: str | os.PathLike[str] | None = None,
    prefix: str = "",
    log_level: int = 30,
) -> WorkerConfig:
    """The set-up every worker gets, from the compiled ``params`` of every task.

    Raises :class:`UsageError` for a bad prefix or a secrets directory that does not exist.
    """
    found = ""
    try:
        if directory is not None:
            found = os.path.abspath(directory)
            if not os.path.isdir(found):
                raise UsageError(f"secrets directory {str(directory)!r} not found")
            FileProvider(found, prefix)
        else:
            EnvProvider(prefix)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    names = sorted({name for compiled in params for name in secret_names(compiled)})
    return WorkerConfig(
        secrets_dir=found,
        secrets_prefix=prefix,
        secret_names=tuple(names),
        log_level=log_level,
    )
