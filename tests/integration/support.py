"""Helpers for the integration tests of the Redis layer: Stores, leases, streams, schedules from TOML."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import redis

from scheduler.clock.firing import Firing
from scheduler.clock.planner import TickPlan
from scheduler.store.delivery import Delivery
from scheduler.replica.tracks import TrackState, build_tracks
from scheduler.store.state import DEDUP_MARGIN, Acceptance, Keys, Store
from scheduler.table import Schedule, load_table

# Something around the hash tag, so a test sees that only the part in braces is the tag.
PREFIX = "it{sched-42}x"
WATERMARK_TTL = timedelta(days=3)


def make_store(client: redis.Redis, prefix: str = PREFIX) -> Store:
    return Store(client, Keys(prefix))


def accept(
    store: Store,
    token: str,
    schedule: Schedule,
    track: str,
    ticks: list[TickPlan],
    finish: datetime | None,
    ttl: timedelta = WATERMARK_TTL,
) -> Acceptance:
    """Accept ``ticks``' firings as one pass does; with ``finish``, then finish each tick (if every
    chunk of it was accepted) and move the watermark up to ``finish``. Raises the first refusal."""
    delivery = Delivery(store, token)
    delivery.accept(schedule, track, ticks, ttl)
    if finish is not None:
        delivery.finish(schedule.name, track, [plan.tick for plan in ticks], finish, ttl, schedule.catchup_window + DEDUP_MARGIN)
    outcome = delivery.close()
    if outcome.error is not None:
        raise outcome.error
    return outcome.accepted.get(track, Acceptance())


def take_lease(store: Store, replica: str, ttl: timedelta = timedelta(seconds=30)) -> str:
    """Acquire the lease for ``replica`` (it must be free) and return its token."""
    epoch, holder = store.acquire(replica, ttl)
    assert epoch > 0, f"{replica} could not take the lease, {holder} holds it"
    return f"{epoch}:{replica}"


def redis_now(client: redis.Redis) -> datetime:
    """Redis's own clock (the scripts decide 'due' by it), as an aware UTC datetime."""
    seconds, micros = client.time()
    return datetime.fromtimestamp(seconds + micros / 1_000_000, UTC)


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


def write_table(directory: Path, text: str) -> Path:
    path = directory / "schedules.toml"
    path.write_text(textwrap.dedent(text))
    return path


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

