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

    parser = build_parser()
    _complete_paths(parser, shtab.FILE, shtab.DIRECTORY)
    script = shtab.complete(parser, shell=shell)
    if shell == "bash":
        script += _BASH_SHORTCUT.replace("@COMMANDS@", " ".join(_commands(parser)))
    sys.stdout.write(script)
    return 0


def _commands(parser: argparse.ArgumentParser) -> list[str]:
    return [
        name
        for action in parser._actions
        if isinstance(action, argparse._SubParsersAction)
        for name in action.choices
    ]


#: ``gxo PLAYBOOK ...`` is ``gxo execute PLAYBOOK ...``: completed as such (shtab's function
#: knows only ``gxo COMMAND``, and offered the command names again after the playbook); and
#: the first word may be a playbook, so YAML files are offered with the commands.
_BASH_SHORTCUT = """
# gxo PLAYBOOK ... is gxo execute PLAYBOOK ...
_gxo_complete() {
  local i word
  for ((i = 1; i < COMP_CWORD; i++)); do
    word=${COMP_WORDS[i]}
    case " @COMMANDS@ " in *" $word "*) break;; esac
    case "$word" in
      -*) ;;
      *.yaml|*.yml)
        COMP_WORDS=("${COMP_WORDS[0]}" execute "${COMP_WORDS[@]:1}")
        COMP_CWORD=$((COMP_CWORD + 1))
        break;;
    esac
  done
  _shtab_gxo
  if ((i == COMP_CWORD)) && [[ ${COMP_WORDS[COMP_CWORD]} != -* ]]; then
    compopt -o filenames 2>/dev/null || :
    while IFS= read -r word; do COMPREPLY+=("$word"); done < <(
      compgen -f -X '!*.yaml' -- "${COMP_WORDS[COMP_CWORD]}"
      compgen -f -X '!*.yml' -- "${COMP_WORDS[COMP_CWORD]}"
      compgen -d -- "${COMP_WORDS[COMP_CWORD]}")
  fi
  return 0
}
complete -o bashdefault -F _gxo_complete gxo
"""


def _complete_paths(parser: argparse.ArgumentParser, file: object, directory: object) -> None:
    """Options taking a FILE or a DIR (``--report``, ``--state-dir``) complete paths: without
    it bash completes nothing after them (its script falls back to ``-o bashdefault``)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for command in action.choices.values():
                _complete_paths(command, file, directory)
        elif action.metavar in ("FILE", "DIR") and not hasattr(action, "complete"):
            action.complete = file if action.metavar == "FILE" else directory  # type: ignore[attr-defined]


def _list(args: argparse.Namespace) -> int:
    import gxo
    from gxo.cli.commands import limits_of, parse_modules, parse_variables

    playbook = gxo.load(
        Path(args.playbook),
        variables=parse_variables(args.variables) or None,
        strict=args.strict,
        limits=limits_of(args),
        modules=parse_modules(args.modules),
    ).playbook
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
    import shutil  # only `gxo clean` removes directories

    from gxo.outputs import run_dir_in_use

    removed = failed = 0
    for entry in found[args.keep :]:
        if run_dir_in_use(entry.path):  # its run holds the lock: its logs are being written
            print(f"{entry.path}: kept, its run is still going")
            continue
        try:
            shutil.rmtree(entry.path)
        except OSError as exc:  # a read-only filesystem, another user's files: say, go on
            print(f"gxo clean: cannot remove {entry.path}: {exc.strerror or exc}", file=sys.stderr)
            failed += 1
            continue
        removed += 1
    print(
        f"{runs}: removed {removed} run(s), kept {len(found) - removed}"
        + (f" ({failed} could not be removed)" if failed else "")
    )
    return 1 if failed else 0


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
