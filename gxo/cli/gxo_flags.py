"""GXO's command line (Go ``flag`` style) translated into gxo's, before argparse sees it.

Why a module of its own: GXO playbooks come with GXO command lines in scripts and CI files
(``gxo -playbook f.yaml -worker-pool-size 4``). Each GXO flag has a gxo equivalent, so the
argv is rewritten rather than rejected; this module is imported on every start, so it is
plain string work with no import of its own.

=========================  ======================================================
GXO                        gxo
=========================  ======================================================
``-playbook F``            ``F --oversubscribe`` (the positional playbook; GXO runs every
                           task of a stream group at once whatever its pool size, so a
                           group larger than ``--workers`` gets extra processes, as with
                           ``gxo.run``, instead of being refused)
``-dry-run[=true|false]``  ``--dry-run`` (or nothing)
``-worker-pool-size N``    ``--workers N`` (N <= 0: the default, with a warning, as GXO)
``-channel-buffer-size N`` ``--channel-buffer-size N`` (the playbook's default
                           ``channel_policy.buffer_size``)
``-log-level L``           ``--log-level l`` (any case; ``warn`` is ``warning``; an unknown
                           level is ``info``, as GXO)
``-log-format F``          ``--log-format F``
``-version``               ``--version``
=========================  ======================================================

Go's ``flag`` package also accepts ``--name``, ``-name=value`` and ``--name=value``; so does
this translation. gxo's own options are left alone.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

__all__ = ["translate_gxo_argv"]

_VALUE_FLAGS = frozenset(
    {"playbook", "worker-pool-size", "channel-buffer-size", "log-level", "log-format"}
)
_BOOL_FLAGS = frozenset({"dry-run", "version"})
#: Subcommands that run nothing, so take no --oversubscribe.
_RUNS_NOTHING = frozenset({"validate", "plan", "graph", "list", "journal"})
_LEVELS = {"debug": "debug", "info": "info", "warn": "warning", "warning": "warning",
           "error": "error"}  # fmt: skip


def translate_gxo_argv(args: Sequence[str]) -> list[str]:
    """``args`` with every GXO flag replaced by its gxo equivalent (see the table above).

    Raises:
        UsageError: a GXO flag that takes a value is the last argument.
    """
    out: list[str] = []
    position = 0
    while position < len(args):
        arg = args[position]
        position += 1
        name, value = _gxo_flag(arg)
        if name is None:
            out.append(arg)
            if arg == "--":
                out.extend(args[position:])
                break
            continue
        if name in _BOOL_FLAGS:
            if value is None or value.lower() in ("true", "1", "t"):
                out.append(f"--{name}")
            continue
        if value is None:
            if position >= len(args):
                from gxo.errors import UsageError

                raise UsageError(
                    f"gxo: flag needs an argument: {arg}\n(run 'gxo --help' for usage)"
                )
            value = args[position]
            position += 1
        out.extend(_value_flag(name, value))
        if name == "playbook" and not _RUNS_NOTHING & set(out):
            out.append("--oversubscribe")
    return out


def _gxo_flag(arg: str) -> tuple[str | None, str | None]:
    """(GXO flag name, its ``=value`` or None), or (None, None) for anything else."""
    if not arg.startswith("-") or arg in ("-", "--"):
        return None, None
    double = arg.startswith("--")
    name, sep, value = arg[2 if double else 1 :].partition("=")
    if name not in _VALUE_FLAGS and name not in _BOOL_FLAGS:
        return None, None
    if double and name in ("dry-run", "version", "log-level", "log-format") and not sep:
        return None, None  # gxo's own spelling: leave it to argparse
    return name, value if sep else None


def _value_flag(name: str, value: str) -> list[str]:
    if name == "playbook":
        return [value]
    if name == "worker-pool-size":
        try:
            workers = int(value)
        except ValueError:
            return ["--workers", value]  # argparse reports it
        if workers <= 0:
            print(
                f"gxo: warning: -worker-pool-size {value} is not positive; using the default "
                "(the CPUs this process may use)",
                file=sys.stderr,
            )
            return []
        return ["--workers", value]
    if name == "log-level":
        return ["--log-level", _LEVELS.get(value.lower(), "info")]
    return [f"--{name}", value]
