"""Cron fields read as classic (ISC/Vixie) cron reads them, and refused in our own words.

Calendar used below (UTC): 2026-05-01 is a Friday, so May's Mondays are the 4th, 11th, 18th and 25th
and its Wednesdays the 6th, 13th and 20th; June's Mondays are the 1st, 8th, 15th, 22nd and 29th;
July's the 6th, 13th, 20th and 27th. The 15ths of 2026 fall on Thu, Sun, Sun, Wed, Fri, Mon, Wed,
Sat, Tue, Thu, Sun, Tue (January to December).
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from itertools import islice
from zoneinfo import ZoneInfo

import pytest
from instants import utc, utcs

from scheduler.clock.cadence import Cron, check_cron, next_tick, ticks_between

UTC_ZONE = ZoneInfo("UTC")


# -- how fields are read ---------------------------------------------------------------------------

READINGS = [
    pytest.param(
        "0 12 * * 3-3", "2026-05-01T00:00Z", "2026-05-21T00:00Z",
        ["2026-05-06T12:00Z", "2026-05-13T12:00Z", "2026-05-20T12:00Z"],
        id="equal-weekday-range-is-one-day-wednesdays-only",
    ),
    pytest.param(
        "45 1-1 * * *", "2026-05-17T00:00Z", "2026-05-20T00:00Z",
        ["2026-05-17T01:45Z", "2026-05-18T01:45Z", "2026-05-19T01:45Z"],
        id="equal-hour-range-is-one-hour-once-a-day",
    ),
    pytest.param(
        "0 0 1 FEB-FEB *", "2026-01-15T00:00Z", "2028-12-31T00:00Z",
        ["2026-02-01T00:00Z", "2027-02-01T00:00Z", "2028-02-01T00:00Z"],
        id="equal-month-name-range-is-one-month-once-a-year",
    ),
    pytest.param(
        "0 1-1,5 * * *", "2026-05-17T00:00Z", "2026-05-18T23:59Z",
        ["2026-05-17T01:00Z", "2026-05-17T05:00Z", "2026-05-18T01:00Z", "2026-05-18T05:00Z"],
        id="equal-range-inside-a-list-01:00-and-05:00",
    ),
    pytest.param(
        "0 12 */2 * 1", "2026-06-01T00:00Z", "2026-08-01T00:00Z",
        ["2026-06-01T12:00Z", "2026-06-15T12:00Z", "2026-06-29T12:00Z", "2026-07-13T12:00Z", "2026-07-27T12:00Z"],
        id="day-of-month-starts-with-star-both-must-match-odd-mondays-only",
    ),
    pytest.param(
        "0 12 15 * */2", "2026-01-01T00:00Z", "2027-01-01T00:00Z",
        [
            "2026-01-15T12:00Z", "2026-02-15T12:00Z", "2026-03-15T12:00Z", "2026-08-15T12:00Z",
            "2026-09-15T12:00Z", "2026-10-15T12:00Z", "2026-11-15T12:00Z", "2026-12-15T12:00Z",
        ],
        id="day-of-week-starts-with-star-both-must-match-15ths-on-sun-tue-thu-sat",
    ),
    pytest.param(
        "0 12 1,15 * 1", "2026-05-01T00:00Z", "2026-06-01T00:00Z",
        [
            "2026-05-01T12:00Z", "2026-05-04T12:00Z", "2026-05-11T12:00Z",
            "2026-05-15T12:00Z", "2026-05-18T12:00Z", "2026-05-25T12:00Z",
        ],
        id="both-day-fields-restricted-either-fires-1st-15th-and-mondays",
    ),
    pytest.param(
        "0 12 * * 1", "2026-05-01T00:00Z", "2026-06-01T00:00Z",
        ["2026-05-04T12:00Z", "2026-05-11T12:00Z", "2026-05-18T12:00Z", "2026-05-25T12:00Z"],
        id="day-of-month-star-mondays-only",
    ),
    pytest.param(
        "0 12 1-3 * MON", "2026-06-01T00:00Z", "2026-06-16T00:00Z",
        ["2026-06-01T12:00Z", "2026-06-02T12:00Z", "2026-06-03T12:00Z", "2026-06-08T12:00Z", "2026-06-15T12:00Z"],
        id="first-days-or-mondays-not-the-first-monday",
    ),
    pytest.param(
        "0 0 * * 7", "2026-05-01T00:00Z", "2026-05-18T00:00Z",
        ["2026-05-03T00:00Z", "2026-05-10T00:00Z", "2026-05-17T00:00Z"],
        id="weekday-7-is-sunday",
    ),
    pytest.param(
        "0 0 * * Fri,sat,SUN", "2026-04-30T12:00Z", "2026-05-05T00:00Z",
        ["2026-05-01T00:00Z", "2026-05-02T00:00Z", "2026-05-03T00:00Z"],
        id="weekday-names-in-any-case",
    ),
    pytest.param(
        "0 0 * * 5-7", "2026-04-30T12:00Z", "2026-05-05T00:00Z",
        ["2026-05-01T00:00Z", "2026-05-02T00:00Z", "2026-05-03T00:00Z"],
        id="weekday-range-up-to-7-ends-on-sunday",
    ),
    pytest.param(
        "10-30/10 9-17/4 * * *", "2026-05-17T00:00Z", "2026-05-17T23:59Z",
        [
            "2026-05-17T09:10Z", "2026-05-17T09:20Z", "2026-05-17T09:30Z",
            "2026-05-17T13:10Z", "2026-05-17T13:20Z", "2026-05-17T13:30Z",
            "2026-05-17T17:10Z", "2026-05-17T17:20Z", "2026-05-17T17:30Z",
        ],
        id="ranges-with-steps",
    ),
    pytest.param(
        "0 0 1 jan-dec/5 *", "2025-12-31T12:00Z", "2026-12-31T00:00Z",
        ["2026-01-01T00:00Z", "2026-06-01T00:00Z", "2026-11-01T00:00Z"],
        id="month-name-range-with-a-step",
    ),
]


@pytest.mark.parametrize(("expression", "start", "end", "expected"), READINGS)
def test_fields_read_as_classic_cron(expression, start, end, expected):
    assert check_cron(expression) is None
    assert list(ticks_between(Cron(expression), UTC_ZONE, utc(start), utc(end))) == utcs(*expected)


@pytest.mark.parametrize(
    ("expression", "wildcard"),
    [
        pytest.param("@hourly", True, id="hourly-is-0-star-so-wildcard"),
        pytest.param("@daily", False, id="daily-is-fixed-time"),
        pytest.param("@midnight", False, id="midnight-is-fixed-time"),
        pytest.param("@weekly", False, id="weekly-is-fixed-time"),
        pytest.param("0 */2 * * *", True, id="hour-step-on-star"),
        pytest.param("*,5 3 * * *", True, id="list-starting-with-star"),
        pytest.param("0 0-23/2 * * *", False, id="hour-range-step-is-not-star"),
        pytest.param("5 3 */2 * *", False, id="star-in-a-day-field-only"),
    ],
)
def test_wildcard_is_read_from_the_minute_and_hour_fields(expression, wildcard):
    assert Cron(expression).wildcard is wildcard


@pytest.mark.parametrize(
    ("expression", "after", "expected"),
    [
        pytest.param("@weekly", "2026-05-17T10:20Z", "2026-05-24T00:00Z", id="weekly-is-sunday-midnight"),
        pytest.param("@DAILY", "2026-05-17T10:20Z", "2026-05-18T00:00Z", id="macros-in-any-case"),
        pytest.param("@annually", "2026-05-17T10:20Z", "2027-01-01T00:00Z", id="annually-is-yearly"),
    ],
)
def test_macros(expression, after, expected):
    assert next_tick(Cron(expression), UTC_ZONE, utc(after)) == utc(expected)


# -- refusals, in our words ----------------------------------------------------------------------

REFUSALS = [
    # ranges run upward
    pytest.param("0 22-2 * * *", "hour range 22-2 runs backwards; cron ranges run upward: write 22-23,0-2",
                 id="reversed-hour-range"),
    pytest.param("0 0 * * FRI-MON",
                 "day of week range FRI-MON runs backwards; cron ranges run upward: write FRI-SAT,SUN-MON",
                 id="reversed-weekday-names"),
    pytest.param("0 0 1 NOV-FEB *", "month range NOV-FEB runs backwards; cron ranges run upward: write NOV-DEC,JAN-FEB",
                 id="reversed-month-names"),
    pytest.param("50-10/5 * * * *", "minute range 50-10 runs backwards; cron ranges run upward: write 50-59,0-10",
                 id="reversed-range-with-step"),
    pytest.param("0 0 * * fri-sun",
                 "day of week range fri-sun runs backwards; cron ranges run upward: write FRI-SAT,SUN",
                 id="reversed-to-sunday-which-is-0"),
    pytest.param("0 0 * * 7-2", "day of week range 7-2 runs backwards; cron ranges run upward: write 7,0-2",
                 id="reversed-from-sunday-7"),
    # steps
    pytest.param("5/10 * * * *", "minute 5/10: a step needs a range or *: write 5-59/10", id="step-on-a-single-value"),
    pytest.param("0 0 * * MON/2", "day of week MON/2: a step needs a range or *: write MON-SAT/2",
                 id="step-on-a-single-name"),
    pytest.param("0 0 1 feb/3 *", "month feb/3: a step needs a range or *: write FEB-DEC/3",
                 id="step-on-a-lower-case-name"),
    pytest.param("*/0 * * * *", "minute */0: a step must be 1 or more", id="zero-step-on-star"),
    pytest.param("0 1-5/0 * * *", "hour 1-5/0: a step must be 1 or more", id="zero-step-on-range"),
    pytest.param("0 0 */x * *", "day of month step 'x' is not a number", id="step-not-a-number"),
    # out of range
    pytest.param("61 * * * *", "minute 61 is out of range 0-59", id="minute-61"),
    pytest.param("0 0 0 * *", "day of month 0 is out of range 1-31", id="day-of-month-0"),
    pytest.param("0 0 * 0 *", "month 0 is out of range 1-12", id="month-0"),
    pytest.param("0 0 * * 1-8", "day of week 8 is out of range 0-7", id="range-end-out-of-range"),
    # extensions
    pytest.param("0 0 L * *", "day of month L: the cron extensions L, W, #, ? and H are not supported",
                 id="last-day-of-month"),
    pytest.param("0 0 15W * *", "day of month 15W: the cron extensions L, W, #, ? and H are not supported",
                 id="nearest-weekday"),
    pytest.param("0 0 LW * *", "day of month LW: the cron extensions L, W, #, ? and H are not supported",
                 id="last-weekday"),
    pytest.param("0 0 * * 1#2", "day of week 1#2: the cron extensions L, W, #, ? and H are not supported",
                 id="nth-weekday"),
    pytest.param("0 0 * * 5l", "day of week 5l: the cron extensions L, W, #, ? and H are not supported",
                 id="last-friday-lower-case"),
    pytest.param("0 0 ? * 1", "day of month ?: the cron extensions L, W, #, ? and H are not supported",
                 id="question-mark"),
    pytest.param("H * * * *", "minute H: the cron extensions L, W, #, ? and H are not supported", id="jenkins-hash"),
    # names only in their own field
    pytest.param("0 0 * * JAN", "day of week 'JAN' is not a number or a day name (SUN-SAT)",
                 id="month-name-as-weekday"),
    pytest.param("0 0 * MON *", "month 'MON' is not a number or a month name (JAN-DEC)", id="weekday-name-as-month"),
    pytest.param("0 0 MON * *", "day of month 'MON' is not a number", id="name-in-day-of-month"),
    pytest.param("0 0 * * MONDAY", "day of week 'MONDAY' is not a number or a day name (SUN-SAT)",
                 id="long-weekday-name"),
    # shape
    pytest.param("1,,2 * * * *", "minute 1,,2 has an empty item in its list", id="empty-list-item"),
    pytest.param("1-2-3 * * * *", "minute '1-2-3' is not a number, a range or a step", id="double-range"),
    pytest.param("-5 * * * *", "minute '-5' is not a number, a range or a step", id="negative"),
    pytest.param("a b c d e", "minute 'a' is not a number", id="letters"),
    pytest.param("0 0 * * * *", "has 6 fields; cron takes 5 (minute hour day-of-month month day-of-week) or a macro",
                 id="six-fields"),
    pytest.param("  ", "is empty", id="blank"),
    # macros
    pytest.param("@reboot", "@reboot has no tick: the scheduler runs schedules at times, not at start-up", id="reboot"),
    pytest.param("@fortnightly",
                 "unknown macro '@fortnightly'; the macros are @yearly, @annually, @monthly, @weekly, @daily, "
                 "@midnight, @hourly",
                 id="unknown-macro"),
    # dates that do not exist, when the day of month alone decides
    pytest.param("0 0 31 4,6 *", "never matches a real date", id="31st-of-april-and-june"),
    pytest.param("0 0 30 2 */2", "never matches a real date", id="february-30th-weekday-step"),
]


@pytest.mark.parametrize(("expression", "message"), REFUSALS)
def test_refused_with_our_message(expression, message):
    assert check_cron(expression) == message


def test_february_30th_or_a_monday_fires_on_february_mondays():
    """Both day fields restricted: the 30th never comes in February, the Mondays do."""
    ticks = list(ticks_between(Cron("0 0 30 2 1"), UTC_ZONE, utc("2026-01-01T00:00Z"), utc("2026-03-01T00:00Z")))
    assert ticks == utcs("2026-02-02T00:00Z", "2026-02-09T00:00Z", "2026-02-16T00:00Z", "2026-02-23T00:00Z")


_PIECES = ["*", "/", "-", ",", "0", "1", "5", "7", "12", "24", "31", "60", "L", "W", "#", "?", "H", "MON", "jan", "x"]


def test_no_input_leaks_croniter_or_crashes():
    """Whatever is written, the reason is ours; whatever is accepted, has a next tick."""
    rng = random.Random(20260517)
    for _ in range(2000):
        fields = ["".join(rng.choices(_PIECES, k=rng.randint(1, 4))) for _ in range(rng.choice((4, 5, 5, 5, 6)))]
        expression = " ".join(fields)
        reason = check_cron(expression)
        if reason is None:
            assert next_tick(Cron(expression), UTC_ZONE, utc("2026-05-17T00:00Z")) > utc("2026-05-17T00:00Z")
        else:
            assert not any(word in reason for word in ("acceptable", "columns", "croniter", "[", "Cron")), reason


# -- a reference: classic cron's rules, straight from the field sets, against Cron.after ----------

BOUNDS = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 7))
NAMES = {
    3: (1, "JAN FEB MAR APR MAY JUN JUL AUG SEP OCT NOV DEC".split()),
    4: (0, "SUN MON TUE WED THU FRI SAT".split()),
}
# How often each field is '*', '*/n' or a list of values and ranges (weights, per field).
FORMS = ((1, 2, 7), (1, 2, 7), (4, 2, 4), (6, 1, 3), (4, 2, 4))
MONTH_LENGTHS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
REFERENCE_START = utc("2027-12-01T00:00Z")  # the window holds 29 February 2028
REFERENCE_END = REFERENCE_START + timedelta(days=400)
REFERENCE_TICKS = 150


@dataclass
class Written:
    """A generated expression and the values each of its fields names, worked out independently."""

    fields: list[str]
    values: list[set[int]]

    @property
    def expression(self) -> str:
        return " ".join(self.fields)

    @property
    def day_or(self) -> bool:
        return not (self.fields[2].startswith("*") or self.fields[4].startswith("*"))

    def matches_day(self, day: date) -> bool:
        _, _, days, months, weekdays = self.values
        by_date, by_weekday = day.day in days, day.isoweekday() % 7 in weekdays
        return day.month in months and ((by_date or by_weekday) if self.day_or else (by_date and by_weekday))

    def possible(self) -> bool:
        """Some day exists that matches (with AND, the day of month must exist in one of the months)."""
        return self.day_or or any(day <= MONTH_LENGTHS[month - 1] for day in self.values[2] for month in self.values[3])


def spell(value: int, index: int, rng: random.Random) -> str:
    if index in NAMES and rng.random() < 0.4:
        first, names = NAMES[index]
        if first <= value < first + len(names):
            return rng.choice((str.upper, str.lower, str.title))(names[value - first])
    return str(value)


def random_item(index: int, rng: random.Random) -> tuple[str, set[int]]:
    low, high = BOUNDS[index]
    start = rng.randint(low, high)
    kind = rng.choice(("value", "range", "equal-range", "range-step"))
    if kind == "value":
        return spell(start, index, rng), {start}
    stop = start if kind == "equal-range" else rng.randint(start, high)
    text = f"{spell(start, index, rng)}-{spell(stop, index, rng)}"
    if kind != "range-step":
        return text, set(range(start, stop + 1))
    step = rng.randint(1, high - low + 1)
    return f"{text}/{step}", set(range(start, stop + 1, step))


def random_field(index: int, rng: random.Random) -> tuple[str, set[int]]:
    low, high = BOUNDS[index]
    form = rng.choices(("star", "star-step", "list"), weights=FORMS[index])[0]
    if form == "star":
        text, values = "*", set(range(low, high + 1))
    elif form == "star-step":
        step = rng.randint(1, high - low)
        text, values = f"*/{step}", set(range(low, high + 1, step))
    else:
        items = [random_item(index, rng) for _ in range(rng.choice((1, 1, 2, 3)))]
        text, values = ",".join(text for text, _ in items), set().union(*(values for _, values in items))
    return text, ({value % 7 for value in values} if index == 4 else values)


def random_written(rng: random.Random) -> Written:
    fields = [random_field(index, rng) for index in range(5)]
    return Written([text for text, _ in fields], [values for _, values in fields])


def classic_ticks(written: Written, start: datetime, end: datetime, limit: int) -> list[datetime]:
    """The times in ``(start, end]`` that classic cron fires at, day by day, up to ``limit`` of them."""
    times = sorted(time(hour, minute) for hour in written.values[1] for minute in written.values[0])
    ticks: list[datetime] = []
    day = start.date()
    while day <= end.date() and len(ticks) < limit:
        if written.matches_day(day):
            ticks += [tick for tick in (datetime.combine(day, at, UTC) for at in times) if start < tick <= end]
        day += timedelta(days=1)
    return ticks[:limit]


REFERENCE_CASES = [random_written(random.Random(seed)) for seed in range(400)]


def test_reference_cases_cover_every_form():
    """The generated expressions hold what the reference is meant to check."""
    texts = [written.expression for written in REFERENCE_CASES]
    assert sum(written.day_or for written in REFERENCE_CASES) >= 50
    assert sum(not written.day_or and written.fields[2] != "*" for written in REFERENCE_CASES) >= 50
    for piece in (",", "/", "*/", "MON", "mon", "Jan"):
        assert any(piece in text for text in texts), piece
    assert any(re.search(r"\b7\b", written.fields[4]) for written in REFERENCE_CASES), "7 for Sunday"
    assert any(re.search(r"\b(\d+)-\1\b", text) for text in texts), "an equal range"


@pytest.mark.parametrize("written", REFERENCE_CASES, ids=lambda written: written.expression)
def test_cron_after_agrees_with_classic_cron(written):
    expression = written.expression
    if not written.possible():
        assert check_cron(expression) == "never matches a real date"
        return
    assert check_cron(expression) is None
    cron = Cron(expression)
    assert cron.wildcard is (written.fields[0].startswith("*") or written.fields[1].startswith("*"))
    actual = list(islice(ticks_between(cron, UTC_ZONE, REFERENCE_START, REFERENCE_END), REFERENCE_TICKS))
    assert actual == classic_ticks(written, REFERENCE_START, REFERENCE_END, REFERENCE_TICKS)
