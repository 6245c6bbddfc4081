"""Helpers for the integration tests of the Redis layer: Stores, leases, streams, schedules from TOML."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import redis
from helpers import write_table
from redis_server import wait_for

from scheduler.clock.firing import Firing
from scheduler.keys import Keys, Token
from scheduler.plan.passes import TrackPlan
from scheduler.plan.planner import TickPlan
from scheduler.replica.tracks import TrackState, build_tracks
from scheduler.store.calls import Acceptance
from scheduler.store.delivery import Delivery
from scheduler.store.state import DEDUP_MARGIN, Store
from scheduler.table import Schedule, Table, load_table
from scheduler.targets import Routes, Target

# Something around the hash tag, so a test sees that only the part in braces is the tag.
PREFIX = "it{sched-42}x"
WATERMARK_TTL = timedelta(days=3)


def make_store(client: redis.Redis, prefix: str = PREFIX) -> Store:
    return Store(client, Keys(prefix))


def route(store: Store, queue: str, table: Table | None = None) -> Target:
    """Where ``queue``'s firings go under ``table`` (none: every queue is a stream in this Redis)."""
    return Routes(store.keys, table).target(queue)


def accept(
    store: Store,
    token: Token,
    schedule: Schedule,
    track: str,
    ticks: list[TickPlan],
    finish: datetime | None,
    ttl: timedelta = WATERMARK_TTL,
    table: Table | None = None,
) -> Acceptance:
    """Accept ``ticks``' firings as one pass does (into the schedule's queue under ``table``); with
    ``finish``, then finish each tick (if every chunk of it was accepted) and move the watermark up
    to ``finish``. Raises the first refusal."""
    delivery = Delivery(store, token)
    delivery.accept(schedule, track, ticks, ttl, route(store, schedule.queue, table))
    if finish is not None:
        plan = TrackPlan(track, schedule, None, finish, [plan.tick for plan in ticks])
        delivery.finish(plan, ttl, schedule.catchup_window + DEDUP_MARGIN)
    outcome = delivery.close()
    if outcome.error is not None:
        raise outcome.error
    return outcome.accepted.get(track, Acceptance())


def take_lease(store: Store, replica: str, ttl: timedelta = timedelta(seconds=30)) -> Token:
    """Acquire the lease for ``replica`` (it must be free) and return its token."""
    token, holder = store.acquire(replica, ttl)
    assert token is not None, f"{replica} could not take the lease, {holder} holds it"
    return token


def expire_lease(store: Store) -> None:
    """Let Redis expire the lease (as if its holder froze), and wait until it has."""
    client, key = store.client, store.keys.lease
    assert client.pexpire(key, 1)
    wait_for(lambda: not client.exists(key), timeout=5, message="the lease to expire")



def floor_minute(instant: datetime) -> datetime:
    return instant.replace(second=0, microsecond=0)


def stream_name(queue: str, prefix: str = PREFIX) -> str:
    return Keys(prefix).stream(queue)


def read_stream(client: redis.Redis, queue: str, prefix: str = PREFIX) -> list[dict[str, str]]:
    """Every message of a queue's stream, decoded, in stream order."""
    return [
        {key.decode(): value.decode() for key, value in fields.items()}
        for _, fields in client.xrange(stream_name(queue, prefix))
    ]


def read_stream_fields(client: redis.Redis, queue: str, prefix: str = PREFIX) -> list[list[str]]:
    """The field names of each message, in the order XADD wrote them (redis-py keeps reply order)."""
    return [[name.decode() for name in fields] for _, fields in client.xrange(stream_name(queue, prefix))]


def track_of(directory: Path, text: str, name: str) -> TrackState:
    """The one TrackState of schedule ``name`` in a table written from ``text``."""
    table = load_table(write_table(directory, text))
    states = [state for state in build_tracks(table).values() if state.track.schedule.name == name]
    assert len(states) == 1, states
    return states[0]


def schedule_of(directory: Path, text: str, name: str) -> Schedule:
    return track_of(directory, text, name).track.schedule


def plan_at(schedule: Schedule, tick: datetime, tenants: list[str], enqueue_at: list[datetime]) -> TickPlan:
    """A TickPlan with chosen enqueue_at times (to put a firing in the past or the far future)."""
    return TickPlan(tick, [Firing(schedule.name, tenant, tick, at) for tenant, at in zip(tenants, enqueue_at, strict=True)])

