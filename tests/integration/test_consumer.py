"""The redis-stream consumer helper against a real redis-server, on messages the scheduler wrote:
each firing handled once, a failed handler retried, a consumer killed mid-message replaced."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from datetime import timedelta

import pytest
from helpers import redis_now
from support import accept, floor_minute, plan_at, stream_name, take_lease, track_of

from redis_server import wait_for
from scheduler.clock.instants import format_tick
from scheduler.consumer import Consumer, Firing

TABLE = """
[[schedule]]
name = "s"
every = "1m"
tenants = ["acme", "globex", "initech"]
job = "SyncJob"
args = { full = true }
"""


@pytest.fixture
def firings(store, tmp_path):
    """Three firings of one tick, written to the stream by the fenced script; their ids."""
    schedule = track_of(tmp_path, TABLE, "s").track.schedule
    tick = floor_minute(redis_now(store.client))
    tenants = ["acme", "globex", "initech"]
    accept(store, take_lease(store, "r1"), schedule, "s", [plan_at(schedule, tick, tenants, [tick] * 3)], tick)
    return [f"s/{tenant}/{format_tick(tick)}" for tenant in tenants]


def consumer(store, name: str = "c1", **options) -> Consumer:
    options.setdefault("block", timedelta(milliseconds=50))
    return Consumer(store.client, stream_name("default"), "workers", name, **options)


def drain(worker: Consumer, handle, rounds: int = 5) -> None:
    for _ in range(rounds):
        worker.poll(handle)


def test_each_firing_is_handled_once_and_then_gone_from_the_stream(store, firings):
    handled: list[Firing] = []
    drain(consumer(store), handled.append)
    assert [firing.firing_id for firing in handled] == firings
    first = handled[0]
    assert (first.schedule, first.tenant, first.job, first.queue, first.args, first.late, first.epoch) == (
        "s", "acme", "SyncJob", "default", {"full": True}, False, 1)
    assert first.tick.tzinfo is not None and first.enqueue_at == first.tick
    assert store.client.xlen(stream_name("default")) == 0
    assert store.client.xpending(stream_name("default"), "workers")["pending"] == 0


def test_a_firing_that_reaches_the_stream_twice_is_handled_once(store, firings):
    stream = stream_name("default")
    [(_, fields)] = store.client.xrange(stream, count=1)
    store.client.xadd(stream, fields)
    handled: list[str] = []
    drain(consumer(store), lambda firing: handled.append(firing.firing_id))
    assert sorted(handled) == sorted(firings)
    assert store.client.xlen(stream) == 0


def test_a_failed_handler_leaves_the_message_pending_and_it_is_retried(store, firings):
    attempts: list[str] = []

    def flaky(firing: Firing) -> None:
        attempts.append(firing.firing_id)
        if attempts.count(firing.firing_id) == 1:
            raise RuntimeError("the database blinked")

    worker = consumer(store, claim_after=timedelta(milliseconds=100))
    worker.poll(flaky)
    assert store.client.xpending(stream_name("default"), "workers")["pending"] == 3
    wait_for(lambda: worker.poll(flaky) == 0 and len(attempts) == 6, timeout=10, message="the retries")
    assert sorted(attempts) == sorted(firings * 2)
    assert store.client.xpending(stream_name("default"), "workers")["pending"] == 0


CONSUMER_PROCESS = """
import sys, threading, redis
from datetime import timedelta
from scheduler.consumer import Consumer
client = redis.Redis.from_url(sys.argv[1])
def handle(firing):
    client.rpush("started", firing.firing_id)
    threading.Event().wait()  # stuck mid-message until killed
Consumer(client, sys.argv[2], "workers", "doomed", batch=1, block=timedelta(milliseconds=50)).run(handle)
"""


def test_a_consumer_killed_mid_message_has_its_message_claimed_and_handled_once(store, firings, redis_server, tmp_path):
    script = tmp_path / "doomed.py"
    script.write_text(textwrap.dedent(CONSUMER_PROCESS))
    doomed = subprocess.Popen([sys.executable, str(script), redis_server.url, stream_name("default")])
    try:
        stuck = wait_for(lambda: store.client.lindex("started", 0), timeout=20, message="the doomed consumer to start")
    finally:
        doomed.send_signal(signal.SIGKILL)
        doomed.wait(10)
    handled: list[str] = []
    survivor = consumer(store, "c2", claim_after=timedelta(milliseconds=300))
    wait_for(lambda: survivor.poll(lambda firing: handled.append(firing.firing_id)) == 0 and len(handled) == 3,
             timeout=10, message="the survivor to handle every firing")
    assert sorted(handled) == sorted(firings), "each firing once, the stuck one included"
    assert stuck.decode() in handled
    assert store.client.xpending(stream_name("default"), "workers")["pending"] == 0
