"""The run journal: what completed, with what fingerprint, so ``--resume`` can skip it.

- :mod:`gxo.journal.store`: the file (path, lock, crash-safe appends, reading);
- :mod:`gxo.journal.fingerprint`: what must be unchanged for an instance to be reused;
- :mod:`gxo.journal.resume`: the decision per instance and the prediction ``gxo journal`` shows.

Level 3 (beside ``config`` and ``scheduler.state``): it reads the model, the plan's compiled
templates and the module registry's versions; it never imports module code.

:mod:`gxo.journal.resume` is imported on first use of one of its names (``--resume``,
``--deadline``, ``gxo journal``, partial runs): a plain run only writes the journal, and its
start-up is the critical path of a short run (benchmarks/README.md, "Start-up, fourth pass").
"""

from typing import TYPE_CHECKING, Any

from gxo.journal.fingerprint import Fingerprint, Fingerprinter, file_signature
from gxo.journal.store import (
    EndEntry,
    InstanceEntry,
    JournalLocked,
    JournalWriter,
    Pending,
    RunEntry,
    TaskEntry,
    default_state_dir,
    has_redacted,
    journal_path,
    read_journal,
)

if TYPE_CHECKING:
    from gxo.journal.resume import Decision, JournalIndex, Prediction, Resumer, predict

_RESUME_NAMES = frozenset({"Decision", "JournalIndex", "Prediction", "Resumer", "predict"})


def __getattr__(name: str) -> Any:
    """The resume names, imported on first use (PEP 562)."""
    if name in _RESUME_NAMES:
        from gxo.journal import resume

        value = getattr(resume, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "Decision",
    "EndEntry",
    "Fingerprint",
    "Fingerprinter",
    "InstanceEntry",
    "JournalIndex",
    "JournalLocked",
    "JournalWriter",
    "Pending",
    "Prediction",
    "Resumer",
    "RunEntry",
    "TaskEntry",
    "default_state_dir",
    "file_signature",
    "has_redacted",
    "journal_path",
    "predict",
    "read_journal",
]
