"""What every worker is told about secrets when it starts: which provider, which names.

The provider travels as its class's import path and its ``options()`` (plain configuration,
in the clear; never a value) and is built again in each worker. The names are every literal
``secret('NAME')`` of the playbook's params: each worker resolves them into its redactor, so
a value resolved by one task is masked in any other task's worker. The parent never reads a
value.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any

import msgspec

from gxo._util.importable import import_target, qualified_name
from gxo.errors import UsageError
from gxo.outputs import DEFAULT_OUTPUT_CAPTURE, DEFAULT_RESULT_LIMIT
from gxo.secrets.providers import EnvProvider, FileProvider, SecretProvider
from gxo.secrets.redact import DEFAULT_KEYWORDS
from gxo.template import CompiledValue
from gxo.template.compiled import secret_names
from gxo.wire import WorkerConfig

__all__ = ["build_provider", "provider_spec", "redaction_keywords", "worker_config"]


def provider_spec(provider: object) -> tuple[str, dict[str, Any]]:
    """``(import path, options)`` of ``provider``, checked to travel to a worker.

    Raises:
        UsageError: it has no ``get``/``options``, its class is not importable by name, or its
            options are not plain data.
    """
    what = f"secrets provider {type(provider).__name__}"
    if not callable(getattr(provider, "get", None)) or not callable(
        getattr(provider, "options", None)
    ):
        raise UsageError(
            f"{what} does not implement gxo.secrets.SecretProvider: it needs get(name) and "
            "options() (the keyword arguments that build it again in each worker)"
        )
    target = qualified_name(type(provider), what)
    try:
        options = dict(provider.options())  # type: ignore[attr-defined]
        msgspec.msgpack.decode(msgspec.msgpack.encode(options))
    except (TypeError, ValueError, msgspec.MsgspecError) as exc:
        raise UsageError(
            f"{what}: options() must return a mapping of plain data (strings, numbers, "
            f"booleans, None, lists and mappings): {exc}"
        ) from None
    return target, options


def build_provider(target: str, options: Mapping[str, Any]) -> SecretProvider:
    """The provider ``target(**options)``, in a worker. Its exceptions propagate."""
    cls = import_target(target)
    provider: SecretProvider = cls(**options)
    return provider


def redaction_keywords(keywords: bool | Iterable[str] | None) -> tuple[str, ...]:
    """``redact_keywords=``: off (None/False), the default list (True), or it plus the user's."""
    if not keywords:
        return ()
    extra = () if keywords is True else tuple(str(k) for k in keywords)
    return tuple(dict.fromkeys((*DEFAULT_KEYWORDS, *(k.lower() for k in extra if k))))


def worker_config(
    params: Iterable[CompiledValue],
    *,
    directory: str | os.PathLike[str] | None = None,
    prefix: str = "",
    provider: object | None = None,
    log_level: int = 30,
    core_dumps: bool = False,
    modules: Mapping[str, str] | None = None,
    redact_keywords: tuple[str, ...] = (),
    run_dir: str = "",
    output_capture: int = DEFAULT_OUTPUT_CAPTURE,
    result_limit: int = DEFAULT_RESULT_LIMIT,
    record_limit: int = 0,
    log_rate: float = 1000,  # gxo.pool.relay.DEFAULT_LOG_RATE, as WorkerConfig's
    verbose: int = 0,
) -> WorkerConfig:
    """The set-up every worker gets, from the compiled ``params`` of every task and the run's
    output settings (``verbose``: 1 relays what commands print, 2 also logs rendered params).

    One function for the engine and for the worker the ``gxo`` command starts ahead of it
    (``gxo.api``): the pool takes that worker only if both built equal configurations.

    ``provider`` wins over ``directory``/``prefix`` (which build the file or environment
    provider). ``core_dumps`` keeps the core-file limit (default: workers set ``RLIMIT_CORE``
    to 0). Raises :class:`UsageError` for a bad prefix, a secrets directory that does not
    exist, or a provider that cannot travel to the workers.
    """
    if provider is None:
        try:
            if directory is not None:
                found = os.path.abspath(directory)
                if not os.path.isdir(found):
                    raise UsageError(f"secrets directory {str(directory)!r} not found")
                provider = FileProvider(found, prefix)
            else:
                provider = EnvProvider(prefix)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    target, options = provider_spec(provider)
    names = sorted({name for compiled in params for name in secret_names(compiled)})
    return WorkerConfig(
        secrets_provider=target,
        secrets_options=options,
        secret_names=tuple(names),
        log_level=log_level,
        core_dumps=core_dumps,
        modules=dict(modules or {}),
        redact_keywords=redact_keywords,
        run_dir=run_dir,
        output_capture=output_capture,
        result_limit=result_limit,
        record_limit=record_limit,
        log_rate=log_rate,
        live_output=verbose >= 1,
        show_params=verbose >= 2,
    )
