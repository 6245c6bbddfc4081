"""The catch-up planner: which firings a leader enqueues when it handles a track at `now`.

The contract (docs/schedules.md, "Catch-up and jitter"): a firing is *late* when it is handled more than `misfire_grace`
after its `enqueue_at`; late firings follow the policy (`all`, `latest` only the most recent, `none`),
`catchup_window` bounds both `all` and `latest`, and whatever is dropped is counted.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from scheduler.clock.cadence import Cron, Every, next_tick, ticks_between
from scheduler.clock.jitter import jitter_offset
from scheduler.plan.planner import Fanout, Track, tracks_of
from scheduler.table import NO_TENANT, CatchUp, InlineTenants, RedisSetTenants, Schedule, Tenant

UTC_ZONE = ZoneInfo("UTC")
TOKYO = ZoneInfo("Asia/Tokyo")
BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")

T0 = datetime(2026, 5, 17, 12, 0, tzinfo=UTC)  # the watermark of most scenarios: a tick of every 30s


def at(text: str) -> datetime:
    """'12:00:30' on 2026-05-17, or a full '2026-11-01T05:30' timestamp, in UTC."""
    if "T" in text:
        return datetime.fromisoformat(text).replace(tzinfo=UTC)
    return datetime.fromisoformat(f"2026-05-17T{text}").replace(tzinfo=UTC)


def schedule(
    catchup: CatchUp = CatchUp.LATEST,
    *,
    name: str = "heartbeat",
    cadence=Every(timedelta(seconds=30)),
    zone: ZoneInfo | None = UTC_ZONE,
    tenants=None,
    jitter: timedelta = timedelta(0),
    grace: timedelta = timedelta(seconds=60),
    window: timedelta = timedelta(hours=24),
) -> Schedule:
    return Schedule(
        name=name, cadence=cadence, zone=zone, default_zone=UTC_ZONE, tenants=tenants, job="Job",
        queue="default", jitter=jitter, catchup=catchup, catchup_window=window, misfire_grace=grace,
    )


def plan(sched: Schedule, watermark: datetime | None, now: datetime, tenants=(NO_TENANT,), zone=UTC_ZONE):
    return Fanout(Track(sched, zone), list(tenants)).catch_up(watermark, now)


def kept(p) -> list[tuple[str, str, bool]]:
    """(tenant, tick as HH:MM:SS, late) for every firing the plan enqueues."""
    return [(f.tenant, f.tick.strftime("%H:%M:%S"), f.late) for f in p.firings]


ALL_POLICIES = [pytest.param(policy, id=policy.value) for policy in CatchUp]


# -- a healthy leader and short failovers make nothing late -----------------------------------------


@pytest.mark.parametrize("policy", ALL_POLICIES)
@pytest.mark.parametrize(
    ("now", "expected"),
    [
        pytest.param("12:00:35", [("-", "12:00:30", False)], id="one-tick-5s-ago"),
        pytest.param("12:01:05", [("-", "12:00:30", False), ("-", "12:01:00", False)], id="failover-of-35s"),
        pytest.param("12:00:29", [], id="no-tick-due-yet"),
    ],
)
def test_a_failover_of_a_few_seconds_makes_nothing_late(policy, now, expected):
    p = plan(schedule(policy), T0, at(now))
    assert kept(p) == expected
    assert p.skipped == 0 and p.skipped_ticks == [] and p.late == 0


def test_jitter_counts_from_enqueue_at_not_from_the_tick():
    """A tick 90s old is not late for a tenant whose offset makes its enqueue_at 50s ago."""
    sched = schedule(CatchUp.NONE, name="nightly-report", cadence=Cron("0 * * * *"), jitter=timedelta(minutes=10))
    now = at("12:05:00")
    # acme's enqueue_at is 12:08:02.354 (future), globex's 12:01:59.181 (3m01s ago: late)
    p = plan(sched, at("11:00:00"), now, tenants=["acme", "globex"])
    assert kept(p) == [("acme", "12:00:00", False)]
    assert p.skipped == 1
    firing = next(iter(p.firings))
    assert firing.enqueue_at == at("12:00:00") + jitter_offset("nightly-report", "acme", timedelta(minutes=10))


# -- misfire_grace decides what is late --------------------------------------------------------------


@pytest.mark.parametrize(
    ("policy", "grace", "expected", "skipped"),
    [
        pytest.param(CatchUp.NONE, timedelta(seconds=60), [], 1, id="none-70s-old-grace-60s-late-and-skipped"),
        pytest.param(CatchUp.NONE, timedelta(seconds=90), [("-", "12:05:00", False)], 0, id="none-grace-90s-kept"),
        pytest.param(CatchUp.LATEST, timedelta(seconds=60), [("-", "12:05:00", True)], 0, id="latest-grace-60s-late"),
        pytest.param(CatchUp.LATEST, timedelta(seconds=90), [("-", "12:05:00", False)], 0, id="latest-grace-90s-on-time"),
        pytest.param(CatchUp.ALL, timedelta(seconds=60), [("-", "12:05:00", True)], 0, id="all-grace-60s-late"),
        pytest.param(CatchUp.ALL, timedelta(seconds=90), [("-", "12:05:00", False)], 0, id="all-grace-90s-on-time"),
    ],
)
def test_misfire_grace_makes_a_tick_late_or_not(policy, grace, expected, skipped):
    sched = schedule(policy, name="usage-rollup", cadence=Every(timedelta(minutes=5)), grace=grace)
    p = plan(sched, at("12:00:00"), at("12:06:10"))  # the 12:05 tick is handled 70s after enqueue_at
    assert kept(p) == expected
    assert p.skipped == skipped
    assert p.watermark == at("12:05:00")


# -- an outage of an hour, policy by policy -------------------------------------------------------------


def test_outage_with_catchup_all_keeps_every_tick_within_the_window():
    p = plan(schedule(CatchUp.ALL), T0, at("13:00:05"))
    assert len(p.ticks) == 120
    assert p.late == 118  # 12:00:30 .. 12:59:00; 12:59:30 and 13:00:00 are within the grace
    assert kept(p)[0] == ("-", "12:00:30", True)
    assert kept(p)[-3:] == [("-", "12:59:00", True), ("-", "12:59:30", False), ("-", "13:00:00", False)]
    assert p.skipped == 0 and p.skipped_ticks == []
    assert p.watermark == at("13:00:00")


def test_outage_with_catchup_latest_keeps_only_the_most_recent_late_tick():
    p = plan(schedule(CatchUp.LATEST), T0, at("13:00:05"))
    assert kept(p) == [("-", "12:59:00", True), ("-", "12:59:30", False), ("-", "13:00:00", False)]
    assert p.skipped == 117
    assert p.skipped_ticks == [at("12:00:30"), at("12:58:30")]
    assert p.watermark == at("13:00:00")


def test_outage_with_catchup_none_keeps_no_late_tick():
    p = plan(schedule(CatchUp.NONE), T0, at("13:00:05"))
    assert kept(p) == [("-", "12:59:30", False), ("-", "13:00:00", False)]
    assert p.skipped == 118
    assert p.skipped_ticks == [at("12:00:30"), at("12:59:00")]
    assert p.watermark == at("13:00:00")


def test_catchup_window_limits_all():
    p = plan(schedule(CatchUp.ALL, window=timedelta(minutes=2)), T0, at("12:10:05"))
    # the window starts at 12:08:05: 12:08:30 and 12:09:00 are late but inside it
    assert kept(p) == [
        ("-", "12:08:30", True), ("-", "12:09:00", True), ("-", "12:09:30", False), ("-", "12:10:00", False),
    ]
    assert p.skipped == 16  # 12:00:30 .. 12:08:00
    assert p.skipped_ticks == [at("12:00:30"), at("12:08:00")]
    assert p.watermark == at("12:10:00")


def test_catchup_window_limits_latest_too():
    # the window starts at 12:09:05: the most recent late tick, 12:09:00, is older than that
    p = plan(schedule(CatchUp.LATEST, window=timedelta(seconds=60)), T0, at("12:10:05"))
    assert kept(p) == [("-", "12:09:30", False), ("-", "12:10:00", False)]
    assert p.skipped == 18  # 12:00:30 .. 12:09:00


WEEKLY = Cron("0 3 * * 1")  # Mondays 03:00


@pytest.mark.parametrize(
    ("window", "expected", "skipped"),
    [
        pytest.param(timedelta(hours=24), [], 3, id="older-than-the-window-is-skipped"),
        pytest.param(timedelta(hours=72), [("acme", "03:00:00", True), ("globex", "03:00:00", True),
                                            ("initech", "03:00:00", True)], 0, id="within-the-window-is-delivered"),
    ],
)
def test_latest_after_a_50_hour_outage_delivers_a_weekly_tick_only_within_the_window(window, expected, skipped):
    monday = at("2026-11-23T03:00")
    p = plan(schedule(CatchUp.LATEST, cadence=WEEKLY, window=window), monday - timedelta(days=7),
             monday + timedelta(hours=50), tenants=["acme", "globex", "initech"])
    assert kept(p) == expected
    assert p.skipped == skipped
    assert p.watermark == monday, "handled either way: the tick is never planned again"


@pytest.mark.parametrize(
    ("tenants", "skipped"),
    [
        pytest.param([NO_TENANT], 118, id="no-tenants"),
        pytest.param(["acme", "globex", "initech"], 354, id="three-tenants-count-three-firings-a-tick"),
    ],
)
def test_skipped_counts_firings_not_ticks(tenants, skipped):
    p = plan(schedule(CatchUp.NONE), T0, at("13:00:05"), tenants=tenants)
    assert p.skipped == skipped
    assert len(list(p.firings)) == 2 * len(tenants)


# -- per tenant, with jitter --------------------------------------------------------------------------

# "nightly-report" with a 10m jitter: acme's offset is 8m02.354s, globex's 1m59.181s (see test_jitter).
# At 12:05, the 12:00 tick is late for globex (enqueue_at 12:01:59) but not for acme (12:08:02).
PER_TENANT = [
    pytest.param(
        CatchUp.ALL,
        [("acme", "10:00:00", True), ("globex", "10:00:00", True),
         ("acme", "11:00:00", True), ("globex", "11:00:00", True),
         ("acme", "12:00:00", False), ("globex", "12:00:00", True)],
        0,
        id="all-keeps-everything",
    ),
    pytest.param(
        CatchUp.LATEST,
        [("acme", "11:00:00", True), ("acme", "12:00:00", False), ("globex", "12:00:00", True)],
        3,
        id="latest-is-per-tenant",
    ),
    pytest.param(CatchUp.NONE, [("acme", "12:00:00", False)], 5, id="none-keeps-only-on-time-firings"),
]


@pytest.mark.parametrize(("policy", "expected", "skipped"), PER_TENANT)
def test_lateness_is_judged_per_tenant(policy, expected, skipped):
    sched = schedule(policy, name="nightly-report", cadence=Cron("0 * * * *"), jitter=timedelta(minutes=10))
    p = plan(sched, at("09:00:00"), at("12:05:00"), tenants=["acme", "globex"])
    assert kept(p) == expected
    assert p.skipped == skipped
    assert p.watermark == at("12:00:00")


# -- first sight and the watermark --------------------------------------------------------------------


@pytest.mark.parametrize("policy", ALL_POLICIES)
def test_a_schedule_seen_for_the_first_time_starts_at_the_next_tick(policy):
    now = at("12:00:10")
    first = plan(schedule(policy), None, now)
    assert first.ticks == [] and first.skipped == 0 and first.skipped_ticks == []
    assert first.watermark == now
    later = plan(schedule(policy), first.watermark, at("12:01:10"))
    assert kept(later) == [("-", "12:00:30", False), ("-", "12:01:00", False)]
    assert later.ticks[0].tick == next_tick(Every(timedelta(seconds=30)), UTC_ZONE, now)


def test_first_sight_of_a_cron_schedule_does_not_replay_history():
    sched = schedule(CatchUp.ALL, cadence=Cron("0 3 * * *"))
    p = plan(sched, None, at("2026-05-17T10:00"))
    assert p.ticks == [] and p.skipped == 0
    assert p.watermark == at("2026-05-17T10:00")


def test_watermark_advances_past_skipped_ticks_even_when_nothing_is_kept():
    sched = schedule(CatchUp.NONE, cadence=Every(timedelta(minutes=5)), grace=timedelta(seconds=10))
    now = at("13:00:30")
    p = plan(sched, T0, now)
    assert p.ticks == []
    assert p.skipped == 12
    assert p.skipped_ticks == [at("12:05:00"), at("13:00:00")]
    assert p.watermark == at("13:00:00")
    again = plan(sched, p.watermark, now)  # handling the track again at once re-counts nothing
    assert again.ticks == [] and again.skipped == 0 and again.watermark == at("13:00:00")


def test_watermark_stays_when_no_tick_is_due():
    p = plan(schedule(CatchUp.LATEST), T0, at("12:00:20"))
    assert p.ticks == [] and p.watermark == T0


def test_watermark_in_the_future_never_moves_back():
    """A replica whose clock is behind the watermark plans nothing and keeps the watermark."""
    p = plan(schedule(CatchUp.ALL), at("12:05:00"), at("12:04:58"))
    assert p.ticks == [] and p.skipped == 0 and p.watermark == at("12:05:00")


def test_catch_up_across_fall_back_fires_a_fixed_time_cron_once():
    sched = schedule(CatchUp.ALL, name="backup", cadence=Cron("30 1 * * *"), zone=NEW_YORK, window=timedelta(days=7))
    p = plan(sched, at("2026-10-31T05:30"), at("2026-11-02T12:00"), zone=NEW_YORK)
    assert [(t.tick, [f.late for f in t.firings]) for t in p.ticks] == [
        (at("2026-11-01T05:30"), [True]),
        (at("2026-11-02T06:30"), [True]),
    ]


# -- the contract, checked second by second against a direct reading of it ------------------------------


def reference(sched: Schedule, tenants: list[str], watermark: datetime, now: datetime):
    """The documented rules (docs/schedules.md) read literally: returns the kept (tenant, tick, late) set and the skipped count."""
    ticks = list(ticks_between(sched.cadence, UTC_ZONE, watermark, now))

    def enqueue_at(tenant: str, tick: datetime) -> datetime:
        return tick + jitter_offset(sched.name, tenant, sched.jitter)

    def is_late(tenant: str, tick: datetime) -> bool:
        return now > enqueue_at(tenant, tick) + sched.misfire_grace  # "more than misfire_grace"

    latest = {tenant: max((t for t in ticks if is_late(tenant, t)), default=None) for tenant in tenants}
    keep, skipped = set(), 0
    for tick in ticks:
        for tenant in tenants:
            if not is_late(tenant, tick):
                keep.add((tenant, tick, False))
            elif sched.catchup is CatchUp.ALL and tick >= now - sched.catchup_window:
                keep.add((tenant, tick, True))
            elif sched.catchup is CatchUp.LATEST and latest[tenant] == tick and tick >= now - sched.catchup_window:
                keep.add((tenant, tick, True))
            else:
                skipped += 1
    return keep, skipped, (ticks[-1] if ticks else watermark)


GRID = [
    pytest.param(CatchUp.ALL, timedelta(0), timedelta(hours=24), id="all-no-jitter"),
    pytest.param(CatchUp.ALL, timedelta(0), timedelta(seconds=100), id="all-no-jitter-window-100s"),
    pytest.param(CatchUp.ALL, timedelta(seconds=7), timedelta(hours=24), id="all-jitter-7s"),
    pytest.param(CatchUp.ALL, timedelta(seconds=7), timedelta(seconds=45), id="all-jitter-7s-window-45s"),
    pytest.param(CatchUp.LATEST, timedelta(seconds=7), timedelta(hours=24), id="latest-jitter-7s"),
    pytest.param(CatchUp.NONE, timedelta(seconds=7), timedelta(hours=24), id="none-jitter-7s"),
    pytest.param(CatchUp.ALL, timedelta(0), timedelta(seconds=45), id="all-no-jitter-window-45s"),
    pytest.param(CatchUp.LATEST, timedelta(0), timedelta(hours=24), id="latest-no-jitter"),
    pytest.param(CatchUp.LATEST, timedelta(0), timedelta(seconds=100), id="latest-no-jitter-window-100s"),
    pytest.param(CatchUp.LATEST, timedelta(seconds=7), timedelta(seconds=45), id="latest-jitter-7s-window-45s"),
    pytest.param(CatchUp.NONE, timedelta(0), timedelta(hours=24), id="none-no-jitter"),
]


@pytest.mark.parametrize(("policy", "jitter", "window"), GRID)
def test_plan_matches_the_contract_at_every_half_second(policy, jitter, window):
    sched = schedule(policy, name="s", jitter=jitter, window=window)
    tenants = ["acme", "globex", "initech"]
    fanout = Fanout(Track(sched, UTC_ZONE), tenants)
    mismatches = []
    for step in range(600):  # now from 12:00:00 to 12:04:59.5
        now = T0 + timedelta(seconds=step / 2)
        p = fanout.catch_up(T0, now)
        got = {(f.tenant, f.tick, f.late) for f in p.firings}
        if (got, p.skipped, p.watermark) != reference(sched, tenants, T0, now):
            mismatches.append(now.strftime("%H:%M:%S.%f"))
    assert mismatches == []


@pytest.mark.parametrize(
    "policy",
    [
        pytest.param(CatchUp.ALL, id="all"),
        pytest.param(CatchUp.LATEST, id="latest"),
        pytest.param(CatchUp.NONE, id="none"),
    ],
)
def test_a_tick_handled_exactly_misfire_grace_after_enqueue_at_is_on_time(policy):
    p = plan(schedule(policy), T0, at("12:01:30"))  # 12:00:30 is handled exactly 60s after its enqueue_at
    assert kept(p) == [("-", "12:00:30", False), ("-", "12:01:00", False), ("-", "12:01:30", False)]
    assert p.skipped == 0


def test_latest_keeps_the_late_tick_just_before_one_exactly_at_the_grace():
    # at 12:02:00, 12:00:30 is 90s old (late) and 12:01:00 exactly 60s old (on time)
    p = plan(schedule(CatchUp.LATEST), T0, at("12:02:00"))
    assert kept(p) == [("-", "12:00:30", True), ("-", "12:01:00", False), ("-", "12:01:30", False), ("-", "12:02:00", False)]
    assert p.skipped == 0


# -- tracks: per-tenant zones ---------------------------------------------------------------------------

REGIONAL = InlineTenants(
    (
        Tenant("acme", TOKYO), Tenant("initech", BERLIN), Tenant("hooli", NEW_YORK), Tenant("plain"),
        Tenant("umbrella", TOKYO),
    ),
    name="regional",
)


def test_tracks_of_a_schedule_without_tenants_is_one_track_with_tenant_dash():
    sched = schedule(name="heartbeat", zone=TOKYO)
    [(track, tenants)] = tracks_of(sched, [])
    assert (track.key, track.zone, tenants) == ("heartbeat", TOKYO, [NO_TENANT])


def test_tracks_of_a_zoned_schedule_is_one_track_with_every_tenant():
    sched = schedule(name="nightly-report", zone=TOKYO, tenants=REGIONAL)
    [(track, tenants)] = tracks_of(sched, list(REGIONAL.tenants))
    assert (track.key, track.zone) == ("nightly-report", TOKYO)
    assert tenants == ["acme", "initech", "hooli", "plain", "umbrella"]


def test_tracks_of_a_tenant_zoned_schedule_splits_tenants_by_zone():
    sched = schedule(name="morning-digest", cadence=Cron("0 9 * * *"), zone=None, tenants=REGIONAL)
    tracks = tracks_of(sched, list(REGIONAL.tenants))
    assert [(track.key, track.zone, ids) for track, ids in tracks] == [
        ("morning-digest/America/New_York", NEW_YORK, ["hooli"]),
        ("morning-digest/Asia/Tokyo", TOKYO, ["acme", "umbrella"]),
        ("morning-digest/Europe/Berlin", BERLIN, ["initech"]),
        ("morning-digest/UTC", UTC_ZONE, ["plain"]),  # no zone of its own: the default zone
    ]


def test_redis_set_tenants_of_a_tenant_zoned_schedule_use_the_default_zone():
    sched = schedule(name="digest", zone=None, tenants=RedisSetTenants("tenants:active", "active"))
    [(track, ids)] = tracks_of(sched, [Tenant("t1"), Tenant("t2")])
    assert (track.zone, ids) == (UTC_ZONE, ["t1", "t2"])


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        pytest.param(
            "2026-05-17T12:00", "2026-05-18T12:00",
            {"Asia/Tokyo": ["2026-05-18T00:00"], "Europe/Berlin": ["2026-05-18T07:00"],
             "America/New_York": ["2026-05-17T13:00"], "UTC": ["2026-05-18T09:00"]},
            id="summer-berlin-cest-new-york-edt",
        ),
        pytest.param(
            "2026-01-14T12:00", "2026-01-15T12:00",
            {"Asia/Tokyo": ["2026-01-15T00:00"], "Europe/Berlin": ["2026-01-15T08:00"],
             "America/New_York": ["2026-01-14T14:00"], "UTC": ["2026-01-15T09:00"]},
            id="winter-berlin-cet-new-york-est",
        ),
    ],
)
def test_nine_am_local_for_every_customer(start, end, expected):
    sched = schedule(name="morning-digest", cadence=Cron("0 9 * * *"), zone=None, tenants=REGIONAL)
    got = {}
    for track, ids in tracks_of(sched, list(REGIONAL.tenants)):
        ticks = [plan.tick for plan in Fanout(track, ids).on_time(at(start), at(end))]
        got[track.zone.key] = [tick.strftime("%Y-%m-%dT%H:%M") for tick in ticks]
    assert got == expected
