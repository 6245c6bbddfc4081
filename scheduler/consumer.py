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
"""

from __future__ import annotations

import json
import os
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import redis
from loguru import logger

Handler = Callable[["Firing"], None]


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
                 claim_after: timedelta = timedelta(seconds=60), remember: timedelta = timedelta(days=2),
                 batch: int = 10, block: timedelta = timedelta(seconds=1), delete: bool = True) -> None:
        self.client = client
        self.stream = stream
        self.group = group
        self.name = name or f"{socket.gethostname()}-{os.getpid()}"
        self.claim_after = claim_after  # a message pending this long is taken from its consumer
        self.remember = remember  # how long a handled firing id is remembered
        self.batch = batch
        self.block = block
        self.delete = delete  # delete handled messages; False when several groups read the stream
        self._ready = False

    def run(self, handle: Handler, stop: threading.Event | None = None) -> None:
        """Handle firings until ``stop`` is set (or forever)."""
        while stop is None or not stop.is_set():
            self.poll(handle)

    def poll(self, handle: Handler) -> int:
        """One round: claim what a dead consumer left, read new messages (waiting up to ``block``),
        handle them; returns how many messages were handled or skipped as done."""
        self._create_group()
        _, claimed, _ = self.client.xautoclaim(self.stream, self.group, self.name,
                                                min_idle_time=_ms(self.claim_after), count=self.batch)
        entries = [entry for entry in claimed if entry[1]]  # a deleted message is claimed empty
        if not entries:
            for _, read in self.client.xreadgroup(self.group, self.name, {self.stream: ">"}, count=self.batch,
                                                  block=_ms(self.block)) or []:
                entries += read
        for entry_id, fields in entries:
            self._handle(entry_id, {key.decode(): value.decode() for key, value in fields.items()}, handle)
        return len(entries)

    def done_key(self, firing_id: str) -> str:
        return f"{self.stream}:done:{self.group}:{firing_id}"

    def _handle(self, entry_id: bytes, fields: dict[str, str], handle: Handler) -> None:
        firing = Firing.from_fields(fields)
        done = self.done_key(firing.firing_id)
        if not self.client.exists(done):
            try:
                handle(firing)
            except Exception:
                logger.opt(exception=True).error("firing {}: the handler failed; it is retried after {}",
                                                 firing.firing_id, self.claim_after)
                return
        pipe = self.client.pipeline(transaction=True)
        pipe.set(done, 1, px=_ms(self.remember))
        pipe.xack(self.stream, self.group, entry_id)
        if self.delete:
            pipe.xdel(self.stream, entry_id)
        pipe.execute()

    def _create_group(self) -> None:
        if self._ready:
            return
        try:
            self.client.xgroup_create(self.stream, self.group, id="0", mkstream=True)
        except redis.ResponseError as error:
            if "BUSYGROUP" not in str(error):
                raise
        self._ready = True


def _ms(span: timedelta) -> int:
    return int(span.total_seconds() * 1000)
