"""One failure stays one failure (docs/operations.md, "A broken schedule"): a schedule whose tenant
set cannot be read, or whose writes Redis refuses, is reported and retried on its own while every
other schedule fires on time; a full Redis is reported as refusing writes, not as unreachable."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from helpers import write_table
from support import PREFIX, make_store, read_stream

from redis_server import wait_for
from scheduler.acl import render
from scheduler.clock.instants import entry_instant
from scheduler.keys import Keys
from scheduler.replica.runner import Replica
from scheduler.settings import Settings
from scheduler.store.connection import connect
from scheduler.store.state import Store

TABLE = """
[tenants]
broken = { redis_set = "tenants:broken" }

[[schedule]]
name = "inline"
every = "1s"
tenants = ["acme", "globex"]
job = "Inline"

[[schedule]]
name = "fromset"
every = "1s"
tenants = "broken"
job = "FromSet"
"""
FAST = dict(lease_ttl=timedelta(seconds=2), retry_interval=timedelta(milliseconds=200))
USER, PASSWORD = "scheduler", "blast-radius-pw"


@pytest.fixture
def start(tmp_path):
    """Start a Replica on TABLE over ``store``; it is stopped afterwards."""
    started: list[Replica] = []

    def run(store: Store) -> Replica:
        replica = Replica(Settings(**FAST), write_table(tmp_path, TABLE), store, "r1")
        replica.start()
        started.append(replica)
        wait_for(lambda: replica.lease.held, message="r1 to lead")
        return replica

    yield run
    for replica in started:
        replica.stop()


def on_time_ticks(client, schedule: str) -> set[str]:
    """The ticks of ``schedule`` whose every firing reached the stream within a second of its
    enqueue_at (by the stream entry's own Redis time)."""
    late, ticks = set(), set()
    for entry, fields in client.xrange(Keys(PREFIX).stream("default")):
        message = {key.decode(): value.decode() for key, value in fields.items()}
        if message["schedule"] != schedule:
            continue
        ticks.add(message["tick"])
        if entry_instant(entry) - datetime.fromisoformat(message["enqueue_at"]) > timedelta(seconds=1):
            late.add(message["tick"])
    return ticks - late


def failures(replica: Replica, schedule: str) -> float:
    for family in replica.metrics.registry.collect():
        for sample in family.samples:
            if sample.name == "scheduler_schedule_failures_total" and sample.labels.get("schedule") == schedule:
                return sample.value
    return 0.0


def failing(replica: Replica, schedule: str) -> float | None:
    for family in replica.metrics.registry.collect():
        for sample in family.samples:
            if sample.name == "scheduler_schedule_failing" and sample.labels.get("schedule") == schedule:
                return sample.value
    return None


def test_a_tenant_set_of_the_wrong_type_stops_only_its_schedule_which_recovers_when_mended(
        redis_client, store, start, errors):
    redis_client.set("tenants:broken", "not a set")
    replica = start(store)

    wait_for(lambda: len(on_time_ticks(redis_client, "inline")) >= 3, timeout=10,
             message="the other schedule firing on time, tick after tick")
    wait_for(lambda: failures(replica, "fromset") >= 3, timeout=10, message="the broken schedule retried")
    assert replica.lease.held, "one schedule's trouble never costs the lease"
    [line] = [line for line in errors if "fromset" in line]
    assert line == ("schedule fromset (queue default): reading tenant set 'tenants:broken': WRONGTYPE Operation "
                    "against a key holding the wrong kind of value; it is retried on its own, every other schedule "
                    "goes on"), "logged once, however often it is retried"
    ready, body = replica.readiness()
    assert ready and body["status"] == "degraded" and body["state"] == "leading"
    assert body["failing"] == {"fromset": "reading tenant set 'tenants:broken': WRONGTYPE Operation against a key "
                                          "holding the wrong kind of value"}
    assert failing(replica, "fromset") == 1

    redis_client.delete("tenants:broken")
    redis_client.sadd("tenants:broken", "t1")
    wait_for(lambda: any(m["schedule"] == "fromset" for m in read_stream(redis_client, "default")), timeout=10,
             message="the mended schedule firing again")
    wait_for(lambda: replica.readiness()[1]["status"] == "ok", message="readiness ok again")
    assert failing(replica, "fromset") == 0
    assert replica.worker.failing() == {}


def test_a_tenant_set_the_acl_denies_stops_only_its_schedule_and_the_leader_keeps_the_lease(
        redis_server, redis_client, tmp_path, start, errors):
    redis_server.add_user(USER, PASSWORD, render(PREFIX, ["tenants:granted*"]).rules())
    limited = make_store(connect(Settings(), redis_server.url_for(USER, PASSWORD)))
    redis_client.sadd("tenants:broken", "t1")
    replica = start(limited)

    wait_for(lambda: len(on_time_ticks(redis_client, "inline")) >= 3, timeout=10,
             message="the other schedule firing on time")
    wait_for(lambda: failures(replica, "fromset") >= 3, timeout=10, message="the denied schedule retried")
    assert replica.lease.held and "giving the lease up" not in " ".join(errors)
    [line] = [line for line in errors if "fromset" in line]
    assert "reading tenant set 'tenants:broken': NOPERM" in line
    assert replica.readiness()[1]["failing"]["fromset"].startswith("reading tenant set 'tenants:broken': NOPERM")
    limited.client.close()


def test_a_full_redis_is_reported_as_refusing_writes_not_as_unreachable(redis_client, store, start, errors):
    replica = start(store)
    wait_for(lambda: replica.readiness()[0], message="r1 ready")
    redis_client.config_set("maxmemory", 1)  # noeviction: every write that needs memory is refused
    try:
        ready, body = wait_for(lambda: (answer := replica.readiness()) and not answer[0] and answer, timeout=10,
                               message="readiness to see the refusal")
        assert body["status"] == "unavailable"
        assert body["reason"].startswith("Redis answers but refuses writes: OOM command not allowed when used "
                                         "memory > 'maxmemory' (the script's ")
        wait_for(lambda: any("refuses the lease job's writes" in line for line in errors), message="the log line")
        assert not any("unreachable" in line for line in errors)
        assert replica.health()[0], "liveness stays what it is"
    finally:
        redis_client.config_set("maxmemory", 0)
    wait_for(lambda: replica.readiness()[0], timeout=10, message="ready again once Redis has room")
