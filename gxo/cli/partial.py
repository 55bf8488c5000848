"""``gxo list``, ``gxo journal``, ``gxo clean`` and ``gxo completion``: partial runs' helpers.

Thin: each loads what it needs through the same functions ``gxo execute`` uses (the loader,
:func:`gxo.dag.select.select_tasks`, :mod:`gxo.journal`), so what ``gxo journal`` predicts is
what ``gxo execute --resume`` does.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gxo.errors import UsageError

if TYPE_CHECKING:
    from gxo.journal import Prediction

__all__ = ["PARTIAL_COMMANDS", "run_partial_command", "print_prediction"]

#: The subcommands this module runs.
PARTIAL_COMMANDS = frozenset({"list", "journal", "clean", "completion"})


def run_partial_command(args: argparse.Namespace) -> int:
    """Run one of :data:`PARTIAL_COMMANDS`; return the exit code."""
    if args.command == "completion":
        return _completion(args.shell)
    if args.command == "clean":
        return _clean(args)
    if args.command == "list":
        return _list(args)
    return _journal(args)


def _completion(shell: str) -> int:
    import shtab

    from gxo.cli.parser import build_parser

    sys.stdout.write(shtab.complete(build_parser(), shell=shell))
    return 0


def _list(args: argparse.Namespace) -> int:
    import gxo
    from gxo.cli.commands import parse_modules

    playbook = gxo.load(Path(args.playbook), modules=parse_modules(args.modules)).playbook
    lines = [
        f"{task.name}\t{','.join(task.tags)}" if args.tags else task.name for task in playbook.tasks
    ]
    sys.stdout.write("".join(line + "\n" for line in lines))
    return 0


def _clean(args: argparse.Namespace) -> int:
    from gxo.journal import default_state_dir

    runs = default_state_dir(args.state_dir) / "runs"
    try:
        found = [entry for entry in os.scandir(runs) if entry.is_dir(follow_symlinks=False)]
    except FileNotFoundError:
        print(f"{runs}: no runs to clean")
        return 0
    except OSError as exc:  # --state-dir names a file, or one this user may not read
        raise UsageError(f"cannot read the run directory {runs}: {exc.strerror or exc}") from None
    found.sort(key=lambda entry: entry.stat(follow_symlinks=False).st_mtime, reverse=True)
    removed = found[args.keep :]
    import shutil  # only `gxo clean` removes directories

    for entry in removed:
        shutil.rmtree(entry.path)
    print(f"{runs}: removed {len(removed)} run(s), kept {len(found) - len(removed)}")
    return 0


def _journal(args: argparse.Namespace) -> int:
    from gxo.cli.commands import parse_variables

    predictions, where, count = prediction_for(args, parse_variables(args.variables))
    print(f"journal: {where} ({count} completed instance record(s))")
    print_prediction(predictions, per_instance=False)
    return 0


def prediction_for(
    args: argparse.Namespace, variables: dict[str, Any]
) -> tuple[list[Prediction], Path, int]:
    """What ``--resume`` would do with each task (``gxo journal``, ``--dry-run --resume``)."""
    import gxo
    from gxo.cli.commands import parse_modules
    from gxo.dag.select import check_forced, select_tasks
    from gxo.journal import (
        Fingerprinter,
        JournalIndex,
        Resumer,
        default_state_dir,
        journal_path,
        predict,
        read_journal,
    )

    loaded = gxo.load(
        Path(args.playbook), variables=variables or None, modules=parse_modules(args.modules)
    )
    playbook, plan = loaded.playbook, loaded.plan
    where = (
        Path(args.journal)
        if args.journal
        else journal_path(args.playbook, default_state_dir(args.state_dir))
    )
    if args.journal and not where.exists():
        raise UsageError(f"--journal {args.journal!r}: no such file")
    index = JournalIndex(read_journal(where).entries)
    fingerprinter = Fingerprinter(
        plan,
        base_dir=os.path.dirname(os.path.abspath(args.playbook)),
        checksum=args.checksum,
    )
    check_forced(args.force, plan.graph)
    resumer = Resumer(index, fingerprinter, force=args.force)
    restorable = {t.name for t in playbook.tasks if resumer.restorable(t) is not None}
    selection = select_tasks(
        playbook,
        plan.graph,
        targets=args.targets,
        tags=args.tags,
        skip=args.skip,
        skip_tags=args.skip_tags,
        restorable=restorable,
    )
    return predict(playbook, plan, resumer, selection), where, len(index)


def print_prediction(predictions: list[Prediction], *, per_instance: bool) -> None:
    """One line per task (or per instance): ``cached``, ``run`` or ``skip``, then why."""
    words = {"resume": "cached", "run": "run", "skip": "skip"}
    width = max((len(p.task) for p in predictions), default=0)
    for prediction in predictions:
        if per_instance and len(prediction.instances) > 1:
            for label, decision in prediction.instances:
                word = "cached" if decision.resume else "run"
                print(f"{word:<7}{label:<{width + 4}}  {decision.why}")
            continue
        print(f"{words[prediction.action]:<7}{prediction.task:<{width + 4}}  {prediction.why}")
