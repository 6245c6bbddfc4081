"""An example worker: reads the scheduler's default Redis stream with ``scheduler.consumer.Consumer``
and prints each firing as one JSON line on stdout. docker-compose.yml runs it beside the replicas.

    WORKER_REDIS_URL   the scheduler's Redis (default redis://127.0.0.1:6379/0)
    WORKER_STREAM      the stream to read (default {scheduler}:queue:default)
    WORKER_GROUP       the consumer group (default example-workers)

Your own worker replaces ``handle`` with the job: make it idempotent on ``firing.firing_id``
(docs/queues.md). Redis going away (a restart, a failover) is waited out: one line on stderr when it
starts, one when Redis answers again. SIGTERM or SIGINT stops it after the message in hand; it exits 0.
"""

from __future__ import annotations

import json
import os
import signal
import threading

import redis

from scheduler.consumer import Consumer, Firing


def handle(firing: Firing) -> None:
    print(json.dumps({
        "handled": firing.firing_id,
        "job": firing.job,
        "tenant": firing.tenant,
        "tick": firing.tick.isoformat(),
        "enqueue_at": firing.enqueue_at.isoformat(),
        "args": firing.args,
        "late": firing.late,
        "epoch": firing.epoch,
    }), flush=True)


def main() -> int:
    url = os.environ.get("WORKER_REDIS_URL", "redis://127.0.0.1:6379/0")
    stream = os.environ.get("WORKER_STREAM", "{scheduler}:queue:default")
    group = os.environ.get("WORKER_GROUP", "example-workers")
    stop = threading.Event()
    for number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(number, lambda _number, _frame: stop.set())
    # A timeout, so that a Redis which stops answering without closing the connection is waited out too.
    client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
    print(json.dumps({"reading": stream, "group": group}), flush=True)  # never the URL: it may hold a password
    try:
        Consumer(client, stream=stream, group=group).run(handle, stop)
    finally:
        client.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
