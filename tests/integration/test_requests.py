"""Operators' requests (trigger, backfill) against a real redis-server and an in-process leader: a
request Redis refuses is answered and removed without costing the lease, requests are served while
firings are due back to back, and the CLI tells a busy leader from no leader."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from helpers import write_table
from support import PREFIX

from redis_server import wait_for
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
