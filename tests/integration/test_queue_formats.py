"""Each queue type's format as the fenced scripts write it into a real redis-server: the stream with
`late`, Sidekiq's job JSON (plain and ActiveJob), Celery's protocol-2 message, the outbox of a target
elsewhere, and the relay's script that writes into a target's own Redis at most once (and not at all
once the relay's fence says no)."""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import replace
from datetime import datetime, timedelta

import pytest
from helpers import queue_entries, redis_now, write_table
from support import (
    PREFIX,
    WATERMARK_TTL,
    accept,
    floor_minute,
    plan_at,
    read_stream,
    route,
    take_lease,
)

from redis_server import RedisServer, wait_for
from scheduler.clock.instants import format_instant, format_tick
from scheduler.errors import RedisUnavailable
from scheduler.settings import load_settings
from scheduler.keys import Keys
from scheduler.store.replies import dispatched, dispatched_groups
from scheduler.table import load_table
from scheduler.targets import STREAM_FIELDS
from scheduler.replica.senders import RedisSender, firing_message

TABLE = """
[queues.default]
type = "redis-stream"

""" + queue_entries("reports") + """
[queues.rails]
type = "sidekiq"
queue = "mailers"
active_job = true
retry = 5

""" + queue_entries("billing", "exports") + """
[[schedule]]
name = "s"
every = "1m"
job = "ReportJob"
args = { kind = "daily", ids = [], nested = { empty = {} } }
"""


@pytest.fixture
def table(tmp_path):
    return load_table(write_table(tmp_path, TABLE))


def fire(store, table, queue: str, tenants: list[str], enqueue_at: list[datetime] | None = None,
         grace: timedelta = timedelta(seconds=60)) -> tuple[datetime, str]:
    """Accept one tick of schedule "s" for ``tenants`` onto ``queue``; (the tick, the token)."""
    schedule = table.schedule("s")
    schedule = replace(schedule, queue=queue, misfire_grace=grace)
    now = redis_now(store.client)
    tick = floor_minute(now)
    token = take_lease(store, "r1") if store.holder() is None else store.holder()
    plan = plan_at(schedule, tick, tenants, enqueue_at or [tick] * len(tenants))
    accept(store, token, schedule, "s", [plan], tick, WATERMARK_TTL, table)
    return tick, token


def expected_message(tick: datetime, tenant: str, queue: str, late: bool = False, at: datetime | None = None) -> dict:
    return {"firing_id": f"s/{tenant}/{format_tick(tick)}", "schedule": "s", "tenant": tenant,
            "tick": format_tick(tick), "enqueue_at": format_instant(at or tick), "job": "ReportJob",
            "queue": queue, "args": {"kind": "daily", "ids": [], "nested": {"empty": {}}}, "late": late, "epoch": 1}


def listed(client, key: str) -> list[dict]:
    """A list's JSON items in the order a worker pops them (LPUSH, BRPOP: oldest first)."""
    return [json.loads(item) for item in reversed(client.lrange(key, 0, -1))]


def test_a_stream_entry_carries_late_and_the_args_as_json_text(store, table):
    tick, _ = fire(store, table, "default", ["acme"])
    [entry] = read_stream(store.client, "default")
    assert list(entry) == list(STREAM_FIELDS)
    assert entry["late"] == "false"
    assert json.loads(entry["args"]) == {"kind": "daily", "ids": [], "nested": {"empty": {}}}


def test_a_firing_delivered_past_its_grace_is_marked_late_on_redis_clock(store, table):
    now = redis_now(store.client)
    long_ago, just_now = now - timedelta(minutes=5), now - timedelta(seconds=1)
    tick, _ = fire(store, table, "default", ["old", "fresh"], [long_ago, just_now])
    late = {entry["tenant"]: entry["late"] for entry in read_stream(store.client, "default")}
    assert late == {"old": "true", "fresh": "false"}


def test_sidekiq_gets_its_own_job_json_on_its_queue_list(store, table):
    tick, _ = fire(store, table, "reports", ["acme", "globex"])
    before = redis_now(store.client).timestamp()
    assert store.client.smembers("queues") == {b"reports"}
    jobs = listed(store.client, "queue:reports")
    assert [job["args"] for job in jobs] == [[expected_message(tick, t, "reports")] for t in ("acme", "globex")]
    for job, tenant in zip(jobs, ("acme", "globex")):
        firing_id = f"s/{tenant}/{format_tick(tick)}"
        assert set(job) == {"class", "args", "queue", "jid", "retry", "created_at", "enqueued_at"}
        assert job["class"] == "ReportJob" and job["queue"] == "reports" and job["retry"] is True
        assert job["jid"] == hashlib.sha1(firing_id.encode()).hexdigest()[:24]
        assert isinstance(job["created_at"], float) and abs(job["created_at"] - before) < 5
        assert job["enqueued_at"] == job["created_at"]


def test_sidekiq_with_active_job_wraps_an_activejob_payload(store, table):
    tick, _ = fire(store, table, "rails", ["acme"])
    assert store.client.smembers("queues") == {b"mailers"}
    [job] = listed(store.client, "queue:mailers")
    firing_id = f"s/acme/{format_tick(tick)}"
    assert job["class"] == "ActiveJob::QueueAdapters::SidekiqAdapter::JobWrapper"
    assert job["wrapped"] == "ReportJob" and job["queue"] == "mailers" and job["retry"] == 5
    [payload] = job["args"]
    assert payload == {
        "job_class": "ReportJob", "job_id": str(uuid.uuid5(uuid.NAMESPACE_URL, firing_id)),
        "provider_job_id": None, "queue_name": "mailers", "priority": None,
        "arguments": [{**expected_message(tick, "acme", "rails"), "_aj_hash_with_indifferent_access": True}],
        "executions": 0, "exception_executions": {}, "locale": "en", "timezone": "UTC",
        "enqueued_at": format_instant(tick),
    }


def test_celery_gets_a_protocol_2_message_on_its_queue_list(store, table):
    tick, _ = fire(store, table, "billing", ["acme"])
    [message] = listed(store.client, "billing-tasks")
    task_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"s/acme/{format_tick(tick)}"))
    assert json.loads(message["body"]) == [[expected_message(tick, "acme", "billing")], {},
                                           {"callbacks": None, "errbacks": None, "chain": None, "chord": None}]
    assert message["content-type"] == "application/json" and message["content-encoding"] == "utf-8"
    assert message["headers"]["task"] == "ReportJob"
    assert message["headers"]["id"] == message["headers"]["root_id"] == task_id
    assert message["properties"]["delivery_info"] == {"exchange": "", "routing_key": "billing-tasks"}
    assert "body_encoding" not in message["properties"]


def test_a_target_elsewhere_is_written_to_its_outbox(store, table):
    tick, _ = fire(store, table, "exports", ["acme"])
    assert store.outbox_queues() == {"exports"}
    found = store.read_outboxes({"exports": "0-0"}, 10, timedelta(milliseconds=1))
    [(_, fields)] = found["exports"]
    assert firing_message(fields) == expected_message(tick, "acme", "exports")
    assert store.outbox_backlog("exports")[0] == 1
    assert not store.client.exists(store.keys.stream("exports"))


def test_a_pending_firing_is_dispatched_in_its_queue_format_and_late_after_its_grace(store, table):
    now = redis_now(store.client)
    soon = now + timedelta(milliseconds=300)
    tick, token = fire(store, table, "reports", ["acme"], [soon], grace=timedelta(milliseconds=1))
    assert store.client.llen("queue:reports") == 0
    wait_for(lambda: redis_now(store.client) > soon + timedelta(milliseconds=50), message="the firing to be due")
    (reply,) = store.send(token, [store.dispatch_call(token, route(store, "reports", table))])
    assert dispatched(reply)[0] == 1
    [(_, lateness, late, firings)] = dispatched_groups(reply)
    assert (late, firings) == (True, 1) and lateness >= 50, "the reply tells the metrics what it delivered"
    [job] = listed(store.client, "queue:reports")
    assert job["args"] == [expected_message(tick, "acme", "reports", late=True, at=soon)]


def test_the_relay_script_writes_into_a_target_redis_at_most_once(store, table, tmp_path):
    fire(store, table, "exports", ["acme", "globex"])
    firings = [fields for _, fields in store.read_outboxes({"exports": "0-0"}, 10, timedelta(milliseconds=1))["exports"]]
    other = RedisServer(tmp_path / "sidekiq-redis").start()
    try:
        spec = replace(table.queue("reports"), redis_url=other.url)
        sender = RedisSender(spec, "reports", Keys(PREFIX), load_settings())
        assert sender.send(firings, lambda: True) == [True, True]
        assert sender.send(firings, lambda: True) == [True, True], "a batch sent again is accepted ..."
        client = other.client()
        jobs = listed(client, "queue:reports")
        assert [job["args"][0]["tenant"] for job in jobs] == ["acme", "globex"], "... and written once"
        assert [job["args"][0] for job in jobs] == [firing_message(f) for f in firings]
        assert 0 < client.pttl(Keys(PREFIX).relayed(firings[0]["firing_id"])) <= 3_600_000
        sender.close()
        client.close()
    finally:
        other.cleanup()


def test_the_relay_script_is_not_called_once_the_fence_says_no(store, table, tmp_path):
    fire(store, table, "exports", ["acme", "globex"])
    firings = [fields for _, fields in store.read_outboxes({"exports": "0-0"}, 10, timedelta(milliseconds=1))["exports"]]
    other = RedisServer(tmp_path / "sidekiq-redis").start()
    try:
        sender = RedisSender(replace(table.queue("reports"), redis_url=other.url), "reports", Keys(PREFIX),
                             load_settings())
        assert sender.send(firings, lambda: False) == [False, False]
        sender.close()
        client = other.client()
        assert client.keys() == [], "no job, no marker: the firings stay the next leader's to send"
        client.close()
    finally:
        other.cleanup()


def test_a_target_redis_that_is_down_refuses_the_batch_and_it_stays_in_the_outbox(store, table, tmp_path):
    fire(store, table, "exports", ["acme"])
    firings = [fields for _, fields in store.read_outboxes({"exports": "0-0"}, 10, timedelta(milliseconds=1))["exports"]]
    other = RedisServer(tmp_path / "sidekiq-redis").start()
    try:
        sender = RedisSender(replace(table.queue("reports"), redis_url=other.url), "reports", Keys(PREFIX),
                             load_settings())
        other.stop()
        with pytest.raises(RedisUnavailable, match="sending to the Redis at redis://127.0.0.1"):
            sender.send(firings, lambda: True)
        sender.close()
    finally:
        other.cleanup()
    assert store.outbox_backlog("exports")[0] == 1
