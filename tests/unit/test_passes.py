"""A pass, planned (scheduler/plan/passes.py): what the leader decides for one track before it
writes anything: firings batch by batch, the ticks to finish, the new watermark, the ledger's words."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from scheduler.clock.cadence import Every
from scheduler.plan.passes import TrackPlanner, held_tenants, paused_plan
from scheduler.plan.planner import Track
from scheduler.table import CatchUp, InlineTenants, Schedule, Tenant

UTC_ZONE = ZoneInfo("UTC")
T0 = datetime(2026, 5, 17, 12, 0, tzinfo=UTC)  # a tick of every 30s


def track(catchup: CatchUp = CatchUp.LATEST, tenants=("a", "b", "c")) -> Track:
    schedule = Schedule(
        name="beat", cadence=Every(timedelta(seconds=30)), zone=UTC_ZONE, default_zone=UTC_ZONE,
        tenants=InlineTenants(tuple(Tenant(t) for t in tenants)), job="Job", queue="default", catchup=catchup,
    )
    return Track(schedule, UTC_ZONE)


def test_the_pause_marks_of_one_schedule_name_its_paused_tenants_only():
    marks = {"beat": "t0", "beat/acme": "t1", "beats/other": "t2", "nightly/acme": "t3"}
    assert held_tenants(marks, "beat") == {"acme": "t1"}
    assert held_tenants(marks, "nightly") == {"acme": "t3"}
    assert held_tenants({}, "beat") == {}


def test_a_healthy_pass_plans_the_due_tick_batch_by_batch_and_finishes_it_once():
    beat = track()
    planner = TrackPlanner(beat, T0, T0 + timedelta(seconds=30), held={})
    first = planner.batch(["a", "b"])
    second = planner.batch(["c"])
    assert [(t.tick, [f.tenant for f in t.firings]) for t in first] == [(T0 + timedelta(seconds=30), ["a", "b"])]
    assert [[f.tenant for f in t.firings] for t in second] == [["c"]]
    plan = planner.result()
    assert plan.ticks == [T0 + timedelta(seconds=30)] and plan.advanced_to == T0 + timedelta(seconds=30)
    assert plan.key == "beat" and plan.watermark == T0 and plan.skipped == 0 and plan.paused_firings == 0
    assert set(plan.decisions) == {T0 + timedelta(seconds=30)}, "one ledger line: the tick's"


def test_a_paused_tenant_is_left_out_and_recorded_paused_on_each_tick():
    planner = TrackPlanner(track(), T0, T0 + timedelta(seconds=30), held={"b": "2026-05-17T11:00:00.000Z"})
    [tick] = planner.batch(["a", "b", "c"])
    assert [f.tenant for f in tick.firings] == ["a", "c"]
    plan = planner.result()
    decision = plan.decisions[T0 + timedelta(seconds=30)]
    assert (decision.paused, decision.paused_tenants) == (1, ["b"])
    assert plan.paused_firings == 1


def test_a_track_seen_for_the_first_time_starts_after_now_and_says_so():
    now = T0 + timedelta(seconds=7)
    planner = TrackPlanner(track(), None, now, held={})
    assert planner.batch(["a"]) == []
    plan = planner.result()
    assert plan.ticks == [] and plan.advanced_to == now and plan.watermark is None
    started = plan.decisions[None]
    assert started.outcome == "started" and started.reason == "first seen: starting after 2026-05-17T12:00:07.000Z"


def test_ticks_past_the_catch_up_policy_are_one_skipped_range_with_its_reason():
    now = T0 + timedelta(minutes=10)  # 20 ticks late; "none" keeps none of the late ones
    planner = TrackPlanner(track(CatchUp.NONE, tenants=("a", "b")), T0, now, held={})
    planner.batch(["a", "b"])
    plan = planner.result()
    skipped = plan.decisions[None]
    assert skipped.outcome == "skipped" and skipped.span is not None
    first, last, count = skipped.span
    assert first == T0 + timedelta(seconds=30) and count * 2 == skipped.skipped
    assert plan.skipped == sum(decision.skipped for decision in plan.decisions.values())
    assert "catch-up policy 'none'" in skipped.reason


def test_a_paused_schedule_records_its_ticks_as_one_paused_range_and_fires_none():
    now = T0 + timedelta(minutes=2)
    plan = paused_plan(track(), tenants=3, watermark=T0, now=now, since="2026-05-17T11:59:00.000Z")
    assert plan.ticks == [] and plan.advanced_to == now and plan.paused == 4
    paused = plan.decisions[None]
    assert paused.outcome == "paused" and paused.span == (T0 + timedelta(seconds=30), now, 4)
    assert paused.paused == 12 == plan.paused_firings
    assert paused.reason == "schedule paused since 2026-05-17T11:59:00.000Z"


def test_a_paused_schedule_with_no_tick_due_keeps_its_watermark_and_writes_no_line():
    plan = paused_plan(track(), tenants=3, watermark=T0, now=T0 + timedelta(seconds=10), since="x")
    assert (plan.paused, plan.advanced_to, plan.decisions, plan.paused_firings) == (0, T0, {}, 0)
