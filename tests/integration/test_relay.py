"""The relay's bookkeeping against a real redis-server: what leaves an outbox (only what the target
accepted), what stays and why, the backlog warning, and a leader whose lease runs out mid-batch. The
target is a stand-in sender here, or the real SQS sender with a stand-in boto3 client; the real SQS
and Redis targets are in tests/e2e/test_queue_workers.py and tests/integration/test_queue_formats.py."""

from __future__ import annotations

import json
import threading
from datetime import timedelta

import pytest
from helpers import FakeClock, RecordingSqs, redis_now, write_table
from support import accept, expire_lease, floor_minute, plan_at, take_lease

import scheduler.replica.relay as relay_module
from scheduler.errors import RedisUnavailable
from scheduler.lease import Change, Lease
from scheduler.replica.relay import Relay
from scheduler.settings import load_settings
from scheduler.table import load_table
from scheduler.targets import Routes
from scheduler.replica.senders import Sender, SqsSender

TABLE = """
[queues.exports]
type = "sqs"
url = "https://sqs.ap-northeast-1.amazonaws.com/123456789012/exports.fifo"

[[schedule]]
name = "s"
every = "1m"
tenants = ["a", "b", "c", "d"]
job = "J"
queue = "exports"
"""
LEASE_TTL = timedelta(seconds=60)


class Target(Sender):
    """Accepts the firings ``accept`` says yes to, and remembers every one it was handed."""

    def __init__(self) -> None:
        self.accept = lambda firing: True
        self.handed: list[str] = []

    def send(self, firings, fence):
        self.handed += [firing["firing_id"] for firing in firings]
        return [self.accept(firing) for firing in firings]


@pytest.fixture
def target(monkeypatch) -> Target:
    stand_in = Target()
    monkeypatch.setattr(relay_module, "sender_for", lambda *args: stand_in)
    return stand_in


@pytest.fixture
def relay(store, tmp_path, target) -> Relay:
    """A relay whose replica leads, over an outbox holding one tick of four firings."""
    return leading_relay(store, tmp_path, ["a", "b", "c", "d"], Lease(store, "r1", LEASE_TTL))


def leading_relay(store, tmp_path, tenants: list[str], lease: Lease) -> Relay:
    """A relay whose replica takes ``lease``, over an outbox holding one tick of ``tenants``' firings."""
    table = load_table(write_table(tmp_path, TABLE))
    routes = Routes(store.keys, table)
    schedule = table.schedule("s")
    tick = floor_minute(redis_now(store.client))
    token = take_lease(store, lease.replica_id, LEASE_TTL)
    accept(store, token, schedule, "s", [plan_at(schedule, tick, tenants, [tick] * len(tenants))], tick, table=table)
    store.release(token)
    lease.acquire()
    return Relay(store, lease, load_settings(retry_interval="1ms"), threading.Event(), routes=lambda: routes,
                 on_crash=lambda: None)


def outbox(store) -> list[str]:
    return [fields[b"tenant"].decode() for _, fields in store.client.xrange(store.keys.outbox("exports"))]


def turn_until_resumed(relay: Relay) -> None:
    """One turn, once the queue's backoff (a millisecond or so here) has passed."""
    relay._resume_at.clear()
    relay._turn()


def test_only_what_the_target_accepted_leaves_the_outbox(relay, target, store, warnings):
    target.accept = lambda firing: firing["tenant"] in ("a", "c")
    relay._turn()
    assert outbox(store) == ["b", "d"]
    assert any("refused 2 of 4 firings; they stay in the outbox" in line for line in warnings)
    target.accept = lambda firing: True
    turn_until_resumed(relay)
    assert outbox(store) == []
    assert [firing.split("/")[1] for firing in target.handed] == ["a", "b", "c", "d", "b", "d"]


def test_a_queue_no_longer_declared_elsewhere_keeps_its_outbox(relay, target, store, tmp_path, warnings):
    edited = Routes(store.keys, load_table(write_table(tmp_path, TABLE.split("[[schedule]]")[0].replace(
        'type = "sqs"\nurl = "https://sqs.ap-northeast-1.amazonaws.com/123456789012/exports.fifo"', 'type = "sidekiq"'))))
    relay.routes = lambda: edited  # as the work loop's routes are, once it runs the edited table
    relay._turn()
    assert outbox(store) == ["a", "b", "c", "d"] and target.handed == []
    assert any("no longer names a target outside this Redis" in line for line in warnings)


def test_an_entry_the_scripts_did_not_write_stops_its_queue_loudly(relay, target, store, warnings):
    store.client.xtrim(store.keys.outbox("exports"), maxlen=0)
    store.client.xadd(store.keys.outbox("exports"), {"firing_id": "x"})
    relay._turn()
    assert target.handed == []
    assert any("lacks args, enqueue_at" in line and "XDEL" in line for line in warnings)


def test_an_old_backlog_is_reported(relay, store, warnings):
    old_ms = int(redis_now(store.client).timestamp() * 1000) - 120_000
    store.client.xadd(store.keys.outbox("stale"), {"firing_id": "x"}, id=f"{old_ms}-0")
    store.client.sadd(store.keys.outboxes, "stale")
    relay._check_backlog({"stale"})
    assert any("queue stale: 1 firings wait in the outbox, the oldest for 120s" in line for line in warnings)


def test_a_redis_outage_backs_off_and_after_redis_answers_the_next_one_starts_afresh(relay, store, warnings,
                                                                                       monkeypatch):
    broken = {"on": True}
    read = store.read_outboxes

    def flaky(*args):
        if broken["on"]:
            raise RedisUnavailable("reading outboxes: ConnectionError")
        return read(*args)

    monkeypatch.setattr(store, "read_outboxes", flaky)
    relay._turn()
    assert sum("the relay could not deliver" in line for line in warnings) == 1
    broken["on"] = False
    relay._turn()
    assert outbox(store) == []
    broken["on"] = True
    relay._turn()
    assert sum("the relay could not deliver" in line for line in warnings) == 2, "a new outage is news again"
    assert relay._failures == {"": 1}, "and it backs off from the start, not from where the last one ended"


def test_a_leader_paused_past_its_lease_mid_batch_sends_no_more_and_the_next_leader_sends_the_rest(
        store, tmp_path, monkeypatch, logs):
    """A leader stopped (SIGSTOP) between two SendMessageBatch calls of one outbox batch, replaced while
    it sleeps, then woken: it must not send the rest, which the new leader sends."""
    pytest.importorskip("boto3")
    clock = FakeClock()
    tenants = [f"t{n:02}" for n in range(30)]
    relay = leading_relay(store, tmp_path, tenants, Lease(store, "r1", LEASE_TTL, clock=clock))
    successor = Lease(store, "r2", LEASE_TTL)

    def pause_past_the_lease() -> None:  # inside the first SendMessageBatch
        if successor.token is None:
            clock.advance(LEASE_TTL.total_seconds())
            expire_lease(store)
            assert successor.acquire() is Change.ACQUIRED

    sent = sqs_sender(relay, RecordingSqs(during=pause_past_the_lease), monkeypatch)
    relay._turn()
    assert sent_tenants(sent) == [tenants[:10]], "no SendMessageBatch once the lease ran out"
    assert outbox(store) == tenants[10:], "what was not sent stays in the outbox"
    assert [line for line in logs if line.startswith(("WARNING", "ERROR"))] == []
    assert [line for line in logs if "stepping down" in line] == [
        "INFO queue exports: the lease may be gone, stepping down: 20 of 30 firings of this batch stay in the "
        "outbox for the next leader"]
    assert relay._failures == {} and relay._resume_at == {}, "a step-down is no target failure to back off from"

    new_leader = Relay(store, successor, relay.settings, threading.Event(), routes=relay.routes, on_crash=lambda: None)
    resent = sqs_sender(new_leader, RecordingSqs(), monkeypatch)
    new_leader._turn()
    assert sent_tenants(resent) == [tenants[10:20], tenants[20:]] and outbox(store) == []


def sqs_sender(relay: Relay, client: RecordingSqs, monkeypatch) -> RecordingSqs:
    """Make ``relay`` send through a real SqsSender whose boto3 client is ``client``."""
    sender = SqsSender(relay.routes().spec("exports"))
    sender.client = client
    monkeypatch.setattr(relay_module, "sender_for", lambda *args: sender)
    return client


def sent_tenants(client: RecordingSqs) -> list[list[str]]:
    """The tenants of each SendMessageBatch made to ``client``, in order."""
    return [[json.loads(entry["MessageBody"])["tenant"] for entry in call] for call in client.calls]
