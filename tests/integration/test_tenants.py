"""Tenant sets kept in Redis: SSCAN in batches, unsafe members skipped loudly, and a whole tick over a
100,000-member set accepted the way the run loop does it (batches, then one finishing batch)."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

from helpers import redis_now
from support import WATERMARK_TTL, floor_minute, route, stream_name, take_lease, track_of

from scheduler.clock.instants import format_tick
from scheduler.plan.passes import TrackPlanner
from scheduler.replica.tracks import BATCH
from scheduler.store.calls import Acceptance
from scheduler.store.delivery import Delivery
from scheduler.tenants import SCAN_BATCH, TenantSets, resolve, scan_redis_set

SET_KEY = "tenants:active"
TABLE = f"""
[tenants]
active = {{ redis_set = "{SET_KEY}" }}

[[schedule]]
name = "rollup"
every = "1m"
tenants = "active"
job = "UsageRollup"
queue = "rollups"
"""


def fill(client, key: str, members: list[str], chunk: int = 10_000) -> None:
    for start in range(0, len(members), chunk):
        client.sadd(key, *members[start : start + chunk])
    assert client.scard(key) == len(members)


def ids(count: int) -> list[str]:
    return [f"tenant-{n:06d}" for n in range(count)]


def test_a_100k_member_set_comes_back_whole_each_member_once(redis_client):
    members = ids(100_000)
    fill(redis_client, SET_KEY, members)

    batches = list(scan_redis_set(redis_client, SET_KEY, batch=SCAN_BATCH))

    seen = Counter(tenant for batch in batches for tenant in batch)
    assert set(seen) == set(members)
    assert max(seen.values()) == 1, "each member exactly once"
    assert all(isinstance(tenant, str) for batch in batches for tenant in batch)
    assert len(batches) >= 100_000 // (SCAN_BATCH + SCAN_BATCH // 10), "streamed in batches, not one reply"
    assert all(batch for batch in batches), "no empty batch is yielded"


def test_batches_are_never_larger_than_asked(redis_client):
    # A set of integer ids is stored as an intset: SSCAN returns all of it at once, whatever COUNT says.
    fill(redis_client, "tenants:numeric", [str(100_000 + n) for n in range(500)])
    numeric = [len(batch) for batch in scan_redis_set(redis_client, "tenants:numeric", batch=100)]
    assert sum(numeric) == 500
    assert max(numeric) <= 100, f"batch sizes {numeric}"

    fill(redis_client, SET_KEY, ids(100_000))
    sizes = [len(batch) for batch in scan_redis_set(redis_client, SET_KEY, batch=1000)]
    assert sum(sizes) == 100_000
    assert max(sizes) <= 1000, f"largest batch {max(sizes)}"


def test_unsafe_members_are_skipped_with_a_warning_naming_set_member_and_reason(redis_client, warnings):
    good = ["acme", "globex", "init-ech_2"]
    bad = {
        "has space": "whitespace",
        "a/b": "'/'",
        "{tag}": "'{' or '}'",
        "": "must not be empty",
        "ctl\x01x": "control characters",
        "x" * 300: "the limit is 256",
    }
    redis_client.sadd(SET_KEY, *good, *bad)

    found = [tenant for batch in scan_redis_set(redis_client, SET_KEY, batch=2) for tenant in batch]

    assert sorted(found) == sorted(good)
    assert len(warnings) == len(bad), warnings
    for member, reason in bad.items():
        [line] = [w for w in warnings if repr(member[:80]) in w]
        assert SET_KEY in line and "skipping member" in line and reason in line, line


def test_a_member_that_is_not_utf8_is_skipped_not_mangled(redis_client, warnings):
    redis_client.sadd(SET_KEY, "acme", b"globex\xff", b"globex\xfe")
    found = [tenant for batch in scan_redis_set(redis_client, SET_KEY) for tenant in batch]
    assert found == ["acme"]
    assert len(warnings) == 2


def test_a_missing_set_yields_no_batch_and_resolves_to_no_tenants(tmp_path, redis_client):
    assert list(scan_redis_set(redis_client, "tenants:nobody")) == []
    state = track_of(tmp_path, TABLE, "rollup")
    assert resolve(state.track.schedule.tenants, redis_client) == []
    assert list(state.batches(TenantSets(redis_client))) == [[]], "at least one (empty) batch"


def test_track_batches_stream_the_set_in_batches_of_at_most_batch(tmp_path, redis_client):
    members = ids(2 * BATCH + 5_000)
    fill(redis_client, SET_KEY, members)
    state = track_of(tmp_path, TABLE, "rollup")

    batches = list(state.batches(TenantSets(redis_client)))

    assert all(len(batch) <= BATCH for batch in batches)
    assert len(batches) >= 3
    flat = [tenant for batch in batches for tenant in batch]
    assert sorted(flat) == members


def test_a_tick_over_a_100k_member_set_is_enqueued_once_as_the_run_loop_does_it(tmp_path, redis_client, store):
    members = ids(100_000)
    fill(redis_client, SET_KEY, members)
    state = track_of(tmp_path, TABLE, "rollup")
    schedule = state.track.schedule
    token = take_lease(store, "r1")
    now = redis_now(redis_client)
    tick = floor_minute(now)
    watermark = tick - timedelta(minutes=1)  # the previous tick of `every = "1m"`

    delivery = Delivery(store, token)  # as the work loop does it: batch by batch, then finish
    planner = TrackPlanner(state.track, watermark, now, held={})
    for tenant_ids in state.batches(TenantSets(redis_client)):
        delivery.accept(schedule, state.key, planner.batch(tenant_ids), WATERMARK_TTL, route(store, schedule.queue))
    assert store.watermark(state.key) is None, "nothing finishes before every batch was accepted"
    plan = planner.result()
    assert plan.ticks == [tick] and plan.advanced_to == tick
    delivery.finish(plan, WATERMARK_TTL, timedelta(days=2))
    outcome = delivery.close()

    assert outcome.error is None and outcome.finished == {state.key}
    assert outcome.accepted[state.key] == Acceptance(delivered=100_000)
    assert store.watermark(state.key) == tick
    assert redis_client.xlen(stream_name("rollups")) == 100_000
    firing_ids = Counter(fields[b"firing_id"].decode() for _, fields in redis_client.xrange(stream_name("rollups")))
    assert max(firing_ids.values()) == 1
    assert set(firing_ids) == {f"rollup/{member}/{format_tick(tick)}" for member in members}
