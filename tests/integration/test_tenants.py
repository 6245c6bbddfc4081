"""Tenant sets kept in Redis: SSCAN in batches, unsafe members skipped with one warning per scan, and
a whole tick over a 100,000-member set accepted the way the run loop does it (batches, then one
finishing batch)."""

from __future__ import annotations

import re
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


def test_unsafe_members_are_skipped_in_one_warning_counting_them_with_an_example_per_reason(redis_client, warnings):
    good = ["acme", "globex", "init-ech_2"]
    bad = {
        "has space": "must not contain whitespace",
        "a/b": "must not contain '/' (they would break firing ids and Redis keys)",
        "{tag}": "must not contain '{' or '}' (they would break firing ids and Redis keys)",
        "": "must not be empty",
        "ctl\x01x": "must not contain control characters",
        "zero\u200bwidth": "must not contain non-printing characters (U+200B ZERO WIDTH SPACE)",
        "x" * 300: "is 300 characters long; the limit is 256",
    }
    redis_client.sadd(SET_KEY, *good, *bad)

    found = [tenant for batch in scan_redis_set(redis_client, SET_KEY, batch=2) for tenant in batch]

    assert sorted(found) == sorted(good)
    [line] = warnings
    assert line.startswith(f"redis set {SET_KEY!r}: skipped 7 members that are not tenant ids (e.g. "), line
    assert line.endswith("; ...)"), line
    shown = {member: (repr(member[:32]) + "..." if len(member) > 32 else repr(member)) for member in bad}
    examples = [member for member, reason in bad.items() if f"{shown[member]}: {reason}" in line]
    assert len(examples) == 3, f"one example for each of three reasons: {line}"


def test_a_member_that_is_not_utf8_is_skipped_not_mangled(redis_client, warnings):
    redis_client.sadd(SET_KEY, "acme", b"globex\xff", b"globex\xfe")
    found = [tenant for batch in scan_redis_set(redis_client, SET_KEY) for tenant in batch]
    assert found == ["acme"]
    [line] = warnings
    assert line.startswith(f"redis set {SET_KEY!r}: skipped 2 members that are not tenant ids (e.g. b'globex\\x"), line
    assert line.endswith("': is not UTF-8; ...)"), line


def test_many_junk_members_log_one_line_per_scan_and_every_valid_member_comes_through(tmp_path, redis_client,
                                                                                        warnings):
    valid = ids(5_000)
    fill(redis_client, SET_KEY, valid + [f"bad id {n}" for n in range(100_000)])
    state = track_of(tmp_path, TABLE, "rollup")

    for tick in (1, 2):  # the leader reads the set once per tick, batch by batch
        found = [tenant for batch in state.batches(TenantSets(redis_client)) for tenant in batch]
        assert sorted(found) == valid
        assert len(warnings) == tick, warnings[-3:]
    assert sorted(tenant.id for tenant in resolve(state.track.schedule.tenants, redis_client)) == valid
    assert len(warnings) == 3, "validate and dry-run read the set through resolve: one line too"

    first = warnings[0]
    assert warnings == [first] * 3
    assert re.fullmatch(rf"redis set {SET_KEY!r}: skipped 100,000 members that are not tenant ids "
                        r"\(e\.g\. 'bad id \d+': must not contain whitespace; \.\.\.\)", first), first


def test_the_summary_shows_skipped_members_truncated_and_escaped(redis_client, warnings):
    forged = "x\n2026-01-01T00:00:00.000Z ERROR forged log line"
    colour = "\x1b[31mred"
    binary = b"\xff" * 10_000
    redis_client.sadd(SET_KEY, "acme", forged, colour, binary)

    assert [tenant for batch in scan_redis_set(redis_client, SET_KEY) for tenant in batch] == ["acme"]

    [line] = warnings
    assert "\n" not in line and "\x1b" not in line and len(line) < 400, line
    assert line.startswith(f"redis set {SET_KEY!r}: skipped 3 members that are not tenant ids (e.g. "), line
    assert "'x\\n2026-01-01T00:00:00.000Z ERROR'...: must not contain whitespace" in line
    assert "'\\x1b[31mred': must not contain control characters" in line
    assert f"{binary[:32]!r}...: is not UTF-8" in line
    assert line.endswith(")") and not line.endswith("; ...)"), "every member skipped is shown"


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
