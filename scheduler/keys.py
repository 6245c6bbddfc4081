"""The scheduler's layout in Redis: every key name, and the lease token held under one of them.

Every key starts with one prefix that holds one hash tag (``{scheduler}`` by default), so on a
Redis Cluster they all share a slot and every script's keys may go through ``KEYS``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass

#: The fields of a request that say what it asks for: two requests alike in these ask the same.
ASKED = ("kind", "schedule", "tenant", "from", "until")


@dataclass(frozen=True, order=True)
class Token:
    """The lease as held: the fencing epoch and the replica that took it. Redis keeps it as the
    string ``"<epoch>:<replica id>"`` (str() gives that form, ``parse`` reads it back)."""

    epoch: int
    replica: str

    def __str__(self) -> str:
        return f"{self.epoch}:{self.replica}"

    @classmethod
    def parse(cls, text: str | bytes) -> Token:
        value = text.decode() if isinstance(text, bytes) else text
        epoch, _, replica = value.partition(":")
        return cls(int(epoch), replica)


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

    def unsent(self, track: str, tick_ms: int | str) -> str:
        """The tenants a finished tick did not send (paused, or dropped by catch-up): what a backfill
        of that tick may still send, each once. Kept as long as the tick's done record."""
        return f"{self.prefix}:unsent:{track}:{tick_ms}"

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

    def requested(self, fields: Mapping[str, str]) -> str:
        """The id of the queued request that asks what ``fields`` ask (its kind, schedule, tenant
        and window), so asking again waits for it instead of adding another (a hash of them: a
        schedule's name or a tenant id may hold any character)."""
        asked = json.dumps([fields.get(name, "") for name in ASKED])
        return f"{self.prefix}:requested:{hashlib.sha1(asked.encode()).hexdigest()}"

    def relayed(self, firing_id: str) -> str:
        """In a target's own Redis: the marker that the relay already delivered ``firing_id``."""
        return f"{self.prefix}:relayed:{firing_id}"
