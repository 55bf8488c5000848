"""Playbooks: the immutable model the engine runs, and (in :mod:`gxo.config.load`) its loader.

This package exports the model only: ``Playbook``, ``Task``, ``RetryPolicy``,
``LoopControl``, ``TaskPolicy``, ``ChannelPolicy``, ``StatePolicy``, and the durations
(``parse_duration``: Go durations such as ``1h30m``, or seconds; ``format_duration``).
Importing it is cheap and imports nothing above level 1 (DESIGN §10), so the DAG and the
scheduler can read the model without loading the loader.

The loader (level 3) is :mod:`gxo.config.load`:

- ``load_plan(path, *, overrides=None, known_types=None) -> (Playbook, Plan)``, and
  ``load_plan_text`` / ``load_plan_data`` for YAML text and Python data: the playbook and
  the plan (DAG and compiled templates) its validation built;
- ``load_playbook``, ``load_playbook_text``, ``load_playbook_data``: the playbook alone.

Every load raises :class:`gxo.errors.PlaybookError` with every problem found, each with a
file, line, column and ``$.path``. The stages are described in :mod:`gxo.config.load`.
"""

from gxo.config.duration import format_duration, parse_duration
from gxo.config.model import (
    ChannelPolicy,
    LoopControl,
    Playbook,
    RetryPolicy,
    StatePolicy,
    Task,
    TaskPolicy,
)

__all__ = [
    "ChannelPolicy",
    "LoopControl",
    "Playbook",
    "RetryPolicy",
    "StatePolicy",
    "Task",
    "TaskPolicy",
    "format_duration",
    "parse_duration",
]
