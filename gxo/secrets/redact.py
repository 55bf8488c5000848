"""Replace every secret value, in any common encoding, by ``[REDACTED_SECRET]``.

A worker registers each secret it resolves with its :class:`Redactor`, and everything that
leaves the worker (summary, error text, traceback, log records, output, records) goes through
:meth:`Redactor.redact` first. GXO replaced only whole strings that contained the value as is;
here only the secret part is replaced, and also its repr, JSON, URL, HTML and shell-quoted
forms, its shell re-quoted forms (bash's ``set -x`` trace, ``printf %q``, ANSI-C ``$'...'``,
and ``$`` doubled to ``$$`` as make and Compose files write it), its base64 at every byte
alignment, and each line of a multi-line value, because a command or a module often prints a
secret in one of those forms.

Values shorter than :data:`MIN_LENGTH` would match ordinary text ("abc"), so they only mask
strings equal to them, with a warning; an empty value masks nothing, with a warning too. A
value of :data:`MIN_LENGTH` digits or more (``123456``, ``1234.5``) also masks a number equal
to it in a summary: that number becomes the *string* ``[REDACTED_SECRET]`` (its type changes).
Two keys of one mapping that become equal once redacted are both kept: the second is renamed
``[REDACTED_SECRET]#2`` (and so on), with a warning. Matching uses one compiled regex
alternation (longest pattern first), rebuilt only after a value is added; with no value
registered ``redact`` returns its argument itself, so the common no-secret run pays nothing.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable
from typing import Any, Final
from urllib.parse import quote, quote_plus

__all__ = ["DEFAULT_KEYWORDS", "MIN_LENGTH", "REDACTED", "Redactor", "encodings", "keyword_pattern"]

#: What a secret is replaced with.
REDACTED: Final = "[REDACTED_SECRET]"
#: Values shorter than this only mask whole strings equal to them.
MIN_LENGTH: Final = 4

_log = logging.getLogger("gxo.secrets")

#: The redaction keywords (GXO's CLI list, ``password token secret apikey privatekey
#: authorization bearer``, and more): with ``redact_keywords`` on, the value after any key
#: containing one of them (``password=...``, ``api_key: ...``, ``"token": "..."``) is masked.
DEFAULT_KEYWORDS: Final = (
    "password",
    "passwd",
    "secret",
    "token",
    "apikey",
    "api_key",
    "auth",
    "bearer",
    "credential",
    "private_key",
    "privatekey",
)
#: An HTTP authentication scheme before the credential (``Authorization: Bearer abc``): it is
#: masked with the credential, which would otherwise follow it in the clear.
_AUTH_SCHEME = r"(?:(?:bearer|basic|digest|token|negotiate)[ \t]+)?"


def keyword_pattern(keywords: Iterable[str]) -> re.Pattern[str] | None:
    """The regex masking ``key: value``, ``key=value`` and ``"key": "value"`` for keys that
    contain one of ``keywords`` (case-insensitive); None for no keyword."""
    words = sorted({w.strip().lower() for w in keywords if w.strip()}, key=lambda w: (-len(w), w))
    if not words:
        return None
    alternation = "|".join(map(re.escape, words))
    return re.compile(
        rf"(?i)(?P<key>[\w.-]*(?:{alternation})[\w.-]*)(?P<sep>[\"']?\s*[:=]\s*)"
        rf"(?![\"']?{re.escape(REDACTED)})"
        r"""(?P<value>"(?:[^"\\\n]|\\.)*"|'[^'\n]*'|"""
        rf"""{_AUTH_SCHEME}[^\s,;&"'}}\]]+)"""
    )


def _mask_keyword(match: re.Match[str]) -> str:
    value = match["value"]
    masked = f"{value[0]}{REDACTED}{value[0]}" if value[0] in "\"'" else REDACTED
    return match["key"] + match["sep"] + masked


def encodings(value: str) -> set[str]:
    """Every form of ``value`` to mask: itself, its text encodings, base64, its lines, stripped."""
    import base64  # imported with the first secret: a run without secrets never needs it

    found = _text_forms(value)
    try:  # undecodable bytes from os.environ come back as surrogate escapes
        raw = value.encode("utf-8", errors="surrogateescape")
    except UnicodeEncodeError:
        raw = value.encode("utf-8", errors="surrogatepass")
    for offset in range(3):
        # Encode the value after `offset` filler bytes: the characters that depend on the
        # value alone are the same whatever the filler, so they match it inside any base64.
        encoded = base64.b64encode(b"\0" * offset + raw).decode("ascii")
        start = -(-8 * offset // 6)  # ceil: skip characters that mix filler bits
        end = 8 * (offset + len(raw)) // 6  # floor: up to the last character of value bits
        for form in (encoded[start:end], encoded[start:], encoded[start:].rstrip("=")):
            found.add(form)
            found.add(form.replace("+", "-").replace("/", "_"))
    lines = value.splitlines()
    for piece in {value.strip(), *lines, *(line.strip() for line in lines)} - {value}:
        if len(piece.strip()) >= MIN_LENGTH:
            found |= _text_forms(piece)
    return {form for form in found if len(form) >= MIN_LENGTH}


def _text_forms(value: str) -> set[str]:
    import html  # with the first secret (html.entities is large), as in encodings()
    import json  # likewise: a run without secrets never needs it
    import shlex

    forms = {
        value,
        repr(value)[1:-1],
        ascii(value)[1:-1],
        json.dumps(value)[1:-1],
        json.dumps(value, ensure_ascii=False)[1:-1],
        quote(value, safe=""),
        quote(value),
        quote_plus(value),
        html.escape(value),
        html.escape(value, quote=False),
        shlex.quote(value),
        *_shell_forms(value),
    }
    if "$" in value:  # make, Docker Compose and Jenkins write a literal $ as $$
        forms |= {form.replace("$", "$$") for form in forms if "$" in form}
    return forms


# Characters bash's ``printf %q`` (and ``${x@Q}``-less xtrace) escape with a backslash.
_PRINTF_Q_SPECIAL = frozenset(" \t\n'\"\\|&;()<>!{}*[]?^$`,")
_ANSI_C = {
    "\a": "\\a",
    "\b": "\\b",
    "\x1b": "\\E",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\v": "\\v",
    "\\": "\\\\",
    "'": "\\'",
}


def _shell_forms(value: str) -> set[str]:
    """How shells re-quote ``value`` when they print it.

    - bash ``set -x`` traces a word as ``'...'`` with each ``'`` written ``'\\''``;
    - ``printf %q`` backslash-escapes shell metacharacters (``pa\\'ss\\ word``), or, when the
      value holds a control character, writes it ANSI-C quoted (``$'a\\nb'``).
    """
    forms = {value.replace("'", "'\\''")}
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        forms.add(
            "".join(
                _ANSI_C.get(ch) or (f"\\{ord(ch):03o}" if ord(ch) < 32 or ord(ch) == 127 else ch)
                for ch in value
            )
        )
    else:
        escaped = "".join("\\" + ch if ch in _PRINTF_Q_SPECIAL else ch for ch in value)
        if escaped[:1] in ("~", "#"):
            escaped = "\\" + escaped
        forms.add(escaped)
    return forms


class Redactor:
    """The secret values known to one process, and the function that masks them.

    Thread-safe: ``add`` may run while another thread redacts. It never exposes the values
    it holds (``repr`` shows only a count).
    """

    def __init__(self, values: Iterable[str] = (), keywords: Iterable[str] = ()) -> None:
        self._lock = threading.Lock()
        #: Masks ``key=value`` forms for the redaction keywords (None: off, the default).
        self._keywords = keyword_pattern(keywords)
        #: How many substitutions were made (values and keyword forms), for the
        #: ``gxo_secrets_redacted_total`` metric; a count, never what was masked.
        self.count = 0
        self._values: set[str] = set()
        self._patterns: set[str] = set()
        self._short: set[str] = set()
        self._numbers: set[int | float] = set()
        self._warned: set[str] = set()
        #: The length of the longest pattern or short value (0 when none is registered).
        self.max_length = 0
        # (regex or None, short values, numbers) read as one attribute, so readers never
        # see half an update; None when nothing is registered and no keyword is on.
        self._state: _State | None = None
        if self._keywords is not None:
            self._state = (None, frozenset(), frozenset())
        for value in values:
            self.add(value)

    def add(self, value: str, name: str = "", *, warn: bool = True) -> None:
        """Register a secret value (``name``, when known, only words the warnings).

        An empty value masks nothing and a value shorter than :data:`MIN_LENGTH` only masks
        strings equal to it: both are logged as a warning (once per name), unless ``warn``
        is false (a worker registering values ahead of the task that reads them: that task
        warns when it reads the value, so the warning is shown under it).
        """
        if not value:
            if warn:
                self._warn(name, "is empty: there is nothing to redact")
            return
        if warn and len(value) < MIN_LENGTH:
            self._warn(
                name,
                f"is shorter than {MIN_LENGTH} characters: only strings equal to it are redacted",
            )
        if value in self._values:
            return
        with self._lock:
            if value in self._values:
                return
            if len(value) < MIN_LENGTH:
                self._short.add(value)
            else:
                self._patterns |= encodings(value)
                number = _as_number(value)
                if number is not None:
                    self._numbers.add(number)
            self._values.add(value)
            self.max_length = max(self.max_length, len(value), *(len(p) for p in self._patterns))
            regex = None
            if self._patterns:
                ordered = sorted(self._patterns, key=lambda p: (-len(p), p))
                regex = re.compile("|".join(map(re.escape, ordered)))
            self._state = (regex, frozenset(self._short), frozenset(self._numbers))

    def _warn(self, name: str, problem: str) -> None:
        if name in self._warned:
            return
        self._warned.add(name)
        subject = f"the value of secret {name!r}" if name else "a secret value"
        _log.warning("%s %s", subject, problem)

    def __len__(self) -> int:
        """How many distinct values are registered."""
        return len(self._values)

    @property
    def active(self) -> bool:
        """Whether there is anything to mask: a registered value, or keywords turned on."""
        return self._state is not None

    def __repr__(self) -> str:
        return f"<Redactor: {len(self._values)} secret value(s)>"

    def redact_text(self, text: str) -> str:
        """``text`` with every registered value (in any known encoding) masked."""
        state = self._state
        if state is None:
            return text
        return self._str(text, state[0], state[1])

    def _str(self, text: str, regex: re.Pattern[str] | None, short: frozenset[str]) -> str:
        if text in short:
            self.count += 1
            return REDACTED
        if regex is not None:
            text, n = regex.subn(REDACTED, text)
            self.count += n
        if self._keywords is not None:
            text, n = self._keywords.subn(_mask_keyword, text)
            self.count += n
        return text

    def redact_lines(self, text: str) -> str:
        """``text`` (whole lines of output) masked, short values where a whole line equals them."""
        state = self._state
        if state is None:
            return text
        regex = state[0]
        if regex is not None:
            text, n = regex.subn(REDACTED, text)
            self.count += n
        if self._keywords is not None:
            text, n = self._keywords.subn(_mask_keyword, text)
            self.count += n
        short = state[1]
        if short:
            lines = text.split("\n")
            for i, line in enumerate(lines):
                if line.rstrip("\r") in short:
                    self.count += 1
                    lines[i] = REDACTED + line[len(line.rstrip("\r")) :]
            text = "\n".join(lines)
        return text

    def split_pending(self, text: str) -> tuple[str, str]:
        """Split unterminated output into (masked head, raw tail) to emit the head now.

        The tail is the shortest suffix that may be the beginning of a registered form
        completed by a later write (``max_length - 1`` characters, more when a match spans
        the cut), so a secret split across two writes is still masked.
        """
        state = self._state
        if state is None:
            return text, ""
        regex = state[0]
        cut = max(0, len(text) - max(0, self.max_length - 1))
        if regex is None:
            return text[:cut], text[cut:]
        out: list[str] = []
        pos = 0
        for match in regex.finditer(text):
            if match.end() > cut:
                cut = min(cut, match.start())
                break
            out.append(text[pos : match.start()])
            out.append(REDACTED)
            pos = match.end()
        out.append(text[pos:cut])
        return "".join(out), text[cut:]

    def trim_cut(self, text: str, *, start: bool = False, end: bool = False) -> str:
        """``text``, already masked, without what a cut left of a value at its edges.

        ``text`` was cut out of a longer output: at its ``start`` (a tail) or its ``end`` (a
        cap). A value the cut went through has only a part of it in ``text``, which no match
        finds; that part is removed (the longest end of a registered form that ``text``
        starts with, the longest beginning of one it ends with), so no part of a value shows.
        """
        if not (start or end) or not text or self._state is None or not self._patterns:
            return text
        with self._lock:
            patterns = tuple(self._patterns)
        if start:
            head = max((_overlap(p, text) for p in patterns), default=0)
            text = text[head:]
        if end and text:
            reversed_text = text[::-1]
            tail = max((_overlap(p[::-1], reversed_text) for p in patterns), default=0)
            text = text[: len(text) - tail]
        return text

    def redact(self, obj: Any) -> Any:
        """A copy of ``obj`` with every string (dict keys too, at any depth) redacted.

        Dicts, lists and tuples are rebuilt; booleans and None are kept, and so are numbers,
        except one equal to a registered numeric value of :data:`MIN_LENGTH` digits or more,
        which becomes the string ``[REDACTED_SECRET]``. With no value registered, ``obj``
        itself is returned. Two keys of one dict that become equal once redacted are both
        kept: the later ones as ``[REDACTED_SECRET]#2``, ``#3``..., with a warning.
        """
        state = self._state
        if state is None:
            return obj
        return self._walk(obj, *state)

    def _walk(
        self,
        obj: Any,
        regex: re.Pattern[str] | None,
        short: frozenset[str],
        numbers: frozenset[int | float],
    ) -> Any:
        if isinstance(obj, str):
            return self._str(obj, regex, short)
        if isinstance(obj, dict):
            out: dict[Any, Any] = {}
            for key, value in obj.items():
                new_key = self._walk(key, regex, short, numbers)
                if new_key in out and new_key != key:
                    new_key = _free_key(out, new_key)
                out[new_key] = self._walk(value, regex, short, numbers)
            return out
        if isinstance(obj, list):
            return [self._walk(item, regex, short, numbers) for item in obj]
        if isinstance(obj, tuple):
            return tuple(self._walk(item, regex, short, numbers) for item in obj)
        if numbers and type(obj) in (int, float) and obj in numbers:
            self.count += 1
            return REDACTED  # the type changes: a number equal to a secret becomes a string
        return obj


def _overlap(form: str, text: str) -> int:
    """The length of the longest proper end of ``form`` that ``text`` starts with (0: none)."""
    for size in range(min(len(form) - 1, len(text)), 0, -1):
        if form.endswith(text[:size]):
            return size
    return 0


_State = tuple[re.Pattern[str] | None, frozenset[str], frozenset[int | float]]
#: A number (compiled on first use, by ``re``'s cache: a run without secrets never needs it).
_NUMBER = r"[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)\Z"


def _as_number(value: str) -> int | float | None:
    """The number a secret value spells, when it has :data:`MIN_LENGTH` digits or more."""
    text = value.strip()
    if not re.match(_NUMBER, text):
        return None
    number: int | float = int(text) if "." not in text else float(text)
    # The digits of the number itself: "0042" is 42, which is far too common to mask.
    if sum(ch.isdigit() for ch in repr(abs(number)).removesuffix(".0")) < MIN_LENGTH:
        return None
    return number


def _free_key(taken: dict[Any, Any], key: Any) -> Any:
    """``key#2`` (or ``#3``...): the name a redacted key takes when it collides with another."""
    count = 2
    while f"{key}#{count}" in taken:
        count += 1
    _log.warning(
        "two keys of one mapping are equal once secrets are redacted: both are kept, the "
        "later one as %r",
        f"{key}#{count}",
    )
    return f"{key}#{count}"
