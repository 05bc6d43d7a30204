"""Durations: the short form, ISO 8601, bare numbers, rejects and the formatter."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leadsla.models.durations import DurationError, format_duration_us, parse_duration, parse_duration_us
from tests.models.conftest import D, H, M, S

MS = 1_000


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90s", 90 * S),
        ("15m", 15 * M),
        ("1h", H),
        ("2d", 2 * D),
        ("1w", 7 * D),
        ("1h30m", H + 30 * M),
        ("1d2h3m4s", D + 2 * H + 3 * M + 4 * S),
        ("1m500ms", M + 500 * MS),
        ("500ms", 500 * MS),
        ("1.5h", H + 30 * M),
        ("0s", 0),
        ("  1h  ", H),
        ("PT1H", H),
        ("P2D", 2 * D),
        ("P1DT2H30M", D + 2 * H + 30 * M),
        ("PT1H30M", H + 30 * M),
        ("PT90S", 90 * S),
        ("PT0.5S", 500 * MS),
        ("P1W", 7 * D),
        ("pt15m", 15 * M),
        ("90", 90 * S),
        ("0", 0),
        ("1.25", 1_250 * MS),
        ("0.000001", 1),
    ],
)
def test_parse_text(text: str, expected: int) -> None:
    assert parse_duration_us(text) == expected
    assert parse_duration(text) == timedelta(microseconds=expected)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (90, 90 * S),
        (0, 0),
        (1.5, 1_500 * MS),
        (timedelta(hours=1, microseconds=7), H + 7),
        (timedelta(days=2), 2 * D),
    ],
)
def test_parse_numbers_and_timedeltas(value: int | float | timedelta, expected: int) -> None:
    assert parse_duration_us(value) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("2x", "not a duration: '2x'"),
        ("", "empty duration"),
        ("   ", "empty duration"),
        ("P", "not an ISO 8601 duration: 'P'"),
        ("PT", "not an ISO 8601 duration: 'PT'"),
        ("P1DT", "not an ISO 8601 duration: 'P1DT'"),
        ("P1H", "not an ISO 8601 duration: 'P1H'"),
        ("PT1D", "not an ISO 8601 duration: 'PT1D'"),
        ("-1h", "not a duration: '-1h'"),
        ("-5", "negative duration: '-5'"),
        (-5, "negative duration: -5"),
        (-0.5, "negative duration: -0.5"),
        (timedelta(seconds=-1), "negative duration"),
        ("h", "not a duration: 'h'"),
        ("ms", "not a duration: 'ms'"),
        ("1h 30m", "not a duration: '1h 30m'"),
        ("1hh", "not a duration: '1hh'"),
        ("1H", "not a duration: '1H'"),
        ("h1", "not a duration: 'h1'"),
        ("1h-30m", "not a duration: '1h-30m'"),
        ("nan", "not a finite duration: 'nan'"),
        ("inf", "not a finite duration: 'inf'"),
        (float("inf"), "not a finite duration: inf"),
        (float("nan"), "not a finite duration: nan"),
        ("1" + "0" * 400 + "s", "not a finite duration"),
        (True, "not a duration: True"),
        (False, "not a duration: False"),
        (None, "not a duration: None"),
        ([1], "not a duration: [1]"),
    ],
)
def test_rejects(value: object, message: str) -> None:
    with pytest.raises(DurationError) as info:
        parse_duration_us(value)  # type: ignore[arg-type]
    assert message in str(info.value)


def test_duration_error_is_a_value_error() -> None:
    assert issubclass(DurationError, ValueError)


def test_short_form_error_suggests_the_accepted_forms() -> None:
    with pytest.raises(DurationError) as info:
        parse_duration_us("2x")
    assert str(info.value) == "not a duration: '2x' (use e.g. 90s, 15m, 1h30m, 2d, 500ms or ISO 8601 PT1H)"


@pytest.mark.parametrize(
    ("us", "text"),
    [
        (0, "0s"),
        (500 * MS, "500ms"),
        (S, "1s"),
        (90 * S, "1m30s"),
        (H, "1h"),
        (H + 30 * M, "1h30m"),
        (2 * D, "2d"),
        (7 * D, "7d"),
        (D + 2 * H + 3 * M + 4 * S + 5 * MS, "1d2h3m4s5ms"),
        (1, "1us"),
        (1_500, "1500us"),
        (H + 1, "1h1us"),
    ],
)
def test_format_duration_us(us: int, text: str) -> None:
    assert format_duration_us(us) == text


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=0, max_value=400 * D // MS))
def test_format_round_trips_for_whole_milliseconds(ms: int) -> None:
    us = ms * MS
    assert parse_duration_us(format_duration_us(us)) == us


@settings(max_examples=200, deadline=None)
@given(
    st.integers(0, 30),
    st.integers(0, 23),
    st.integers(0, 59),
    st.integers(0, 59),
)
def test_short_and_iso_agree(d: int, h: int, m: int, s: int) -> None:
    expected = d * D + h * H + m * M + s * S
    short = f"{d}d{h}h{m}m{s}s"
    iso = f"P{d}DT{h}H{m}M{s}S"
    assert parse_duration_us(short) == expected
    assert parse_duration_us(iso) == expected
