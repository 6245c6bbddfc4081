"""The redis-stream consumer helper against a real redis-server, on messages the scheduler wrote:
each firing handled once, a failed handler retried, a consumer killed mid-message replaced; ``run``
waiting out Redis stopped, frozen or read-only; going on after Redis restarted empty; how long a
handled firing's mark lives and what it costs."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from datetime import timedelta

import pytest
import redis
from loguru import logger
from redis.backoff import NoBackoff
from redis.retry import Retry
from helpers import redis_now
from support import accept, floor_minute, plan_at, stream_name, take_lease, track_of

from redis_server import free_port, wait_for
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


PASSWORD = "consumer-pw-8e1f"
STREAM = re.escape(stream_name("default"))
TROUBLE = re.compile(rf"ERROR stream {STREAM}: Redis is unavailable \((\w+): .+\); retrying with backoff")
ANSWERS = re.compile(rf"INFO stream {STREAM}: Redis answers again after \d+\.\ds and (\d+) failed attempts")


@pytest.fixture
def logs() -> Iterator[list[str]]:
    """Every loguru line (INFO and above) logged during the test, as "LEVEL message"."""
    lines: list[str] = []
    sink = logger.add(lambda message: lines.append(str(message).rstrip("\n")), level="INFO",
                      format="{level} {message}")
    yield lines
    logger.remove(sink)


class CountingRedis(redis.Redis):
    """A client that counts the commands it was asked to send (pipelines aside)."""

    calls = 0

    def execute_command(self, *args, **options):
        self.calls += 1
        return super().execute_command(*args, **options)


def worker_client(redis_server) -> CountingRedis:
    """A worker's own client, as a user with a password, with a short socket timeout and without
    redis-py's retries within a command (the consumer's backoff is under test)."""
    redis_server.add_user("worker", PASSWORD, ["~*", "&*", "+@all"])
    return CountingRedis.from_url(redis_server.url_for("worker", PASSWORD), retry=Retry(NoBackoff(), 0),
                                  socket_timeout=0.5)


class Running:
    """``worker.run(handle, stop)`` in a thread; what it raised, if it did, fails the test."""

    def __init__(self, worker: Consumer, handle) -> None:
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(worker, handle), daemon=True)
        self.thread.start()

    def _run(self, worker: Consumer, handle) -> None:
        try:
            worker.run(handle, self.stop)
        except BaseException as error:  # the test reports it
            self.error = error

    def alive(self) -> bool:
        assert self.error is None, f"run raised {self.error!r}"
        return True

    def finish(self, timeout: float = 5) -> None:
        self.stop.set()
        self.thread.join(timeout)
        assert not self.thread.is_alive(), f"run did not return within {timeout}s of stop"
        assert self.alive()


def add_firing(client: redis.Redis, firing_id: str) -> None:
    """A firing of schedule "s" with the stream's fields, as the scheduler writes it."""
    schedule, tenant, tick = firing_id.split("/")
    client.xadd(stream_name("default"), {
        "firing_id": firing_id, "schedule": schedule, "tenant": tenant, "tick": tick, "enqueue_at": tick,
        "job": "SyncJob", "args": '{"full": true}', "queue": "default", "epoch": "1", "late": "false",
    })


@pytest.mark.parametrize(("fault", "error"), [("stopped", "ConnectionError"), ("frozen", "TimeoutError")])
def test_run_waits_out_redis_stopped_or_frozen_logging_it_once_and_handles_what_comes_after(
        store, firings, redis_server, logs, fault, error):
    down, up = {"stopped": (redis_server.stop, redis_server.start),
                "frozen": (redis_server.pause, redis_server.resume)}[fault]  # SIGSTOP: answers nothing
    client = worker_client(redis_server)
    worker = Consumer(client, stream_name("default"), "workers", "c1", block=timedelta(milliseconds=50),
                      backoff_base=timedelta(milliseconds=20), backoff_cap=timedelta(milliseconds=200))
    handled: list[str] = []
    running = Running(worker, lambda firing: handled.append(firing.firing_id))
    wait_for(lambda: running.alive() and len(handled) == 3, message="the three firings")
    down()
    wait_for(lambda: running.alive() and any(TROUBLE.match(line) for line in logs), message="the trouble line")
    failed = client.calls
    wait_for(lambda: running.alive() and client.calls >= failed + 3, message="three more attempts")
    up()
    later = "s/acme/2031-01-01T00:00:00Z"
    add_firing(store.client, later)
    wait_for(lambda: running.alive() and later in handled, timeout=15, message="the firing added after the restart")
    wait_for(lambda: any(ANSWERS.match(line) for line in logs), message="the line saying Redis answers again")
    running.finish()
    assert handled == [*firings, later]
    troubles = [line for line in logs if TROUBLE.match(line)]
    assert len(troubles) == 1, logs
    assert TROUBLE.match(troubles[0]).group(1) == error
    [answers] = [line for line in logs if ANSWERS.match(line)]
    assert int(ANSWERS.match(answers).group(1)) >= 3
    assert not [line for line in logs if PASSWORD in line]
    client.close()


def test_run_waits_out_a_read_only_redis_as_during_a_failover(store, firings, redis_server, logs):
    client = worker_client(redis_server)
    worker = Consumer(client, stream_name("default"), "workers", "c1", block=timedelta(milliseconds=50),
                      backoff_base=timedelta(milliseconds=20), backoff_cap=timedelta(milliseconds=200))
    handled: list[str] = []
    running = Running(worker, lambda firing: handled.append(firing.firing_id))
    wait_for(lambda: running.alive() and len(handled) == 3, message="the three firings")
    admin = redis_server.client()
    admin.replicaof("127.0.0.1", free_port())  # a replica of nothing: keeps its data, refuses writes
    wait_for(lambda: running.alive() and any(TROUBLE.match(line) for line in logs), message="the trouble line")
    failed = client.calls
    wait_for(lambda: running.alive() and client.calls >= failed + 3, message="three more attempts, each READONLY")
    admin.replicaof("no", "one")
    later = "s/globex/2031-01-01T00:00:00Z"
    add_firing(admin, later)
    wait_for(lambda: running.alive() and later in handled, message="the firing added once Redis is writable again")
    running.finish()
    [trouble] = [line for line in logs if TROUBLE.match(line)]
    # A read blocked when the primary turned replica is told UNBLOCKED; every command after, READONLY.
    assert ("(ResponseError: UNBLOCKED force unblock" in trouble
            or "(ReadOnlyError: You can't write against a read only replica" in trouble)
    [answers] = [line for line in logs if ANSWERS.match(line)]
    assert int(ANSWERS.match(answers).group(1)) >= 3
    admin.close()
    client.close()


def test_a_stop_during_the_backoff_ends_run_at_once(store, redis_server, logs):
    worker = consumer(store, backoff_base=timedelta(seconds=60), backoff_cap=timedelta(seconds=60))
    redis_server.stop()
    running = Running(worker, lambda firing: None)
    wait_for(lambda: running.alive() and any(TROUBLE.match(line) for line in logs), timeout=15,
             message="the trouble line")
    running.finish(timeout=2)  # the backoff is 30..60s


def test_after_redis_restarts_empty_the_same_consumer_creates_its_group_again_and_reads_on(
        store, firings, redis_server, warnings):
    worker = consumer(store)
    handled: list[str] = []
    drain(worker, lambda firing: handled.append(firing.firing_id))
    assert handled == firings
    redis_server.restart_empty()
    later = "s/initech/2031-01-01T00:00:00Z"
    add_firing(store.client, later)
    wait_for(lambda: worker.poll(lambda firing: handled.append(firing.firing_id)) and later in handled,
             message="the firing written after the empty restart")
    assert handled == [*firings, later]
    assert warnings == ["stream it{sched-42}x:queue:default: consumer group workers is gone (Redis lost its data?); "
                        "creating it again, to read from the stream's start"]
    assert store.client.xpending(stream_name("default"), "workers")["pending"] == 0


def test_a_handled_firing_is_remembered_for_claim_after_times_batch(store, firings):
    drain(consumer(store, claim_after=timedelta(seconds=60), batch=10), lambda firing: None)
    assert 600_000 - 10_000 < store.client.pttl(consumer(store).done_key(firings[0])) <= 600_000


DOCUMENTED = {  # docs/queues.md's firing, on the default stream and the group its snippet uses
    "firing_id": "nightly-report/acme/2026-11-24T03:00:00Z", "schedule": "nightly-report", "tenant": "acme",
    "tick": "2026-11-24T03:00:00Z", "enqueue_at": "2026-11-24T03:04:12.345Z", "job": "NightlyReportJob",
    "args": '{"kind":"daily"}', "queue": "reports", "epoch": "7", "late": "false",
}


def test_a_handled_firings_mark_costs_at_most_the_136_bytes_docs_queues_md_gives(redis_client):
    stream = "{scheduler}:queue:default"
    redis_client.xadd(stream, DOCUMENTED)
    worker = Consumer(redis_client, stream, "workers", "c1", block=timedelta(milliseconds=50))
    assert worker.poll(lambda firing: None) == 1
    mark = worker.done_key(DOCUMENTED["firing_id"])
    assert redis_client.memory_usage(mark, samples=0) <= 136
    assert redis_client.pttl(mark) > 0
