"""Operators' requests (trigger, backfill) against a real redis-server and an in-process leader: a
request Redis refuses is answered and removed without costing the lease, requests are served while
firings are due back to back, and the CLI tells a busy leader from no leader."""

from __future__ import annotations

import json
import subprocess
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from helpers import run_scheduler, write_table
from support import PREFIX, read_stream, take_lease

from redis_server import wait_for
from scheduler.clock.instants import ms_of
from scheduler.errors import ExitCode
from scheduler.keys import Keys
from scheduler.replica.runner import Replica
from scheduler.settings import Settings
from scheduler.store.control import Control

FAST = dict(lease_ttl=timedelta(seconds=2), retry_interval=timedelta(milliseconds=200), key_prefix=PREFIX)
TENANTS = 3_000


def table(tenants: int = TENANTS) -> str:
    ids = ", ".join(f'"t{n}"' for n in range(tenants))
    return f"""
[tenants]
many = [{ids}]
broken = {{ redis_set = "tenants:broken" }}

[[schedule]]
name = "spread"
every = "10s"
jitter = "9s"
tenants = "many"
job = "Spread"

[[schedule]]
name = "fromset"
every = "1h"
tenants = "broken"
job = "FromSet"

[[schedule]]
name = "once"
every = "1h"
job = "Once"
"""


@pytest.fixture
def leader(tmp_path, store):
    replica = Replica(Settings(**FAST), write_table(tmp_path, table()), store, "r1")
    replica.start()
    wait_for(lambda: replica.lease.held, message="r1 to lead")
    yield replica
    replica.stop()


def test_a_request_redis_refuses_is_answered_with_why_and_removed_and_the_lease_stays(leader, store, redis_client):
    redis_client.set("tenants:broken", "not a set")
    control = Control(store)
    request, _ = control.request("trigger", schedule="fromset", tenant="acme")
    result = control.result(request, timeout=10)
    assert result is not None and result["status"] == "refused"
    assert result["error"] == ("Redis refused it while reading tenant set 'tenants:broken': WRONGTYPE Operation "
                               "against a key holding the wrong kind of value")
    assert redis_client.xlen(f"{PREFIX}:requests") == 0, "removed: never retried forever"
    assert leader.lease.held, "one request's trouble never costs the lease"
    again = control.result(control.request("trigger", schedule="once")[0], timeout=10)
    assert again is not None and again["status"] == "done", "the next request is served"


def test_requests_are_served_within_a_second_while_firings_are_due_back_to_back(leader, store, redis_client):
    pending = f"{PREFIX}:pending:default"
    wait_for(lambda: redis_client.zcard(pending) > TENANTS // 2, timeout=15,
             message="a jitter window with firings due every few milliseconds")
    control = Control(store)
    sent = time.monotonic()
    result = control.result(control.request("trigger", schedule="once")[0], timeout=10)
    waited = time.monotonic() - sent
    assert result is not None and result["status"] == "done"
    assert redis_client.zcard(pending) > 0, "answered while the window still had firings to deliver"
    assert waited < 2.0, f"answered after {waited:.1f}s"


def test_the_cli_says_the_leader_is_busy_when_a_lease_is_held_but_nobody_answers(tmp_path, redis_server,
                                                                              redis_client):
    config = write_table(tmp_path, table(3))
    redis_client.set(f"{PREFIX}:lease", "7:r9", px=30_000)  # a leader that holds the lease, busy elsewhere
    env = {"SCHEDULER_REDIS_URL": redis_server.url, "SCHEDULER_KEY_PREFIX": PREFIX}
    busy = run_scheduler("trigger", "once", "--wait", "0.3", "--config", str(config), env=env, timeout=60)
    assert busy.returncode == ExitCode.BUSY, busy.stderr
    assert "the leader r9 (epoch 7) has not answered within 0.3s; request " in busy.stderr
    assert "stays queued" in busy.stderr
    assert "asking again waits for it, and --new asks for a second trigger" in busy.stderr

    redis_client.delete(f"{PREFIX}:lease")
    nobody = run_scheduler("trigger", "once", "--wait", "0.3", "--config", str(config), env=env, timeout=60)
    assert nobody.returncode == ExitCode.UNAVAILABLE and "no leader answered within 0.3s" in nobody.stderr


# -- asking again while the first request is queued -----------------------------------------------


def cli(config: Path, redis_server, *args: str) -> subprocess.CompletedProcess:
    env = {"SCHEDULER_REDIS_URL": redis_server.url, "SCHEDULER_KEY_PREFIX": PREFIX}
    done = run_scheduler(*args, "--config", str(config), env=env, timeout=60)
    assert "Traceback" not in done.stderr, done.stderr
    return done


def queued(redis_client) -> list[str]:
    return [entry.decode() for entry, _ in redis_client.xrange(f"{PREFIX}:requests")]


def manual_firings(redis_client, schedule: str) -> list[str]:
    return [fields[b"firing_id"].decode() for _, fields in redis_client.xrange(f"{PREFIX}:queue:default")
            if fields[b"firing_id"].decode().startswith(f"{schedule}/") and b"/manual-" in fields[b"firing_id"]]


def requested_keys(redis_client) -> list[bytes]:
    return list(redis_client.scan_iter(match=f"{PREFIX}:requested:*"))


def test_a_trigger_asked_again_while_queued_waits_for_the_first_and_the_leader_fires_it_once(
        tmp_path, redis_server, redis_client, store):
    config = write_table(tmp_path, table(3))
    first = cli(config, redis_server, "trigger", "spread", "--wait", "0.3")
    assert first.returncode == ExitCode.UNAVAILABLE, first.stderr
    (request,) = queued(redis_client)
    again = cli(config, redis_server, "trigger", "spread", "--wait", "0.3")
    assert again.returncode == ExitCode.UNAVAILABLE, again.stderr
    assert queued(redis_client) == [request], "one request, however often it is asked for"
    assert (f"scheduler trigger: request {request} for this trigger is already queued; waiting for it "
            "(--new asks for a second trigger)") in again.stderr
    assert f"request {request} stays queued" in again.stderr

    replica = Replica(Settings(**FAST), config, store, "r1")
    replica.start()
    try:
        wait_for(lambda: redis_client.exists(f"{PREFIX}:request:{request}"), message="the leader to answer")
        assert sorted(manual_firings(redis_client, "spread")) == [f"spread/t{n}/manual-{request}" for n in range(3)]
        assert requested_keys(redis_client) == [], "the key goes with the answer"

        after = cli(config, redis_server, "trigger", "spread", "--json")
        assert after.returncode == ExitCode.OK, after.stderr
        answer = json.loads(after.stdout)
        assert answer["request"] != request and answer["already_queued"] is False and answer["fired"] == "3"
        assert "already queued" not in after.stderr
        assert len(manual_firings(redis_client, "spread")) == 6, "a trigger after the answer fires again"
    finally:
        replica.stop()


def test_new_adds_a_second_request_on_purpose(tmp_path, redis_server, redis_client):
    config = write_table(tmp_path, table(3))
    redis_client.set(f"{PREFIX}:lease", "7:r9", px=30_000)  # a leader that holds the lease and never answers
    first = cli(config, redis_server, "trigger", "spread", "--tenant", "t1", "--wait", "0.2")
    assert first.returncode == ExitCode.BUSY, first.stderr
    second = cli(config, redis_server, "trigger", "spread", "--tenant", "t1", "--new", "--wait", "0.2")
    assert second.returncode == ExitCode.BUSY and "already queued" not in second.stderr
    assert len(queued(redis_client)) == 2
    other = cli(config, redis_server, "trigger", "spread", "--tenant", "t2", "--wait", "0.2")
    assert other.returncode == ExitCode.BUSY and "already queued" not in other.stderr, "another tenant, another ask"
    assert len(queued(redis_client)) == 3


def test_a_backfill_asked_again_for_the_same_window_waits_for_the_first(tmp_path, redis_server, redis_client):
    config = write_table(tmp_path, table(3))
    window = ["--from", "2026-11-24T03:00:00Z", "--until", "2026-11-24T04:00:00Z", "--wait", "0.2"]
    first = cli(config, redis_server, "backfill", "spread", *window)
    assert first.returncode == ExitCode.UNAVAILABLE, first.stderr
    (request,) = queued(redis_client)
    again = cli(config, redis_server, "backfill", "spread", *window[:3], "2026-11-24T04:00Z", *window[4:])
    assert f"request {request} for this backfill is already queued; waiting for it" in again.stderr
    assert queued(redis_client) == [request], "the same window, however it is written"
    wider = cli(config, redis_server, "backfill", "spread", *window[:3], "2026-11-24T05:00:00Z", *window[4:])
    assert "already queued" not in wider.stderr and len(queued(redis_client)) == 2, "another window, another ask"


def test_the_key_of_a_queued_request_expires_and_is_not_reused_once_the_request_is_gone(store, redis_client):
    control = Control(store)
    request, added = control.request("trigger", schedule="once")
    assert added and control.request("trigger", schedule="once") == (request, False)
    (key,) = requested_keys(redis_client)
    assert key.decode() == Keys(PREFIX).requested({"kind": "trigger", "schedule": "once"})
    assert 0 < redis_client.pttl(key) <= 24 * 3600 * 1000, "it expires on its own"
    redis_client.xdel(f"{PREFIX}:requests", request)  # removed otherwise than by an answer (by hand, say)
    replacement, added = control.request("trigger", schedule="once")
    assert added and replacement != request, "a key naming a request that is gone holds nothing back"
    assert queued(redis_client) == [replacement]

    second, added = control.request("trigger", schedule="once", new=True)
    assert added and redis_client.get(key) == second.encode(), "asking again waits for the latest"
    token = take_lease(store, "r1")
    fields = {"kind": "trigger", "schedule": "once"}
    store.complete(token, replacement, fields, {"status": "done"}, None, [], timedelta(minutes=1))
    assert control.request("trigger", schedule="once") == (second, False), "the earlier answer keeps the later's key"
    store.complete(token, second, fields, {"status": "done"}, None, [], timedelta(minutes=1))
    assert requested_keys(redis_client) == [], "gone with the answer of the request it names"

PAUSE_TABLE = """
[[schedule]]
name = "beat"
every = "1s"
tenants = ["k1", "k2"]
job = "Beat"
"""


def ticks_of(client, tenant: str) -> set[str]:
    return {m["tick"] for m in read_stream(client, "default") if m["tenant"] == tenant}


def backfill(control: Control, tenant: str, start: datetime, end: datetime) -> dict[str, str] | None:
    window = {"from": str(ms_of(start)), "until": str(ms_of(end))}
    request, _ = control.request("backfill", schedule="beat", tenant=tenant, **window)
    return control.result(request, timeout=10)


def test_a_paused_tenants_ticks_are_backfilled_once_though_the_ticks_were_finished(tmp_path, store, redis_client):
    replica = Replica(Settings(**FAST), write_table(tmp_path, PAUSE_TABLE), store, "r1")
    replica.start()
    try:
        wait_for(lambda: replica.lease.held, message="r1 to lead")
        control = Control(store)
        control.pause("beat", "k1")
        wait_for(lambda: len(ticks_of(redis_client, "k2") - ticks_of(redis_client, "k1")) >= 3, timeout=15,
                 message="ticks that fired k2 but held the paused k1 back")
        control.resume("beat", "k1")
        held_back = sorted(ticks_of(redis_client, "k2") - ticks_of(redis_client, "k1"))
        start, end = datetime.fromisoformat(held_back[0]), datetime.fromisoformat(held_back[-1])

        first = backfill(control, "k1", start, end)
        assert first is not None and first["status"] == "done", first
        assert sorted(ticks_of(redis_client, "k1") & set(held_back)) == held_back, "each held-back tick of k1"
        assert (int(first["fired"]), int(first["deduplicated"])) == (len(held_back), 0)
        again = backfill(control, "k1", start, end)
        assert again is not None and (int(again["fired"]), int(again["deduplicated"])) == (0, len(held_back))
        k1 = [m for m in read_stream(redis_client, "default") if m["tenant"] == "k1" and m["tick"] in held_back]
        assert len(k1) == len(held_back), "never twice"
        k2 = backfill(control, "k2", start, end)
        assert k2 is not None and k2["fired"] == "0", "a tenant that was sent is not sent again"
    finally:
        replica.stop()
