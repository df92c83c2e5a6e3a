"""Names, durations and times: the small grammars of docs/format.md, sections 2.3 and 3.1."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from gitjit.errors import BadInput
from gitjit.model.grammar import (
    check_name,
    describe_age,
    format_duration,
    format_time,
    is_valid_name,
    parse_duration,
    parse_time,
)

NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
DURATION = re.compile(r"[0-9]{1,9}[smhd]")
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
TEN_YEARS = 3653 * 86400  # docs/format.md, section 10: durations up to ten years

# -- names ---------------------------------------------------------------------


@pytest.mark.parametrize("name", ["a", "0", "deploy-prod", "deploy_prod.v2", "a" * 64, "x-20261125-3fa9c1"])
def test_valid_names(name):
    assert is_valid_name(name)
    assert check_name(name, "person") == name


@pytest.mark.parametrize(
    "name",
    ["", "A", "Alice", "-a", ".a", "_a", "a" * 65, "a..b", "a/b", "a b", "é", "a\n", "\na", "a\0", "../x", None, 1],
)
def test_invalid_names(name):
    assert not is_valid_name(name)
    with pytest.raises(BadInput, match="person .* is not a valid name"):
        check_name(name, "person")


@given(st.text(max_size=70))
@example("alice\n")
@example("a..")
def test_is_valid_name_is_exactly_the_spec_grammar(text):
    assert is_valid_name(text) == (NAME.fullmatch(text) is not None and ".." not in text)


# -- durations -------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, seconds",
    [("0s", 0), ("30s", 30), ("5m", 300), ("24h", 86400), ("7d", 604800), ("007m", 420), ("3653d", 3653 * 86400),
     ("315619200s", 315619200)],
)
def test_parse_duration(text, seconds):
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["3654d", "999999999d", "87673h", "315619201s"])
def test_durations_above_ten_years_are_bad_input(text):
    """docs/format.md, section 10: durations up to 10 years, so that a time plus a duration never overflows."""
    with pytest.raises(BadInput, match=r"--ttl .* is above 3653d \(ten years\)"):
        parse_duration(text, "--ttl")


@pytest.mark.parametrize(
    "text",
    ["", "5", "m", "5 m", " 5m", "5m ", "5m\n", "1h30m", "1.5h", "-1h", "+1h", "1w", "1H", "1y", "1000000000s",
     "١h", "５m", None, 5, 5.0, ["5m"], b"5m"],
)
def test_garbage_durations_are_bad_input(text):
    with pytest.raises(BadInput, match="--ttl .* is not a duration like 30m, 24h or 7d"):
        parse_duration(text, "--ttl")


@pytest.mark.parametrize(
    "seconds, text", [(0, "0s"), (59, "59s"), (60, "1m"), (90, "90s"), (3600, "1h"), (5400, "90m"), (86400, "1d"),
                      (90000, "25h"), (172800, "2d")],
)
def test_format_duration_uses_the_largest_exact_unit(seconds, text):
    assert format_duration(timedelta(seconds=seconds)) == text


@given(st.integers(min_value=0, max_value=999_999_999), st.sampled_from("smhd"))
def test_parse_then_format_is_the_same_length_of_time(number, unit):
    if number * UNITS[unit] > TEN_YEARS:
        with pytest.raises(BadInput, match="is above 3653d"):
            parse_duration(f"{number}{unit}")
        return
    parsed = parse_duration(f"{number}{unit}")
    assert parsed == timedelta(seconds=number * UNITS[unit])
    again = format_duration(parsed)
    assert DURATION.fullmatch(again) or number * UNITS[unit] >= 10**9  # seconds beyond 9 digits need a unit
    assert parse_duration(again) == parsed


@given(st.integers(min_value=0, max_value=10**9 * 60))
def test_format_then_parse_round_trips_whole_seconds(seconds):
    text = format_duration(timedelta(seconds=seconds))
    try:
        parsed = parse_duration(text)
    except BadInput:
        # only more than ten years, or a number of seconds too long to write as <= 9 digits of any unit
        assert seconds > TEN_YEARS or all(seconds % UNITS[u] or seconds // UNITS[u] >= 10**9 for u in UNITS)
        return
    assert parsed == timedelta(seconds=seconds)


@settings(max_examples=500)
@given(st.one_of(st.text(max_size=14), st.binary(max_size=14), st.integers(), st.floats(), st.none(),
                 st.lists(st.text(max_size=3), max_size=2)))
@example("5m\n")
@example("9" * 9 + "d")
def test_parse_duration_accepts_exactly_the_grammar_and_raises_only_bad_input(value):
    try:
        parsed = parse_duration(value)
    except BadInput:
        assert not (isinstance(value, str) and DURATION.fullmatch(value) and _seconds(value) <= TEN_YEARS)
        return
    assert isinstance(value, str) and DURATION.fullmatch(value), f"{value!r} parsed as {parsed}"
    assert _seconds(value) <= TEN_YEARS


def _seconds(text: str) -> int:
    return int(text[:-1]) * UNITS[text[-1]]


# -- times ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("2026-11-25T23:00:00Z", datetime(2026, 11, 25, 23, 0, tzinfo=UTC)),
        ("2026-11-25T23:00:00+00:00", datetime(2026, 11, 25, 23, 0, tzinfo=UTC)),
        ("2026-11-26T01:00:00+02:00", datetime(2026, 11, 25, 23, 0, tzinfo=UTC)),
        ("2026-11-25T23:00:00", datetime(2026, 11, 25, 23, 0, tzinfo=UTC)),  # no zone: UTC
        (" 2026-11-25T23:00:00Z\n", datetime(2026, 11, 25, 23, 0, tzinfo=UTC)),
    ],
)
def test_parse_time(text, expected):
    value = parse_time(text)
    assert value == expected and value.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    "text",
    ["", "now", "tomorrow", "2026-13-01T00:00:00Z", "2026-11-25T25:00:00Z", "25/11/2026", "1732575600",
     "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "9999-12-31T23:59:59Z"],
)
def test_bad_times_are_bad_input(text):
    with pytest.raises(BadInput, match="--at .* is not a time"):
        parse_time(text, "--at")


@given(st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(8999, 12, 31, 23, 59, 59), timezones=st.just(UTC)))
def test_format_then_parse_time_round_trips(value):
    value = value.replace(microsecond=0)
    text = format_time(value)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", text)
    assert parse_time(text) == value


@given(st.text(max_size=40))
def test_parse_time_raises_only_bad_input(text):
    try:
        value = parse_time(text)
    except BadInput:
        return
    assert value.tzinfo is not None and value.utcoffset() == timedelta(0)
    # a time gitjit accepts can be moved by any duration the policy allows without overflowing
    value + timedelta(days=3650)
    value - timedelta(days=3650)


def test_describe_age_rounds_down_to_the_largest_unit():
    assert [describe_age(timedelta(seconds=s)) for s in (10, 59, 60, 3599, 3600 * 3 + 59, 86400 * 2 + 5)] == [
        "10s", "59s", "1m", "59m", "3h", "2d"]
