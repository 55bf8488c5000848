"""Safe YAML → plain Python data, with the position of every node, and hard limits.

The document is read from PyYAML's *event* stream (libyaml's C parser when present), and
the data is built here, iteratively, rather than by PyYAML's composer and constructor:

- the libyaml composer recurses in C and crashes the interpreter on deeply nested input, and
  PyYAML's Python resolver is the slowest part of a load; building from events lets the
  nesting depth be checked before a level is opened, and resolves plain scalars with a
  fast YAML 1.2 core-schema resolver;
- every node's position is recorded in a :class:`~gxo.config.problems.SourceMap` on the way.

What is read, like gopkg.in/yaml.v3 (GXO's YAML library), which follows YAML 1.2:

- ``true``/``false`` (also ``True``, ``TRUE``...; not ``tRuE``) are booleans; ``yes``, ``no``,
  ``on``, ``off`` stay strings;
- integers (``12``, ``-3``, ``0o17``, ``0x1f``), floats (``1.5``, ``1e3``, ``.inf``, ``.nan``),
  ``null``/``~``/empty as None; everything else, timestamps included, is a string; and, as
  yaml.v3 (and YAML 1.1) read them, numbers with ``_`` separators (``1_000``), binary
  ``0b101`` and ``0X1F``/``-0x1f``;
- an integer written with a leading zero (``0755``) is a problem: YAML 1.2 reads it as
  decimal, YAML 1.1 and GXO's library as octal, so gxo asks for ``0o755``, ``755`` or quotes;
- the only tags allowed are the core schema's (``!!str !!int !!float !!bool !!null !!map
  !!seq``) and ``!``; any other (``!!python/object``, ``!!binary``, ``!custom``) is a problem;
- duplicate mapping keys and non-string mapping keys are problems; ``<<`` merge keys work;
- one document per file.

Limits (checked while reading, so a hostile file fails fast): :data:`MAX_BYTES` of text,
:data:`MAX_DEPTH` levels of nesting, and :data:`MAX_ALIAS_NODES` nodes visited through
aliases in total (a "billion laughs" document is stopped at its first big alias); and, from
:class:`~gxo.config.limits.InputLimits`, the size of one scalar (1 MiB by default).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any, Final

import yaml

from gxo.config.limits import DEFAULT_LIMITS, InputLimits, describe_bytes
from gxo.config.problems import Mark, Path, Problems, SourceMap, describe_kind, format_path
from gxo.errors import Location

__all__ = [
    "MAX_ALIAS_NODES",
    "MAX_BYTES",
    "MAX_DEPTH",
    "YamlDocument",
    "parse_value",
    "parse_yaml",
]

#: Largest playbook accepted, in bytes (UTF-8).
MAX_BYTES: Final = 10 * 1024 * 1024
#: Deepest nesting of mappings and lists accepted (aliases included).
MAX_DEPTH: Final = 64
#: Most nodes that may be visited through aliases, over the whole document.
MAX_ALIAS_NODES: Final = 100_000

_Loader: type[Any] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

_CORE = "tag:yaml.org,2002:"
_STR, _INT, _FLOAT, _BOOL, _NULL = (f"{_CORE}{t}" for t in ("str", "int", "float", "bool", "null"))
_MAP, _SEQ = f"{_CORE}map", f"{_CORE}seq"

# YAML 1.2 core schema, plain scalars only. A first-character test keeps most strings off
# the regular expressions.
_MAYBE_NOT_STR = frozenset("0123456789+-.~nNtTfF")
_NULLS = frozenset({"~", "null", "Null", "NULL"})
# What a number (or .inf/.nan) can start with: any other plain scalar that is not a null or a
# boolean is a string, without trying the regular expressions (keys like name, type, tasks).
_MAYBE_NUMBER = frozenset("0123456789+-.")
_DEC = re.compile(r"[-+]?[0-9]+\Z")
_LEADING_ZERO = re.compile(r"[-+]?0[0-9]")
_OCT = re.compile(r"0o[0-7]+\Z")
_HEX = re.compile(r"0x[0-9a-fA-F]+\Z")
_FLOAT_RE = re.compile(r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?\Z")
#: The integers a YAML 1.2 reader with 64-bit integers (GXO's) keeps as integers.
_INT_MIN, _INT_MAX = -(2**63), 2**64 - 1
# The core schema's spellings, and yaml.v3's: all lower, capitalised, or all upper case.
_SPECIAL_FLOATS = {
    **dict.fromkeys((".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF"), math.inf),
    **dict.fromkeys(("-.inf", "-.Inf", "-.INF"), -math.inf),
    **dict.fromkeys((".nan", ".NaN", ".NAN"), math.nan),
}
_BOOLEANS = {"true": True, "True": True, "TRUE": True, "false": False, "False": False,
             "FALSE": False}  # fmt: skip


class _NotCore(Exception):
    """A scalar cannot be read with the tag it was given."""


class _Ambiguous:
    """A plain integer with a leading zero (``0755``): YAML 1.2 reads it as 755, YAML 1.1
    and GXO's YAML library as octal 493. Refused, with a hint, rather than guessed."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


def _resolve_plain(text: str) -> Any:
    """An untagged plain scalar, read with the YAML 1.2 core schema."""
    if not text:
        return None
    first = text[0]
    if first not in _MAYBE_NOT_STR:
        return text
    if text in _NULLS:
        return None
    if first not in _MAYBE_NUMBER:  # n, t, f: a boolean (true, True, TRUE...) or a string
        return _BOOLEANS.get(text, text)
    if _DEC.match(text):
        if _LEADING_ZERO.match(text):
            return _Ambiguous(text)
        try:
            number = int(text)
        except ValueError:  # more digits than Python converts (sys.get_int_max_str_digits)
            return text
        if _INT_MIN <= number <= _INT_MAX:
            return number
        # Past 64 bits GXO's YAML library reads a float (1e+23), or a string past a float's
        # range; gxo's messages to workers carry no larger integer either.
        approximate = float(text)
        return approximate if math.isfinite(approximate) else text
    if _OCT.match(text):
        number = int(text[2:], 8)
        return number if number <= _INT_MAX else text
    if _HEX.match(text):
        number = int(text[2:], 16)
        return number if number <= _INT_MAX else text
    if _FLOAT_RE.match(text):
        return float(text)
    special = _SPECIAL_FLOATS.get(text)
    if special is not None:
        return special
    return _go_number(text)


# gopkg.in/yaml.v3 (GXO's YAML library) reads a plain scalar as a number after removing every
# '_' and parsing it as Go's strconv.ParseInt(s, 0, 64) does: so also 1_000, 0b101, 0X1F and
# -0x1f, which the YAML 1.2 core schema leaves as strings. YAML 1.1 readers agree (1000, 5).
_SIGN_OR_DIGIT = frozenset("0123456789+-")
_GO_INT = re.compile(r"[-+]?(?:0[bB][01]+|0[oO][0-7]+|0[xX][0-9a-fA-F]+|[0-9]+)\Z")


def _go_number(text: str) -> Any:
    """``text`` as GXO's YAML library reads it where the core schema found no number."""
    if text[0] not in _SIGN_OR_DIGIT:  # yaml.v3 tries this only for these (".5_0" is text)
        return text
    plain = text.replace("_", "")
    if _GO_INT.match(plain):
        if _DEC.match(plain) and _LEADING_ZERO.match(plain):
            return _Ambiguous(text)  # 0_755: octal for GXO, as 0755
        try:
            number = int(plain, 0)
        except ValueError:  # more digits than Python converts (sys.get_int_max_str_digits)
            return text
        if _INT_MIN <= number <= _INT_MAX:
            return number
        if not _DEC.match(plain):  # past 64 bits: a prefixed one is a string, as in _resolve_plain
            return text
        approximate = float(plain)
        return approximate if math.isfinite(approximate) else text
    if plain != text and _FLOAT_RE.match(plain):
        return float(plain)
    return text


def _as_int(text: str) -> int:
    value = _resolve_plain(text)
    if isinstance(value, _Ambiguous):  # an explicit !!int: the decimal reading, as YAML 1.2
        return int(text)
    if isinstance(value, bool) or not isinstance(value, int):
        raise _NotCore
    return value


def _as_float(text: str) -> float:
    value = _resolve_plain(text)
    if isinstance(value, _Ambiguous):
        return float(text)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _NotCore
    return float(value)


def _as_bool(text: str) -> bool:
    value = _resolve_plain(text)
    if not isinstance(value, bool):
        raise _NotCore
    return value


def _as_null(text: str) -> None:
    if text and text not in _NULLS:
        raise _NotCore


_TAGGED: dict[str, Callable[[str], Any]] = {
    _STR: str,
    _INT: _as_int,
    _FLOAT: _as_float,
    _BOOL: _as_bool,
    _NULL: _as_null,
}


def _show_tag(tag: str) -> str:
    return "!!" + tag[len(_CORE) :] if tag.startswith(_CORE) else tag


class YamlDocument:
    """The data of a document and the position of each of its nodes."""

    __slots__ = ("data", "positions")

    def __init__(self, data: Any, positions: SourceMap) -> None:
        self.data = data
        self.positions = positions


class _Fatal(Exception):
    """Stop reading: the problem has been recorded and nothing after it can be trusted."""


class _Anchor:
    __slots__ = ("height", "size", "value")

    def __init__(self, value: Any) -> None:
        self.value = value
        self.size, self.height = _measure(value)


class _Frame:
    """An open mapping or list, and its entry in the position tree."""

    __slots__ = (
        "anchor",
        "children",
        "container",
        "entry",
        "is_key",
        "is_map",
        "key",
        "key_mark",
        "merges",
        "part",
    )

    def __init__(self, is_map: bool, key_mark: Mark | None, mark: Mark, part: Any) -> None:
        self.is_map = is_map
        self.container: Any = {} if is_map else []
        self.children: Any = {} if is_map else []
        self.entry: list[Any] = [key_mark, mark, self.children]
        self.part = part  # key or index in the parent; _UNKNOWN inside a key, None at the root
        self.anchor: str | None = None
        self.key: Any = _NO_KEY
        self.key_mark: Mark | None = None
        self.merges: list[tuple[Any, Mark | None, Mark]] | None = None
        self.is_key = False


_NO_KEY: Final = object()  # the open mapping waits for a key
_BAD_KEY: Final = object()  # the key was reported; drop its value
_MERGE: Final = object()  # the key was ``<<``
_UNKNOWN: Final = object()  # a frame whose path cannot be named (inside a key)


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def _measure(value: Any) -> tuple[int, int]:
    """(nodes, height) of a built value."""
    if isinstance(value, dict):
        items: Any = value.values()
    elif isinstance(value, list):
        items = value
    else:
        return 1, 0
    size, height = 1, 0
    for item in items:
        item_size, item_height = _measure(item)
        size += item_size
        height = max(height, item_height)
    return size, height + 1


class _Builder:
    """Turns the event stream of one YAML stream into data, recording problems as it goes."""

    def __init__(self, problems: Problems, limits: InputLimits) -> None:
        self.problems = problems
        self.limits = limits
        self.source = problems.source
        self.anchors: dict[str, _Anchor] = {}
        self.open_anchors: set[str] = set()
        self.stack: list[_Frame] = []
        self.alias_nodes = 0
        self.root: Any = None
        self.root_entry: list[Any] | None = None
        self.has_root = False

    # -- problems ---------------------------------------------------------------------------

    def child_path(self) -> Path | None:
        """The path of the node about to be attached to the open collection (None if unknown)."""
        stack = self.stack
        if not stack:
            return ()
        parts = [frame.part for frame in stack[1:]]
        if _UNKNOWN in parts or stack[-1].is_key:
            return None
        frame = stack[-1]
        if frame.is_map:
            key = frame.key
            if key is _NO_KEY or key is _BAD_KEY or key is _MERGE:
                return None
            parts.append(key)
        else:
            parts.append(len(frame.container))
        return tuple(parts)

    def frame_path(self) -> Path | None:
        """The path of the innermost open collection (None if unknown)."""
        parts = [frame.part for frame in self.stack[1:]]
        return None if _UNKNOWN in parts else tuple(parts)

    def problem(
        self,
        mark: Mark | None,
        path: Path | None,
        message: str,
        hint: str = "",
        *,
        quiet: bool = True,
    ) -> None:
        """Record a problem; with ``quiet``, later stages say nothing more about ``path``."""
        line = mark.line + 1 if mark is not None else None
        column = mark.column + 1 if mark is not None else None
        location = Location(self.source, line, column, format_path(path or ()))
        self.problems.add_at(location, message, hint)
        if quiet and path is not None:
            self.problems.quiet(path)

    def fatal(self, mark: Mark | None, path: Path | None, message: str, hint: str = "") -> _Fatal:
        self.problem(mark, path, message, hint, quiet=False)
        return _Fatal()

    # -- the event loop -----------------------------------------------------------------------

    def run(self, loader: Any) -> None:  # noqa: PLR0915 (one loop, inlined on purpose)
        """Consume the events. The common cases (an untagged, unanchored scalar as a key, a
        value or a list item) are handled inline; everything else goes to the methods below.
        """
        get_event = loader.get_event
        scalar_event = yaml.ScalarEvent
        mapping_start = yaml.MappingStartEvent
        sequence_start = yaml.SequenceStartEvent
        collection_end = (yaml.MappingEndEvent, yaml.SequenceEndEvent)
        document_start = yaml.DocumentStartEvent
        stream_end = yaml.StreamEndEvent
        resolve = _resolve_plain
        maybe_not_str = _MAYBE_NOT_STR
        ambiguous = _Ambiguous
        # A scalar this long may be over the size limit: the slow path measures it.
        long_text = self.limits.max_scalar_bytes // 4
        no_key = _NO_KEY
        stack = self.stack
        frame: _Frame | None = None
        documents = 0
        while True:
            event = get_event()
            if event is None:
                break
            kind = type(event)
            if kind is scalar_event:
                if event.tag is None and event.anchor is None and frame is not None:
                    text = event.value
                    plain = event.implicit[0]
                    value = (
                        resolve(text) if plain and (not text or text[0] in maybe_not_str) else text
                    )
                    if value.__class__ is ambiguous or len(text) > long_text:
                        self.scalar(event)
                        continue
                    if frame.is_map:
                        key = frame.key
                        if key is no_key:
                            if (
                                value.__class__ is str
                                and value not in frame.container
                                and not (plain and value == "<<")
                            ):
                                frame.key = value
                                frame.key_mark = event.start_mark
                                continue
                        elif key.__class__ is str:
                            frame.container[key] = value
                            frame.children[key] = (frame.key_mark, event.start_mark)
                            frame.key = no_key
                            continue
                    else:
                        frame.children.append((None, event.start_mark))
                        frame.container.append(value)
                        continue
                self.scalar(event)
            elif kind is mapping_start or kind is sequence_start:
                frame = self.open(event, kind is mapping_start)
            elif kind in collection_end:
                self.close(stack.pop())
                frame = stack[-1] if stack else None
            elif kind is yaml.AliasEvent:
                self.alias(event)
            elif kind is document_start:
                documents += 1
                if documents > 1:
                    raise self.fatal(
                        event.start_mark,
                        None,
                        "a playbook is one YAML document, but this file has more than one",
                        "remove the '---' line that starts the second document",
                    )
            elif kind is stream_end:
                break

    def scalar(self, event: Any) -> None:
        tag = event.tag
        text: str = event.value
        plain = tag is None and event.implicit[0]
        if tag is None:
            value = _resolve_plain(text) if plain else text
        elif tag == "!":
            value = text
        else:
            convert = _TAGGED.get(tag)
            if convert is None:
                self.problem(
                    event.start_mark,
                    self.child_path(),
                    f"the YAML tag '{_show_tag(tag)}' is not allowed",
                    "gxo reads plain YAML only: strings, numbers, booleans, null, lists and "
                    "mappings; remove the tag",
                )
                value = text
            else:
                try:
                    value = convert(text)
                except _NotCore:
                    self.problem(
                        event.start_mark,
                        self.child_path(),
                        f"'{text}' cannot be read as {_show_tag(tag)}",
                        "remove the tag or fix the value",
                    )
                    value = text
        if isinstance(value, _Ambiguous):
            digits = text.replace("_", "")
            self.problem(
                event.start_mark,
                self.child_path(),
                f"the number {text} has a leading zero, which YAML readers disagree on "
                f"(decimal {int(digits)} here, octal in YAML 1.1 and in GXO)",
                f"write 0o{digits.lstrip('+-0') or '0'} for octal, {int(digits)} for decimal, "
                f"or quote it ('{text}') for text",
            )
            value = text
        size = self.limits.scalar_too_large(text)
        if size is not None:
            is_key = bool(self.stack) and self.stack[-1].is_map and self.stack[-1].key is _NO_KEY
            self.problem(
                event.start_mark,
                self.frame_path() if is_key else self.child_path(),
                f"this value is {describe_bytes(size)}, larger than the limit for one value "
                f"({describe_bytes(self.limits.max_scalar_bytes)})",
                "move the data into a file the task reads, or raise the limit with "
                "--max-scalar-size BYTES (limits=InputLimits(max_scalar_bytes=...) in the "
                "Python API)",
            )
            value = ""
        if event.anchor is not None:
            self.anchors[event.anchor] = _Anchor(value)
        stack = self.stack
        if stack:
            frame = stack[-1]
            if frame.is_map and frame.key is _NO_KEY:
                self.take_key(frame, value, event.start_mark, plain=plain)
                return
        self.attach(value, (None, event.start_mark))

    def take_key(self, frame: _Frame, key: Any, mark: Mark, *, plain: bool) -> None:
        frame.key_mark = mark
        if plain and key == "<<":
            frame.key = _MERGE
            return
        if not isinstance(key, str):
            path = self.frame_path()
            shown = "null" if key is None else str(key).lower() if isinstance(key, bool) else key
            self.problem(
                mark,
                None if path is None else (*path, str(shown)),
                f"mapping keys must be strings, got {describe_kind(key)} ({shown})",
                f"quote the key: '{shown}':",
            )
            frame.key = _BAD_KEY
            return
        if key in frame.container:
            path = self.frame_path()
            first = frame.children.get(key)
            where = f" (first defined on line {first[0].line + 1})" if first and first[0] else ""
            self.problem(
                mark,
                None if path is None else (*path, key),
                f"duplicate key '{key}'",
                f"each key may appear once in a mapping{where}; remove one of them",
                quiet=False,
            )
            frame.key = _BAD_KEY
            return
        frame.key = key

    def open(self, event: Any, is_map: bool) -> _Frame:
        stack = self.stack
        is_key = False
        key_mark = None
        part: Any = None
        if stack:
            parent = stack[-1]
            if parent.is_map:
                key = parent.key
                is_key = key is _NO_KEY
                key_mark = parent.key_mark
                part = key if key.__class__ is str else _UNKNOWN
            else:
                part = len(parent.container)
        if len(stack) >= MAX_DEPTH:
            raise self.fatal(
                event.start_mark,
                self.child_path(),
                f"the playbook is nested more than {MAX_DEPTH} levels deep",
                "flatten the data; deeply nested YAML is refused to keep loading safe",
            )
        tag = event.tag
        if tag is not None and tag not in {"!", _MAP if is_map else _SEQ}:
            self.problem(
                event.start_mark,
                None if is_key else self.child_path(),
                f"the YAML tag '{_show_tag(tag)}' is not allowed",
                "gxo reads plain YAML only: strings, numbers, booleans, null, lists and "
                "mappings; remove the tag",
            )
        frame = _Frame(is_map, None if is_key else key_mark, event.start_mark, part)
        frame.is_key = is_key
        if is_key:
            frame.part = _UNKNOWN
        anchor = event.anchor
        if anchor is not None:
            frame.anchor = anchor
            self.open_anchors.add(anchor)
        stack.append(frame)
        return frame

    def close(self, frame: _Frame) -> None:
        container = frame.container
        if frame.merges:
            children = frame.children
            for source, key_mark, value_mark in frame.merges:
                for key, value in source.items():
                    if key not in container:
                        container[key] = value
                        children[key] = (key_mark, value_mark)
        if frame.anchor is not None:
            self.open_anchors.discard(frame.anchor)
            self.anchors[frame.anchor] = _Anchor(container)
        if frame.is_key:
            parent = self.stack[-1]
            mark: Mark = frame.entry[1]
            parent.key_mark = mark
            self.problem(
                mark,
                None,
                f"mapping keys must be strings, got {describe_kind(container)}",
                "use a plain string as the key",
            )
            parent.key = _BAD_KEY
            return
        self.attach(container, frame.entry)

    def alias(self, event: Any) -> None:
        name = event.anchor
        anchor = self.anchors.get(name)
        if anchor is None:
            if name in self.open_anchors:
                raise self.fatal(
                    event.start_mark,
                    self.child_path(),
                    f"the alias '*{name}' is inside the node its anchor names (a recursive alias)",
                    "a value cannot contain itself",
                )
            raise self.fatal(
                event.start_mark,
                self.child_path(),
                f"the alias '*{name}' has no anchor '&{name}' before it",
                "define the anchor before using it",
            )
        self.alias_nodes += anchor.size
        if self.alias_nodes > MAX_ALIAS_NODES:
            raise self.fatal(
                event.start_mark,
                self.child_path(),
                f"aliases expand to more than {MAX_ALIAS_NODES:,} nodes",
                "this looks like a YAML 'billion laughs' bomb; use fewer or smaller aliases",
            )
        if len(self.stack) + anchor.height > MAX_DEPTH:
            raise self.fatal(
                event.start_mark,
                self.child_path(),
                f"the playbook is nested more than {MAX_DEPTH} levels deep (through aliases)",
                "flatten the data; deeply nested YAML is refused to keep loading safe",
            )
        value = _copy(anchor.value)
        stack = self.stack
        if stack:
            frame = stack[-1]
            if frame.is_map and frame.key is _NO_KEY:
                self.take_key(frame, value, event.start_mark, plain=False)
                return
        self.attach(value, (None, event.start_mark))

    def attach(self, value: Any, entry: Any) -> None:
        """Put a finished node (and its position entry) into the open collection, or the root."""
        stack = self.stack
        if not stack:
            self.root = value
            self.root_entry = entry if isinstance(entry, list) else None
            self.has_root = True
            return
        frame = stack[-1]
        if frame.is_map:
            key = frame.key
            frame.key = _NO_KEY
            if key is _BAD_KEY:
                return
            if key is _MERGE:
                self.merge(frame, value, entry[1])
                return
            if isinstance(entry, tuple):
                entry = (frame.key_mark, entry[1])
            else:
                entry[0] = frame.key_mark
            frame.container[key] = value
            frame.children[key] = entry
        else:
            frame.container.append(value)
            frame.children.append(entry)

    def merge(self, frame: _Frame, value: Any, mark: Mark) -> None:
        sources = value if isinstance(value, list) else [value]
        if not all(isinstance(source, dict) for source in sources):
            self.problem(
                mark,
                self.frame_path(),
                "a '<<' merge key needs a mapping or a list of mappings",
                "write '<<: *anchor' where the anchor names a mapping",
            )
            return
        if frame.merges is None:
            frame.merges = []
        frame.merges.extend((source, frame.key_mark, mark) for source in sources)


def _syntax_problem(problems: Problems, error: yaml.YAMLError) -> None:
    source = problems.source
    if "maximum nesting depth" in str(error):
        # libyaml >= 0.2.5 (PyYAML 6.0.4 wheels) has a nesting limit of its own that can fire
        # before ours: one message, whichever limit was hit first.
        message = f"the playbook is nested more than {MAX_DEPTH} levels deep"
        problems.add_at(Location(source, None, None, "$"), message)
        return
    if isinstance(error, yaml.MarkedYAMLError):
        mark = error.problem_mark or error.context_mark
        line = mark.line + 1 if mark is not None else None
        column = mark.column + 1 if mark is not None else None
        problem = error.problem or "cannot be read"
        hint = ""
        if error.context:
            context_mark = error.context_mark
            where = f" (line {context_mark.line + 1})" if context_mark is not None else ""
            hint = f"{error.context}{where}; check the indentation and quoting"
        message = f"invalid YAML: {problem}"
        problems.add_at(Location(source, line, column, "$"), message, hint)
        return
    if isinstance(error, yaml.reader.ReaderError):
        message = f"invalid YAML: the text has a character YAML does not allow ({error.reason})"
        problems.add_at(Location(source, None, None, "$"), message, "remove the character")
        return
    problems.add_at(Location(source, None, None, "$"), f"invalid YAML: {error}")


def parse_yaml(
    text: str, problems: Problems, limits: InputLimits = DEFAULT_LIMITS
) -> YamlDocument | None:
    """Read one YAML document. Problems go to ``problems``; ``None`` when nothing is usable.

    A syntax error, a limit hit, or an empty document stops reading (``None``); a disallowed
    tag, a duplicate or non-string key is recorded and reading goes on.
    """
    if len(text) > MAX_BYTES // 4 and len(text.encode("utf-8", "surrogatepass")) > MAX_BYTES:
        problems.add_at(
            Location(problems.source, None, None, "$"),
            f"the playbook is larger than {MAX_BYTES // (1024 * 1024)} MiB",
            "split it, or move large data into files the tasks read",
        )
        return None
    if text.startswith("\ufeff"):
        text = text[1:]
    builder = _Builder(problems, limits)
    loader = _Loader(text)
    try:
        builder.run(loader)
    except _Fatal:
        return None
    except yaml.YAMLError as error:
        _syntax_problem(problems, error)
        return None
    finally:
        loader.dispose()
    if not builder.has_root or builder.root is None:
        problems.add_at(
            Location(problems.source, None, None, "$"),
            "the playbook is empty",
            "a playbook needs at least 'name', 'schemaVersion' and 'tasks'",
        )
        return None
    positions = SourceMap(builder.root_entry)
    problems.positions = positions
    return YamlDocument(builder.root, positions)


def parse_value(text: str, source: str = "<value>") -> Any:
    """One value written outside a playbook (``--var KEY=VALUE``), read as a playbook's values
    are: ``1:30``, ``1_000`` and ``2026-01-01`` are strings, ``1e3`` is a float, ``yes`` a
    string. :class:`yaml.YAMLError` when the text is not one YAML value (a syntax error, a
    second document, a limit); :class:`ValueError` (its first problem and hint) when it is a
    value a playbook may not hold (``[0755]``, ``!!binary``, a key given twice)."""
    problems = Problems(source)
    builder = _Builder(problems, DEFAULT_LIMITS)
    loader = _Loader(text)
    try:
        builder.run(loader)
    except _Fatal:
        raise yaml.YAMLError("not one YAML value") from None
    finally:
        loader.dispose()
    if problems:
        first = problems.sorted()[0]
        raise ValueError(f"{first.message} (hint: {first.hint})" if first.hint else first.message)
    return builder.root
