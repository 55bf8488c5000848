"""Redaction of secret values and their encodings, in text and in nested data."""

from __future__ import annotations

import base64
import html
import json
import logging
import shlex
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, quote_plus

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gxo.secrets import REDACTED, Redactor

SECRET = "p@ss w0rd/'q\"+&<x>é"

ENCODINGS: dict[str, Callable[[str], str]] = {
    "raw": lambda s: s,
    "repr": lambda s: repr(s)[1:-1],
    "ascii": lambda s: ascii(s)[1:-1],
    "json": lambda s: json.dumps(s)[1:-1],
    "json-utf8": lambda s: json.dumps(s, ensure_ascii=False)[1:-1],
    "url-quote": lambda s: quote(s, safe=""),
    "url-quote-path": quote,
    "url-quote-plus": quote_plus,
    "html": html.escape,
    "html-noquote": lambda s: html.escape(s, quote=False),
    "shlex": shlex.quote,
}


def b64(data: bytes, *, urlsafe: bool, pad: bool) -> str:
    text = (base64.urlsafe_b64encode if urlsafe else base64.b64encode)(data).decode()
    return text if pad else text.rstrip("=")


def b64_core(secret: str, offset: int, *, urlsafe: bool) -> str:
    """The base64 characters that depend only on the secret, at a byte alignment."""
    raw = secret.encode()
    text = b64(b"\0" * offset + raw, urlsafe=urlsafe, pad=True)
    return text[-(-8 * offset // 6) : 8 * (offset + len(raw)) // 6]


@pytest.mark.parametrize("encoding", sorted(ENCODINGS))
def test_each_encoding_is_redacted(encoding: str) -> None:
    redactor = Redactor([SECRET])
    encoded = ENCODINGS[encoding](SECRET)
    out = redactor.redact_text(f"before {encoded} after")
    assert out == f"before {REDACTED} after"


@pytest.mark.parametrize("urlsafe", [False, True], ids=["std", "urlsafe"])
@pytest.mark.parametrize("pad", [True, False], ids=["padded", "unpadded"])
@pytest.mark.parametrize("before", [0, 1, 2])
@pytest.mark.parametrize("after", [0, 1, 2])
def test_base64_at_every_alignment(urlsafe: bool, pad: bool, before: int, after: int) -> None:
    secret = "sk-live-1234567890abcdef"
    redactor = Redactor([secret])
    encoded = b64(b"<" * before + secret.encode() + b">" * after, urlsafe=urlsafe, pad=pad)
    out = redactor.redact_text(f"Authorization: Basic {encoded}")
    assert REDACTED in out
    assert b64_core(secret, before, urlsafe=urlsafe) not in out
    if after == 0:  # the value ends the data: nothing of it is left, padding included
        assert out.endswith(REDACTED)


def test_secret_part_only_is_replaced() -> None:
    assert Redactor(["hunter22"]).redact_text("pw=hunter22;x") == f"pw={REDACTED};x"


def test_every_occurrence_is_replaced() -> None:
    assert Redactor(["abcd"]).redact_text("abcdabcd-abcd") == REDACTED * 2 + "-" + REDACTED


def test_longest_pattern_wins() -> None:
    redactor = Redactor(["token", "token-extended"])
    assert redactor.redact_text("x token-extended y") == f"x {REDACTED} y"


def test_nested_structures_and_keys() -> None:
    redactor = Redactor(["s3cr3t-value"])
    data = {
        "stdout": "the s3cr3t-value is here",
        "s3cr3t-value": {"inner": ["ok", ("s3cr3t-value", 1)]},
        "exit_code": 0,
        "ok": True,
        "ratio": 1.5,
        "none": None,
    }
    assert redactor.redact(data) == {
        "stdout": f"the {REDACTED} is here",
        REDACTED: {"inner": ["ok", (REDACTED, 1)]},
        "exit_code": 0,
        "ok": True,
        "ratio": 1.5,
        "none": None,
    }
    assert data["stdout"] == "the s3cr3t-value is here"  # the input is left alone


def test_non_string_scalars_are_untouched() -> None:
    redactor = Redactor(["abcd1234"])
    data = {"exit_code": 1234, "status": 1234.0, "flag": True, "b": b"1234", "n": None}
    assert redactor.redact(data) == data
    assert redactor.redact(1234) == 1234


def test_a_number_equal_to_a_numeric_secret_becomes_the_placeholder_string() -> None:
    """The type changes (int/float -> str): documented in the README, "Secrets"."""
    redactor = Redactor(["1234"])
    data = {"exit_code": 1234, "status": 1234.0, "flag": True, "other": 12345, "b": b"1234"}
    assert redactor.redact(data) == {
        "exit_code": REDACTED,
        "status": REDACTED,
        "flag": True,
        "other": 12345,
        "b": b"1234",
    }
    assert Redactor(["-98765.25"]).redact([-98765.25, 98765.25]) == [REDACTED, 98765.25]
    assert Redactor(["123"]).redact(123) == 123  # fewer than 4 digits: not a number to mask
    assert Redactor(["12.5"]).redact(12.5) == 12.5
    assert Redactor(["0042"]).redact([42, "0042"]) == [42, REDACTED]  # 42 has 2 digits
    assert Redactor(["1234.0"]).redact([1234, 1234.0]) == [REDACTED, REDACTED]


def test_colliding_redacted_keys_are_both_kept(caplog: pytest.LogCaptureFixture) -> None:
    redactor = Redactor(["first-secret", "second-secret"])
    data = {"first-secret": 1, "second-secret": 2, f"x{REDACTED}#2": 0, "third": "second-secret"}
    with caplog.at_level(logging.WARNING, logger="gxo.secrets"):
        out = redactor.redact({"a": data, "b": {"first-secret": 3, "second-secret": 4}})
    assert out["a"] == {REDACTED: 1, f"{REDACTED}#2": 2, f"x{REDACTED}#2": 0, "third": REDACTED}
    assert out["b"] == {REDACTED: 3, f"{REDACTED}#2": 4}
    assert [r.getMessage() for r in caplog.records].count(
        "two keys of one mapping are equal once secrets are redacted: both are kept, the later "
        f"one as '{REDACTED}#2'"
    ) == 2


@pytest.mark.parametrize(
    ("value", "printed"),
    [
        ("pa'ss word", "+ true 'pa'\\''ss word'"),  # bash set -x
        ("pa'ss word", "pa\\'ss\\ word"),  # printf %q
        ("p@$$w0rd!", "p@\\$\\$w0rd\\!"),  # printf %q
        ("p@$$w0rd!", "p@$$$$w0rd!"),  # $ doubled (make, Compose)
        ("line1\nline2'", "$'line1\\nline2\\''"),  # printf %q, ANSI-C
        ("tab\there\x1b[0m", "$'tab\\there\\E[0m'"),
        ("~home#x", "\\~home#x"),
    ],
)
def test_shell_requoted_forms_are_masked(value: str, printed: str) -> None:
    out = Redactor([value]).redact_text(f"before {printed} after")
    assert REDACTED in out
    assert value not in out
    assert printed.strip("+ ").strip("'") not in out


def test_an_empty_or_short_value_warns_once_by_name(caplog: pytest.LogCaptureFixture) -> None:
    redactor = Redactor()
    with caplog.at_level(logging.WARNING, logger="gxo.secrets"):
        for _ in range(2):
            redactor.add("", "EMPTY")
            redactor.add("ab", "SHORT")
    assert [r.getMessage() for r in caplog.records] == [
        "the value of secret 'EMPTY' is empty: there is nothing to redact",
        "the value of secret 'SHORT' is shorter than 4 characters: only strings equal to it "
        "are redacted",
    ]
    assert len(redactor) == 1


def test_new_containers_when_secrets_are_registered() -> None:
    data = {"a": ["x"]}
    out = Redactor(["abcd"]).redact(data)
    assert out == data
    assert out is not data
    assert out["a"] is not data["a"]


def test_without_secrets_the_input_itself_is_returned() -> None:
    redactor = Redactor()
    data = {"a": ["secret-looking"]}
    assert redactor.redact(data) is data
    assert redactor.redact_text("text") == "text"
    redactor.add("")  # ignored
    assert len(redactor) == 0
    assert redactor.redact(data) is data


def test_short_values_only_mask_equal_strings(caplog: pytest.LogCaptureFixture) -> None:
    redactor = Redactor()
    with caplog.at_level(logging.WARNING, logger="gxo.secrets"):
        redactor.add("abc")
    assert [r.levelname for r in caplog.records] == ["WARNING"]
    assert "abc" not in caplog.text
    assert "shorter than 4 characters" in caplog.text
    assert redactor.redact({"k": "abc", "abc": "xabcx"}) == {"k": REDACTED, REDACTED: "xabcx"}


def test_multi_line_value_redacts_each_line() -> None:
    key = (
        "-----BEGIN KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n  second-line-here  \n\nab\n"
        "-----END KEY-----"
    )
    redactor = Redactor([key])
    out = redactor.redact_text("error at line: MIIEvQIBADANBgkqhkiG9w0BAQEFAASC (bad)")
    assert out == f"error at line: {REDACTED} (bad)"
    assert redactor.redact_text("got second-line-here") == f"got {REDACTED}"
    assert redactor.redact_text(key) == REDACTED
    assert redactor.redact_text(json.dumps({"k": key})) == f'{{"k": "{REDACTED}"}}'
    assert redactor.redact_text("ab cd") == "ab cd"  # short lines are not patterns


def test_repr_hides_values() -> None:
    assert repr(Redactor(["topsecret"])) == "<Redactor: 1 secret value(s)>"


def test_adding_twice_is_a_no_op() -> None:
    redactor = Redactor(["abcdef", "abcdef"])
    assert len(redactor) == 1


# -- property ---------------------------------------------------------------------------------

secret_text = st.text(
    # characters that the encodings escape are drawn often, so every encoding gets exercised
    alphabet=st.sampled_from("'\"\\/+&<>%= \n\té")
    | st.characters(codec="utf-8", exclude_characters="\x00"),
    min_size=4,
    max_size=24,
)
filler = st.text(alphabet=st.characters(codec="utf-8"), max_size=8)


def forbidden(secret: str) -> set[str]:
    """What must never be found in redacted output, computed independently of the redactor."""
    found = {encode(secret) for encode in ENCODINGS.values()}
    for offset in range(3):
        for urlsafe in (False, True):
            found.add(b64_core(secret, offset, urlsafe=urlsafe))
    found |= {line.strip() for line in secret.splitlines()} | {secret.strip()}
    return {form for form in found if len(form) >= 4}


@st.composite
def planted(draw: st.DrawFn, secret: str) -> str:
    """A string embedding the secret in one of its encodings, with text around it."""
    if draw(st.booleans()):
        encoded = ENCODINGS[draw(st.sampled_from(sorted(ENCODINGS)))](secret)
    else:
        before = draw(st.binary(max_size=4))
        after = draw(st.binary(max_size=4))
        encoded = b64(
            before + secret.encode() + after,
            urlsafe=draw(st.booleans()),
            pad=draw(st.booleans()),
        )
    return draw(filler) + encoded + draw(filler)


def json_like(leaf: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.recursive(
        leaf,
        lambda children: (
            st.lists(children, max_size=4)
            | st.dictionaries(
                st.text(max_size=6) | leaf.filter(lambda x: isinstance(x, str)),
                children,
                max_size=4,
            )
        ),
        max_leaves=12,
    )


def strings_of(obj: Any) -> list[str]:
    if isinstance(obj, str):
        return [obj]
    if isinstance(obj, dict):
        return [s for k, v in obj.items() for s in strings_of(k) + strings_of(v)]
    if isinstance(obj, list | tuple):
        return [s for item in obj for s in strings_of(item)]
    return []


def same_shape_ints(before: Any, after: Any) -> bool:
    """Every int, float, bool and None is unchanged at its place."""
    if isinstance(before, dict):
        if not isinstance(after, dict) or len(after) != len(before):
            return True  # two keys merged once redacted; shape not comparable
        return all(
            same_shape_ints(v1, v2) for v1, v2 in zip(before.values(), after.values(), strict=True)
        )
    if isinstance(before, list):
        return all(same_shape_ints(a, b) for a, b in zip(before, after, strict=True))
    if isinstance(before, str):
        return isinstance(after, str)
    if after == REDACTED and type(before) in (int, float):
        return True  # a number equal to a numeric secret (checked in its own test)
    return type(before) is type(after) and before == after


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), secret=secret_text)
def test_no_encoding_of_a_planted_secret_survives(data: st.DataObject, secret: str) -> None:
    scalars = st.integers() | st.floats(allow_nan=False) | st.booleans() | st.none()
    structure = data.draw(json_like(scalars | planted(secret) | st.text(max_size=8)))
    structure = [structure, data.draw(planted(secret))]  # at least one planted copy
    redacted = Redactor([secret]).redact(structure)
    assert same_shape_ints(structure, redacted)
    for redacted_text in strings_of(redacted):
        # a placeholder is a boundary: what happens to surround it is not a leak
        text = redacted_text.replace(REDACTED, "\x00")
        for form in forbidden(secret):
            assert form not in text, (form, text)
