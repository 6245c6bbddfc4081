"""Queue targets: where the leader's firings land, and in which format (docs/queues.md).

A schedule's ``queue`` names a ``[queues.NAME]`` entry of the table (or falls back to
``[queues.default]``, then to a Redis Stream). What that entry names is turned here into a
:class:`Target`: the kind of write ``deliver.lua`` makes, the Redis keys it writes and its options.

* A target in the scheduler's own Redis (a stream; Sidekiq's or Celery's lists when they share it)
  is written by the fenced enqueue and dispatch scripts themselves: exactly once.
* A target elsewhere (SQS; a Sidekiq or Celery Redis of its own) is written to the queue's *outbox*,
  a stream in the scheduler's Redis, by those same fenced scripts; the leader's relay
  (scheduler/replica/relay.py) sends it on and removes only what the target accepted.

The store's scripts start with ``deliver.lua``; the relay's senders (scheduler/replica/senders.py)
use it with ``relay.lua`` against a target's own Redis.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib.resources import files

from scheduler.keys import Keys
from scheduler.table import QueueSpec, QueueType, Table, resolve_queue

#: The fields of a stream entry, in order; the same ten make the firing message of every other type.
STREAM_FIELDS = ("firing_id", "schedule", "tenant", "tick", "enqueue_at", "job", "args", "queue", "epoch", "late")

SIDEKIQ_QUEUES = "queues"  # Sidekiq's set of queue names


def deliver_lua() -> str:
    """``deliver(kind, keys, m, options, now)``, the write every script that delivers starts with."""
    return files("scheduler.targets").joinpath("lua", "deliver.lua").read_text(encoding="utf-8")


@dataclass(frozen=True)
class Target:
    queue: str  # the schedule's queue name: names its pending set and its outbox
    kind: str  # deliver.lua's kind: "stream" (a stream or an outbox), "sidekiq" or "celery"
    keys: tuple[str, ...]
    options: str  # deliver.lua's options, as JSON
    spec: QueueSpec


def local_write(spec: QueueSpec, queue: str, keys: Keys) -> tuple[str, tuple[str, ...], dict]:
    """(kind, keys, options) for writing ``spec``'s format straight into the Redis it lives in."""
    name = spec.name or queue  # the name workers read: the entry's own, else the schedule's queue
    if spec.type is QueueType.SIDEKIQ:
        options = {"name": name, "retry": spec.retry, "active_job": spec.active_job}
        return "sidekiq", (SIDEKIQ_QUEUES, f"queue:{name}"), options
    if spec.type is QueueType.CELERY:
        return "celery", (name,), {"name": name}
    return "stream", (spec.name or keys.stream(queue),), {}


class Routes:
    """Each queue name's target under one table; rebuilt when the table changes."""

    def __init__(self, keys: Keys, table: Table | None = None) -> None:
        self.keys = keys
        self.table = table
        self._targets: dict[str, Target] = {}

    def spec(self, queue: str) -> QueueSpec:
        return resolve_queue(self.table.queues if self.table is not None else {}, queue)

    def target(self, queue: str) -> Target:
        target = self._targets.get(queue)
        if target is None:
            spec = self.spec(queue)
            if spec.remote:
                kind, keys, options = "stream", (self.keys.outbox(queue), self.keys.outboxes), {"outbox": queue}
            else:
                kind, keys, options = local_write(spec, queue, self.keys)
            target = self._targets[queue] = Target(queue, kind, keys, json.dumps(options), spec)
        return target
