"""Go durations: parse (the schema's grammar), plain seconds, and Go's String() format."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gxo.config import format_duration, parse_duration
from gxo.config.duration import DURATION_PATTERN, format_duration_ns, parse_duration_ns
from gxo.config.schema import SCHEMA


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("1h30m", 5400.0),
        ("1.5s", 1.5),
        ("300ms", 0.3),
        ("10us", 1e-5),
        ("10µs", 1e-5),  # micro sign, U+00B5
        ("10μs", 1e-5),  # Greek mu, U+03BC
        ("5ns", 5e-9),
        ("0s", 0.0),
        ("1h0m0s", 3600.0),
        ("2m0.5s", 120.5),
        ("1.5h", 5400.0),
        ("1m1m", 120.0),  # Go adds repeated units
        ("0.000000001s", 1e-9),
        ("0.0000000019s", 1e-9),  # below 1 ns is dropped, as in Go
    ],
)
def test_parse_go_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds, rel=1e-12, abs=0)


@pytest.mark.parametrize(
    "text",
    ["", "0", "10", "-1s", "+1s", "1 s", "1s ", "1d", "1.s", ".5s", "1e3s", "s", "1h 30m", "1S"],
)
def test_parse_rejects_what_the_schema_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="like 30s, 1m30s or 500ms"):
        parse_duration(text)


def test_parse_rejects_durations_go_cannot_hold() -> None:
    assert parse_duration_ns("2562047h47m16.854775807s") == 2**63 - 1
    with pytest.raises(ValueError, match="too long"):
        parse_duration("2562047h47m16.854775808s")
    with pytest.raises(ValueError, match="too long"):
        parse_duration("99999999999999999999h")


@pytest.mark.parametrize(("value", "seconds"), [(0, 0.0), (90, 90.0), (0.5, 0.5), (1e-3, 1e-3)])
def test_plain_numbers_are_seconds(value: float, seconds: float) -> None:
    assert parse_duration(value) == seconds


@pytest.mark.parametrize("value", [-1, -0.5, math.inf, math.nan, True])
def test_bad_numbers_are_rejected(value: float) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(value)


def test_pattern_matches_the_schema() -> None:
    alternatives = SCHEMA["definitions"]["duration"]["anyOf"]
    assert alternatives[0]["pattern"] == DURATION_PATTERN
    assert alternatives[1] == {"type": "number", "minimum": 0}


@pytest.mark.parametrize(
    ("ns", "text"),
    [
        (0, "0s"),
        (1, "1ns"),
        (999, "999ns"),
        (1_000, "1µs"),
        (1_500, "1.5µs"),
        (300_000_000, "300ms"),
        (1_500_000_000, "1.5s"),
        (5_400_000_000_000, "1h30m0s"),
        (120_500_000_000, "2m0.5s"),
        (3_600_000_000_001, "1h0m0.000000001s"),
        (-1_500_000_000, "-1.5s"),
    ],
)
def test_format_like_go(ns: int, text: str) -> None:
    assert format_duration_ns(ns) == text


def test_format_seconds() -> None:
    assert format_duration(90) == "1m30s"
    assert format_duration(0.25) == "250ms"


@given(st.integers(min_value=0, max_value=2**63 - 1))
def test_round_trip_through_go_format(ns: int) -> None:
    text = format_duration_ns(ns)
    assert parse_duration_ns(text) == ns
    assert parse_duration(text) == ns / 1e9


@given(st.floats(min_value=0, max_value=1e9, allow_nan=False, allow_infinity=False))
def test_round_trip_seconds(seconds: float) -> None:
    # Whole nanoseconds survive the trip; a float of seconds is rounded to them first.
    assert parse_duration(format_duration(seconds)) == round(seconds * 1e9) / 1e9
