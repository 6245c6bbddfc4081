"""Deterministic jitter and firing ids: every replica and every dry-run computes the same values."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from scheduler.clock.cadence import Cron, Every
from scheduler.clock.firing import Firing, firing_id
from scheduler.clock.instants import format_instant, format_tick
from scheduler.clock.jitter import jitter_offset
from scheduler.plan.planner import Fanout, Track
from scheduler.table import NO_TENANT, Schedule

UTC_ZONE = ZoneInfo("UTC")
TICK = datetime(2026, 5, 18, 3, 0, tzinfo=UTC)


def schedule(jitter: timedelta, name: str = "nightly-report") -> Schedule:
    return Schedule(
        name=name, cadence=Cron("0 3 * * *"), zone=UTC_ZONE, default_zone=UTC_ZONE,
        tenants=None, job="NightlyReportJob", queue="reports", jitter=jitter,
    )


# Values computed once (blake2b of "schedule/tenant", scaled to the window in whole milliseconds) and
# frozen here: if they change, every running replica would disagree with the ones already deployed.
FROZEN = [
    pytest.param("nightly-report", "acme", timedelta(minutes=10), timedelta(minutes=8, seconds=2, milliseconds=354),
                 id="nightly-report-acme-10m"),
    pytest.param("nightly-report", "globex", timedelta(minutes=10), timedelta(minutes=1, seconds=59, milliseconds=181),
                 id="nightly-report-globex-10m"),
]


@pytest.mark.parametrize(("name", "tenant", "jitter", "expected"), FROZEN)
def test_offset_matches_the_value_frozen_once(name, tenant, jitter, expected):
    assert jitter_offset(name, tenant, jitter) == expected


def test_offset_is_the_same_on_every_call():
    offsets = {jitter_offset("nightly-report", "acme", timedelta(minutes=10)) for _ in range(100)}
    assert len(offsets) == 1


@pytest.mark.parametrize(
    ("a", "b"),
    [
        pytest.param(("nightly-report", "acme"), ("nightly-report", "globex"), id="another-tenant"),
        pytest.param(("nightly-report", "acme"), ("morning-digest", "acme"), id="another-schedule"),
    ],
)
def test_offset_depends_on_schedule_and_tenant(a, b):
    jitter = timedelta(minutes=10)
    assert jitter_offset(*a, jitter) != jitter_offset(*b, jitter)


@pytest.mark.parametrize(
    "jitter",
    [
        pytest.param(timedelta(0), id="zero"),
        pytest.param(timedelta(microseconds=999), id="below-one-millisecond"),
    ],
)
def test_no_jitter_means_offset_zero(jitter):
    assert all(jitter_offset("s", f"tenant-{i}", jitter) == timedelta(0) for i in range(100))


@pytest.mark.parametrize(
    "jitter",
    [
        pytest.param(timedelta(milliseconds=1), id="1ms"),
        pytest.param(timedelta(milliseconds=7), id="7ms"),
        pytest.param(timedelta(seconds=5), id="5s"),
        pytest.param(timedelta(minutes=10), id="10m"),
        pytest.param(timedelta(hours=23), id="23h"),
    ],
)
def test_offset_is_within_zero_and_jitter_in_whole_milliseconds(jitter):
    offsets = [jitter_offset("sync-invoices", f"tenant-{i}", jitter) for i in range(2000)]
    assert all(timedelta(0) <= offset < jitter for offset in offsets)
    assert all(offset.microseconds % 1000 == 0 for offset in offsets)


def test_offsets_are_roughly_uniform_over_ten_thousand_tenants():
    jitter = timedelta(minutes=10)
    buckets = Counter(jitter_offset("sync-invoices", f"tenant-{i}", jitter) // timedelta(minutes=1) for i in range(10_000))
    assert sorted(buckets) == list(range(10))
    assert all(800 <= count <= 1200 for count in buckets.values()), buckets


def test_a_tenants_offset_keeps_its_slot_from_tick_to_tick():
    """enqueue_at = tick + offset, with the same offset for every tick."""
    sched = schedule(timedelta(minutes=10))
    fanout = Fanout(Track(sched, UTC_ZONE), ["acme", "globex"])
    expected = {"acme": timedelta(minutes=8, seconds=2, milliseconds=354),
                "globex": timedelta(minutes=1, seconds=59, milliseconds=181)}
    for tick in (TICK, TICK + timedelta(days=1), TICK + timedelta(days=400)):
        firings = fanout.firings_at(tick)
        assert {f.tenant: f.enqueue_at - f.tick for f in firings} == expected
        assert all(f.tick == tick and not f.late for f in firings)


def test_without_jitter_enqueue_at_is_the_tick():
    fanout = Fanout(Track(schedule(timedelta(0)), UTC_ZONE), ["acme", "globex"])
    assert [f.enqueue_at for f in fanout.firings_at(TICK)] == [TICK, TICK]


def test_on_time_yields_each_tick_with_its_jittered_firings():
    sched = Schedule(
        name="sync-invoices", cadence=Every(timedelta(minutes=15)), zone=UTC_ZONE, default_zone=UTC_ZONE,
        tenants=None, job="InvoiceSync", queue="default", jitter=timedelta(minutes=5),
    )
    fanout = Fanout(Track(sched, UTC_ZONE), ["big-1", "big-2"])
    plans = list(fanout.on_time(datetime(2026, 5, 18, 0, 0, tzinfo=UTC), datetime(2026, 5, 18, 0, 30, tzinfo=UTC)))
    assert [p.tick for p in plans] == [datetime(2026, 5, 18, 0, 15, tzinfo=UTC), datetime(2026, 5, 18, 0, 30, tzinfo=UTC)]
    for plan in plans:
        assert [f.tenant for f in plan.firings] == ["big-1", "big-2"]
        for firing in plan.firings:
            assert firing.enqueue_at == plan.tick + jitter_offset("sync-invoices", firing.tenant, timedelta(minutes=5))


# -- firing ids ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("schedule_name", "tenant", "tick", "expected"),
    [
        pytest.param("nightly-report", "acme", TICK, "nightly-report/acme/2026-05-18T03:00:00Z", id="tenant"),
        pytest.param("heartbeat", NO_TENANT, datetime(2026, 5, 18, 0, 0, 30, tzinfo=UTC),
                     "heartbeat/-/2026-05-18T00:00:30Z", id="no-tenant-is-dash"),
        pytest.param("morning-digest", "acme", datetime(2026, 5, 18, 9, 0, tzinfo=ZoneInfo("Asia/Tokyo")),
                     "morning-digest/acme/2026-05-18T00:00:00Z", id="tick-given-in-tokyo-is-written-in-utc"),
    ],
)
def test_firing_id(schedule_name, tenant, tick, expected):
    assert firing_id(schedule_name, tenant, tick) == expected
    assert Firing(schedule_name, tenant, tick, tick).id == expected


@pytest.mark.parametrize(
    ("instant", "tick", "instant_text"),
    [
        pytest.param(datetime(2026, 11, 22, 3, 4, 5, 123456, tzinfo=UTC), "2026-11-22T03:04:05Z",
                     "2026-11-22T03:04:05.123Z", id="milliseconds-truncated"),
        pytest.param(datetime(2026, 11, 22, 3, 4, 5, tzinfo=UTC), "2026-11-22T03:04:05Z",
                     "2026-11-22T03:04:05.000Z", id="whole-second"),
        pytest.param(datetime(2026, 11, 1, 1, 30, tzinfo=ZoneInfo("America/New_York")), "2026-11-01T05:30:00Z",
                     "2026-11-01T05:30:00.000Z", id="new-york-first-01:30-is-05:30Z"),
    ],
)
def test_format_tick_and_instant_are_utc_with_z(instant, tick, instant_text):
    assert format_tick(instant) == tick
    assert format_instant(instant) == instant_text
