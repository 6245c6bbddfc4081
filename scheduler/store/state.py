"""The durable state in Redis: the lease, watermarks, dedup records, pending firings, queues.

Every write that matters is one Lua script (``scheduler/store/lua``), fenced by the lease token, so
a replica that lost its lease cannot write even before it knows. Each method makes the Redis calls
and turns a script's return code into a result or a typed error (NotLeader, RedisUnavailable, or
RedisPermissionError when the Redis user's ACL refused a command). Where a firing lands is the
caller's to say: the methods that deliver take the queue's Target (scheduler/targets).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime, timedelta
from typing import Any

import redis

from scheduler.clock.instants import EPOCH, entry_instant, format_instant, format_tick, ms_of, whole_ms
from scheduler.errors import NotLeader, RedisRefused, RedisUnavailable
from scheduler.keys import Keys, Token
from scheduler.plan.planner import TickPlan
from scheduler.store.calls import Call
from scheduler.store.connection import location, redis_errors, reply_error
from scheduler.store.limits import LedgerLimits
from scheduler.store.replies import dispatched, entries, pause_marks, watermarks
from scheduler.store.scripts import Script, Scripts, lua
from scheduler.table import Schedule
from scheduler.targets import Target, deliver_lua

CHUNK = 1000  # firings per script call: keeps each call well under a millisecond of Redis time
ROUND_TRIP_FIRINGS = 50_000  # firings sent in one pipelined round trip, at most
ROUND_TRIP_CALLS = 1_000  # script calls in one round trip, at most (many small schedules due at once)
DEDUP_MARGIN = timedelta(hours=24)  # finished ticks are remembered for the catch-up window and this

Reply = Any  # a script's reply, or the RedisUnavailable that stands for its error reply


class Store:
    def __init__(self, client: redis.Redis, keys: Keys, ledger: LedgerLimits = LedgerLimits()) -> None:
        self.client = client
        self.keys = keys
        self.ledger = ledger
        self.where = location(client)  # for errors: the URL without its password
        self.scripts = Scripts(client)

        def own(*names: str) -> Script:
            return self.scripts.add(*(lua("scheduler.store", name) for name in names))

        def delivering(name: str) -> Script:
            return self.scripts.add(deliver_lua(), lua("scheduler.store", name))

        self._acquire = own("lease_acquire.lua")
        self._renew = own("lease_renew.lua")
        self._release = own("lease_release.lua")
        self._table = own("table.lua")
        self._heartbeat = own("heartbeat.lua")
        self._enqueue = delivering("enqueue.lua")
        self._dispatch = delivering("dispatch.lua")
        self._trigger = delivering("trigger.lua")
        self._finish = own("ledger.lua", "finish.lua")
        self._complete = own("ledger.lua", "complete.lua")

    def errors(self, doing: str) -> AbstractContextManager[None]:
        return redis_errors(doing, self.where, self.scripts.texts)

    def _run(self, script: Script, keys: Sequence[str], args: Sequence[str | int]) -> Any:
        return self.scripts.call(script, keys, args)

    # -- the lease ------------------------------------------------------------------------------

    def acquire(self, replica_id: str, ttl: timedelta) -> tuple[Token | None, Token | None]:
        """(this replica's token, None) when it took the lease, else (None, the holder's token)."""
        with self.errors("taking the lease"):
            epoch, holder = self._run(self._acquire, [self.keys.lease, self.keys.epoch], [replica_id, whole_ms(ttl)])
        if int(epoch):
            return Token(int(epoch), replica_id), None
        return None, Token.parse(holder)

    def renew(self, token: Token, ttl: timedelta) -> bool:
        with self.errors("renewing the lease"):
            return bool(self._run(self._renew, [self.keys.lease], [str(token), whole_ms(ttl)]))

    def release(self, token: Token) -> bool:
        with self.errors("releasing the lease"):
            return bool(self._run(self._release, [self.keys.lease], [str(token), self.keys.released]))

    def holder(self) -> Token | None:
        with self.errors("reading the lease"):
            value = self.client.get(self.keys.lease)
        return Token.parse(value) if value else None

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
        keys = [self.keys.watermark(track) for track in tracks]
        with self.errors("reading watermarks"):
            values = self.client.mget(keys)
        read = watermarks(keys, values)
        for refused in read:
            if isinstance(refused, RedisRefused):
                raise refused
        return read

    def pass_state(self, tracks: Sequence[str]) -> tuple[list[datetime | None | RedisRefused], dict[str, str]]:
        """What a pass starts from, in one round trip: each track's watermark, and what is paused
        (``schedule`` or ``schedule/tenant`` -> since when)."""
        keys = [self.keys.watermark(track) for track in tracks]
        pipe = self.client.pipeline(transaction=False)
        if tracks:
            pipe.mget(keys)
        pipe.hgetall(self.keys.paused)
        with self.errors("reading watermarks"):
            *values, marks = pipe.execute()
        return watermarks(keys, values[0] if values else []), pause_marks(marks)

    def enqueue_calls(
        self, token: Token, schedule: Schedule, track: str, ticks: Sequence[TickPlan], dedup_ttl: timedelta,
        target: Target, unsent: bool = False,
    ) -> Iterator[Call]:
        """The calls that accept ``ticks``' firings into ``target`` (the schedule's queue's), CHUNK at
        a time; none of them finishes a tick. With ``unsent`` (a backfill), a tick already finished
        still sends the tenants it did not send then (paused, dropped by catch-up), each once."""
        epoch = str(token.epoch)
        queue = schedule.queue
        ttl = whole_ms(dedup_ttl)
        for plan in ticks:
            if not plan.firings:
                continue
            stamps: dict[datetime, tuple[int, str]] = {}  # enqueue_at in ms and ISO; without jitter, one
            tick_ms = ms_of(plan.tick)
            keys = [self.keys.lease, self.keys.seen(track, tick_ms), self.keys.done(track),
                    self.keys.pending(queue), self.keys.payload(queue), self.keys.queues,
                    self.keys.unsent(track, tick_ms), *target.keys]
            common = [str(token), epoch, tick_ms, ttl, queue, schedule.name, format_tick(plan.tick), schedule.job,
                      schedule.args_json, target.kind, target.options, whole_ms(schedule.misfire_grace),
                      "1" if unsent else ""]
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
        self, token: Token, schedule: str, track: str, tick: datetime | None, watermark: datetime, ttl: timedelta,
        remember: timedelta, line: Sequence[str] = (), unsent: Sequence[str] = (),
    ) -> Call:
        """The call that records ``tick`` done (None: none) with the tenants it did not send,
        moves the watermark up to ``watermark`` and writes ``line`` (fields and values) to the
        schedule's ledger."""
        tick_ms = ms_of(tick) if tick is not None else "-"
        keys = [self.keys.lease, self.keys.seen(track, tick_ms), self.keys.done(track), self.keys.watermark(track),
                self.keys.history(schedule), self.keys.unsent(track, tick_ms)]
        args: list[str | int] = [str(token), "" if tick is None else tick_ms, ms_of(watermark), whole_ms(ttl),
                                 whole_ms(remember), *self._ledger_limits(), len(unsent), *unsent, *line]
        return Call(self._finish, keys, args, track, tick)

    def _ledger_limits(self) -> tuple[int, int]:
        return whole_ms(self.ledger.keep), self.ledger.lines

    # -- operators' requests (trigger, backfill) ------------------------------------------------

    def requests(self, count: int) -> list[tuple[str, dict[str, str]]]:
        """The oldest ``count`` requests waiting for the leader: [(request id, fields)]."""
        with self.errors("reading requests"):
            reply = self.client.xrange(self.keys.requests, count=count)
        return entries(reply)

    def trigger_call(self, token: Token, request_id: str, schedule: Schedule, instant: str,
                     tenants: Sequence[str], ttl: timedelta, target: Target) -> Call:
        """The call that delivers a manual firing of ``schedule`` to ``tenants`` (at most CHUNK)."""
        keys = [self.keys.lease, self.keys.request_seen(request_id), *target.keys]
        args: list[str | int] = [str(token), token.epoch, whole_ms(ttl), schedule.queue, schedule.name,
                                 instant, request_id, schedule.job, schedule.args_json, target.kind, target.options,
                                 *tenants]
        return Call(self._trigger, keys, args, schedule.name, firings=len(tenants))

    def complete(self, token: Token, request_id: str, fields: Mapping[str, str], result: dict[str, str],
                 schedule: str | None, line: Sequence[str], keep_result: timedelta) -> None:
        """Answer a request (asking ``fields``) and remove it, with its ledger line and the key
        that makes a repeated ask wait for it, in one fenced step."""
        pairs = [item for pair in result.items() for item in pair]
        ledger = self.keys.history(schedule) if schedule else self.keys.requests
        keys = [self.keys.lease, self.keys.requests, self.keys.result(request_id), ledger,
                self.keys.request_seen(request_id), self.keys.requested(fields)]
        args: list[str | int] = [str(token), request_id, whole_ms(keep_result), *self._ledger_limits(), len(pairs),
                                 *pairs, *(line if schedule else ())]
        (reply,) = self.send(token, [Call(self._complete, keys, args)], "answering a request")
        if isinstance(reply, RedisUnavailable):
            raise reply

    # -- replicas -------------------------------------------------------------------------------

    def heartbeat(self, replica_id: str, info: dict[str, Any], forget_after: timedelta) -> None:
        """Record that ``replica_id`` is alive (on Redis's clock), with what it reports of itself."""
        with self.errors("recording a heartbeat"):
            self._run(self._heartbeat, [self.keys.replicas, self.keys.replica_info],
                      [replica_id, json.dumps(info), whole_ms(forget_after)])

    def forget_replica(self, replica_id: str) -> None:
        pipe = self.client.pipeline(transaction=False)
        pipe.zrem(self.keys.replicas, replica_id)
        pipe.hdel(self.keys.replica_info, replica_id)
        with self.errors("removing a heartbeat"):
            pipe.execute()

    def dispatch_call(self, token: Token, target: Target, limit: int = CHUNK) -> Call:
        """The call that delivers up to ``limit`` due pending firings of ``target``'s queue; its reply
        is (moved, the next enqueue_at in ms or -1, what was delivered: see replies.dispatched_groups)."""
        queue = target.queue
        keys = [self.keys.lease, self.keys.pending(queue), self.keys.payload(queue), *target.keys]
        return Call(self._dispatch, keys, [str(token), token.epoch, limit, target.kind, target.options], queue)

    def load_scripts(self) -> None:
        """Load the pipelined scripts ahead, so a leader's first pass pays no NOSCRIPT round trip."""
        with self.errors("loading scripts"):
            self.scripts.load([self._enqueue, self._finish, self._dispatch, self._trigger, self._complete])

    def send(self, token: Token, calls: Sequence[Call], doing: str = "enqueueing firings") -> list[Reply]:
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
            raise NotLeader(token.replica, token.epoch)
        return replies

    def _round_trip(self, calls: Sequence[Call], doing: str) -> list[Reply]:
        with self.errors(doing):
            replies = self.scripts.pipelined([(call.script, call.keys, call.args) for call in calls])
        texts = self.scripts.texts
        return [reply_error(reply, doing, texts) if isinstance(reply, redis.ResponseError) else reply
                for reply in replies]

    # -- pending firings ------------------------------------------------------------------------

    def dispatch(self, token: Token, target: Target, limit: int = CHUNK) -> tuple[int, datetime | None]:
        """Deliver up to ``limit`` due pending firings of ``target``'s queue: (moved, next enqueue_at or None)."""
        (reply,) = self.send(token, [self.dispatch_call(token, target, limit)], "delivering pending firings")
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
        with self.errors("counting pending firings"):
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
            reply = self.client.xread(streams, count=count, block=whole_ms(block))
        return {stream.decode().removeprefix(self.keys.outbox("")): entries(found) for stream, found in reply or []}

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

    def publish_table(self, token: Token, fingerprint: str, path: str, now: datetime) -> None:
        """Record which table the leader runs, for anyone to see; fenced like every write."""
        with self.errors("recording the table"):
            reply = self._run(self._table, [self.keys.lease, self.keys.table],
                              [str(token), fingerprint, path, token.replica, token.epoch, format_instant(now)])
        if reply == -1:
            raise NotLeader(token.replica, token.epoch)
