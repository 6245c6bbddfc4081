"""When a schedule is due: cron (in a wall-clock zone, with classic cron's DST rules) or ``every``.

Every function here is pure: instants go in and out as aware UTC datetimes, nothing reads a clock.

DST follows ISC/Vixie cron (docs/cron.md, "Daylight saving time"):

* a *wildcard* cron (minute or hour field starting with ``*``) follows real elapsed time: it fires
  at every real occurrence of a matching wall-clock time, so twice in a repeated hour and never in
  a skipped one;
* any other cron is *fixed-time*: a skipped wall-clock time fires once, at the first instant after
  the gap; a repeated one fires once, at its first occurrence.

``cronfields`` reads the five fields as classic cron does and spells them in a form croniter cannot
misread; croniter walks the naive wall-clock times that form matches; this module maps each
wall-clock match to the real instants it names.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from croniter import croniter

from scheduler.clock.cronfields import CronError, CronFields, parse_cron
from scheduler.clock.instants import EPOCH
from scheduler.durations import format_duration

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
        return f"every {format_duration(self.period)}"


@dataclass(frozen=True)
class Cron:
    """A five-field cron expression (or a macro such as ``@daily``), evaluated in a zone's wall clock."""

    expression: str

    @property
    def wildcard(self) -> bool:
        """True when the minute or hour field (after expanding a macro) starts with ``*``."""
        return parse_cron(self.expression).wildcard

    def after(self, instant: datetime, zone: ZoneInfo) -> Iterator[datetime]:
        """Every tick strictly after ``instant``, in order, as aware UTC datetimes."""
        fields = parse_cron(self.expression)
        wildcard = fields.wildcard
        start = instant.astimezone(zone).replace(tzinfo=None) - _FOLD_MARGIN
        wall = croniter(fields.canonical, start, day_or=fields.day_or)
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
    wall = _wall_shortest(parse_cron(expression))
    shortest = wall
    for change, shift in _offset_changes(zone, start, start + DST_SCAN):
        # Only ticks within a shift of the change move, and by at most the shift; a gap that could end
        # up shorter than `wall` therefore lies within `wall + 2 * shift` of it (an hour more for safety).
        reach = wall + 2 * shift + timedelta(hours=1)
        ticks = list(ticks_between(cron, zone, change - reach, change + reach))
        shortest = min([shortest, *(later - earlier for earlier, later in zip(ticks, ticks[1:]))])
    return shortest


@lru_cache(maxsize=1024)
def _wall_shortest(fields: CronFields) -> timedelta:
    """The shortest gap between ticks on a wall clock without DST.

    Every matching day has the same times of day, so the gap is the shortest of: two times on one day,
    and the last time of a day to the first of the nearest next matching day.
    """
    times = [hour * 60 + minute for hour in fields.hours for minute in fields.minutes]
    within_day = min((b - a for a, b in zip(times, times[1:])), default=None)
    day_gap = _shortest_day_gap(fields)
    across_days = timedelta(days=day_gap, minutes=times[0] - times[-1]) if day_gap else timedelta.max
    return min(across_days, timedelta(minutes=within_day)) if within_day is not None else across_days


def _shortest_day_gap(fields: CronFields) -> int | None:
    """The fewest days between two matching days in _DAY_SCAN_YEARS from 2000 (None: fewer than two)."""
    day, end, one = date(2000, 1, 1), date(2000 + _DAY_SCAN_YEARS, 1, 1), timedelta(days=1)
    previous: date | None = None
    shortest: int | None = None
    while day < end and shortest != 1:
        if fields.matches_day(day):
            if previous is not None:
                gap = (day - previous).days
                shortest = gap if shortest is None else min(shortest, gap)
            previous = day
        day += one
    return shortest


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
    try:
        parse_cron(expression)
    except CronError as error:
        return str(error)
    return None


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
