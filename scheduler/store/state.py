"""The durable state in Redis: the lease, watermarks, dedup records, pending firings, queues.

Every write that matters is one Lua script (``scheduler/store/lua``), fenced by the lease token, so
a replica that lost its lease cannot write even before it knows. Each method makes the Redis calls
and turns a script's return code into a result or a typed error (NotLeader, RedisUnavailable, or
RedisPermissionError when the Redis user's ACL refused a command).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from importlib.resources import files
from typing import Any

import redis

from scheduler.clock.cadence import EPOCH
from scheduler.clock.firing import Firing, format_instant, format_tick
from scheduler.clock.planner import TickPlan
from scheduler.errors import NotLeader, RedisUnavailable
from scheduler.store.limits import LedgerLimits
from scheduler.store.connection import location, redis_errors, remember_script, reply_error
from scheduler.table import Schedule
from scheduler.targets import Routes, deliver_lua

CHUNK = 1000  # firings per script call: keeps each call well under a millisecond of Redis time
ROUND_TRIP_FIRINGS = 50_000  # firings sent in one pipelined round trip, at most
ROUND_TRIP_CALLS = 1_000  # script calls in one round trip, at most (many small schedules due at once)
DEDUP_MARGIN = timedelta(hours=24)  # finished ticks are remembered for the catch-up window and this


def ms_of(instant: datetime) -> int:
    """An instant as whole milliseconds since the Unix epoch, as Redis's keys and scripts hold it."""
    return int(instant.timestamp() * 1000)


NEVER = datetime.max.replace(tzinfo=UTC)


def instant_of(ms: int) -> datetime:
    """Milliseconds since the Unix epoch as an instant (UTC)."""
    return datetime.fromtimestamp(ms / 1000, UTC)


def entry_instant(entry_id: bytes | str) -> datetime:
    """When a stream entry was added, by Redis's clock: the first part of its id, in ms."""
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    return instant_of(int(text.partition("-")[0]))


def pause_marks(marks: Mapping[bytes, bytes]) -> dict[str, str]:
    """``{scheduler}:paused`` as read: ``schedule`` or ``schedule/tenant`` -> since when."""
    return {field.decode(): json.loads(value).get("since", "") for field, value in marks.items()}


def _watermarks(values: Sequence[bytes | None]) -> list[datetime | None]:
    return [instant_of(int(value)) if value else None for value in values]


def dispatched(reply: Sequence[Any]) -> tuple[int, datetime | None]:
    """A dispatch call's reply as (firings moved, the next pending enqueue_at or None)."""
    moved, upcoming = reply[0], reply[1]
    return int(moved), (instant_of(upcoming) if upcoming >= 0 else None)


def dispatched_groups(reply: Sequence[Any]) -> Iterator[tuple[str, int, bool, int]]:
    """What a dispatch call delivered, for metrics: (schedule, lateness in ms, late, firings) groups."""
    flat = reply[2] if len(reply) > 2 else ()
    for n in range(0, len(flat), 4):
        schedule = flat[n]
        yield (schedule.decode() if isinstance(schedule, bytes) else str(schedule), int(flat[n + 1]),
               bool(flat[n + 2]), int(flat[n + 3]))


class Keys:
    """Every key the scheduler uses, all under one prefix holding one hash tag (Redis Cluster)."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.lease = f"{prefix}:lease"
        self.epoch = f"{prefix}:epoch"
        self.released = f"{prefix}:lease:released"  # pub/sub channel, not a key
        self.table = f"{prefix}:table"
        self.queues = f"{prefix}:queues"
        self.outboxes = f"{prefix}:outboxes"  # the queues whose outbox has ever been written
        self.paused = f"{prefix}:paused"  # schedule, or schedule/tenant -> JSON {"since": ...}
        self.requests = f"{prefix}:requests"  # operators' trigger and backfill requests, a stream
        self.replicas = f"{prefix}:replicas"  # replica id -> last heartbeat in ms (Redis's clock)
        self.replica_info = f"{prefix}:replicas:info"  # replica id -> JSON of what it reported

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

    def stream(self, queue: str) -> str:
        """A redis-stream queue's stream when its entry names none: ``{scheduler}:queue:<queue>``."""
        return f"{self.prefix}:queue:{queue}"

    def outbox(self, queue: str) -> str:
        """The outbox of a queue whose target lives outside this Redis (docs/queues.md)."""
        return f"{self.prefix}:outbox:{queue}"

    def history(self, schedule: str) -> str:
        """A schedule's decision ledger: a stream, one entry per tick decided (docs/operations.md)."""
        return f"{self.prefix}:history:{schedule}"

    def result(self, request_id: str) -> str:
        """An operator's request's result, for the command that waits on it."""
        return f"{self.prefix}:request:{request_id}"

    def request_seen(self, request_id: str) -> str:
        """The tenants a trigger request already delivered (so a retried request sends none twice)."""
        return f"{self.prefix}:request:{request_id}:seen"

    def relayed(self, firing_id: str) -> str:
        """In a target's own Redis: the marker that the relay already delivered ``firing_id``."""
        return f"{self.prefix}:relayed:{firing_id}"


@dataclass
class Acceptance:
    """What the enqueue calls of one track accepted: firings delivered at once, parked pending (they
    wait out their jitter), already accepted before, and how many of the delivered ones were late.
    ``deliveries`` tells the metrics when each delivered firing was due: per enqueue call that
    delivered any, (the TIME it judged them by, their enqueue_at, sorted), both in ms. It is left
    out of comparisons."""

    delivered: int = 0
    pending: int = 0
    duplicates: int = 0
    late: int = 0
    deliveries: list[tuple[int, list[int]]] = field(default_factory=list, compare=False, repr=False)

    def add(self, result: Sequence[int], call: Call | None = None) -> None:
        """Count an enqueue reply in; with its ``call``, when its delivered firings were due too."""
        self.delivered += result[0]
        self.pending += result[1]
        self.duplicates += result[2]
        if len(result) > 4:
            self.late += result[3]
            if call is not None and result[0] > 0 and call.stamps:
                self.deliveries.append((int(result[4]), delivered_at(call, result)))


def delivered_at(call: Call, reply: Sequence[int]) -> list[int]:
    """The enqueue_at in ms of the firings an enqueue ``call`` delivered, sorted (so the metrics
    bucket their lateness, TIME minus enqueue_at, with a bisection per bucket, not per firing).

    The reply says how many were delivered and the TIME it judged them by (now_ms); the call knows
    its firings' enqueue_at. A firing due by now_ms that was not a duplicate was delivered. Without
    jitter every firing of a tick shares one enqueue_at: one list repetition per chunk. With jitter
    the chunk's stamps are looked up once per firing, only when something was delivered. When some
    due firings were duplicates (a retried tick), which ones the reply does not say: the earliest
    due are taken as the duplicates, since an earlier attempt would have delivered those.
    """
    delivered, now_ms = int(reply[0]), int(reply[4])
    if len(call.stamps) == 1:
        ((at_ms, _),) = call.stamps.values()
        return [at_ms] * delivered
    stamps = call.stamps
    due = sorted(at_ms for at_ms in (stamps[firing.enqueue_at][0] for firing in call.chunk) if at_ms <= now_ms)
    return due[max(0, len(due) - delivered):]


def _script(name: str) -> str:
    return files("scheduler.store").joinpath("lua", name).read_text(encoding="utf-8")


class Script:
    """A Lua script as text and SHA1, for pipelines that send bare EVALSHA (one round trip, no
    SCRIPT EXISTS first): a NOSCRIPT reply (a restarted or flushed Redis) means nothing ran, so the
    call is loaded and sent again."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.sha = hashlib.sha1(text.encode()).hexdigest()
        remember_script(self.sha, text)


def register(client: redis.Redis, text: str) -> Any:
    """redis-py's Script for ``text`` (EVALSHA, SCRIPT LOAD on NOSCRIPT), known by its SHA1 so a
    command the ACL refuses inside it can be named."""
    script = client.register_script(text)
    remember_script(script.sha, text)
    return script


@dataclass(frozen=True)
class Call:
    """One fenced script call of a pass, with the track and tick it concerns (for the caller to
    know which ticks were fully accepted). An enqueue call also keeps its chunk of firings and the
    tick's enqueue_at stamps (datetime -> (ms, ISO)), by reference, for delivered_at."""

    script: Script
    keys: list[str]
    args: list[str | int]
    track: str = ""
    tick: datetime | None = None
    firings: int = 0
    chunk: Sequence[Firing] = field(default=(), compare=False, repr=False)
    stamps: Mapping[datetime, tuple[int, str]] = field(default_factory=dict, compare=False, repr=False)


Reply = Any  # a script's reply, or the RedisUnavailable that stands for its error reply


class Store:
    def __init__(self, client: redis.Redis, keys: Keys, routes: Routes | None = None,
                 ledger: LedgerLimits = LedgerLimits()) -> None:
        self.client = client
        self.keys = keys
        self.routes = routes or Routes(keys)  # the worker swaps in a new one when the table changes
        self.ledger = ledger
        self._acquire = register(client, _script("lease_acquire.lua"))
        self._renew = register(client, _script("lease_renew.lua"))
        self._release = register(client, _script("lease_release.lua"))
        self._table = register(client, _script("table.lua"))
        self.where = location(client)  # for errors: the URL without its password
        self._enqueue = Script(deliver_lua() + "\n" + _script("enqueue.lua"))
        self._finish = Script(_script("ledger.lua") + "\n" + _script("finish.lua"))
        self._dispatch = Script(deliver_lua() + "\n" + _script("dispatch.lua"))
        self._trigger = Script(deliver_lua() + "\n" + _script("trigger.lua"))
        self._complete = Script(_script("ledger.lua") + "\n" + _script("complete.lua"))
        self._heartbeat = register(client, _script("heartbeat.lua"))

    def errors(self, doing: str) -> AbstractContextManager[None]:
        return redis_errors(doing, self.where)

    # -- the lease ------------------------------------------------------------------------------

    def acquire(self, replica_id: str, ttl: timedelta) -> tuple[int, str]:
        """(epoch, "") when this replica took the lease, else (0, the holder's token)."""
        with self.errors("taking the lease"):
            epoch, holder = self._acquire([self.keys.lease, self.keys.epoch], [replica_id, _whole_ms(ttl)])
        return int(epoch), holder.decode() if isinstance(holder, bytes) else holder

    def renew(self, token: str, ttl: timedelta) -> bool:
        with self.errors("renewing the lease"):
            return bool(self._renew([self.keys.lease], [token, _whole_ms(ttl)]))

    def release(self, token: str) -> bool:
        with self.errors("releasing the lease"):
            return bool(self._release([self.keys.lease], [token, self.keys.released]))

    def holder(self) -> str | None:
        with self.errors("reading the lease"):
            value = self.client.get(self.keys.lease)
        return value.decode() if value else None

    # -- Redis's clock and settings -------------------------------------------------------------

    def time(self) -> datetime:
        """Redis's own clock (TIME): the one clock every replica's decisions are taken on."""
        with self.errors("reading Redis's clock"):
            seconds, micros = self.client.time()
        return EPOCH + timedelta(seconds=seconds, microseconds=micros)

    def eviction(self) -> tuple[str, int]:
        """(maxmemory-policy, maxmemory in bytes), from INFO (CONFIG is often disabled on managed Redis)."""
        with self.errors("reading Redis's memory settings"):
            info = self.client.info("memory")
        return str(info.get("maxmemory_policy", "noeviction")), int(info.get("maxmemory", 0))

    # -- watermarks and firings -----------------------------------------------------------------

    def watermark(self, track: str) -> datetime | None:
        return self.watermarks([track])[0]

    def watermarks(self, tracks: Sequence[str]) -> list[datetime | None]:
        """Each track's watermark (the last tick handled), in one round trip."""
        if not tracks:
            return []
        with self.errors("reading watermarks"):
            values = self.client.mget([self.keys.watermark(track) for track in tracks])
        return _watermarks(values)

    def pass_state(self, tracks: Sequence[str]) -> tuple[list[datetime | None], dict[str, str]]:
        """What a pass starts from, in one round trip: each track's watermark, and what is paused
        (``schedule`` or ``schedule/tenant`` -> since when)."""
        pipe = self.client.pipeline(transaction=False)
        if tracks:
            pipe.mget([self.keys.watermark(track) for track in tracks])
        pipe.hgetall(self.keys.paused)
        with self.errors("reading watermarks"):
            *values, marks = pipe.execute()
        return _watermarks(values[0] if values else []), pause_marks(marks)

    def enqueue_calls(
        self, token: str, schedule: Schedule, track: str, ticks: Sequence[TickPlan], dedup_ttl: timedelta
    ) -> Iterator[Call]:
        """The calls that accept ``ticks``' firings, CHUNK at a time; none of them finishes a tick."""
        epoch = str(token_parts(token)[1])
        queue = schedule.queue
        target = self.routes.target(queue)
        ttl = _whole_ms(dedup_ttl)
        for plan in ticks:
            if not plan.firings:
                continue
            stamps: dict[datetime, tuple[int, str]] = {}  # enqueue_at in ms and ISO; without jitter, one
            tick_ms = ms_of(plan.tick)
            keys = [self.keys.lease, self.keys.seen(track, tick_ms), self.keys.done(track),
                    self.keys.pending(queue), self.keys.payload(queue), self.keys.queues, *target.keys]
            common = [token, epoch, tick_ms, ttl, queue, schedule.name, format_tick(plan.tick), schedule.job,
                      schedule.args_json, target.kind, target.options, _whole_ms(schedule.misfire_grace)]
            for start in range(0, len(plan.firings), CHUNK):
                chunk = plan.firings[start : start + CHUNK]
                args: list[str | int] = list(common)
                for firing in chunk:
                    stamp = stamps.get(firing.enqueue_at)
                    if stamp is None:
                        stamp = stamps[firing.enqueue_at] = (ms_of(firing.enqueue_at), format_instant(firing.enqueue_at))
                    args += (firing.tenant, *stamp)
                yield Call(self._enqueue, keys, args, track, plan.tick, len(chunk), chunk, stamps)

    def finish_call(
        self, token: str, schedule: str, track: str, tick: datetime | None, watermark: datetime, ttl: timedelta,
        remember: timedelta, line: Sequence[str] = (),
    ) -> Call:
        """The call that records ``tick`` done (None: none), moves the watermark up to ``watermark``
        and writes ``line`` (fields and values) to the schedule's ledger."""
        tick_ms = ms_of(tick) if tick is not None else "-"
        keys = [self.keys.lease, self.keys.seen(track, tick_ms), self.keys.done(track), self.keys.watermark(track),
                self.keys.history(schedule)]
        args: list[str | int] = [token, "" if tick is None else tick_ms, ms_of(watermark), _whole_ms(ttl),
                                 _whole_ms(remember), *self._ledger_limits(), *line]
        return Call(self._finish, keys, args, track, tick)

    def _ledger_limits(self) -> tuple[int, int]:
        return _whole_ms(self.ledger.keep), self.ledger.lines

    # -- operators' requests (trigger, backfill) ------------------------------------------------

    def requests(self, count: int) -> list[tuple[str, dict[str, str]]]:
        """The oldest ``count`` requests waiting for the leader: [(request id, fields)]."""
        with self.errors("reading requests"):
            entries = self.client.xrange(self.keys.requests, count=count)
        return [(entry.decode(), {k.decode(): v.decode() for k, v in fields.items()}) for entry, fields in entries]

    def trigger_call(self, token: str, request_id: str, schedule: Schedule, instant: str,
                     tenants: Sequence[str], ttl: timedelta) -> Call:
        """The call that delivers a manual firing of ``schedule`` to ``tenants`` (at most CHUNK)."""
        target = self.routes.target(schedule.queue)
        keys = [self.keys.lease, self.keys.request_seen(request_id), *target.keys]
        args: list[str | int] = [token, token_parts(token)[1], _whole_ms(ttl), schedule.queue, schedule.name,
                                 instant, request_id, schedule.job, schedule.args_json, target.kind, target.options,
                                 *tenants]
        return Call(self._trigger, keys, args, schedule.name, firings=len(tenants))

    def complete(self, token: str, request_id: str, result: dict[str, str], schedule: str | None,
                 line: Sequence[str], keep_result: timedelta) -> None:
        """Answer a request and remove it, with its ledger line, in one fenced step."""
        pairs = [item for pair in result.items() for item in pair]
        ledger = self.keys.history(schedule) if schedule else self.keys.requests
        keys = [self.keys.lease, self.keys.requests, self.keys.result(request_id), ledger,
                self.keys.request_seen(request_id)]
        args: list[str | int] = [token, request_id, _whole_ms(keep_result), *self._ledger_limits(), len(pairs),
                                 *pairs, *(line if schedule else ())]
        (reply,) = self.send([Call(self._complete, keys, args)], "answering a request")
        if isinstance(reply, RedisUnavailable):
            raise reply

    # -- replicas -------------------------------------------------------------------------------

    def heartbeat(self, replica_id: str, info: dict[str, Any], forget_after: timedelta) -> None:
        """Record that ``replica_id`` is alive (on Redis's clock), with what it reports of itself."""
        with self.errors("recording a heartbeat"):
            self._heartbeat([self.keys.replicas, self.keys.replica_info],
                            [replica_id, json.dumps(info), _whole_ms(forget_after)])

    def forget_replica(self, replica_id: str) -> None:
        pipe = self.client.pipeline(transaction=False)
        pipe.zrem(self.keys.replicas, replica_id)
        pipe.hdel(self.keys.replica_info, replica_id)
        with self.errors("removing a heartbeat"):
            pipe.execute()

    def dispatch_call(self, token: str, queue: str, limit: int = CHUNK) -> Call:
        """The call that delivers up to ``limit`` due pending firings of ``queue``; its reply is
        (moved, the next enqueue_at in ms or -1, what was delivered: see dispatched_groups)."""
        target = self.routes.target(queue)
        keys = [self.keys.lease, self.keys.pending(queue), self.keys.payload(queue), *target.keys]
        return Call(self._dispatch, keys, [token, token_parts(token)[1], limit, target.kind, target.options], queue)

    def load_scripts(self) -> None:
        """Load the pipelined scripts ahead, so a leader's first pass pays no NOSCRIPT round trip."""
        with self.errors("loading scripts"):
            pipe = self.client.pipeline(transaction=False)
            for script in (self._enqueue, self._finish, self._dispatch, self._trigger, self._complete):
                pipe.script_load(script.text)
            pipe.execute()

    def send(self, calls: Sequence[Call], doing: str = "enqueueing firings") -> list[Reply]:
        """Send ``calls`` pipelined, in as few round trips as the limits allow, and return each
        reply in order. A call that got an error reply (OOM, BUSY) gets a RedisUnavailable in its
        place and the calls after it still run: the caller decides what that leaves undone.

        Raises NotLeader when any call was fenced out, RedisUnavailable when the connection failed.
        """
        replies: list[Reply] = []
        start = 0
        while start < len(calls):
            end, firings = start, 0
            while end < len(calls) and end - start < ROUND_TRIP_CALLS and (firings < ROUND_TRIP_FIRINGS or end == start):
                firings += calls[end].firings
                end += 1
            replies += self._round_trip(calls[start:end], doing)
            start = end
        if any(reply == -1 for reply in replies):
            raise NotLeader(*token_parts(str(calls[0].args[0])))
        return replies

    def _round_trip(self, calls: Sequence[Call], doing: str) -> list[Reply]:
        with self.errors(doing):
            replies = self._pipeline(calls)
            missing = [n for n, reply in enumerate(replies) if isinstance(reply, redis.exceptions.NoScriptError)]
            if missing:
                for script in {calls[n].script for n in missing}:
                    self.client.script_load(script.text)
                for n, reply in zip(missing, self._pipeline([calls[n] for n in missing])):
                    replies[n] = reply
        return [reply_error(reply, doing) if isinstance(reply, redis.ResponseError) else reply for reply in replies]

    def _pipeline(self, calls: Sequence[Call]) -> list[Reply]:
        pipe = self.client.pipeline(transaction=False)
        for call in calls:
            pipe.execute_command("EVALSHA", call.script.sha, len(call.keys), *call.keys, *call.args)
        return pipe.execute(raise_on_error=False)

    # -- pending firings ------------------------------------------------------------------------

    def dispatch(self, token: str, queue: str, limit: int = CHUNK) -> tuple[int, datetime | None]:
        """Deliver up to ``limit`` due pending firings of ``queue``: (moved, next enqueue_at or None)."""
        (reply,) = self.send([self.dispatch_call(token, queue, limit)], "delivering pending firings")
        if isinstance(reply, RedisUnavailable):
            raise reply
        return dispatched(reply)

    def queues(self) -> set[str]:
        """Every queue that ever had pending firings (their pending sets are drained even after a
        schedule is removed from the table)."""
        return self._members(self.keys.queues, "listing queues")

    def pending_counts(self, queues: Sequence[str]) -> dict[str, int]:
        """How many firings wait out their jitter in each of ``queues``, in one round trip."""
        pipe = self.client.pipeline(transaction=False)
        for queue in queues:
            pipe.zcard(self.keys.pending(queue))
        with redis_errors("counting pending firings"):
            counts = pipe.execute() if queues else []
        return {queue: int(count) for queue, count in zip(queues, counts)}

    # -- outboxes -------------------------------------------------------------------------------

    def outbox_queues(self) -> set[str]:
        """Every queue whose outbox was ever written (kept after a table edit, so none is stranded)."""
        return self._members(self.keys.outboxes, "listing outboxes")

    def _members(self, key: str, doing: str) -> set[str]:
        with self.errors(doing):
            return {member.decode() for member in self.client.smembers(key)}

    def read_outboxes(self, after: dict[str, str], count: int, block: timedelta) -> dict[str, list[tuple[str, dict[str, str]]]]:
        """Up to ``count`` firings of each outbox, after the entry id given for it; waits up to
        ``block`` for one when there are none. By queue: [(entry id, fields)]."""
        if not after:
            return {}
        streams = {self.keys.outbox(queue): last for queue, last in after.items()}
        with self.errors("reading outboxes"):
            reply = self.client.xread(streams, count=count, block=_whole_ms(block))
        found: dict[str, list[tuple[str, dict[str, str]]]] = {}
        for stream, entries in reply or []:
            queue = stream.decode().removeprefix(self.keys.outbox(""))
            found[queue] = [(entry.decode(), {k.decode(): v.decode() for k, v in fields.items()})
                            for entry, fields in entries]
        return found

    def remove_from_outbox(self, queue: str, entries: Sequence[str]) -> None:
        if entries:
            with self.errors("removing relayed firings from the outbox"):
                self.client.xdel(self.keys.outbox(queue), *entries)

    def outbox_backlog(self, queue: str) -> tuple[int, datetime | None]:
        """(firings waiting in ``queue``'s outbox, when the oldest of them was written)."""
        pipe = self.client.pipeline(transaction=False)
        pipe.xlen(self.keys.outbox(queue))
        pipe.xrange(self.keys.outbox(queue), count=1)
        with self.errors("reading an outbox's backlog"):
            length, first = pipe.execute()
        oldest = entry_instant(first[0][0]) if first else None
        return int(length), oldest

    def publish_table(self, token: str, fingerprint: str, path: str, now: datetime) -> None:
        """Record which table the leader runs, for anyone to see; fenced like every write."""
        replica, epoch = token_parts(token)
        with self.errors("recording the table"):
            reply = self._table([self.keys.lease, self.keys.table],
                                [token, fingerprint, path, replica, epoch, format_instant(now)])
        if reply == -1:
            raise NotLeader(replica, epoch)


def _whole_ms(value: timedelta) -> int:
    return max(1, int(value.total_seconds() * 1000))


def token_parts(token: str) -> tuple[str, int]:
    epoch, _, replica = token.partition(":")
    return replica, int(epoch)
