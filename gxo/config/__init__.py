"""Playbooks: load and validate GXO v1 YAML into the immutable model the engine runs.

Public API:

- ``load_playbook(path, *, overrides=None, known_types=None, strict=False, limits=...)``
- ``load_playbook_text(text, *, source="<string>", ...)`` and
  ``load_playbook_data(data, *, source="<data>", ...)``, with the same keywords
- ``InputLimits``: the size of one value and the number of tasks a playbook may hold;
  ``MAX_DURATION``: the longest duration (timeout, delay) a playbook may give
- ``parse_duration(value) -> float`` (Go durations such as ``1h30m``, or seconds),
  ``format_duration(seconds) -> str``
- the model: ``Playbook``, ``Task``, ``RetryPolicy``, ``LoopControl``, ``TaskPolicy``,
  ``ChannelPolicy``, ``StatePolicy``

Every load raises :class:`gxo.errors.PlaybookError` with every problem found, each with a
file, line, column and ``$.path``. The stages are described in :mod:`gxo.config.load`.
Layering: ``gxo.errors`` ← ``gxo.template`` ← ``gxo.config.model`` ← ``gxo.dag`` ←
``gxo.config.load``.
"""

from gxo.config.duration import MAX_DURATION, format_duration, parse_duration
from gxo.config.limits import InputLimits
from gxo.config.load import load_playbook, load_playbook_data, load_playbook_text
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
    "MAX_DURATION",
    "ChannelPolicy",
    "InputLimits",
    "LoopControl",
    "Playbook",
    "RetryPolicy",
    "StatePolicy",
    "Task",
    "TaskPolicy",
    "format_duration",
    "load_playbook",
    "load_playbook_data",
    "load_playbook_text",
    "parse_duration",
]
