"""Tick maths: cron in a zone's wall clock with classic cron's DST rules, and epoch-aligned `every`.

Every expected instant below was worked out by hand in UTC from the zone's offsets:

* America/New_York  EST -05:00, EDT -04:00. 2026-03-08 02:00 EST -> 03:00 EDT (07:00Z);
                    2026-11-01 02:00 EDT -> 01:00 EST (06:00Z), so 01:00-01:59 happens twice.
* Europe/Berlin     CET +01:00, CEST +02:00. 2026-03-29 02:00 CET -> 03:00 CEST (01:00Z);
                    2026-10-25 03:00 CEST -> 02:00 CET (01:00Z), so 02:00-02:59 happens twice.
* Australia/Sydney  AEST +10:00, AEDT +11:00 (southern hemisphere).
                    2026-04-05 03:00 AEDT -> 02:00 AEST (2026-04-04 16:00Z): 02:00-02:59 twice;
                    2026-10-04 02:00 AEST -> 03:00 AEDT (2026-10-03 16:00Z): 02:00-02:59 skipped.
"""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from instants import utc, utcs

from scheduler.clock.cadence import Cron, Every, check_cron, next_tick, shortest_interval, ticks_between
from scheduler.clock.instants import EPOCH

NEW_YORK = ZoneInfo("America/New_York")
BERLIN = ZoneInfo("Europe/Berlin")
SYDNEY = ZoneInfo("Australia/Sydney")
TOKYO = ZoneInfo("Asia/Tokyo")
KOLKATA = ZoneInfo("Asia/Kolkata")
UTC_ZONE = ZoneInfo("UTC")


# -- fixed-time cron across DST ------------------------------------------------------------------

FIXED_TIME_DST = [
    # spring forward: the skipped wall time fires once, at the first instant after the gap
    pytest.param(
        "30 2 * * *", NEW_YORK, "2026-03-06T12:00Z", "2026-03-10T12:00Z",
        ["2026-03-07T07:30Z", "2026-03-08T07:00Z", "2026-03-09T06:30Z", "2026-03-10T06:30Z"],
        id="new-york-spring-forward-02:30-fires-at-03:00-EDT",
    ),
    pytest.param(
        "30 2 * * *", BERLIN, "2026-03-27T12:00Z", "2026-03-31T12:00Z",
        ["2026-03-28T01:30Z", "2026-03-29T01:00Z", "2026-03-30T00:30Z", "2026-03-31T00:30Z"],
        id="berlin-spring-forward-02:30-fires-at-03:00-CEST",
    ),
    pytest.param(
        "30 2 * * *", SYDNEY, "2026-10-01T12:00Z", "2026-10-05T12:00Z",
        ["2026-10-01T16:30Z", "2026-10-02T16:30Z", "2026-10-03T16:00Z", "2026-10-04T15:30Z"],
        id="sydney-spring-forward-in-october-02:30-fires-at-03:00-AEDT",
    ),
    # fall back: the repeated wall time fires once, at its first occurrence
    pytest.param(
        "30 1 * * *", NEW_YORK, "2026-10-30T12:00Z", "2026-11-03T12:00Z",
        ["2026-10-31T05:30Z", "2026-11-01T05:30Z", "2026-11-02T06:30Z", "2026-11-03T06:30Z"],
        id="new-york-fall-back-01:30-fires-once-at-first-occurrence",
    ),
    pytest.param(
        "30 2 * * *", BERLIN, "2026-10-23T12:00Z", "2026-10-27T12:00Z",
        ["2026-10-24T00:30Z", "2026-10-25T00:30Z", "2026-10-26T01:30Z", "2026-10-27T01:30Z"],
        id="berlin-fall-back-02:30-fires-once-at-first-occurrence",
    ),
    pytest.param(
        "30 2 * * *", SYDNEY, "2026-04-02T12:00Z", "2026-04-06T12:00Z",
        ["2026-04-02T15:30Z", "2026-04-03T15:30Z", "2026-04-04T15:30Z", "2026-04-05T16:30Z"],
        id="sydney-fall-back-in-april-02:30-fires-once-at-first-occurrence",
    ),
    # an unaffected wall time simply moves by the offset change
    pytest.param(
        "0 9 * * *", NEW_YORK, "2026-03-06T12:00Z", "2026-03-09T12:00Z",
        ["2026-03-06T14:00Z", "2026-03-07T14:00Z", "2026-03-08T13:00Z"],
        id="new-york-09:00-moves-from-14Z-to-13Z-on-spring-forward",
    ),
    # two wall times that both land on the end of the gap fire once
    pytest.param(
        "0 2,3 * * *", NEW_YORK, "2026-03-07T12:00Z", "2026-03-09T12:00Z",
        ["2026-03-08T07:00Z", "2026-03-09T06:00Z", "2026-03-09T07:00Z"],
        id="new-york-02:00-and-03:00-collapse-into-one-tick-on-spring-forward",
    ),
    # an hour *range* is fixed-time (its field does not start with '*'): 01:00 once on fall back
    pytest.param(
        "0 1-3 * * *", NEW_YORK, "2026-10-31T12:00Z", "2026-11-01T12:00Z",
        ["2026-11-01T05:00Z", "2026-11-01T07:00Z", "2026-11-01T08:00Z"],
        id="new-york-hour-range-1-3-is-fixed-time-01:00-once-on-fall-back",
    ),
]


@pytest.mark.parametrize(("expression", "zone", "start", "end", "expected"), FIXED_TIME_DST)
def test_fixed_time_cron_across_dst(expression, zone, start, end, expected):
    cadence = Cron(expression)
    assert not cadence.wildcard
    assert list(ticks_between(cadence, zone, utc(start), utc(end))) == utcs(*expected)


def test_new_york_01_30_on_fall_back_day_fires_once_not_twice():
    """croniter alone fires 01:30 twice on 2026-11-01 (05:30Z and 06:30Z); a fixed-time cron must not."""
    ticks = list(ticks_between(Cron("30 1 * * *"), NEW_YORK, utc("2026-11-01T00:00Z"), utc("2026-11-01T23:59Z")))
    assert ticks == [utc("2026-11-01T05:30Z")]


@pytest.mark.parametrize(
    ("after", "expected"),
    [
        pytest.param("2026-11-01T05:29:59Z", "2026-11-01T05:30Z", id="before-first-occurrence"),
        pytest.param("2026-11-01T05:30Z", "2026-11-02T06:30Z", id="at-first-occurrence-goes-to-next-day"),
        pytest.param("2026-11-01T06:00Z", "2026-11-02T06:30Z", id="inside-repeated-hour-skips-second-occurrence"),
    ],
)
def test_fixed_time_next_tick_never_returns_the_second_occurrence(after, expected):
    assert next_tick(Cron("30 1 * * *"), NEW_YORK, utc(after)) == utc(expected)


@pytest.mark.parametrize(
    ("after", "expected"),
    [
        pytest.param("2026-03-08T06:59:59Z", "2026-03-08T07:00Z", id="just-before-gap-fires-at-gap-end"),
        pytest.param("2026-03-08T07:00Z", "2026-03-09T06:30Z", id="at-gap-end-goes-to-next-day"),
    ],
)
def test_fixed_time_next_tick_in_spring_gap(after, expected):
    assert next_tick(Cron("30 2 * * *"), NEW_YORK, utc(after)) == utc(expected)


# -- wildcard cron across DST --------------------------------------------------------------------

WILDCARD_DST = [
    pytest.param(
        "*/15 * * * *", NEW_YORK, "2026-11-01T04:00Z", "2026-11-01T07:00Z",
        [
            "2026-11-01T04:15Z", "2026-11-01T04:30Z", "2026-11-01T04:45Z", "2026-11-01T05:00Z",
            "2026-11-01T05:15Z", "2026-11-01T05:30Z", "2026-11-01T05:45Z", "2026-11-01T06:00Z",
            "2026-11-01T06:15Z", "2026-11-01T06:30Z", "2026-11-01T06:45Z", "2026-11-01T07:00Z",
        ],
        id="new-york-fall-back-every-15-real-minutes-through-the-repeated-hour",
    ),
    pytest.param(
        "*/15 * * * *", NEW_YORK, "2026-03-08T06:00Z", "2026-03-08T08:00Z",
        [
            "2026-03-08T06:15Z", "2026-03-08T06:30Z", "2026-03-08T06:45Z", "2026-03-08T07:00Z",
            "2026-03-08T07:15Z", "2026-03-08T07:30Z", "2026-03-08T07:45Z", "2026-03-08T08:00Z",
        ],
        id="new-york-spring-forward-every-15-real-minutes-across-the-gap",
    ),
    pytest.param(
        "0 * * * *", NEW_YORK, "2026-11-01T03:30Z", "2026-11-01T07:30Z",
        ["2026-11-01T04:00Z", "2026-11-01T05:00Z", "2026-11-01T06:00Z", "2026-11-01T07:00Z"],
        id="new-york-hourly-hour-field-star-fires-01:00-twice",
    ),
    pytest.param(
        "*/30 1 * * *", NEW_YORK, "2026-10-31T12:00Z", "2026-11-02T00:00Z",
        ["2026-11-01T05:00Z", "2026-11-01T05:30Z", "2026-11-01T06:00Z", "2026-11-01T06:30Z"],
        id="new-york-minute-field-star-fixed-hour-fires-at-both-occurrences",
    ),
    pytest.param(
        "*/30 2 * * *", NEW_YORK, "2026-03-07T12:00Z", "2026-03-09T12:00Z",
        ["2026-03-09T06:00Z", "2026-03-09T06:30Z"],
        id="new-york-wildcard-never-fires-in-the-skipped-hour",
    ),
    pytest.param(
        "0 * * * *", BERLIN, "2026-03-28T23:30Z", "2026-03-29T02:30Z",
        ["2026-03-29T00:00Z", "2026-03-29T01:00Z", "2026-03-29T02:00Z"],
        id="berlin-spring-forward-hourly-follows-real-time",
    ),
    pytest.param(
        "0 * * * *", BERLIN, "2026-10-24T23:30Z", "2026-10-25T02:30Z",
        ["2026-10-25T00:00Z", "2026-10-25T01:00Z", "2026-10-25T02:00Z"],
        id="berlin-fall-back-hourly-fires-02:00-twice",
    ),
    pytest.param(
        "0 * * * *", SYDNEY, "2026-04-04T14:30Z", "2026-04-04T17:30Z",
        ["2026-04-04T15:00Z", "2026-04-04T16:00Z", "2026-04-04T17:00Z"],
        id="sydney-fall-back-in-april-hourly-fires-02:00-twice",
    ),
    pytest.param(
        "*/15 * * * *", SYDNEY, "2026-10-03T15:30Z", "2026-10-03T16:30Z",
        ["2026-10-03T15:45Z", "2026-10-03T16:00Z", "2026-10-03T16:15Z", "2026-10-03T16:30Z"],
        id="sydney-spring-forward-in-october-every-15-real-minutes",
    ),
]


@pytest.mark.parametrize(("expression", "zone", "start", "end", "expected"), WILDCARD_DST)
def test_wildcard_cron_across_dst(expression, zone, start, end, expected):
    cadence = Cron(expression)
    assert cadence.wildcard
    assert list(ticks_between(cadence, zone, utc(start), utc(end))) == utcs(*expected)


@pytest.mark.parametrize(
    ("after", "expected"),
    [
        pytest.param("2026-11-01T05:45Z", "2026-11-01T06:00Z", id="between-occurrences-goes-to-second-01:00"),
        pytest.param("2026-11-01T06:15Z", "2026-11-01T06:30Z", id="inside-second-pass-of-01:xx"),
        pytest.param("2026-11-01T06:30Z", "2026-11-02T06:00Z", id="after-second-01:30-goes-to-next-day"),
    ],
)
def test_wildcard_next_tick_inside_the_repeated_hour(after, expected):
    assert next_tick(Cron("*/30 1 * * *"), NEW_YORK, utc(after)) == utc(expected)


@pytest.mark.parametrize(
    ("expression", "wildcard"),
    [
        pytest.param("* * * * *", True, id="every-minute"),
        pytest.param("*/15 * * * *", True, id="minute-step"),
        pytest.param("0 * * * *", True, id="hour-field-star"),
        pytest.param("*/30 1 * * *", True, id="minute-field-star-fixed-hour"),
        pytest.param("0 */2 * * *", True, id="hour-field-step"),
        pytest.param("0,15,30,45 * * * *", True, id="minute-list-hour-star"),
        pytest.param("@hourly", True, id="macro-hourly"),
        pytest.param("0 3 * * *", False, id="fixed-time-daily"),
        pytest.param("0 0-23 * * *", False, id="hour-range-is-not-star"),
        pytest.param("0-59 3 * * *", False, id="minute-range-is-not-star"),
        pytest.param("30 2 * * 1-5", False, id="weekdays-only"),
        pytest.param("@daily", False, id="macro-daily"),
        pytest.param("@yearly", False, id="macro-yearly"),
    ],
)
def test_wildcard_means_minute_or_hour_field_starts_with_star(expression, wildcard):
    assert Cron(expression).wildcard is wildcard


def test_hour_range_and_hour_star_differ_on_fall_back():
    """Same wall times, different DST rule: `0 0-23` fires 01:00 once, `0 *` fires it twice."""
    start, end = utc("2026-11-01T04:30Z"), utc("2026-11-01T07:30Z")
    assert list(ticks_between(Cron("0 0-23 * * *"), NEW_YORK, start, end)) == utcs(
        "2026-11-01T05:00Z", "2026-11-01T07:00Z"
    )
    assert list(ticks_between(Cron("0 * * * *"), NEW_YORK, start, end)) == utcs(
        "2026-11-01T05:00Z", "2026-11-01T06:00Z", "2026-11-01T07:00Z"
    )


# -- calendar corner cases and macros ------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "zone", "after", "expected"),
    [
        pytest.param("0 0 29 2 *", UTC_ZONE, "2026-03-01T00:00Z", "2028-02-29T00:00Z", id="leap-day-next-is-2028"),
        pytest.param("0 0 29 2 *", UTC_ZONE, "2028-02-29T00:00Z", "2032-02-29T00:00Z", id="leap-day-after-2028-is-2032"),
        pytest.param("0 0 29 2 *", UTC_ZONE, "2096-03-01T00:00Z", "2104-02-29T00:00Z", id="leap-day-skips-2100"),
        pytest.param("@yearly", UTC_ZONE, "2026-05-17T10:20Z", "2027-01-01T00:00Z", id="yearly"),
        pytest.param("@annually", UTC_ZONE, "2026-12-31T23:59:59Z", "2027-01-01T00:00Z", id="annually"),
        pytest.param("@monthly", UTC_ZONE, "2026-05-17T10:20Z", "2026-06-01T00:00Z", id="monthly"),
        pytest.param("@weekly", UTC_ZONE, "2026-05-17T10:20Z", "2026-05-24T00:00Z", id="weekly-on-sunday"),
        pytest.param("@daily", UTC_ZONE, "2026-05-17T10:20Z", "2026-05-18T00:00Z", id="daily"),
        pytest.param("@midnight", UTC_ZONE, "2026-05-17T10:20Z", "2026-05-18T00:00Z", id="midnight"),
        pytest.param("@hourly", UTC_ZONE, "2026-05-17T10:20Z", "2026-05-17T11:00Z", id="hourly"),
        pytest.param("@daily", TOKYO, "2026-05-17T10:20Z", "2026-05-17T15:00Z", id="daily-in-tokyo-is-15Z"),
        pytest.param("@yearly", BERLIN, "2026-05-17T10:20Z", "2026-12-31T23:00Z", id="yearly-in-berlin-is-23Z"),
        pytest.param("@daily", KOLKATA, "2026-05-17T10:20Z", "2026-05-17T18:30Z", id="daily-in-kolkata-half-hour-zone"),
    ],
)
def test_next_tick_calendar_and_macros(expression, zone, after, expected):
    assert next_tick(Cron(expression), zone, utc(after)) == utc(expected)


@pytest.mark.parametrize(
    ("cadence", "after", "expected"),
    [
        pytest.param(Cron("0 * * * *"), "2026-05-17T12:00Z", "2026-05-17T13:00Z", id="cron-at-a-tick"),
        pytest.param(Cron("0 * * * *"), "2026-05-17T11:59:59.999999Z", "2026-05-17T12:00Z", id="cron-1us-before"),
        pytest.param(Every(timedelta(seconds=30)), "2026-05-17T12:00:30Z", "2026-05-17T12:01Z", id="every-at-a-tick"),
        pytest.param(
            Every(timedelta(seconds=30)), "2026-05-17T12:00:29.999999Z", "2026-05-17T12:00:30Z", id="every-1us-before"
        ),
    ],
)
def test_next_tick_is_strictly_after(cadence, after, expected):
    assert next_tick(cadence, UTC_ZONE, utc(after)) == utc(expected)


def test_ticks_between_is_open_at_start_and_closed_at_end():
    ticks = list(ticks_between(Cron("0 * * * *"), UTC_ZONE, utc("2026-05-17T10:00Z"), utc("2026-05-17T12:00Z")))
    assert ticks == utcs("2026-05-17T11:00Z", "2026-05-17T12:00Z")


def test_ticks_are_aware_utc():
    tick = next_tick(Cron("0 9 * * *"), TOKYO, utc("2026-05-17T10:20Z"))
    assert tick.utcoffset() == timedelta(0)
    assert tick == utc("2026-05-18T00:00Z")


# -- every: aligned to the Unix epoch, ignoring zones ------------------------------------------------

# 2026-05-17T00:00Z is 1778976000 s after the epoch = 4235657 * 420 + 60, so that day's 7-minute ticks
# fall at 00:06, 00:13, ...; a day is 205 * 420 + 300 s, so the next day's start at 00:01.
EVERY_7M = [
    pytest.param(
        "2026-05-17T12:50Z", "2026-05-17T13:10Z",
        ["2026-05-17T12:56Z", "2026-05-17T13:03Z", "2026-05-17T13:10Z"],
        id="across-an-hour-boundary",
    ),
    pytest.param(
        "2026-05-17T23:50Z", "2026-05-18T00:20Z",
        ["2026-05-17T23:54Z", "2026-05-18T00:01Z", "2026-05-18T00:08Z", "2026-05-18T00:15Z"],
        id="across-a-day-boundary",
    ),
    pytest.param(
        "1970-01-01T00:00Z", "1970-01-01T00:21Z",
        ["1970-01-01T00:07Z", "1970-01-01T00:14Z", "1970-01-01T00:21Z"],
        id="from-the-epoch",
    ),
]


@pytest.mark.parametrize(("start", "end", "expected"), EVERY_7M)
def test_every_7m_is_aligned_to_the_unix_epoch(start, end, expected):
    ticks = list(ticks_between(Every(timedelta(minutes=7)), UTC_ZONE, utc(start), utc(end)))
    assert ticks == utcs(*expected)
    assert all((tick - EPOCH).total_seconds() % 420 == 0 for tick in ticks)


@pytest.mark.parametrize(
    "zone",
    [
        pytest.param(NEW_YORK, id="new-york"),
        pytest.param(KOLKATA, id="kolkata-half-hour-offset"),
        pytest.param(SYDNEY, id="sydney"),
    ],
)
def test_every_ignores_zones_even_across_dst(zone):
    start, end = utc("2026-11-01T04:50Z"), utc("2026-11-01T06:10Z")  # New York falls back at 06:00Z
    expected = list(ticks_between(Every(timedelta(minutes=20)), UTC_ZONE, start, end))
    assert expected == utcs("2026-11-01T05:00Z", "2026-11-01T05:20Z", "2026-11-01T05:40Z", "2026-11-01T06:00Z")
    assert list(ticks_between(Every(timedelta(minutes=20)), zone, start, end)) == expected


@pytest.mark.parametrize(
    ("cadence", "zone", "start", "end", "count"),
    [
        pytest.param(Every(timedelta(minutes=7)), UTC_ZONE, "2026-05-17T23:50Z", "2026-05-18T00:20Z", 4, id="every-7m"),
        pytest.param(
            Every(timedelta(seconds=30)), UTC_ZONE, "2026-05-17T12:00Z", "2026-05-17T13:00Z", 120, id="every-30s-hour"
        ),
        pytest.param(Every(timedelta(seconds=30)), UTC_ZONE, "2026-05-17T12:00Z", "2026-05-17T12:00Z", 0, id="empty-window"),
        pytest.param(Cron("30 1 * * *"), NEW_YORK, "2026-10-31T12:00Z", "2026-11-02T12:00Z", 2, id="cron-fixed-fall-back"),
        pytest.param(Cron("0 * * * *"), NEW_YORK, "2026-11-01T03:30Z", "2026-11-01T07:30Z", 4, id="cron-wildcard-fall-back"),
    ],
)
def test_count_between_agrees_with_ticks_between(cadence, zone, start, end, count):
    assert cadence.count_between(utc(start), utc(end), zone) == count
    assert len(list(ticks_between(cadence, zone, utc(start), utc(end)))) == count


# -- shortest_interval and check_cron --------------------------------------------------------------


@pytest.mark.parametrize(
    ("cadence", "zone", "expected"),
    [
        pytest.param(Every(timedelta(minutes=7)), NEW_YORK, timedelta(minutes=7), id="every-is-its-period"),
        pytest.param(Cron("*/15 * * * *"), NEW_YORK, timedelta(minutes=15), id="wildcard-15m"),
        pytest.param(Cron("0 3 * * *"), UTC_ZONE, timedelta(days=1), id="daily-in-utc"),
        pytest.param(Cron("0 3 * * *"), NEW_YORK, timedelta(hours=23), id="daily-in-new-york-23h-on-spring-forward"),
        pytest.param(Cron("30 2 * * *"), NEW_YORK, timedelta(hours=23, minutes=30), id="daily-02:30-gap-end-makes-23h30m"),
        pytest.param(Cron("45 1,2 * * *"), NEW_YORK, timedelta(minutes=15), id="01:45-then-02:45-in-gap-is-15m"),
        pytest.param(Cron("0 0 29 2 *"), UTC_ZONE, timedelta(days=1461), id="leap-day-four-years"),
        pytest.param(Cron("30 2,3 * * *"), NEW_YORK, timedelta(minutes=30), id="02:30-moves-to-03:00-then-03:30"),
        pytest.param(Cron("*/40 1 * * *"), NEW_YORK, timedelta(minutes=20), id="wildcard-01:40-edt-then-01:00-est"),
        pytest.param(Cron("0 0 1 * *"), UTC_ZONE, timedelta(days=28), id="first-of-month-february-to-march"),
        pytest.param(Cron("0 0 31 * *"), UTC_ZONE, timedelta(days=31), id="31st-july-to-august"),
        pytest.param(Cron("5 4 * * sun"), UTC_ZONE, timedelta(days=7), id="weekly"),
        pytest.param(Cron("0 22 * * *"), SYDNEY, timedelta(hours=23), id="sydney-spring-forward-in-october"),
    ],
)
def test_shortest_interval(cadence, zone, expected):
    assert shortest_interval(cadence, zone, utc("2026-01-01T00:00Z")) == expected


@pytest.mark.parametrize(
    "expression",
    [
        pytest.param("0 3 * * *", id="daily"),
        pytest.param("*/15 * * * *", id="step"),
        pytest.param("0 9 * * 1-5", id="weekdays"),
        pytest.param("0 3 * jan mon-fri", id="names"),
        pytest.param("  0   3 * *  * ", id="extra-whitespace"),
        pytest.param("0 0 29 2 *", id="leap-day"),
        pytest.param("@hourly", id="macro"),
    ],
)
def test_check_cron_accepts(expression):
    assert check_cron(expression) is None


@pytest.mark.parametrize(
    ("expression", "reason"),
    [
        pytest.param("61 * * * *", "minute 61 is out of range 0-59", id="minute-61"),
        pytest.param("0 24 * * *", "hour 24 is out of range 0-23", id="hour-24"),
        pytest.param("0 0 32 * *", "day of month 32 is out of range 1-31", id="day-32"),
        pytest.param("0 0 1 13 *", "month 13 is out of range 1-12", id="month-13"),
        pytest.param("0 0 * * 8", "day of week 8 is out of range 0-7", id="weekday-8"),
        pytest.param("0 0 1-40 * *", "day of month 40 is out of range 1-31", id="range-end-out-of-range"),
        pytest.param("* * *", "has 3 fields; cron takes 5", id="three-fields"),
        pytest.param("0 0 * * * *", "has 6 fields; cron takes 5", id="six-fields-seconds-not-allowed"),
        pytest.param("", "is empty", id="empty"),
        pytest.param("   ", "is empty", id="blank"),
        pytest.param("0 0 30 2 *", "never matches a real date", id="february-30th"),
    ],
)
def test_check_cron_rejects_with_reason(expression, reason):
    message = check_cron(expression)
    assert message is not None
    assert reason in message


@pytest.mark.parametrize(
    "expression",
    [
        pytest.param("a b c d e", id="letters"),
        pytest.param("@fortnightly", id="unknown-macro"),
        pytest.param("*/0 * * * *", id="zero-step"),
    ],
)
def test_check_cron_rejects_garbage(expression):
    assert check_cron(expression)
