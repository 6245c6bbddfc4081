"""Operators' requests (trigger, backfill) against a real redis-server and an in-process leader: a
request Redis refuses is answered and removed without costing the lease, requests are served while
firings are due back to back, and the CLI tells a busy leader from no leader."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from helpers import write_table
from support import PREFIX, read_stream

from redis_server import wait_for
from scheduler.clock.instants import ms_of
from scheduler.errors import ExitCode
from scheduler.replica.runner import Replica
from scheduler.settings import Settings
from scheduler.store.control import Control

SCHEDULER = Path(sys.executable).parent / "scheduler"
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
    request = control.request("trigger", schedule="fromset", tenant="acme")
    result = control.result(request, timeout=10)
    assert result is not None and result["status"] == "refused"
    assert result["error"] == ("Redis refused it while reading tenant set 'tenants:broken': WRONGTYPE Operation "
                               "against a key holding the wrong kind of value")
    assert redis_client.xlen(f"{PREFIX}:requests") == 0, "removed: never retried forever"
    assert leader.lease.held, "one request's trouble never costs the lease"
    again = control.result(control.request("trigger", schedule="once"), timeout=10)
    assert again is not None and again["status"] == "done", "the next request is served"


def test_requests_are_served_within_a_second_while_firings_are_due_back_to_back(leader, store, redis_client):
    pending = f"{PREFIX}:pending:default"
    wait_for(lambda: redis_client.zcard(pending) > TENANTS // 2, timeout=15,
             message="a jitter window with firings due every few milliseconds")
    control = Control(store)
    sent = time.monotonic()
    result = control.result(control.request("trigger", schedule="once"), timeout=10)
    waited = time.monotonic() - sent
    assert result is not None and result["status"] == "done"
    assert redis_client.zcard(pending) > 0, "answered while the window still had firings to deliver"
    assert waited < 2.0, f"answered after {waited:.1f}s"


def test_the_cli_says_the_leader_is_busy_when_a_lease_is_held_but_nobody_answers(tmp_path, redis_server,
                                                                              redis_client):
    config = write_table(tmp_path, table(3))
    redis_client.set(f"{PREFIX}:lease", "7:r9", px=30_000)  # a leader that holds the lease, busy elsewhere
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCHEDULER_")}
    env.update(SCHEDULER_REDIS_URL=redis_server.url, SCHEDULER_KEY_PREFIX=PREFIX)
    busy = subprocess.run([str(SCHEDULER), "trigger", "once", "--wait", "0.3", "--config", str(config)], env=env,
                          capture_output=True, text=True, timeout=60)
    assert busy.returncode == ExitCode.BUSY, busy.stderr
    assert "the leader r9 (epoch 7) has not answered within 0.3s; request " in busy.stderr
    assert "stays queued" in busy.stderr and "a second request is a second trigger" in busy.stderr

    redis_client.delete(f"{PREFIX}:lease")
    nobody = subprocess.run([str(SCHEDULER), "trigger", "once", "--wait", "0.3", "--config", str(config)], env=env,
                            capture_output=True, text=True, timeout=60)
    assert nobody.returncode == ExitCode.UNAVAILABLE and "no leader answered within 0.3s" in nobody.stderr



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
    return control.result(control.request("backfill", schedule="beat", tenant=tenant, **window), timeout=10)


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
