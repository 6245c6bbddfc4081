"""Fenced, exactly-once enqueue against a real redis-server: Store.accept, pending firings and
dispatch, watermarks, dedup records and their expiry, and the one hash tag of every key."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from redis.crc import key_slot
from helpers import redis_now
from support import (
    PREFIX,
    accept,
    WATERMARK_TTL,
    floor_minute,
    make_store,
    plan_at,
    read_stream,
    read_stream_fields,
    route,
    stream_name,
    take_lease,
    track_of,
)

import scheduler.store.delivery as delivery_module
import scheduler.store.state as state_module
from redis_server import wait_for
from scheduler.clock.instants import format_instant, format_tick
from scheduler.plan.planner import Fanout, TickPlan
from scheduler.errors import NotLeader, RedisUnavailable
from scheduler.store.state import CHUNK, DEDUP_MARGIN
from scheduler.keys import Token
from scheduler.store.calls import Acceptance, delivered_at
from scheduler.store.replies import dispatched, dispatched_groups
from scheduler.targets import STREAM_FIELDS

TABLE = """
[tenants]
few = ["acme", "globex", "initech"]

[[schedule]]
name = "report"
every = "1m"
tenants = "few"
job = "ReportJob"
args = { kind = "daily", n = 2 }
queue = "reports"
"""
QUEUE = "reports"
FAR_FUTURE = datetime(2100, 1, 1, tzinfo=UTC)


def ms(instant: datetime) -> int:
    return int(instant.timestamp() * 1000)


def expire_lease(store) -> None:
    client, key = store.client, store.keys.lease
    assert client.pexpire(key, 1)
    wait_for(lambda: not client.exists(key), timeout=5, message="the lease to expire")


@pytest.fixture
def report(tmp_path):
    return track_of(tmp_path, TABLE, "report")


def current_tick(store) -> tuple[datetime, datetime]:
    """(the tick of the current minute by Redis's clock, now); the tick is never late at ``now``."""
    now = redis_now(store.client)
    return floor_minute(now), now


def many(count: int) -> list[str]:
    return [f"tenant-{n:06d}" for n in range(count)]


# -- accept: the basics -------------------------------------------------------------------------


def test_accept_writes_each_firing_once_to_the_queue_stream_with_every_field(store, report):
    token = take_lease(store, "r1")
    tick, now = current_tick(store)
    plan = Fanout(report.track, report.tenant_ids).catch_up(tick - timedelta(minutes=1), now)
    assert [t.tick for t in plan.ticks] == [tick]

    result = accept(store, token, report.track.schedule, report.key, plan.ticks, plan.watermark, WATERMARK_TTL)

    assert result == Acceptance(delivered=3, pending=0, duplicates=0)
    assert read_stream_fields(store.client, QUEUE) == [list(STREAM_FIELDS)] * 3
    messages = read_stream(store.client, QUEUE)
    assert messages == [
        {
            "firing_id": f"report/{tenant}/{format_tick(tick)}",
            "schedule": "report",
            "tenant": tenant,
            "tick": format_tick(tick),
            "enqueue_at": format_instant(tick),
            "job": "ReportJob",
            "args": '{"kind":"daily","n":2}',
            "queue": QUEUE,
            "epoch": "1",
            "late": "false",
        }
        for tenant in ("acme", "globex", "initech")
    ]
    assert json.loads(messages[0]["args"]) == {"kind": "daily", "n": 2}
    assert store.watermark(report.key) == tick
    assert store.client.zcard(store.keys.pending(QUEUE)) == 0, "due firings never go through pending"


def test_accepting_a_finished_tick_again_writes_nothing_and_counts_duplicates(store, report):
    token = take_lease(store, "r1")
    tick, now = current_tick(store)
    plan = Fanout(report.track, report.tenant_ids).catch_up(tick - timedelta(minutes=1), now)
    schedule = report.track.schedule
    accept(store, token, schedule, report.key, plan.ticks, plan.watermark, WATERMARK_TTL)

    again = accept(store, token, schedule, report.key, plan.ticks, plan.watermark, WATERMARK_TTL)
    assert again == Acceptance(delivered=0, pending=0, duplicates=3)
    assert store.client.xlen(stream_name(QUEUE)) == 3


def test_accepting_an_unfinished_tick_again_writes_nothing_and_counts_duplicates(store, report):
    token = take_lease(store, "r1")
    tick, now = current_tick(store)
    schedule = report.track.schedule
    plan = [TickPlan(tick, Fanout(report.track, report.tenant_ids).firings_at(tick))]

    first = accept(store, token, schedule, report.key, plan, None, WATERMARK_TTL)
    second = accept(store, token, schedule, report.key, plan, None, WATERMARK_TTL)
    assert first == Acceptance(3, 0, 0)
    assert second == Acceptance(0, 0, 3)
    assert store.client.xlen(stream_name(QUEUE)) == 3
    assert store.watermark(report.key) is None, "nothing finished: the watermark stays"


def test_the_same_tick_of_another_track_is_not_a_duplicate(tmp_path, store):
    table = TABLE + '\n[[schedule]]\nname = "other"\nevery = "1m"\ntenants = "few"\njob = "X"\nqueue = "reports"\n'
    report, other = track_of(tmp_path, table, "report"), track_of(tmp_path, table, "other")
    token = take_lease(store, "r1")
    tick, now = current_tick(store)
    for state in (report, other):
        plan = [TickPlan(tick, Fanout(state.track, state.tenant_ids).firings_at(tick))]
        assert accept(store, token, state.track.schedule, state.key, plan, tick, WATERMARK_TTL).delivered == 3
    ids = [message["firing_id"] for message in read_stream(store.client, QUEUE)]
    assert len(ids) == len(set(ids)) == 6


# -- fencing ------------------------------------------------------------------------------------


def test_a_stale_token_raises_not_leader_and_writes_nothing(store, report):
    stale = take_lease(store, "r1")
    expire_lease(store)
    take_lease(store, "r2")
    keys_before = set(store.client.keys("*"))
    tick, now = current_tick(store)
    plan = Fanout(report.track, report.tenant_ids).catch_up(tick - timedelta(minutes=1), now)

    with pytest.raises(NotLeader) as refused:
        accept(store, stale, report.track.schedule, report.key, plan.ticks, plan.watermark, WATERMARK_TTL)

    assert (refused.value.replica_id, refused.value.epoch) == ("r1", 1)
    assert "r1" in str(refused.value) and "1" in str(refused.value)
    assert set(store.client.keys("*")) == keys_before, "no stream, watermark, dedup or pending key written"
    assert store.watermark(report.key) is None


def test_a_stale_token_cannot_even_advance_a_watermark(store, report):
    stale = take_lease(store, "r1")
    expire_lease(store)
    take_lease(store, "r2")
    now = redis_now(store.client)
    with pytest.raises(NotLeader):
        accept(store, stale, report.track.schedule, report.key, [], now, WATERMARK_TTL)
    assert store.watermark(report.key) is None


def test_a_token_from_before_a_restart_of_the_same_replica_is_stale(store, report):
    stale = take_lease(store, "r1")
    expire_lease(store)
    fresh = take_lease(store, "r1")
    tick, now = current_tick(store)
    plan = [TickPlan(tick, Fanout(report.track, report.tenant_ids).firings_at(tick))]
    with pytest.raises(NotLeader):
        accept(store, stale, report.track.schedule, report.key, plan, tick, WATERMARK_TTL)
    assert accept(store, fresh, report.track.schedule, report.key, plan, tick, WATERMARK_TTL).delivered == 3
    assert {m["epoch"] for m in read_stream(store.client, QUEUE)} == {"2"}


# -- pending firings and dispatch ---------------------------------------------------------------


def test_future_firings_wait_in_pending_and_dispatch_moves_only_the_due_ones(store, report):
    token = take_lease(store, "r1")
    tick, now = current_tick(store)
    soon = now + timedelta(seconds=1)
    schedule = report.track.schedule
    plan = plan_at(schedule, tick, ["acme", "globex", "initech"], [tick, soon, FAR_FUTURE])

    assert accept(store, token, schedule, report.key, [plan], tick, WATERMARK_TTL) == Acceptance(1, 2, 0)
    assert [m["tenant"] for m in read_stream(store.client, QUEUE)] == ["acme"]
    pending = store.client.zrange(store.keys.pending(QUEUE), 0, -1, withscores=True)
    assert pending == [
        (f"report/globex/{format_tick(tick)}".encode(), ms(soon)),
        (f"report/initech/{format_tick(tick)}".encode(), ms(FAR_FUTURE)),
    ]
    assert store.client.hlen(store.keys.payload(QUEUE)) == 2
    assert store.queues() == {QUEUE}

    moved, upcoming = store.dispatch(token, route(store, QUEUE))
    assert (moved, upcoming) == (0, datetime.fromtimestamp(ms(soon) / 1000, UTC)), "nothing is due yet"

    def dispatched_one():
        moved, upcoming = store.dispatch(token, route(store, QUEUE))
        return (moved, upcoming) if moved else None

    moved, upcoming = wait_for(dispatched_one, timeout=10, message="the jittered firing to come due")
    assert moved == 1
    assert upcoming == FAR_FUTURE, "the next due time is the far-future firing's"
    globex = read_stream(store.client, QUEUE)[-1]
    assert globex["tenant"] == "globex"
    assert globex["enqueue_at"] == format_instant(soon)
    assert globex["firing_id"] == f"report/globex/{format_tick(tick)}"
    assert list(globex) == list(STREAM_FIELDS)
    assert store.client.zcard(store.keys.pending(QUEUE)) == 1
    assert store.client.hkeys(store.keys.payload(QUEUE)) == [f"report/initech/{format_tick(tick)}".encode()]

    assert store.dispatch(token, route(store, QUEUE)) == (0, FAR_FUTURE)
    assert store.client.xlen(stream_name(QUEUE)) == 2


def test_dispatch_of_an_empty_queue_reports_nothing_upcoming(store):
    token = take_lease(store, "r1")
    assert store.dispatch(token, route(store, "nothing-here")) == (0, None)


def test_dispatch_moves_at_most_limit_firings(store, report):
    token = take_lease(store, "r1")
    tick, now = current_tick(store)
    soon = now + timedelta(milliseconds=300)
    tenants = many(5)
    plan = plan_at(report.track.schedule, tick, tenants, [soon] * 5)
    assert accept(store, token, report.track.schedule, report.key, [plan], tick, WATERMARK_TTL).pending == 5

    wait_for(lambda: redis_now(store.client) > soon, timeout=5, message="Redis's clock to pass enqueue_at")
    assert store.dispatch(token, route(store, QUEUE), limit=2) == (2, datetime.fromtimestamp(ms(soon) / 1000, UTC))
    assert store.dispatch(token, route(store, QUEUE), limit=2)[0] == 2
    assert store.dispatch(token, route(store, QUEUE), limit=2) == (1, None)
    assert sorted(m["tenant"] for m in read_stream(store.client, QUEUE)) == tenants
    assert not store.client.exists(store.keys.payload(QUEUE))


def test_dispatch_refuses_a_stale_token_and_the_next_leader_delivers_what_the_last_accepted(store, report):
    old = take_lease(store, "r1")
    tick, now = current_tick(store)
    soon = now + timedelta(milliseconds=300)
    plan = plan_at(report.track.schedule, tick, ["acme"], [soon])
    assert accept(store, old, report.track.schedule, report.key, [plan], tick, WATERMARK_TTL).pending == 1
    expire_lease(store)
    new = take_lease(store, "r2")
    wait_for(lambda: redis_now(store.client) > soon, timeout=5, message="Redis's clock to pass enqueue_at")

    with pytest.raises(NotLeader) as refused:
        store.dispatch(old, route(store, QUEUE))
    assert refused.value.epoch == 1
    assert store.client.zcard(store.keys.pending(QUEUE)) == 1, "a refused dispatch moves nothing"
    assert not store.client.exists(stream_name(QUEUE))

    assert store.queues() == {QUEUE}, "the new leader finds the queue to drain"
    assert store.dispatch(new, route(store, QUEUE)) == (1, None)
    [message] = read_stream(store.client, QUEUE)
    assert message["firing_id"] == f"report/acme/{format_tick(tick)}"
    assert message["epoch"] == "2", "the message names the epoch that delivered it"


def test_a_pending_firing_is_accepted_once_even_if_the_tick_is_accepted_again(store, report):
    token = take_lease(store, "r1")
    tick, now = current_tick(store)
    plan = plan_at(report.track.schedule, tick, ["acme"], [FAR_FUTURE])
    assert accept(store, token, report.track.schedule, report.key, [plan], None, WATERMARK_TTL).pending == 1
    assert accept(store, token, report.track.schedule, report.key, [plan], tick, WATERMARK_TTL).duplicates == 1
    assert store.client.zcard(store.keys.pending(QUEUE)) == 1
    assert store.client.hlen(store.keys.payload(QUEUE)) == 1


# -- what the replies tell the metrics -----------------------------------------------------------


def test_an_enqueue_reply_counts_late_firings_and_gives_the_time_it_judged_them_by(store, report):
    token = take_lease(store, "r1")
    tick, now = current_tick(store)
    schedule = report.track.schedule
    old = tick - timedelta(minutes=5)  # past misfire_grace (60 s)
    plan = plan_at(schedule, tick, ["acme", "globex", "initech"], [old, tick, FAR_FUTURE])
    [call] = store.enqueue_calls(token, schedule, report.key, [plan], WATERMARK_TTL, route(store, schedule.queue))

    before = ms(redis_now(store.client))
    [reply] = store.send(token, [call])
    after = ms(redis_now(store.client))

    delivered, pending, duplicates, late, now_ms = reply
    assert (delivered, pending, duplicates, late) == (2, 1, 0, 1)
    assert before <= now_ms <= after, "now_ms is the script's own TIME"
    assert delivered_at(call, reply) == [ms(old), ms(tick)]

    [again] = store.send(token, [call])
    assert again[:4] == [0, 0, 3, 0] and before <= again[4], "duplicates: nothing delivered, nothing late"


def test_a_dispatch_reply_groups_the_delivered_firings_by_schedule_lateness_and_late(tmp_path, store):
    table = TABLE + '\n[[schedule]]\nname = "other"\nevery = "1m"\ntenants = "few"\njob = "X"\nqueue = "reports"\n'
    report, other = track_of(tmp_path, table, "report"), track_of(tmp_path, table, "other")
    token = take_lease(store, "r1")
    tick, now = current_tick(store)
    soon = now + timedelta(milliseconds=200)
    for state, tenants in ((report, ["acme", "globex"]), (other, ["initech"])):
        plan = plan_at(state.track.schedule, tick, tenants, [soon] * len(tenants))
        assert accept(store, token, state.track.schedule, state.key, [plan], tick, WATERMARK_TTL).pending == len(tenants)
    wait_for(lambda: redis_now(store.client) > soon, timeout=5, message="Redis's clock to pass enqueue_at")

    (reply,) = store.send(token, [store.dispatch_call(token, route(store, QUEUE))])

    assert dispatched(reply) == (3, None)
    groups = sorted(dispatched_groups(reply))
    assert [(schedule, late, firings) for schedule, _, late, firings in groups] == [("other", False, 1),
                                                                                  ("report", False, 2)]
    assert groups[0][1] == groups[1][1] >= 0, "moved by one call: one TIME, one enqueue_at, one lateness"


# -- watermarks and chunks ----------------------------------------------------------------------


def test_a_tick_over_more_than_a_chunk_is_split_across_calls_and_each_firing_lands_once(store, report, monkeypatch):
    token = take_lease(store, "r1")
    tick, now = current_tick(store)
    tenants = many(2 * CHUNK + 500)
    plan = [TickPlan(tick, Fanout(report.track, tenants).firings_at(tick))]

    sent = []
    send = store.send

    def counting(token, calls, doing="enqueueing firings"):
        sent.extend((call.script, len(call.args)) for call in calls)
        return send(token, calls, doing)

    monkeypatch.setattr(store, "send", counting)
    result = accept(store, token, report.track.schedule, report.key, plan, tick, WATERMARK_TTL)

    enqueue, finish = store._enqueue, store._finish
    # finish: 7 arguments, then the ledger line's tick, outcome, fired and epoch as field-value pairs
    assert sent == [(enqueue, 13 + 3 * CHUNK), (enqueue, 13 + 3 * CHUNK), (enqueue, 13 + 3 * 500), (finish, 16)], (
        "three script calls of at most CHUNK firings, then the one that finishes the tick")
    assert result == Acceptance(delivered=len(tenants), pending=0, duplicates=0)
    ids = [message["firing_id"] for message in read_stream(store.client, QUEUE)]
    assert len(ids) == len(set(ids)) == len(tenants)
    assert {i.split("/")[1] for i in ids} == set(tenants)


def test_a_tick_accepted_in_two_batches_lands_each_firing_once(store, report):
    """As the run loop does with a big Redis set: earlier batches unfinished, the last one finishes."""
    token = take_lease(store, "r1")
    tick, now = current_tick(store)
    tenants = many(2 * CHUNK + 500)
    schedule = report.track.schedule
    first = [TickPlan(tick, Fanout(report.track, tenants[:1500]).firings_at(tick))]
    whole = [TickPlan(tick, Fanout(report.track, tenants).firings_at(tick))]

    assert accept(store, token, schedule, report.key, first, None, WATERMARK_TTL) == Acceptance(1500, 0, 0)
    assert store.watermark(report.key) is None
    assert accept(store, token, schedule, report.key, whole, tick, WATERMARK_TTL) == Acceptance(1000, 0, 1500)
    assert store.watermark(report.key) == tick
    ids = [message["firing_id"] for message in read_stream(store.client, QUEUE)]
    assert len(ids) == len(set(ids)) == len(tenants)


def test_a_tick_is_finished_only_in_a_round_trip_after_every_chunk_of_it_was_accepted(store, report, monkeypatch):
    token = take_lease(store, "r1")
    tick, now = current_tick(store)
    plan = [TickPlan(tick, Fanout(report.track, many(2 * CHUNK + 500)).firings_at(tick))]
    monkeypatch.setattr(delivery_module, "ROUND_TRIP_FIRINGS", CHUNK)  # one chunk per round trip
    monkeypatch.setattr(state_module, "ROUND_TRIP_FIRINGS", CHUNK)

    snapshots = []
    client = store.client
    for script in (store._enqueue, store._finish):
        client.script_load(script.text)  # as in steady state: no NOSCRIPT round trip first
    make_pipeline = client.pipeline

    def observed_pipeline(*args, **kwargs):
        pipe = make_pipeline(*args, **kwargs)
        execute = pipe.execute

        def execute_and_look(*a, **kw):
            replies = execute(*a, **kw)
            snapshots.append((
                client.xlen(stream_name(QUEUE)),
                client.get(store.keys.watermark(report.key)),
                client.zscore(store.keys.done(report.key), ms(tick)),
                client.exists(store.keys.seen(report.key, ms(tick))),
            ))
            return replies

        pipe.execute = execute_and_look
        return pipe

    monkeypatch.setattr(client, "pipeline", observed_pipeline)
    accept(store, token, report.track.schedule, report.key, plan, tick, WATERMARK_TTL)

    assert snapshots == [
        (CHUNK, None, None, 1),
        (2 * CHUNK, None, None, 1),
        (2 * CHUNK + 500, None, None, 1),
        (2 * CHUNK + 500, str(ms(tick)).encode(), float(ms(tick)), 0),
    ]


def test_finishing_past_the_last_tick_advances_the_watermark_to_finish(store, report):
    token = take_lease(store, "r1")
    tick, now = current_tick(store)
    plan = [TickPlan(tick, Fanout(report.track, report.tenant_ids).firings_at(tick))]
    finish = tick + timedelta(minutes=5)  # as when the policy skipped later ticks
    assert accept(store, token, report.track.schedule, report.key, plan, finish, WATERMARK_TTL).delivered == 3
    assert store.watermark(report.key) == finish
    assert store.client.zscore(store.keys.done(report.key), ms(tick)) == ms(tick)


def test_a_schedule_seen_first_only_gets_a_watermark(store, report):
    token = take_lease(store, "r1")
    now = redis_now(store.client)
    plan = Fanout(report.track, report.tenant_ids).catch_up(None, now)
    assert plan.ticks == []
    result = accept(store, token, report.track.schedule, report.key, plan.ticks, plan.watermark, WATERMARK_TTL)
    assert result == Acceptance(0, 0, 0)
    assert store.watermark(report.key) == datetime.fromtimestamp(ms(now) / 1000, UTC)
    assert not store.client.exists(stream_name(QUEUE))


def test_the_watermark_never_moves_back_but_its_ttl_is_refreshed(store, report):
    token = take_lease(store, "r1")
    now = redis_now(store.client)
    later, earlier = floor_minute(now), floor_minute(now) - timedelta(hours=1)
    accept(store, token, report.track.schedule, report.key, [], later, timedelta(hours=1))
    accept(store, token, report.track.schedule, report.key, [], earlier, timedelta(days=2))
    assert store.watermark(report.key) == later
    assert store.client.pttl(store.keys.watermark(report.key)) > timedelta(days=1).total_seconds() * 1000


def test_catch_up_of_several_ticks_accepts_each_and_leaves_the_watermark_on_the_last(tmp_path, store):
    table = TABLE.replace('name = "report"', 'name = "report"\ncatchup = "all"\ncatchup_window = "1h"')
    report = track_of(tmp_path, table, "report")
    token = take_lease(store, "r1")
    tick, now = current_tick(store)
    watermark = tick - timedelta(minutes=5)
    plan = Fanout(report.track, report.tenant_ids).catch_up(watermark, now)
    assert len(plan.ticks) == 5

    result = accept(store, token, report.track.schedule, report.key, plan.ticks, plan.watermark, WATERMARK_TTL)
    assert result == Acceptance(delivered=15, pending=0, duplicates=0, late=result.late)
    # The three oldest ticks are past misfire_grace (60 s); the one a minute back is too, unless
    # Redis's clock stood exactly on the current tick. The reply counts what the messages say.
    assert result.late in (9, 12)
    assert sum(m["late"] == "true" for m in read_stream(store.client, QUEUE)) == result.late
    assert store.watermark(report.key) == tick
    done = store.client.zrange(store.keys.done(report.key), 0, -1, withscores=True)
    assert [score for _, score in done] == [ms(t.tick) for t in plan.ticks]
    ticks = sorted({m["tick"] for m in read_stream(store.client, QUEUE)})
    assert ticks == [format_tick(t.tick) for t in plan.ticks]


# -- dedup records and their expiry -------------------------------------------------------------


def test_an_unfinished_ticks_dedup_set_lives_as_long_as_the_watermark_from_its_last_write(store, report):
    token = take_lease(store, "r1")
    tick, _ = current_tick(store)
    schedule = report.track.schedule
    plan = [TickPlan(tick, Fanout(report.track, report.tenant_ids).firings_at(tick))]
    accept(store, token, schedule, report.key, plan, None, WATERMARK_TTL)

    seen = store.keys.seen(report.key, ms(tick))
    assert store.client.smembers(seen) == {b"acme", b"globex", b"initech"}
    ttl_ms = WATERMARK_TTL.total_seconds() * 1000
    assert ttl_ms - 5_000 < store.client.pttl(seen) <= ttl_ms, "a TTL on Redis's clock, never an instant of ours"
    assert not store.client.exists(store.keys.done(report.key)), "not finished: not done"


def test_finishing_a_tick_drops_its_dedup_set_and_records_it_done_with_a_ttl(store, report):
    token = take_lease(store, "r1")
    tick, now = current_tick(store)
    plan = [TickPlan(tick, Fanout(report.track, report.tenant_ids).firings_at(tick))]
    accept(store, token, report.track.schedule, report.key, plan, tick, WATERMARK_TTL)

    ttl_ms = WATERMARK_TTL.total_seconds() * 1000
    assert not store.client.exists(store.keys.seen(report.key, ms(tick)))
    assert store.client.zrange(store.keys.done(report.key), 0, -1, withscores=True) == [
        (str(ms(tick)).encode(), ms(tick))
    ]
    assert ttl_ms - 5_000 < store.client.pttl(store.keys.done(report.key)) <= ttl_ms
    assert ttl_ms - 5_000 < store.client.pttl(store.keys.watermark(report.key)) <= ttl_ms


def test_done_ticks_older_than_window_plus_margin_are_trimmed(store, report):
    token = take_lease(store, "r1")
    tick, now = current_tick(store)
    schedule = report.track.schedule
    horizon = schedule.catchup_window + DEDUP_MARGIN
    kept, dropped = tick - horizon + timedelta(minutes=1), tick - horizon - timedelta(minutes=1)
    for old in (dropped, kept):
        fanout = Fanout(report.track, report.tenant_ids)
        accept(store, token, schedule, report.key, [TickPlan(old, fanout.firings_at(old))], old, WATERMARK_TTL)
    scores = [score for _, score in store.client.zrange(store.keys.done(report.key), 0, -1, withscores=True)]
    assert scores == [ms(kept)], "a tick older than now - window - 24 h (Redis's clock) is forgotten at once"

    plan = [TickPlan(tick, Fanout(report.track, report.tenant_ids).firings_at(tick))]
    accept(store, token, schedule, report.key, plan, tick, WATERMARK_TTL)
    scores = [score for _, score in store.client.zrange(store.keys.done(report.key), 0, -1, withscores=True)]
    assert scores == [ms(kept), ms(tick)]


def test_an_old_late_tick_kept_by_the_latest_policy_is_still_deduplicated(tmp_path, store):
    now = redis_now(store.client)
    yearly = floor_minute(now - timedelta(days=3))  # a yearly cron whose last tick was 3 days ago
    table = f"""
    [[schedule]]
    name = "yearly"
    cron = "{yearly.minute} {yearly.hour} {yearly.day} {yearly.month} *"
    tenants = ["acme", "globex"]
    job = "Yearly"
    queue = "reports"
    catchup_window = "7d"
    """
    state = track_of(tmp_path, table, "yearly")
    schedule = state.track.schedule
    assert schedule.catchup.value == "latest"
    plan = Fanout(state.track, state.tenant_ids).catch_up(yearly - timedelta(days=1), now)
    assert [t.tick for t in plan.ticks] == [yearly], "the latest policy keeps the one late tick"
    assert all(f.late for f in plan.firings)

    token = take_lease(store, "r1")
    # A leader accepts an unfinished batch (a big Redis set is accepted in batches), then dies;
    # the next leader plans the same tick from the same watermark and accepts it again.
    first = accept(store, token, schedule, state.key, plan.ticks, None, WATERMARK_TTL)
    expire_lease(store)
    token = take_lease(store, "r2")
    again = accept(store, token, schedule, state.key, plan.ticks, plan.watermark, WATERMARK_TTL)

    assert first == Acceptance(2, 0, 0, late=2), "both firings are three days late: the reply counts them"
    ids = [m["firing_id"] for m in read_stream(store.client, QUEUE)]
    assert len(ids) == len(set(ids)), f"firings enqueued twice: {sorted(ids)}"
    assert again == Acceptance(0, 0, 2)


# -- keys, hash tag, table record ---------------------------------------------------------------


def test_every_key_of_a_store_lives_under_its_prefix_and_one_hash_tag(redis_server, store, report):
    client = store.client
    other_prefix = make_store(client, "{another}")
    take_lease(other_prefix, "x")  # a second scheduler on the same Redis must not collide

    old = take_lease(store, "r1")
    tick, now = current_tick(store)
    schedule = report.track.schedule
    plan = plan_at(schedule, tick, ["acme", "globex"], [tick, FAR_FUTURE])
    accept(store, old, schedule, report.key, [plan], None, WATERMARK_TTL)  # leaves the dedup set
    accept(store, old, schedule, report.key, [plan_at(schedule, tick - timedelta(minutes=1), ["acme"], [tick])], tick - timedelta(minutes=1), WATERMARK_TTL)  # leaves done and watermark
    store.dispatch(old, route(store, QUEUE))
    store.publish_table(old, "abc123", "/etc/schedules.toml", now)
    store.release(old)
    take_lease(store, "r2")

    ours = [key.decode() for key in client.keys("*") if not key.startswith(b"{another}")]
    expected = {
        store.keys.lease, store.keys.epoch, store.keys.table, store.keys.queues, store.keys.watermark(report.key),
        store.keys.done(report.key), store.keys.seen(report.key, ms(tick)), store.keys.pending(QUEUE),
        store.keys.payload(QUEUE), stream_name(QUEUE), store.keys.history(schedule.name),
    }
    assert set(ours) == expected
    assert all(key.startswith(PREFIX + ":") for key in ours)
    assert {key_slot(key.encode()) for key in ours} == {key_slot(b"sched-42")}
    assert store.holder() == Token(2, "r2"), "the other prefix's lease and epoch are its own"
    assert other_prefix.holder() == Token(1, "x")


def test_publish_table_records_what_the_leader_runs(store):
    token = take_lease(store, "r1")
    now = datetime(2026, 11, 22, 3, 4, 5, 123456, tzinfo=UTC)
    store.publish_table(token, "f1ngerprint", "/srv/schedules.toml", now)
    assert store.client.hgetall(store.keys.table) == {
        b"fingerprint": b"f1ngerprint",
        b"path": b"/srv/schedules.toml",
        b"replica": b"r1",
        b"epoch": b"1",
        b"loaded_at": b"2026-11-22T03:04:05.123Z",
    }


def test_publish_table_is_fenced_a_stale_token_writes_nothing(store):
    stale = take_lease(store, "r1")
    expire_lease(store)
    take_lease(store, "r2")
    with pytest.raises(NotLeader):
        store.publish_table(stale, "f1ngerprint", "/srv/schedules.toml", datetime(2026, 11, 22, tzinfo=UTC))
    assert not store.client.exists(store.keys.table)


# -- refusals in the middle of a pass -----------------------------------------------------------


def test_chunks_refused_by_a_full_redis_leave_the_tick_unfinished_and_a_retry_completes_it_once(store, report):
    token = take_lease(store, "r1")
    tick, _ = current_tick(store)
    tenants = many(2 * CHUNK + 500)
    plan = [TickPlan(tick, Fanout(report.track, tenants).firings_at(tick))]
    client = store.client
    for script in (store._enqueue, store._finish):
        client.script_load(script.text)
    client.config_set("maxmemory-policy", "noeviction")
    # A first chunk starts under the limit and takes Redis over it (with the pipeline's own query
    # buffer); the chunks after it are refused with OOM.
    client.config_set("maxmemory", int(client.info("memory")["used_memory"]) + 256 * 1024)
    try:
        with pytest.raises(RedisUnavailable, match="used memory > .maxmemory."):
            accept(store, token, report.track.schedule, report.key, plan, tick, WATERMARK_TTL)
        landed = client.xlen(stream_name(QUEUE))
        assert 0 < landed < len(tenants), "some chunks landed, some were refused"
        assert store.watermark(report.key) is None, "a tick with a refused chunk is not finished"
        assert not client.exists(store.keys.done(report.key))
        assert client.scard(store.keys.seen(report.key, ms(tick))) == landed, "what was accepted is remembered"
    finally:
        client.config_set("maxmemory", 0)

    again = accept(store, token, report.track.schedule, report.key, plan, tick, WATERMARK_TTL)

    assert again == Acceptance(delivered=len(tenants) - landed, pending=0, duplicates=landed)
    ids = Counter(message["firing_id"] for message in read_stream(client, QUEUE))
    assert set(ids) == {f"report/{tenant}/{format_tick(tick)}" for tenant in tenants}
    assert max(ids.values()) == 1
    assert store.watermark(report.key) == tick


def test_a_firing_whose_write_fails_is_not_recorded_so_a_retry_delivers_it(store, report):
    token = take_lease(store, "r1")
    tick, _ = current_tick(store)
    plan = [TickPlan(tick, Fanout(report.track, report.tenant_ids).firings_at(tick))]
    store.client.set(stream_name(QUEUE), "not a stream")  # XADD fails with WRONGTYPE

    with pytest.raises(RedisUnavailable, match="WRONGTYPE"):
        accept(store, token, report.track.schedule, report.key, plan, tick, WATERMARK_TTL)
    assert not store.client.exists(store.keys.seen(report.key, ms(tick))), "nothing recorded as accepted"
    assert store.watermark(report.key) is None

    store.client.delete(stream_name(QUEUE))
    assert accept(store, token, report.track.schedule, report.key, plan, tick, WATERMARK_TTL).delivered == 3
    assert len(read_stream(store.client, QUEUE)) == 3


def test_a_refused_tick_keeps_the_earlier_ticks_finished_and_the_watermark_before_it(store, report, monkeypatch):
    token = take_lease(store, "r1")
    tick, _ = current_tick(store)
    earlier = tick - timedelta(minutes=1)
    fanout = Fanout(report.track, report.tenant_ids)
    plans = [TickPlan(earlier, fanout.firings_at(earlier)), TickPlan(tick, fanout.firings_at(tick))]
    send = store.send

    def refusing_the_second_tick(token, calls, doing="enqueueing firings"):
        replies = send(token, calls, doing)
        return [RedisUnavailable("enqueueing firings: BUSY") if call.tick == tick and doing == "enqueueing firings"
                else reply for call, reply in zip(calls, replies)]

    monkeypatch.setattr(store, "send", refusing_the_second_tick)
    with pytest.raises(RedisUnavailable, match="BUSY"):
        accept(store, token, report.track.schedule, report.key, plans, tick, WATERMARK_TTL)

    assert store.watermark(report.key) == earlier, "finished up to the tick before the refused one"
    assert store.client.zrange(store.keys.done(report.key), 0, -1) == [str(ms(earlier)).encode()]
