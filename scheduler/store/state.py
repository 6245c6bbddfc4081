"""The durable state in Redis: the lease, watermarks, dedup records, pending firings, queues.

Every write that matters is one Lua script (``scheduler/store/lua``), fenced by the lease token, so
a replica that lost its lease cannot write even before it knows. Each method makes the Redis calls
and turns a script's return code into a result or a typed error (NotLeader, RedisUnavailable).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib.resources import files

import redis

from scheduler.clock.firing import format_instant, format_tick
from scheduler.clock.planner import TickPlan
from scheduler.errors import NotLeader, RedisUnavailable
from scheduler.table import Schedule
from scheduler.targets import Target

CHUNK = 1000  # firings per script call: keeps each call well under a millisecond of Redis time
CALLS_PER_ROUND_TRIP = 50
DEDUP_MARGIN = timedelta(hours=24)  # dedup records outlive the catch-up window by this much


def _ms(instant: datetime) -> int:
    return int(instant.timestamp() * 1000)


class Keys:
    """Every key the scheduler uses, all under one prefix holding one hash tag (Redis Cluster)."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.lease = f"{prefix}:lease"
        self.epoch = f"{prefix}:epoch"
        self.released = f"{prefix}:lease:released"  # pub/sub channel, not a key
        self.table = f"{prefix}:table"
        self.queues = f"{prefix}:queues"

    def watermark(self, track: str) -> str:
        return f"{self.prefix}:watermark:{track}"

    def done(self, track: str) -> str:
        return f"{self.prefix}:done:{track}"

    def seen(self, track: str, tick_ms: int | str) -> str:
        return f"{self.prefix}:seen:{track}:{tick_ms}"

    def pending(self, queue: str) -> str:
        return f"{self.prefix}:pending:{queue}"

    def payload(self, queue: str) -> str:
        return f"{self.prefix}:payload:{queue}"


@dataclass
class Acceptance:
    delivered: int = 0
    pending: int = 0
    duplicates: int = 0

    def add(self, result: Sequence[int]) -> None:
        self.delivered += result[0]
        self.pending += result[1]
        self.duplicates += result[2]

    def merge(self, other: "Acceptance") -> None:
        self.add((other.delivered, other.pending, other.duplicates))


def _script(name: str) -> str:
    return files("scheduler.store").joinpath("lua", name).read_text(encoding="utf-8")


class Store:
    def __init__(self, client: redis.Redis, keys: Keys, target: Target) -> None:
        self.client = client
        self.keys = keys
        self.target = target
        self._acquire = client.register_script(_script("lease_acquire.lua"))
        self._renew = client.register_script(_script("lease_renew.lua"))
        self._release = client.register_script(_script("lease_release.lua"))
        self._enqueue = client.register_script(target.deliver_lua() + "\n" + _script("enqueue.lua"))
        self._dispatch = client.register_script(target.deliver_lua() + "\n" + _script("dispatch.lua"))

    # -- the lease ------------------------------------------------------------------------------

    def acquire(self, replica_id: str, ttl: timedelta) -> tuple[int, str]:
        """(epoch, "") when this replica took the lease, else (0, the holder's token)."""
        with _translated("taking the lease"):
            epoch, holder = self._acquire([self.keys.lease, self.keys.epoch], [replica_id, _whole_ms(ttl)])
        return int(epoch), holder.decode() if isinstance(holder, bytes) else holder

    def renew(self, token: str, ttl: timedelta) -> bool:
        with _translated("renewing the lease"):
            return bool(self._renew([self.keys.lease], [token, _whole_ms(ttl)]))

    def release(self, token: str) -> bool:
        with _translated("releasing the lease"):
            return bool(self._release([self.keys.lease], [token, self.keys.released]))

    def holder(self) -> str | None:
        with _translated("reading the lease"):
            value = self.client.get(self.keys.lease)
        return value.decode() if value else None

    # -- watermarks and firings -----------------------------------------------------------------

    def watermark(self, track: str) -> datetime | None:
        with _translated("reading a watermark"):
            value = self.client.get(self.keys.watermark(track))
        return datetime.fromtimestamp(int(value) / 1000, UTC) if value else None

    def accept(
        self,
        token: str,
        schedule: Schedule,
        track: str,
        ticks: Sequence[TickPlan],
        now: datetime,
        finish: datetime | None,
        watermark_ttl: timedelta,
    ) -> Acceptance:
        """Accept ``ticks``' firings exactly once; with ``finish``, also finish them and advance the
        watermark to ``finish`` (the last of them, or further when the policy skipped ticks).

        Raises NotLeader as soon as a call is refused; what went before it stays accepted.
        """
        calls = list(self._enqueue_calls(token, schedule, track, ticks, now, finish, watermark_ttl))
        result = Acceptance()
        for start in range(0, len(calls), CALLS_PER_ROUND_TRIP):
            with _translated("enqueueing firings"):
                pipe = self.client.pipeline(transaction=False)
                for keys, args in calls[start : start + CALLS_PER_ROUND_TRIP]:
                    self._enqueue(keys, args, client=pipe)
                replies = pipe.execute()
            for reply in replies:
                if reply[0] == -1:
                    raise NotLeader(*_token_parts(token))
                result.add(reply)
        return result

    def _enqueue_calls(
        self,
        token: str,
        schedule: Schedule,
        track: str,
        ticks: Sequence[TickPlan],
        now: datetime,
        finish: datetime | None,
        watermark_ttl: timedelta,
    ) -> Iterator[tuple[list[str], list[str | int]]]:
        epoch = _token_parts(token)[1]
        queue = schedule.queue
        trim = _ms(now - schedule.catchup_window - DEDUP_MARGIN)
        ttl = _whole_ms(watermark_ttl)
        for plan in ticks:
            stamps: dict[datetime, tuple[int, str]] = {}  # enqueue_at in ms and ISO; without jitter, one
            tick_ms = _ms(plan.tick)
            keys = self._keys(track, tick_ms, queue)
            # From `now`, not the tick: a late tick kept by the policy may be older than the window.
            dedup_until = _ms(max(plan.tick, now) + schedule.catchup_window + DEDUP_MARGIN)
            common = [tick_ms, dedup_until, ttl, trim, queue,
                      schedule.name, format_tick(plan.tick), schedule.job, schedule.args_json]
            chunks = [plan.firings[i : i + CHUNK] for i in range(0, len(plan.firings), CHUNK)] or [[]]
            for index, chunk in enumerate(chunks):
                last = finish is not None and index == len(chunks) - 1
                args: list[str | int] = [token, epoch, common[0], "1" if last else "0", tick_ms if last else "",
                                         *common[1:]]
                for firing in chunk:
                    stamp = stamps.get(firing.enqueue_at)
                    if stamp is None:
                        stamp = stamps[firing.enqueue_at] = (_ms(firing.enqueue_at), format_instant(firing.enqueue_at))
                    args += (firing.tenant, *stamp)
                yield keys, args
        if finish is not None and (not ticks or finish > ticks[-1].tick):
            args = [token, epoch, "", "1", _ms(finish), 0, ttl, trim, queue, schedule.name, "", "", ""]
            yield self._keys(track, "-", queue), args

    def _keys(self, track: str, tick_ms: int | str, queue: str) -> list[str]:
        k = self.keys
        return [k.lease, k.seen(track, tick_ms), k.done(track), k.watermark(track), k.pending(queue),
                k.payload(queue), k.queues, *self.target.keys(queue)]

    # -- pending firings ------------------------------------------------------------------------

    def dispatch(self, token: str, queue: str, limit: int = CHUNK) -> tuple[int, datetime | None]:
        """Deliver up to ``limit`` due pending firings of ``queue``: (moved, next enqueue_at or None)."""
        keys = [self.keys.lease, self.keys.pending(queue), self.keys.payload(queue), *self.target.keys(queue)]
        with _translated("delivering pending firings"):
            moved, upcoming = self._dispatch(keys, [token, _token_parts(token)[1], limit])
        if moved == -1:
            raise NotLeader(*_token_parts(token))
        return moved, (datetime.fromtimestamp(upcoming / 1000, UTC) if upcoming >= 0 else None)

    def queues(self) -> set[str]:
        """Every queue that ever had pending firings (their pending sets are drained even after a
        schedule is removed from the table)."""
        with _translated("listing queues"):
            return {member.decode() for member in self.client.smembers(self.keys.queues)}

    def publish_table(self, fingerprint: str, path: str, replica: str, epoch: int, now: datetime) -> None:
        """Record which table the leader runs, for anyone to see."""
        with _translated("recording the table"):
            self.client.hset(
                self.keys.table,
                mapping={"fingerprint": fingerprint, "path": path, "replica": replica, "epoch": epoch,
                         "loaded_at": format_instant(now)},
            )


def _whole_ms(value: timedelta) -> int:
    return max(1, int(value.total_seconds() * 1000))


def _token_parts(token: str) -> tuple[str, int]:
    epoch, _, replica = token.partition(":")
    return replica, int(epoch)


@contextmanager
def _translated(doing: str) -> Iterator[None]:
    """Turn redis-py's errors into RedisUnavailable, naming what was being done."""
    try:
        yield
    except redis.ResponseError as error:
        # The server's own reply (a script error, a wrong type): it names no credentials.
        raise RedisUnavailable(f"{doing}: {error}") from None
    except redis.RedisError as error:
        raise RedisUnavailable(f"{doing}: {type(error).__name__}") from None
