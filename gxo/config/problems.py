"""Where things are in a playbook: JSON paths, the YAML position map, and the problem list.

A path is a tuple of parts (``("tasks", 3, "retry", "delay")``) and prints in msgspec's style
(``$.tasks[3].retry.delay``; a key that is not an identifier prints as ``["my-key"]``, as
:mod:`gxo.template` writes it).
:class:`SourceMap` remembers, for each path the YAML loader built, the position of the key
node and of the value node, so a problem found at any later stage points at the right line.
:class:`Problems` collects every problem of one load and sorts them by position.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from typing import Any, Literal, Protocol

from gxo.errors import Location, PlaybookError, Problem

__all__ = [
    "Mark",
    "Part",
    "Path",
    "Problems",
    "SourceMap",
    "close_matches",
    "describe_kind",
    "describe_value",
    "did_you_mean",
    "format_path",
    "parse_path",
    "quote_list",
]

Part = str | int
Path = tuple[Part, ...]

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
# One step of a path string: .name, [3], ['key'] or ["key"].
_STEP = re.compile(r"""\.([^.\[]+)|\[(\d+)\]|\['((?:[^'\\]|\\.)*)'\]|\["((?:[^"\\]|\\.)*)"\]""")


class Mark(Protocol):
    """A PyYAML mark: 0-based ``line`` and ``column`` of a node's first character."""

    @property
    def line(self) -> int: ...

    @property
    def column(self) -> int: ...


def format_path(parts: Iterable[Part]) -> str:
    """``("tasks", 3, "my-key")`` → ``$.tasks[3]["my-key"]``."""
    out = ["$"]
    for part in parts:
        if isinstance(part, int):
            out.append(f"[{part}]")
        elif _IDENTIFIER.match(part):
            out.append(f".{part}")
        else:
            import json  # only for a key that is not an identifier (a valid run has none)

            out.append(f"[{json.dumps(part, ensure_ascii=False)}]")
    return "".join(out)


def parse_path(text: str) -> Path:
    """The inverse of :func:`format_path`, lenient: stops at the first step it cannot read.

    ``$.tasks[2].params.a-b`` is read as ``("tasks", 2, "params", "a-b")`` too, so paths
    written by other components in a slightly different style still locate their node.
    """
    if not text.startswith("$"):
        return ()
    parts: list[Part] = []
    pos = 1
    while pos < len(text):
        match = _STEP.match(text, pos)
        if match is None:
            break
        name, index, single, double = match.groups()
        if index is not None:
            parts.append(int(index))
        elif name is not None:
            parts.append(name)
        elif double is not None:
            import json

            try:
                parts.append(json.loads(f'"{double}"'))
            except ValueError:
                break
        else:
            parts.append(re.sub(r"\\(.)", r"\1", single))
        pos = match.end()
    return tuple(parts)


class SourceMap:
    """Positions of the YAML nodes a document was built from, as a tree that mirrors the data.

    Each entry is ``(key_mark, value_mark)`` for a leaf, or ``[key_mark, value_mark,
    children]`` for a mapping (children by key) or a list (children by index); ``key_mark`` is
    None for list items and the root. :meth:`locate` walks a path down the tree and stops at
    the deepest entry it finds, so a problem inside a value that came from an alias or a merge
    still points at something close.
    """

    __slots__ = ("root",)

    def __init__(self, root: list[Any] | None = None) -> None:
        self.root = root

    def locate(
        self, path: Path, *, at: Literal["key", "value"] = "value"
    ) -> tuple[int, int] | None:
        """1-based (line, column) of the node at ``path``, or of its nearest recorded parent."""
        entry: Any = self.root
        if entry is None:
            return None
        depth = 0
        for part in path:
            if not isinstance(entry, list):
                break
            children = entry[2]
            try:
                if not isinstance(children, dict) and not (isinstance(part, int) and part >= 0):
                    break
                child = children[part]
            except (KeyError, IndexError, TypeError):
                break
            entry = child
            depth += 1
        key_mark: Mark | None = entry[0]
        mark: Mark = key_mark if (at == "key" and depth == len(path) and key_mark) else entry[1]
        return mark.line + 1, mark.column + 1


def _natural(path: Path) -> tuple[tuple[int, int | str], ...]:
    return tuple((0, part) if isinstance(part, int) else (1, part) for part in path)


class Problems:
    """Every problem of one load; :meth:`raise_if_any` raises them, sorted, as PlaybookError."""

    #: Fuzzy "did you mean" searches per load. Each is linear in the names searched, so a
    #: playbook with thousands of tasks and thousands of broken references must not pay
    #: one per problem; past the budget, hints just leave the suggestion out.
    SUGGESTIONS: int = 100

    def __init__(self, source: str, positions: SourceMap | None = None) -> None:
        self.source = source
        self.positions = positions
        self._items: list[tuple[Path, Problem]] = []
        self._warnings: list[Problem] = []
        self._quiet: set[Path] = set()
        self._suggestions = self.SUGGESTIONS

    def __len__(self) -> int:
        return len(self._items)

    def __bool__(self) -> bool:
        return bool(self._items)

    def add(
        self,
        path: Sequence[Part],
        message: str,
        hint: str = "",
        *,
        at: Literal["key", "value"] = "value",
    ) -> None:
        """Record a problem at ``path``; ``at="key"`` points at the key node (unknown keys)."""
        path = tuple(path)
        if self._is_quiet(path):
            return
        self._items.append((path, Problem(self._locate(path, at), message, hint)))

    def warn(
        self,
        path: Sequence[Part],
        message: str,
        hint: str = "",
        *,
        at: Literal["key", "value"] = "value",
    ) -> None:
        """Record a warning at ``path``: shown (logged) when the load succeeds, never fatal."""
        self._warnings.append(Problem(self._locate(tuple(path), at), message, hint))

    @property
    def warnings(self) -> list[Problem]:
        """The warnings recorded, in the order they were found."""
        return list(self._warnings)

    def log_warnings(self) -> None:
        """Log each warning on the ``gxo.config`` logger (``file:line:col: $.path: ...``)."""
        if self._warnings:
            log = logging.getLogger("gxo.config")
            for warning in self._warnings:
                log.warning("%s", warning.format())

    def paths_with_problems(self, depth: int) -> set[Path]:
        """The first ``depth`` parts of every path that has a problem, or is quiet."""
        found = {path[:depth] for path, _ in self._items if len(path) >= depth}
        found.update(path[:depth] for path in self._quiet if len(path) >= depth)
        return found

    def _locate(self, path: Path, at: Literal["key", "value"]) -> Location:
        where = self.positions.locate(path, at=at) if self.positions is not None else None
        line, column = where if where is not None else (None, None)
        return Location(self.source, line, column, format_path(path))

    def add_at(self, location: Location, message: str, hint: str = "") -> None:
        """Record a problem whose location is already known (YAML syntax errors)."""
        self._items.append((parse_path(location.path), Problem(location, message, hint)))

    def did_you_mean(self, word: str, candidates: Iterable[str]) -> str:
        """:func:`did_you_mean`, within this load's budget (``""`` once it is spent)."""
        if self._suggestions <= 0:
            return ""
        self._suggestions -= 1
        return did_you_mean(word, candidates)

    def quiet(self, path: Sequence[Part]) -> None:
        """Drop later problems at or below ``path`` (it already has one that explains them)."""
        self._quiet.add(tuple(path))

    def _is_quiet(self, path: Path) -> bool:
        if not self._quiet:
            return False
        return any(path[:end] in self._quiet for end in range(len(path) + 1))

    def sorted(self) -> list[Problem]:
        """Problems by position: line, column, then path; problems with no line come last."""
        indexed = list(enumerate(self._items))
        indexed.sort(
            key=lambda item: (
                item[1][1].location.line is None,
                item[1][1].location.line or 0,
                item[1][1].location.column or 0,
                _natural(item[1][0]),
                item[0],
            )
        )
        return [problem for _, (_, problem) in indexed]

    def error(self) -> PlaybookError:
        return PlaybookError(self.sorted())

    def raise_if_any(self) -> None:
        if self._items:
            raise self.error()


def quote_list(names: Iterable[str]) -> str:
    """``['a', 'b']`` → ``'a', 'b'``."""
    return ", ".join(f"'{name}'" for name in names)


def close_matches(word: str, candidates: Iterable[str], limit: int = 3) -> list[str]:
    """The candidates that look like ``word`` (difflib), best first."""
    import difflib  # only for a message: not at start-up

    return difflib.get_close_matches(word, list(candidates), n=limit, cutoff=0.6)


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """``did you mean 'retry'?`` or ``""`` when nothing is close."""
    matches = close_matches(word, candidates)
    if not matches:
        return ""
    if len(matches) == 1:
        return f"did you mean '{matches[0]}'?"
    return f"did you mean one of {quote_list(matches)}?"


def describe_kind(value: Any) -> str:
    """``a mapping``, ``a list``, ``a string``, ``a number``, ``a boolean`` or ``null``."""
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return "a string"


def describe_value(value: Any, limit: int = 60) -> str:
    """A short rendering of a value for messages: ``'10 seconds'``, ``3``, ``a list``."""
    if isinstance(value, str):
        text = value if len(value) <= limit else value[: limit - 3] + "..."
        return repr(text)
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, int | float):
        return repr(value)
    return describe_kind(value)
