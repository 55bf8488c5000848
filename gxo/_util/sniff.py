"""What a playbook's raw text says before it is parsed: enough to choose what to preload.

Why here (level 0, standard library only): the ``gxo`` command asks before it has imported
anything else, to start the forkserver with the right preload while it goes on loading.
"""

from __future__ import annotations

__all__ = ["may_hold_templates", "may_isolate", "may_use_exec"]


def may_hold_templates(source: str | bytes) -> bool:
    """Whether ``source`` (a playbook's text) may hold a template: ``{{``, ``{%`` or ``{#``
    (what makes a string a template, :func:`gxo.template.compile_value`).

    A false yes only preloads Jinja2 for nothing; a template always contains one of the
    three, so a no is exact.
    """
    if isinstance(source, bytes):
        return b"{{" in source or b"{%" in source or b"{#" in source
    return "{{" in source or "{%" in source or "{#" in source


def may_use_exec(source: bytes) -> bool:
    """Whether ``source`` (a playbook's text) may have an ``exec`` task: it says ``exec``
    (a no is exact; a false yes preloads the module for nothing)."""
    return b"exec" in source


def may_isolate(source: bytes) -> bool:
    """Whether ``source`` (a playbook's text) may have an ``isolation: process`` task or
    ``limits``: it says ``isolation`` or ``limits`` (a no is exact for what the text sets)."""
    return b"isolation" in source or b"limits" in source
