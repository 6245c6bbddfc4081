"""What every grammar of the table shares: how it reports a problem, the words its messages use, and
the two values more than one grammar reads: a string and a time zone (a schedule's, a tenant's)."""

from __future__ import annotations

import difflib
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

Report = Callable[[str, str], None]  # (field, message)


class Counter:
    """A report function that also counts what it reported."""

    def __init__(self, report: Callable[..., None]) -> None:
        self.report = report
        self.count = 0

    def __call__(self, key: str | None, message: str) -> None:
        self.count += 1
        self.report(key, message)


def string(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"must be a string, not {toml_type(value)}")
    return value


def parse_zone(text: str) -> ZoneInfo:
    """An IANA zone by name, or ValueError naming the closest real ones."""
    try:
        if "/" in text or text.upper() in ("UTC", "GMT") or text in available_timezones():
            return ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        pass
    raise ValueError(f"is not an IANA time zone name{suggest(text, sorted(available_timezones()))}")


def suggest(word: str, choices: Any) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def toml_type(value: Any) -> str:
    names = {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "an array", dict: "a table"}
    return names.get(type(value), type(value).__name__)
