"""The five fields of a cron expression, read as classic (ISC/Vixie) cron reads them.

Each field is ``*``, a number, a name (months and weekdays only), a range ``a-b`` that runs upward
(``3-3`` is the single value 3), any of ``*`` or a range with a step (``*/15``, ``8-18/2``), or a
comma list of those. Day-of-week 7 is Sunday, like 0. When day-of-month or day-of-week starts with
``*``, a day must match both fields; when both are restricted, a day matching either fires.

``parse_cron`` turns an expression (or a macro such as ``@daily``) into the sets of values it names,
and into a canonical form (plain ``*`` or explicit lists of numbers) that croniter reads the same way,
given ``day_or``. Anything else is refused with a ``CronError`` whose text is the reason.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from functools import lru_cache

FIELD_NAMES = ("minute", "hour", "day of month", "month", "day of week")
FIELD_RANGES = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 7))
MONTH_NAMES = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
DAY_NAMES = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
# Each field's names with the number of the first one, and what to call them in a message.
_NAMES = {3: (MONTH_NAMES, 1, "month"), 4: (DAY_NAMES, 0, "day")}
MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
# The most days each month can have (February in a leap year).
_MONTH_DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
_WORD = "[0-9A-Za-z]+"
_PART = re.compile(rf"(?:\*|(?P<first>{_WORD})(?:-(?P<last>{_WORD}))?)(?:/(?P<step>{_WORD}))?")
# Quartz-style extensions (last day, nearest weekday, nth weekday, "no value") and Jenkins' H.
_EXTENSION = re.compile(r"[#?]|^(?:[0-9]*L|L-[0-9]+|LW|[0-9]*W|H(?:\(.*\))?)(?:/.*)?$", re.IGNORECASE)


class CronError(ValueError):
    """A cron expression this scheduler refuses; the text is the reason, for the person who wrote it."""


@dataclass(frozen=True)
class CronFields:
    """What an expression names: the values of each field (weekdays 0-6, Sunday 0) and its rules."""

    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: tuple[int, ...]
    months: tuple[int, ...]
    weekdays: tuple[int, ...]
    day_or: bool  # both day fields restricted: a day matching either fires (else it must match both)
    wildcard: bool  # the minute or hour field starts with '*': the schedule follows real elapsed time
    canonical: str  # the same schedule in a form croniter reads as classic cron does (with day_or)

    def matches_day(self, day: date) -> bool:
        if day.month not in self.months:
            return False
        by_date, by_weekday = day.day in self.days, day.isoweekday() % 7 in self.weekdays
        return (by_date or by_weekday) if self.day_or else (by_date and by_weekday)


@lru_cache(maxsize=4096)
def parse_cron(expression: str) -> CronFields:
    """The fields of a five-field expression or a macro, or CronError saying why it is refused."""
    text = " ".join(expression.split())
    if not text:
        raise CronError("is empty")
    if text.startswith("@"):
        text = _expand_macro(text)
    fields = text.split(" ")
    if len(fields) != 5:
        raise CronError(
            f"has {len(fields)} fields; cron takes 5 (minute hour day-of-month month day-of-week) or a macro"
        )
    values = [_parse_field(field, index) for index, field in enumerate(fields)]
    minute, hour, day, _, weekday = fields
    day_or = not (day.startswith("*") or weekday.startswith("*"))
    days, months = values[2], values[3]
    if not day_or and min(days) > max(_MONTH_DAYS[month - 1] for month in months):
        raise CronError("never matches a real date")
    canonical = " ".join(
        "*" if field == "*" else ",".join(map(str, numbers)) for field, numbers in zip(fields, values)
    )
    return CronFields(
        *values, day_or=day_or, wildcard=minute.startswith("*") or hour.startswith("*"), canonical=canonical
    )


def _expand_macro(text: str) -> str:
    macro = text.lower()
    if macro == "@reboot":
        raise CronError("@reboot has no tick: the scheduler runs schedules at times, not at start-up")
    if macro not in MACROS:
        known = ", ".join(MACROS)
        raise CronError(f"unknown macro {text!r}; the macros are {known}")
    return MACROS[macro]


def _parse_field(field: str, index: int) -> tuple[int, ...]:
    values: set[int] = set()
    for part in field.split(","):
        if not part:
            raise CronError(f"{FIELD_NAMES[index]} {field} has an empty item in its list")
        values.update(_parse_part(part, index))
    if index == 4:
        values = {value % 7 for value in values}  # 7 is Sunday, like 0
    return tuple(sorted(values))


def _parse_part(part: str, index: int) -> range:
    """The values one list item names: ``*``, ``a``, ``a-b``, ``*/n`` or ``a-b/n``."""
    name = FIELD_NAMES[index]
    low, high = FIELD_RANGES[index]
    if _EXTENSION.search(part):
        raise CronError(f"{name} {part}: the cron extensions L, W, #, ? and H are not supported")
    match = _PART.fullmatch(part)
    if match is None:
        raise CronError(f"{name} {part!r} is not a number, a range or a step")
    first, last, step = match.group("first", "last", "step")
    if first is None:
        start, stop = low, high
    else:
        start = _value(first, index)
        stop = start if last is None else _value(last, index)
    if start > stop:
        raise CronError(
            f"{name} range {first}-{last} runs backwards; cron ranges run upward: write {_wrapped(first, last, index)}"
        )
    if step is None:
        return range(start, stop + 1)
    if not step.isascii() or not step.isdigit():
        raise CronError(f"{name} step {step!r} is not a number")
    if int(step) == 0:
        raise CronError(f"{name} {part}: a step must be 1 or more")
    if first is not None and last is None:
        hint = f"{first.upper()}-{_top(first, index)}/{step}"
        raise CronError(f"{name} {part}: a step needs a range or *: write {hint}")
    return range(start, stop + 1, int(step))


def _value(token: str, index: int) -> int:
    """A number or (in the month and day-of-week fields) a three-letter name, checked against the field."""
    name = FIELD_NAMES[index]
    if token.isascii() and token.isdigit():
        number = int(token)
        low, high = FIELD_RANGES[index]
        if not low <= number <= high:
            raise CronError(f"{name} {number} is out of range {low}-{high}")
        return number
    if index not in _NAMES:
        raise CronError(f"{name} {token!r} is not a number")
    names, first, kind = _NAMES[index]
    if token.upper() not in names:
        raise CronError(f"{name} {token!r} is not a number or a {kind} name ({names[0]}-{names[-1]})")
    return first + names.index(token.upper())


def _top(token: str, index: int) -> str:
    """The field's highest value, spelt like ``token`` (a name or a number)."""
    if index in _NAMES and not token.isdigit():
        return _NAMES[index][0][-1]
    return str(FIELD_RANGES[index][1])


def _bottom(token: str, index: int) -> str:
    """The field's lowest value, spelt like ``token`` (a name or a number)."""
    if index in _NAMES and not token.isdigit():
        return _NAMES[index][0][0]
    return str(FIELD_RANGES[index][0])


def _wrapped(first: str, last: str, index: int) -> str:
    """A backwards range ``first-last`` written as the two upward ranges it was meant to be."""
    first, last = first.upper(), last.upper()
    top, bottom = _top(first, index), _bottom(last, index)
    upper = first if _value(first, index) == _value(top, index) else f"{first}-{top}"
    lower = last if _value(last, index) == _value(bottom, index) else f"{bottom}-{last}"
    return f"{upper},{lower}"
