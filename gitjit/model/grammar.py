"""Names, durations and times: the small grammars of docs/format.md, sections 2.3 and 3.1."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from gitjit.errors import BadInput
from gitjit.model.limits import FIRST_YEAR, LAST_YEAR, MAX_DURATION
from gitjit.namedtuple import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from typing import TypeGuard

# \Z, not $: `$` also matches before a trailing newline, so "alice\n" or "5m\n"
# would pass for a name or a duration.
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}\Z")
FULL_COMMIT_RE = re.compile(r"^[0-9a-f]{40}\Z")
FINGERPRINT_RE = re.compile(r"^[0-9A-F]{40}\Z")
_DURATION_RE = re.compile(r"^([0-9]{1,9})([smhd])\Z")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def is_valid_name(name: object) -> TypeGuard[str]:
    return isinstance(name, str) and bool(NAME_RE.match(name)) and ".." not in name


def check_name(name: object, what: str) -> str:
    if not is_valid_name(name):
        raise BadInput(f"{what} {name!r} is not a valid name (^[a-z0-9][a-z0-9._-]{{0,63}}$, no '..')")
    return name


def parse_duration(text: object, what: str = "duration") -> timedelta:
    """`<n>s|m|h|d` exactly, at most ten years; anything else is bad input."""
    match = _DURATION_RE.match(text) if isinstance(text, str) else None
    if not match:
        raise BadInput(f"{what} {text!r} is not a duration like 30m, 24h or 7d")
    value = timedelta(seconds=int(match.group(1)) * _UNIT_SECONDS[match.group(2)])
    if value > MAX_DURATION:
        raise BadInput(f"{what} {text!r} is above {format_duration(MAX_DURATION)} (ten years)")
    return value


def format_duration(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    for unit in ("d", "h", "m"):
        size = _UNIT_SECONDS[unit]
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def describe_age(delta: timedelta, nearest: bool = False) -> str:
    """A human age for messages: '3h', '2d', '45m', '10s', rounded down (or to the nearest unit)."""
    seconds = int(delta.total_seconds())
    for unit in ("d", "h", "m"):
        size = _UNIT_SECONDS[unit]
        if seconds >= size:
            return f"{(seconds + size // 2) // size if nearest else seconds // size}{unit}"
    return f"{seconds}s"


def parse_time(text: str, what: str = "time") -> datetime:
    """An ISO 8601 time; one without a zone is taken as UTC.

    Only years 1970 to 8999: a verifier adds and subtracts the policy's
    durations to the time, which must not overflow into an unexpected error.
    """
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
    except (ValueError, AttributeError, OverflowError):
        value = None
    if value is None or not 1970 <= value.year < 9000:
        raise BadInput(f"{what} {text!r} is not a time like 2026-11-25T23:00:00Z (years 1970 to 8999)")
    return value


def utc_now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def in_time_range(value: datetime) -> bool:
    """Years 1970 to 9999 (docs/format.md, section 10): the policy's durations can then be taken from any of them."""
    return FIRST_YEAR <= value.year <= LAST_YEAR


def from_timestamp(seconds: int) -> datetime:
    """A Unix time as UTC; ValueError outside years 1970 to 9999 (a commit may claim any number)."""
    try:
        value = datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        value = None
    if value is None or not in_time_range(value):
        raise ValueError(f"time {seconds} is outside years {FIRST_YEAR} to {LAST_YEAR}")
    return value


def format_time(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
