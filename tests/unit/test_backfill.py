"""A backfill request's steps that need no Redis (scheduler/replica/requests.py): its window, how
far back and ahead it may reach, each track's ticks to fire, and the answer it gives."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from scheduler.clock.cadence import Every
from scheduler.plan.planner import Track
from scheduler.replica.requests import (
    Refused,
    backfill_result,
    backfill_ticks,
    backfill_window,
    check_reach,
    check_tenant,
)
from scheduler.replica.tracks import TrackState
from scheduler.store.calls import Acceptance
from scheduler.table import InlineTenants, Schedule, Tenant

UTC_ZONE = ZoneInfo("UTC")
NOW = datetime(2026, 5, 17, 12, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


def hourly(tenants=("a", "b")) -> Schedule:
    return Schedule(name="hourly", cadence=Every(timedelta(hours=1)), zone=UTC_ZONE, default_zone=UTC_ZONE,
                    tenants=InlineTenants(tuple(Tenant(t) for t in tenants)) if tenants else None, job="Job",
                    queue="default", catchup_window=timedelta(hours=6))


def state(schedule: Schedule) -> TrackState:
    return TrackState(Track(schedule, UTC_ZONE), ["a", "b"])


def ms(instant: datetime) -> str:
    return str(int(instant.timestamp() * 1000))


def test_the_window_is_read_from_the_request_in_milliseconds():
    start, end = NOW - timedelta(hours=3), NOW - timedelta(hours=1)
    assert backfill_window({"from": ms(start), "until": ms(end)}) == (start, end)


@pytest.mark.parametrize("fields", [{}, {"from": "1"}, {"from": "x", "until": "2"}], ids=["empty", "no-until", "not-ms"])
def test_a_malformed_window_is_refused(fields):
    with pytest.raises(Refused, match="malformed backfill request: it needs 'from' and 'until' in ms since the epoch"):
        backfill_window(fields)


def test_a_window_reaches_back_only_as_far_as_the_dedup_records_and_ahead_at_most_a_day():
    schedule = hourly()  # catchup_window 6 h: records kept 6 h + 24 h
    horizon = NOW - timedelta(hours=30)
    check_reach(schedule, horizon, NOW, NOW)
    check_reach(schedule, NOW - timedelta(hours=1), NOW + timedelta(days=1), NOW)
    with pytest.raises(Refused) as back:
        check_reach(schedule, horizon - MINUTE, NOW, NOW)
    assert str(back.value) == (
        "--from 2026-05-16T05:59:00.000Z is too far back: the scheduler remembers which ticks of 'hourly' it fired "
        "for catchup_window + 24 h, so only ticks after 2026-05-16T06:00:00.000Z can be backfilled exactly once")
    with pytest.raises(Refused, match=r"^--until 2026-05-18T12:01:00.000Z is more than a day ahead of Redis's clock"):
        check_reach(schedule, NOW, NOW + timedelta(days=1) + MINUTE, NOW)


def test_only_ticks_up_to_the_watermark_are_backfilled_and_the_later_ones_are_left_to_the_schedule():
    track = state(hourly())
    start, end = NOW - timedelta(hours=5), NOW  # ticks 07:00 .. 12:00, both ends included
    [window] = backfill_ticks([track], [NOW - timedelta(hours=2)], start, end)
    assert window.ticks == [NOW - timedelta(hours=h) for h in (5, 4, 3, 2)]
    assert window.left == 2, "11:00 and 12:00 are the schedule's own to fire"


def test_a_track_never_handled_has_nothing_to_backfill_and_leaves_the_whole_window():
    [window] = backfill_ticks([state(hourly())], [None], NOW - timedelta(hours=2), NOW)
    assert (window.ticks, window.left) == ([], 3)


def test_a_watermark_before_the_window_backfills_nothing():
    [window] = backfill_ticks([state(hourly())], [NOW - timedelta(hours=9)], NOW - timedelta(hours=2), NOW)
    assert (window.ticks, window.left) == ([], 3)


def test_the_answer_counts_ticks_firings_and_what_is_left_and_whole_ticks_write_no_extra_line():
    track = state(hourly())
    windows = backfill_ticks([track], [NOW], NOW - timedelta(hours=2), NOW)
    accepted = Acceptance(delivered=4, pending=1, duplicates=1)
    result, line = backfill_result("1-0", hourly(), windows, None, accepted, epoch=7)
    assert result == {"status": "done", "ticks": "3", "fired": "5", "deduplicated": "1", "left": "0"}
    assert line == [], "each whole tick got its line when it was finished"


def test_a_one_tenant_backfill_writes_one_ledger_line_for_its_range():
    windows = backfill_ticks([state(hourly())], [NOW], NOW - timedelta(hours=2), NOW)
    result, line = backfill_result("1-0", hourly(), windows, "a", Acceptance(delivered=3), epoch=7)
    assert result["fired"] == "3" and result["ticks"] == "3"
    fields = dict(zip(line[::2], line[1::2]))
    assert fields == {"from": "2026-05-17T10:00:00Z", "until": "2026-05-17T12:00:00Z", "ticks": "3",
                      "outcome": "backfilled", "fired": "3", "request": "1-0", "tenant": "a", "epoch": "7"}


def test_a_tenant_is_refused_where_the_schedule_has_none_or_does_not_fan_out_to_it():
    check_tenant(hourly(), None, found=False)
    check_tenant(hourly(), "a", found=True)
    with pytest.raises(Refused, match="^schedule 'hourly' has no tenants: leave --tenant out$"):
        check_tenant(hourly(tenants=()), "a", found=False)
    with pytest.raises(Refused, match=r"^'zz' is not a tenant of schedule 'hourly' \(2 tenants, inline\)$"):
        check_tenant(hourly(), "zz", found=False)
