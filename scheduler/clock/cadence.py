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
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from croniter import croniter

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
FIELD_NAMES = ("minute", "hour", "day of month", "month", "day of week")
FIELD_RANGES = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 7))
# How far before an instant the wall-clock scan starts, so a repeated hour is never half-seen.
_FOLD_MARGIN = timedelta(hours=3)


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


def shortest_interval(cadence: Cadence, zone: ZoneInfo, start: datetime, samples: int = 1000) -> timedelta:
    """The shortest gap between consecutive ticks, from a sample of ``samples`` ticks after ``start``."""
    if isinstance(cadence, Every):
        return cadence.period
    ticks = cadence.after(start, zone)
    previous = next(ticks)
    shortest = timedelta.max
    for _, tick in zip(range(samples), ticks):
        shortest = min(shortest, tick - previous)
        previous = tick
    return shortest


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
