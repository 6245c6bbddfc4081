"""When a schedule is due: cron (in a wall-clock zone, with classic cron's DST rules) or ``every``.

Every function here is pure: instants go in and out as aware UTC datetimes, nothing reads a clock.

DST follows ISC/Vixie cron (see DESIGN.md, "Time"):

* a *wildcard* cron (minute or hour field starting with ``*``) follows real elapsed time: it fires
  at every real occurrence of a matching wall-clock time, so twice in a repeated hour and never in
  a skipped one;
* any other cron is *fixed-time*: a skipped wall-clock time fires once, at the first instant after
  the gap; a repeated one fires once, at its first occurrence.

croniter does the field maths on naive wall-clock times; this module maps each wall-clock match to
the real instants it names.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from croniter import croniter

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
FIELD_NAMES = ("minute", "hour", "day of month", "month", "day of week")
FIELD_RANGES = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 7))
# How far before an instant the wall-clock scan starts, so a repeated hour is never half-seen.
_FOLD_MARGIN = timedelta(hours=3)
# How far ahead the jitter check looks for DST changes, and how many years of days it looks at for the
# nearest two matching days (leap days included).
DST_SCAN = timedelta(days=2 * 366)
_DAY_SCAN_YEARS = 8


@dataclass(frozen=True)
class Every:
    """Ticks at whole multiples of ``period`` since the Unix epoch, so all replicas agree."""

    period: timedelta

    def after(self, instant: datetime, zone: ZoneInfo) -> Iterator[datetime]:
        del zone  # `every` ignores zones
        step = _micros(self.period)
        k = _micros(instant - EPOCH) // step + 1
        while True:
            yield EPOCH + timedelta(microseconds=k * step)
            k += 1

    def count_between(self, start: datetime, end: datetime, zone: ZoneInfo) -> int:
        """How many ticks lie in ``(start, end]``."""
        del zone
        step = _micros(self.period)
        return max(0, _micros(end - EPOCH) // step - _micros(start - EPOCH) // step)

    def describe(self) -> str:
        from scheduler.durations import format_duration

        return f"every {format_duration(self.period)}"


@dataclass(frozen=True)
class Cron:
    """A five-field cron expression (or a macro such as ``@daily``), evaluated in a zone's wall clock."""

    expression: str

    @property
    def fields(self) -> list[str]:
        return [str(f) for f in croniter(self.expression).expressions][:5]

    @property
    def wildcard(self) -> bool:
        minute, hour = self.fields[:2]
        return minute.startswith("*") or hour.startswith("*")

    def after(self, instant: datetime, zone: ZoneInfo) -> Iterator[datetime]:
        """Every tick strictly after ``instant``, in order, as aware UTC datetimes."""
        wildcard = self.wildcard
        wall = croniter(self.expression, instant.astimezone(zone).replace(tzinfo=None) - _FOLD_MARGIN)
        waiting: list[datetime] = []
        last: datetime | None = None
        while True:
            naive = wall.get_next(datetime)
            first, second, gap_end = _resolve(naive, zone)
            if first is None:
                if wildcard:
                    continue  # no real occurrence of this wall-clock time today
                first = gap_end
            heapq.heappush(waiting, first)
            if second is not None and wildcard:
                heapq.heappush(waiting, second)
            while waiting and waiting[0] <= first:
                tick = heapq.heappop(waiting)
                if tick > instant and tick != last:
                    last = tick
                    yield tick

    def count_between(self, start: datetime, end: datetime, zone: ZoneInfo) -> int:
        """How many ticks lie in ``(start, end]``."""
        count = 0
        for tick in self.after(start, zone):
            if tick > end:
                return count
            count += 1
        raise AssertionError("unreachable: the tick iterator is endless")

    def describe(self) -> str:
        return f"cron {self.expression!r}"


Cadence = Every | Cron


def ticks_between(cadence: Cadence, zone: ZoneInfo, start: datetime, end: datetime) -> Iterator[datetime]:
    """The ticks in ``(start, end]``."""
    for tick in cadence.after(start, zone):
        if tick > end:
            return
        yield tick


def next_tick(cadence: Cadence, zone: ZoneInfo, instant: datetime) -> datetime:
    """The first tick strictly after ``instant``."""
    return next(cadence.after(instant, zone))


def shortest_interval(cadence: Cadence, zone: ZoneInfo, start: datetime) -> timedelta:
    """The shortest real gap between consecutive ticks: exactly on the wall clock, and across each of
    the zone's UTC offset changes in the DST_SCAN after ``start`` (a change can shorten a gap by up to
    its own size: ``30 2,3 * * *`` fires at 03:00 and 03:30 on a spring-forward day)."""
    if isinstance(cadence, Every):
        return cadence.period
    return _shortest_cron(cadence.expression, zone, start)


@lru_cache(maxsize=1024)
def _shortest_cron(expression: str, zone: ZoneInfo, start: datetime) -> timedelta:
    cron = Cron(expression)
    wall = _wall_shortest(*cron.fields)
    shortest = wall
    for change, shift in _offset_changes(zone, start, start + DST_SCAN):
        # Only ticks within a shift of the change move, and by at most the shift; a gap that could end
        # up shorter than `wall` therefore lies within `wall + 2 * shift` of it (an hour more for safety).
        reach = wall + 2 * shift + timedelta(hours=1)
        ticks = list(ticks_between(cron, zone, change - reach, change + reach))
        shortest = min([shortest, *(later - earlier for earlier, later in zip(ticks, ticks[1:]))])
    return shortest


@lru_cache(maxsize=1024)
def _wall_shortest(minute: str, hour: str, day: str, month: str, weekday: str) -> timedelta:
    """The shortest gap between ticks on a wall clock without DST.

    Every matching day has the same times of day, so the gap is the shortest of: two times on one day,
    and the last time of a day to the first of the nearest next matching day.
    """
    minutes, hours = croniter(f"{minute} {hour} * * *").expanded[:2]
    times = sorted(
        h * 60 + m for h in (range(24) if hours == ["*"] else hours) for m in (range(60) if minutes == ["*"] else minutes)
    )
    within_day = min((b - a for a, b in zip(times, times[1:])), default=None)
    days = croniter(f"0 0 {day} {month} {weekday}", datetime(2000, 1, 1))
    previous, day_gap = days.get_next(datetime), None
    while previous.year < 2000 + _DAY_SCAN_YEARS and day_gap != 1:
        current = days.get_next(datetime)
        gap = (current - previous).days
        day_gap = gap if day_gap is None else min(day_gap, gap)
        previous = current
    across_days = timedelta(days=day_gap, minutes=times[0] - times[-1]) if day_gap else timedelta.max
    return min(across_days, timedelta(minutes=within_day)) if within_day is not None else across_days


@lru_cache(maxsize=64)
def _offset_changes(zone: ZoneInfo, start: datetime, end: datetime) -> list[tuple[datetime, timedelta]]:
    """The instants in ``(start, end]`` where the zone's UTC offset changes, each with the change's size."""
    changes = []
    day = timedelta(days=1)
    low, offset = start, start.astimezone(zone).utcoffset()
    while low < end:
        high = low + day
        new = high.astimezone(zone).utcoffset()
        if new != offset:
            assert new is not None and offset is not None
            changes.append((_gap_end(low, high, zone), abs(new - offset)))
            offset = new
        low = high
    return changes


def check_cron(expression: str) -> str | None:
    """Why ``expression`` is not a usable five-field cron (or macro), or None when it is."""
    text = " ".join(expression.split())
    if not text:
        return "is empty"
    if not text.startswith("@"):
        fields = text.split(" ")
        if len(fields) != 5:
            return f"has {len(fields)} fields; cron takes 5 (minute hour day-of-month month day-of-week) or a macro"
        for name, (low, high), field in zip(FIELD_NAMES, FIELD_RANGES, fields):
            for number in _numbers(field):
                if not low <= number <= high:
                    return f"{name} {number} is out of range {low}-{high}"
    try:
        wall = croniter(text, datetime(2000, 1, 1))
    except Exception as error:  # croniter's exceptions share no useful base; its message is the reason
        return str(error).replace(f"[{text}] ", "") or type(error).__name__
    try:
        wall.get_next(datetime)
    except Exception:
        return "never matches a real date"
    return None


def _numbers(field: str) -> Iterator[int]:
    """The plain numbers a cron field names (range ends and single values; not step sizes)."""
    for part in field.split(","):
        base = part.split("/", 1)[0]
        for end in base.split("-"):
            if end.isdigit():
                yield int(end)


def _resolve(naive: datetime, zone: ZoneInfo) -> tuple[datetime | None, datetime | None, datetime]:
    """The real instants a wall-clock time names: (first, second if repeated, end of gap if skipped)."""
    early = naive.replace(tzinfo=zone, fold=0).astimezone(UTC)
    late = naive.replace(tzinfo=zone, fold=1).astimezone(UTC)
    if early == late:
        return early, None, early
    if early < late:
        return early, late, early  # repeated (fall back): two real occurrences
    return None, None, _gap_end(late, early, zone)  # skipped (spring forward)


def _gap_end(low: datetime, high: datetime, zone: ZoneInfo) -> datetime:
    """The instant of the transition in ``(low, high]``: the first instant after a skipped wall time."""
    offset = low.astimezone(zone).utcoffset()
    while high - low > timedelta(seconds=1):
        middle = low + (high - low) / 2
        if middle.astimezone(zone).utcoffset() == offset:
            low = middle
        else:
            high = middle
    return high.replace(microsecond=0)


def _micros(value: timedelta) -> int:
    return (value.days * 86_400 + value.seconds) * 1_000_000 + value.microseconds
