"""Replace every secret value, in any common encoding, by ``[REDACTED_SECRET]``.

A worker registers each secret it resolves with its :class:`Redactor`, and everything that
leaves the worker (summary, error text, traceback, log records, output, records) goes through
:meth:`Redactor.redact` first. GXO replaced only whole strings that contained the value as is;
here only the secret part is replaced, and also its repr, JSON, URL, HTML and shell-quoted
forms, its base64 at every byte alignment, and each line of a multi-line value, because a
command or a module often prints a secret in one of those forms.

Values shorter than :data:`MIN_LENGTH` would match ordinary text ("abc"), so they only mask
strings equal to them, with a warning. Matching uses one compiled regex alternation (longest
pattern first), rebuilt only after a value is added; with no value registered ``redact``
returns its argument itself, so the common no-secret run pays nothing.
"""

from __future__ import annotations

import base64
import html
import json
import logging
import re
import shlex
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

#: GXO's redaction keywords: with ``redact_keywords`` on, the value after any key containing
#: one of them (``password=...``, ``api_key: ...``, ``"token": "..."``) is masked.
DEFAULT_KEYWORDS: Final = (
    "password",
    "passwd",
    "secret",
    "token",
    "apikey",
    "api_key",
    "auth",
    "credential",
    "private_key",
)


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
        r"""(?P<value>"(?:[^"\\\n]|\\.)*"|'[^'\n]*'|[^\s,;&"'}\]]+)"""
    )


def _mask_keyword(match: re.Match[str]) -> str:
    value = match["value"]
    masked = f"{value[0]}{REDACTED}{value[0]}" if value[0] in "\"'" else REDACTED
    return match["key"] + match["sep"] + masked


def encodings(value: str) -> set[str]:
    """Every form of ``value`` to mask: itself, its text encodings, base64, its lines, stripped."""
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
    return {
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
    }


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
        #: The length of the longest pattern or short value (0 when none is registered).
        self.max_length = 0
        # (regex or None, short values) read as one attribute, so readers never see half
        # an update; None when nothing is registered.
        self._state: tuple[re.Pattern[str] | None, frozenset[str]] | None = None
        if self._keywords is not None:
            self._state = (None, frozenset())
        for value in values:
            self.add(value)

    def add(self, value: str) -> None:
        """Register a secret value. Empty values are ignored; short ones only mask equal strings."""
        if not value or value in self._values:
            return
        with self._lock:
            if value in self._values:
                return
            if len(value) < MIN_LENGTH:
                _log.warning(
                    "a secret value is shorter than %d characters: only strings equal to it "
                    "are redacted",
                    MIN_LENGTH,
                )
                self._short.add(value)
            else:
                self._patterns |= encodings(value)
            self._values.add(value)
            self.max_length = max(self.max_length, len(value), *(len(p) for p in self._patterns))
            regex = None
            if self._patterns:
                ordered = sorted(self._patterns, key=lambda p: (-len(p), p))
                regex = re.compile("|".join(map(re.escape, ordered)))
            self._state = (regex, frozenset(self._short))

    def __len__(self) -> int:
        """How many distinct values are registered."""
        return len(self._values)

    def __repr__(self) -> str:
        return f"<Redactor: {len(self._values)} secret value(s)>"

    def redact_text(self, text: str) -> str:
        """``text`` with every registered value (in any known encoding) masked."""
        state = self._state
        if state is None:
            return text
        return self._str(text, *state)

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
        regex, short = state
        if regex is not None:
            text, n = regex.subn(REDACTED, text)
            self.count += n
        if self._keywords is not None:
            text, n = self._keywords.subn(_mask_keyword, text)
            self.count += n
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

    def redact(self, obj: Any) -> Any:
        """A copy of ``obj`` with every string (dict keys too, at any depth) redacted.

        Dicts, lists and tuples are rebuilt; other values (numbers, booleans, None) are kept
        as they are. With no value registered, ``obj`` itself is returned. Two keys of one
        dict that become equal once redacted keep the later value.
        """
        state = self._state
        if state is None:
            return obj
        return self._walk(obj, *state)

    def _walk(self, obj: Any, regex: re.Pattern[str] | None, short: frozenset[str]) -> Any:
        if isinstance(obj, str):
            return self._str(obj, regex, short)
        if isinstance(obj, dict):
            return {
                self._walk(k, regex, short): self._walk(v, regex, short) for k, v in obj.items()
            }
        if isinstance(obj, list):
            return [self._walk(item, regex, short) for item in obj]
        if isinstance(obj, tuple):
            return tuple(self._walk(item, regex, short) for item in obj)
        return obj
