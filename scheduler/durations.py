"""Durations as people write them in schedules.toml: ``"90s"``, ``"5m"``, ``"1h30m"``, ``"2d"``, ``"0.5s"``."""

from __future__ import annotations

import re
from datetime import timedelta

_DURATION = re.compile(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m(?!s))?(?:(\d+(?:\.\d{1,3})?)s)?(?:(\d+)ms)?")
_UNITS = ("d", "h", "m", "s", "ms")


def parse_duration(text: str) -> timedelta:
    """Parse ``"1h30m"`` into a timedelta; raise ValueError saying why (the caller names the field)."""
    match = _DURATION.fullmatch(text.strip()) if isinstance(text, str) else None
    if not isinstance(text, str) or not text.strip() or match is None:
        raise ValueError('is not a duration; write it like "90s", "5m", "1h30m" or "2d"')
    days, hours, minutes, seconds, millis = (float(part or 0) for part in match.groups())
    try:
        value = timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds, milliseconds=millis)
    except OverflowError:  # beyond timedelta's 999,999,999 days
        raise ValueError("is too long") from None
    if value <= timedelta(0):
        raise ValueError("must be longer than zero")
    return value


def format_duration(value: timedelta) -> str:
    """The inverse of parse_duration, in the shortest exact spelling (``5400s`` -> ``"1h30m"``)."""
    total_ms = round(value.total_seconds() * 1000)
    if total_ms == 0:
        return "0s"
    parts = []
    for unit, size in zip(_UNITS, (86_400_000, 3_600_000, 60_000, 1000, 1)):
        count, total_ms = divmod(total_ms, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)
