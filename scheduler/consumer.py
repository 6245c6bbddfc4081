"""A Python worker's side of a redis-stream queue: a consumer group, acks, claiming what a dead
consumer left pending, and a guard that runs each firing id once.

    import redis
    from scheduler.consumer import Consumer, Firing

    def handle(firing: Firing) -> None:
        print(firing.job, firing.tenant, firing.tick, firing.args, firing.late)

    Consumer(redis.Redis.from_url("redis://..."), stream="{scheduler}:queue:default", group="workers").run(handle)

Each message goes to one consumer of the group. ``handle`` runs; when it returns, the firing id is
marked done and the message acknowledged (and deleted, unless ``delete=False``) in one MULTI. When it
raises, the message stays pending and is claimed again after ``claim_after``, by this consumer or
another: the same happens to a consumer that dies mid-message. A message whose firing id is marked
done is acknowledged without running ``handle``, so a firing is handled once even when it was claimed
after its handler finished, or reached the stream twice. What ``handle`` did before a crash is not
undone: make its effects idempotent on ``firing.firing_id`` where that matters (docs/queues.md).

``run`` outlives Redis trouble. An error that waiting mends (the connection lost or refused, a
timeout, a refused password, LOADING while Redis restarts, READONLY or UNBLOCKED from a primary
turned replica in a failover) is retried with backoff (``backoff_base``, doubled per error in a row
up to ``backoff_cap``, times a random factor in [0.5, 1)), logged once when it starts and once when
Redis answers again, never raised; ``stop`` is seen during the wait. A handler that returned while
Redis was away has its message acknowledged once Redis answers. Any other error reply (a missing
permission, a key that is not a stream) is raised: waiting does not mend it. ``poll`` is one round,
and raises what it meets. A consumer group that is gone (Redis came back without its data) is
created again, reading the stream from its start.

A handled firing id is remembered for ``remember``, by default ``claim_after`` x ``batch`` (10
minutes): no copy of a handled firing reaches a consumer later than that. The scheduler writes each
firing to its stream once, checked and written by one fenced script in the stream's own Redis
(docs/guarantees.md); its redelivery windows (the relay's hour, SQS's five minutes) concern queues
outside that Redis, never a stream; and a Redis failover or crash that loses the write of a firing
loses every mark written after it too, so no mark could catch the copy it causes. What is left is
the consumer's own redelivery, the claim: a consumer that claims a batch from one that was slow, not
dead, checks its k-th message after running the k-1 before it, each shorter than ``claim_after`` (as
every handler must be), so the mark the slow one wrote on finishing is still there. A TTL, not a set
of bounded size, because it keeps exactly the marks of that span whatever the rate of firings; not
off, because without it a message claimed from a slow consumer runs twice, and it is one SET in the
MULTI that acknowledges. A mark is 136 bytes (MEMORY USAGE on Redis 7.0, for docs/queues.md's
firing on ``{scheduler}:queue:default``): 100,000 tenants a minute keep a million marks, 136 MB.
"""

from __future__ import annotations

import json
import os
import random
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import redis
from loguru import logger

Handler = Callable[["Firing"], None]
Result = TypeVar("Result")
Entry = tuple[bytes, dict[str, str]]

# The errors that mend by waiting: redis-py's ConnectionError covers LOADING (BusyLoadingError) and a
# refused password (AuthenticationError) as well; a primary turned replica answers READONLY, and
# UNBLOCKED to a read that was blocked when it turned.
WAITED_OUT = (redis.ConnectionError, redis.TimeoutError, redis.ReadOnlyError)


@dataclass(frozen=True)
class Firing:
    """One firing as a worker sees it (docs/queues.md, "What a worker receives")."""

    firing_id: str
    schedule: str
    tenant: str
    tick: datetime
    enqueue_at: datetime
    job: str
    queue: str
    args: dict[str, Any]
    late: bool
    epoch: int

    @classmethod
    def from_fields(cls, fields: dict[str, str]) -> Firing:
        """From a stream entry's fields (or an SQS body's keys, with args already parsed)."""
        args = fields["args"]
        return cls(
            firing_id=fields["firing_id"], schedule=fields["schedule"], tenant=fields["tenant"],
            tick=_instant(fields["tick"]), enqueue_at=_instant(fields["enqueue_at"]), job=fields["job"],
            queue=fields["queue"], args=json.loads(args) if isinstance(args, str) else args,
            late=fields["late"] in ("true", True), epoch=int(fields["epoch"]),
        )


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


class Consumer:
    def __init__(self, client: redis.Redis, stream: str, group: str, name: str | None = None,
                 claim_after: timedelta = timedelta(seconds=60), remember: timedelta | None = None,
                 batch: int = 10, block: timedelta = timedelta(seconds=1), delete: bool = True,
                 backoff_base: timedelta = timedelta(milliseconds=100),
                 backoff_cap: timedelta = timedelta(seconds=5)) -> None:
        self.client = client
        self.stream = stream
        self.group = group
        self.name = name or f"{socket.gethostname()}-{os.getpid()}"
        self.claim_after = claim_after  # a message pending this long is taken from its consumer
        # how long a handled firing id is remembered; the module's docstring says why this default
        self.remember = remember if remember is not None else claim_after * batch
        self.batch = batch
        self.block = block
        self.delete = delete  # delete handled messages; False when several groups read the stream
        self.backoff_base = backoff_base  # the wait after a first Redis error; doubled per error in a row
        self.backoff_cap = backoff_cap  # the longest wait
        self._ready = False
        self._failures = 0  # Redis errors in a row, in run
        self._trouble_since = 0.0

    def run(self, handle: Handler, stop: threading.Event | None = None) -> None:
        """Handle firings until ``stop`` is set (or forever), waiting out Redis trouble."""
        stop = stop or threading.Event()
        while not stop.is_set():
            self._round(handle, stop)

    def poll(self, handle: Handler) -> int:
        """One round: claim what a dead consumer left, read new messages (waiting up to ``block``),
        handle them; returns how many messages were handled or skipped as done."""
        return self._round(handle, None)

    def done_key(self, firing_id: str) -> str:
        return f"{self.stream}:done:{self.group}:{firing_id}"

    def _round(self, handle: Handler, stop: threading.Event | None) -> int:
        entries = self._call(self._next, stop) or []
        for entry_id, fields in entries:
            self._handle(entry_id, fields, handle, stop)
        return len(entries)

    def _next(self) -> list[Entry]:
        """Claim what a dead consumer left, else read new messages (waiting up to ``block``). A group
        gone with Redis's data is created again at the next round."""
        try:
            self._create_group()
            _, claimed, _ = self.client.xautoclaim(self.stream, self.group, self.name,
                                                    min_idle_time=_ms(self.claim_after), count=self.batch)
            entries = [entry for entry in claimed if entry[1]]  # a deleted message is claimed empty
            if not entries:
                for _, read in self.client.xreadgroup(self.group, self.name, {self.stream: ">"}, count=self.batch,
                                                      block=_ms(self.block)) or []:
                    entries += read
        except redis.ResponseError as error:
            if not str(error).startswith("NOGROUP"):
                raise
            logger.warning("stream {}: consumer group {} is gone (Redis lost its data?); creating it again, "
                           "to read from the stream's start", self.stream, self.group)
            self._ready = False
            return []
        return [(entry_id, {key.decode(): value.decode() for key, value in fields.items()})
                for entry_id, fields in entries]

    def _handle(self, entry_id: bytes, fields: dict[str, str], handle: Handler, stop: threading.Event | None) -> None:
        firing = Firing.from_fields(fields)
        done = self.done_key(firing.firing_id)
        marked = self._call(lambda: self.client.exists(done), stop)
        if marked is None:
            return  # stopped while Redis was away: the message stays pending, to be claimed
        if not marked:
            try:
                handle(firing)
            except Exception:
                logger.opt(exception=True).error("firing {}: the handler failed; it is retried after {}",
                                                 firing.firing_id, self.claim_after)
                return
        self._call(lambda: self._finish(done, entry_id), stop)

    def _finish(self, done: str, entry_id: bytes) -> list[Any]:
        pipe = self.client.pipeline(transaction=True)
        pipe.set(done, 1, px=_ms(self.remember))
        pipe.xack(self.stream, self.group, entry_id)
        if self.delete:
            pipe.xdel(self.stream, entry_id)
        return pipe.execute()

    def _create_group(self) -> None:
        if self._ready:
            return
        try:
            self.client.xgroup_create(self.stream, self.group, id="0", mkstream=True)
        except redis.ResponseError as error:
            if "BUSYGROUP" not in str(error):
                raise
        self._ready = True

    def _call(self, call: Callable[[], Result], stop: threading.Event | None) -> Result | None:
        """``call()``. With ``stop`` (in ``run``): again after each error that mends by waiting, until
        Redis answers; None when ``stop`` is set first."""
        if stop is None:
            return call()
        while not stop.is_set():
            try:
                result = call()
            except redis.RedisError as error:
                if not _mends(error):
                    raise
                self._failures += 1
                if self._failures == 1:
                    self._trouble_since = time.monotonic()
                    logger.error("stream {}: Redis is unavailable ({}: {}); retrying with backoff",
                                 self.stream, type(error).__name__, error)
                stop.wait(self._backoff())
                continue
            if self._failures:
                logger.info("stream {}: Redis answers again after {:.1f}s and {} failed attempts", self.stream,
                            time.monotonic() - self._trouble_since, self._failures)
                self._failures = 0
            return result
        return None

    def _backoff(self) -> float:
        """Seconds to wait after the errors in a row so far: ``backoff_base`` doubled per error, at
        most ``backoff_cap``, times a random factor in [0.5, 1), so that workers which lost Redis
        together do not all come back at one instant (the rule of scheduler/backoff.py, which this
        module may not import)."""
        doubled = self.backoff_base.total_seconds() * 2 ** min(self._failures - 1, 64)
        return min(doubled, self.backoff_cap.total_seconds()) * random.uniform(0.5, 1.0)


def _mends(error: redis.RedisError) -> bool:
    """Whether waiting mends ``error``: Redis away, restarting, or in a failover."""
    return isinstance(error, WAITED_OUT) or str(error).startswith("UNBLOCKED")


def _ms(span: timedelta) -> int:
    return int(span.total_seconds() * 1000)
