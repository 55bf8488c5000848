"""The run journal: what completed, with what fingerprint, so ``--resume`` can skip it.

- :mod:`gxo.journal.store`: the file (path, lock, crash-safe appends, reading);
- :mod:`gxo.journal.fingerprint`: what must be unchanged for an instance to be reused;
- :mod:`gxo.journal.resume`: the decision per instance and the prediction ``gxo journal`` shows.

Level 3 (beside ``config`` and ``scheduler.state``): it reads the model, the plan's compiled
templates and the module registry's versions; it never imports module code.
"""

from gxo.journal.fingerprint import Fingerprint, Fingerprinter, file_signature
from gxo.journal.resume import Decision, JournalIndex, Prediction, Resumer, has_redacted, predict
from gxo.journal.store import (
    EndEntry,
    InstanceEntry,
    JournalLocked,
    JournalWriter,
    Pending,
    RunEntry,
    TaskEntry,
    default_state_dir,
    journal_path,
    read_journal,
)

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
