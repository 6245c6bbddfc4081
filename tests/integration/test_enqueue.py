"""Fenced, exactly-once enqueue against a real redis-server: Store.accept, pending firings and
dispatch, watermarks, dedup records and their expiry, and the one hash tag of every key."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from redis.crc import key_slot
from support import (
    PREFIX,
    WATERMARK_TTL,
    floor_minute,
    make_store,
    plan_at,
    read_stream,
    read_stream_fields,
    redis_now,
    stream_name,
    take_lease,
    track_of,
)

import scheduler.store.state as state_module
from redis_server import wait_for
from scheduler.clock.firing import format_instant, format_tick
from scheduler.clock.planner import Fanout, TickPlan
from scheduler.errors import NotLeader
from scheduler.store.state import CHUNK, DEDUP_MARGIN, Acceptance
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

    result = store.accept(token, report.track.schedule, report.key, plan.ticks, now, plan.watermark, WATERMARK_TTL)

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
    store.accept(token, schedule, report.key, plan.ticks, now, plan.watermark, WATERMARK_TTL)

    again = store.accept(token, schedule, report.key, plan.ticks, now, plan.watermark, WATERMARK_TTL)
    assert again == Acceptance(delivered=0, pending=0, duplicates=3)
    assert store.client.xlen(stream_name(QUEUE)) == 3


def test_accepting_an_unfinished_tick_again_writes_nothing_and_counts_duplicates(store, report):
    token = take_lease(store, "r1")
    tick, now = current_tick(store)
    schedule = report.track.schedule
    plan = [TickPlan(tick, Fanout(report.track, report.tenant_ids).firings_at(tick))]

    first = store.accept(token, schedule, report.key, plan, now, None, WATERMARK_TTL)
    second = store.accept(token, schedule, report.key, plan, now, None, WATERMARK_TTL)
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
        assert store.accept(token, state.track.schedule, state.key, plan, now, tick, WATERMARK_TTL).delivered == 3
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
        store.accept(stale, report.track.schedule, report.key, plan.ticks, now, plan.watermark, WATERMARK_TTL)

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
        store.accept(stale, report.track.schedule, report.key, [], now, now, WATERMARK_TTL)
    assert store.watermark(report.key) is None


def test_a_token_from_before_a_restart_of_the_same_replica_is_stale(store, report):
    stale = take_lease(store, "r1")
    expire_lease(store)
    fresh = take_lease(store, "r1")
    tick, now = current_tick(store)
    plan = [TickPlan(tick, Fanout(report.track, report.tenant_ids).firings_at(tick))]
    with pytest.raises(NotLeader):
        store.accept(stale, report.track.schedule, report.key, plan, now, tick, WATERMARK_TTL)
    assert store.accept(fresh, report.track.schedule, report.key, plan, now, tick, WATERMARK_TTL).delivered == 3
    assert {m["epoch"] for m in read_stream(store.client, QUEUE)} == {"2"}


# -- pending firings and dispatch ---------------------------------------------------------------


def test_future_firings_wait_in_pending_and_dispatch_moves_only_the_due_ones(store, report):
    token = take_lease(store, "r1")
    tick, now = current_tick(store)
    soon = now + timedelta(seconds=1)
    schedule = report.track.schedule
    plan = plan_at(schedule, tick, ["acme", "globex", "initech"], [tick, soon, FAR_FUTURE])

    assert store.accept(token, schedule, report.key, [plan], now, tick, WATERMARK_TTL) == Acceptance(1, 2, 0)
    assert [m["tenant"] for m in read_stream(store.client, QUEUE)] == ["acme"]
    pending = store.client.zrange(store.keys.pending(QUEUE), 0, -1, withscores=True)
    assert pending == [
        (f"report/globex/{format_tick(tick)}".encode(), ms(soon)),
        (f"report/initech/{format_tick(tick)}".encode(), ms(FAR_FUTURE)),
    ]
    assert store.client.hlen(store.keys.payload(QUEUE)) == 2
    assert store.queues() == {QUEUE}

    moved, upcoming = store.dispatch(token, QUEUE)
    assert (moved, upcoming) == (0, datetime.fromtimestamp(ms(soon) / 1000, UTC)), "nothing is due yet"

    def dispatched_one():
        moved, upcoming = store.dispatch(token, QUEUE)
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

    assert store.dispatch(token, QUEUE) == (0, FAR_FUTURE)
    assert store.client.xlen(stream_name(QUEUE)) == 2


def test_dispatch_of_an_empty_queue_reports_nothing_upcoming(store):
    token = take_lease(store, "r1")
    assert store.dispatch(token, "nothing-here") == (0, None)


def test_dispatch_moves_at_most_limit_firings(store, report):
    token = take_lease(store, "r1")
    tick, now = current_tick(store)
    soon = now + timedelta(milliseconds=300)
    tenants = many(5)
    plan = plan_at(report.track.schedule, tick, tenants, [soon] * 5)
    assert store.accept(token, report.track.schedule, report.key, [plan], now, tick, WATERMARK_TTL).pending == 5

    wait_for(lambda: redis_now(store.client) > soon, timeout=5, message="Redis's clock to pass enqueue_at")
    assert store.dispatch(token, QUEUE, limit=2) == (2, datetime.fromtimestamp(ms(soon) / 1000, UTC))
    assert store.dispatch(token, QUEUE, limit=2)[0] == 2
    assert store.dispatch(token, QUEUE, limit=2) == (1, None)
    assert sorted(m["tenant"] for m in read_stream(store.client, QUEUE)) == tenants
    assert not store.client.exists(store.keys.payload(QUEUE))


def test_dispatch_refuses_a_stale_token_and_the_next_leader_delivers_what_the_last_accepted(store, report):
    old = take_lease(store, "r1")
    tick, now = current_tick(store)
    soon = now + timedelta(milliseconds=300)
    plan = plan_at(report.track.schedule, tick, ["acme"], [soon])
    assert store.accept(old, report.track.schedule, report.key, [plan], now, tick, WATERMARK_TTL).pending == 1
    expire_lease(store)
    new = take_lease(store, "r2")
    wait_for(lambda: redis_now(store.client) > soon, timeout=5, message="Redis's clock to pass enqueue_at")

    with pytest.raises(NotLeader) as refused:
        store.dispatch(old, QUEUE)
    assert refused.value.epoch == 1
    assert store.client.zcard(store.keys.pending(QUEUE)) == 1, "a refused dispatch moves nothing"
    assert not store.client.exists(stream_name(QUEUE))

    assert store.queues() == {QUEUE}, "the new leader finds the queue to drain"
    assert store.dispatch(new, QUEUE) == (1, None)
    [message] = read_stream(store.client, QUEUE)
    assert message["firing_id"] == f"report/acme/{format_tick(tick)}"
    assert message["epoch"] == "2", "the message names the epoch that delivered it"


def test_a_pending_firing_is_accepted_once_even_if_the_tick_is_accepted_again(store, report):
    token = take_lease(store, "r1")
    tick, now = current_tick(store)
    plan = plan_at(report.track.schedule, tick, ["acme"], [FAR_FUTURE])
    assert store.accept(token, report.track.schedule, report.key, [plan], now, None, WATERMARK_TTL).pending == 1
    assert store.accept(token, report.track.schedule, report.key, [plan], now, tick, WATERMARK_TTL).duplicates == 1
    assert store.client.zcard(store.keys.pending(QUEUE)) == 1
    assert store.client.hlen(store.keys.payload(QUEUE)) == 1


# -- watermarks and chunks ----------------------------------------------------------------------


def test_a_tick_over_more_than_a_chunk_is_split_across_calls_and_each_firing_lands_once(store, report, monkeypatch):
    token = take_lease(store, "r1")
    tick, now = current_tick(store)
    tenants = many(2 * CHUNK + 500)
    plan = [TickPlan(tick, Fanout(report.track, tenants).firings_at(tick))]

    calls = []
    enqueue = store._enqueue

    def counting(keys, args, client=None):
        calls.append(len(args))
        return enqueue(keys, args, client=client)

    monkeypatch.setattr(store, "_enqueue", counting)
    result = store.accept(token, report.track.schedule, report.key, plan, now, tick, WATERMARK_TTL)

    assert calls == [13 + 3 * CHUNK, 13 + 3 * CHUNK, 13 + 3 * 500], "three script calls of at most CHUNK firings"
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

    assert store.accept(token, schedule, report.key, first, now, None, WATERMARK_TTL) == Acceptance(1500, 0, 0)
    assert store.watermark(report.key) is None
    assert store.accept(token, schedule, report.key, whole, now, tick, WATERMARK_TTL) == Acceptance(1000, 0, 1500)
    assert store.watermark(report.key) == tick
    ids = [message["firing_id"] for message in read_stream(store.client, QUEUE)]
    assert len(ids) == len(set(ids)) == len(tenants)


def test_the_watermark_advances_only_with_the_last_chunk_and_in_the_same_script_call(store, report, monkeypatch):
    token = take_lease(store, "r1")
    tick, now = current_tick(store)
    plan = [TickPlan(tick, Fanout(report.track, many(2 * CHUNK + 500)).firings_at(tick))]
    monkeypatch.setattr(state_module, "CALLS_PER_ROUND_TRIP", 1)  # one script call per round trip

    snapshots = []
    client = store.client
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
    store.accept(token, report.track.schedule, report.key, plan, now, tick, WATERMARK_TTL)

    assert snapshots == [
        (CHUNK, None, None, 1),
        (2 * CHUNK, None, None, 1),
        (2 * CHUNK + 500, str(ms(tick)).encode(), float(ms(tick)), 0),
    ]


def test_finishing_past_the_last_tick_advances_the_watermark_to_finish(store, report):
    token = take_lease(store, "r1")
    tick, now = current_tick(store)
    plan = [TickPlan(tick, Fanout(report.track, report.tenant_ids).firings_at(tick))]
    finish = tick + timedelta(minutes=5)  # as when the policy skipped later ticks
    assert store.accept(token, report.track.schedule, report.key, plan, now, finish, WATERMARK_TTL).delivered == 3
    assert store.watermark(report.key) == finish
    assert store.client.zscore(store.keys.done(report.key), ms(tick)) == ms(tick)


def test_a_schedule_seen_first_only_gets_a_watermark(store, report):
    token = take_lease(store, "r1")
    now = redis_now(store.client)
    plan = Fanout(report.track, report.tenant_ids).catch_up(None, now)
    assert plan.ticks == []
    result = store.accept(token, report.track.schedule, report.key, plan.ticks, now, plan.watermark, WATERMARK_TTL)
    assert result == Acceptance(0, 0, 0)
    assert store.watermark(report.key) == datetime.fromtimestamp(ms(now) / 1000, UTC)
    assert not store.client.exists(stream_name(QUEUE))


def test_the_watermark_never_moves_back_but_its_ttl_is_refreshed(store, report):
    token = take_lease(store, "r1")
    now = redis_now(store.client)
    later, earlier = floor_minute(now), floor_minute(now) - timedelta(hours=1)
    store.accept(token, report.track.schedule, report.key, [], now, later, timedelta(hours=1))
    store.accept(token, report.track.schedule, report.key, [], now, earlier, timedelta(days=2))
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

    result = store.accept(token, report.track.schedule, report.key, plan.ticks, now, plan.watermark, WATERMARK_TTL)
    assert result == Acceptance(delivered=15, pending=0, duplicates=0)
    assert store.watermark(report.key) == tick
    done = store.client.zrange(store.keys.done(report.key), 0, -1, withscores=True)
    assert [score for _, score in done] == [ms(t.tick) for t in plan.ticks]
    ticks = sorted({m["tick"] for m in read_stream(store.client, QUEUE)})
    assert ticks == [format_tick(t.tick) for t in plan.ticks]


# -- dedup records and their expiry -------------------------------------------------------------


def test_an_unfinished_ticks_dedup_set_expires_at_tick_plus_window_plus_margin(store, report):
    token = take_lease(store, "r1")
    tick, _ = current_tick(store)
    schedule = report.track.schedule
    plan = [TickPlan(tick, Fanout(report.track, report.tenant_ids).firings_at(tick))]
    store.accept(token, schedule, report.key, plan, tick, None, WATERMARK_TTL)  # handled right at its tick

    seen = store.keys.seen(report.key, ms(tick))
    assert store.client.smembers(seen) == {b"acme", b"globex", b"initech"}
    expires_at = store.client.execute_command("PEXPIRETIME", seen)
    assert expires_at == ms(tick + schedule.catchup_window + DEDUP_MARGIN)
    assert not store.client.exists(store.keys.done(report.key)), "not finished: not done"


def test_finishing_a_tick_drops_its_dedup_set_and_records_it_done_with_a_ttl(store, report):
    token = take_lease(store, "r1")
    tick, now = current_tick(store)
    plan = [TickPlan(tick, Fanout(report.track, report.tenant_ids).firings_at(tick))]
    store.accept(token, report.track.schedule, report.key, plan, now, tick, WATERMARK_TTL)

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
        store.accept(token, schedule, report.key, [TickPlan(old, fanout.firings_at(old))],
                     old + timedelta(seconds=1), old, WATERMARK_TTL)
    assert len(store.client.zrange(store.keys.done(report.key), 0, -1)) == 2

    plan = [TickPlan(tick, Fanout(report.track, report.tenant_ids).firings_at(tick))]
    store.accept(token, schedule, report.key, plan, now, tick, WATERMARK_TTL)
    scores = [score for _, score in store.client.zrange(store.keys.done(report.key), 0, -1, withscores=True)]
    assert scores == [ms(kept), ms(tick)], "only the tick older than now - window - 24 h is forgotten"


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
    first = store.accept(token, schedule, state.key, plan.ticks, now, None, WATERMARK_TTL)
    expire_lease(store)
    token = take_lease(store, "r2")
    again = store.accept(token, schedule, state.key, plan.ticks, now, plan.watermark, WATERMARK_TTL)

    assert first == Acceptance(2, 0, 0)
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
    store.accept(old, schedule, report.key, [plan], now, None, WATERMARK_TTL)  # leaves the dedup set
    store.accept(old, schedule, report.key, [plan_at(schedule, tick - timedelta(minutes=1), ["acme"], [tick])],
                 now, tick - timedelta(minutes=1), WATERMARK_TTL)  # leaves done and watermark
    store.dispatch(old, QUEUE)
    store.publish_table("abc123", "/etc/schedules.toml", "r1", 1, now)
    store.release(old)
    take_lease(store, "r2")

    ours = [key.decode() for key in client.keys("*") if not key.startswith(b"{another}")]
    expected = {
        store.keys.lease, store.keys.epoch, store.keys.table, store.keys.queues, store.keys.watermark(report.key),
        store.keys.done(report.key), store.keys.seen(report.key, ms(tick)), store.keys.pending(QUEUE),
        store.keys.payload(QUEUE), stream_name(QUEUE),
    }
    assert set(ours) == expected
    assert all(key.startswith(PREFIX + ":") for key in ours)
    assert {key_slot(key.encode()) for key in ours} == {key_slot(b"sched-42")}
    assert store.holder() == "2:r2", "the other prefix's lease and epoch are its own"
    assert other_prefix.holder() == "1:x"


def test_publish_table_records_what_the_leader_runs(store):
    now = datetime(2026, 11, 22, 3, 4, 5, 123456, tzinfo=UTC)
    store.publish_table("f1ngerprint", "/srv/schedules.toml", "r1", 7, now)
    assert store.client.hgetall(store.keys.table) == {
        b"fingerprint": b"f1ngerprint",
        b"path": b"/srv/schedules.toml",
        b"replica": b"r1",
        b"epoch": b"7",
        b"loaded_at": b"2026-11-22T03:04:05.123Z",
    }
