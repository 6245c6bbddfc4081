"""A Replica object (its lease thread and work loop) against a real redis-server: the watchdog that
gives the lease up when the work loop is stuck, a work loop that dies, and Redis's eviction policy."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from support import PREFIX, make_store

from redis_server import RedisServer, wait_for
from scheduler.errors import TableError
from scheduler.lease import Lease
from scheduler.replica.runner import Replica
from scheduler.settings import Settings

TABLE = """
[[schedule]]
name = "beat"
every = "1s"
tenants = ["acme", "globex"]
job = "Beat"
"""
FAST = dict(lease_ttl=timedelta(seconds=2), retry_interval=timedelta(milliseconds=200),
            stall_timeout=timedelta(seconds=1))


@pytest.fixture
def config(tmp_path):
    path = tmp_path / "schedules.toml"
    path.write_text(TABLE)
    return path


@pytest.fixture
def replicas(store, config):
    """Start Replicas over the test's Redis; each is stopped afterwards."""
    started: list[Replica] = []

    def start(name: str = "r1", **settings) -> Replica:
        replica = Replica(Settings(**{**FAST, **settings}), config, store, name)
        replica.start()
        started.append(replica)
        return replica

    yield start
    for replica in started:
        replica.stop()


def leading(replica: Replica) -> bool:
    return replica.lease.held


def test_a_leader_whose_work_loop_is_stuck_says_so_and_gives_the_lease_up(store, replicas, warnings, monkeypatch):
    stuck, release = threading.Event(), threading.Event()
    replica = replicas()
    wait_for(lambda: leading(replica), message="r1 to lead")

    def stuck_pass(token):
        stuck.set()
        release.wait(30)

    monkeypatch.setattr(replica.worker, "_pass", stuck_pass)
    replica.worker.wake.set()
    wait_for(stuck.is_set, message="the work loop to get stuck")

    wait_for(lambda: store.holder() is None, timeout=10, message="the stuck leader to release the lease")
    assert any("giving the lease up: the work loop has made no progress" in line for line in warnings)
    rival = Lease(store, "r2", timedelta(seconds=2))
    assert rival.acquire().value == "acquired", "a standby can take over at once"
    release.set()


def test_a_replica_whose_work_loop_is_stuck_does_not_take_the_lease(store, replicas, warnings, monkeypatch):
    release = threading.Event()
    holder = Lease(store, "holder", timedelta(seconds=30))
    holder.acquire()
    replica = replicas()
    monkeypatch.setattr(replica.worker, "_wait", lambda seconds: release.wait(30))
    replica.worker.wake.set()
    wait_for(lambda: replica.worker.stalled_for() > 1.5, message="the work loop to stall")

    store.release(holder.token)
    wait_for(lambda: any("not taking the lease: the work loop has made no progress" in line for line in warnings),
             message="the refusal to lead")
    assert store.holder() is None
    release.set()


def test_a_work_loop_that_dies_of_a_bug_reports_it_and_the_replica_gives_the_lease_up(store, replicas, warnings,
                                                                                      monkeypatch):
    crashed = threading.Event()
    replica = replicas()
    replica.worker.on_crash = crashed.set
    wait_for(lambda: leading(replica), message="r1 to lead")

    def broken(token, now):
        raise RuntimeError("a bug")

    monkeypatch.setattr(replica.worker, "_handle_due_tracks", broken)
    replica.worker.wake.set()
    wait_for(crashed.is_set, message="the crash to be reported")
    assert any("the work loop failed; this replica stops" in line and "RuntimeError: a bug" in line
               for line in warnings)
    wait_for(lambda: store.holder() is None, timeout=10, message="the lease to be given up")


LEDGER_STREAM = f'[queues.default]\nstream = "{PREFIX}:history:beat"\n\n'  # the schedule's decision ledger
AMONG_OWN_KEYS = (f"queue \"default\": stream '{PREFIX}:history:beat': lies under the scheduler's key prefix "
                  f"'{PREFIX}' (SCHEDULER_KEY_PREFIX), among its own keys; the only streams allowed there are "
                  f"'{PREFIX}:queue:<queue name>'")


def test_a_replica_refuses_to_start_on_a_queue_stream_among_its_own_keys(store, config):
    config.write_text(LEDGER_STREAM + TABLE)
    with pytest.raises(TableError) as raised:
        Replica(Settings(**FAST), config, store, "r1")
    assert str(raised.value) == f"{config}:2: {AMONG_OWN_KEYS}"


def test_a_reload_to_a_queue_stream_among_its_own_keys_keeps_the_last_good_table(store, replicas, config, warnings):
    replica = replicas()
    wait_for(lambda: leading(replica) and store.client.xlen(store.keys.stream("default")), message="r1 firing")
    good = replica.worker.table.fingerprint

    config.write_text(LEDGER_STREAM + TABLE)
    replica.request_reload()

    [refusal] = wait_for(lambda: [line for line in warnings if "still running the last good table" in line],
                         message="the refused reload")
    assert refusal.startswith(f"{config} is broken; still running the last good table ({good}):\n")
    assert f"{config}:2: {AMONG_OWN_KEYS}" in refusal
    assert replica.worker.table.fingerprint == good
    fired = store.client.xlen(store.keys.stream("default"))
    wait_for(lambda: store.client.xlen(store.keys.stream("default")) > fired, message="the last good table firing on")
    ledger = store.client.xrange(f"{PREFIX}:history:beat")
    assert ledger and not [fields for _, fields in ledger if b"firing_id" in fields], "no firing in the ledger"


@pytest.mark.parametrize("policy", ["volatile-lru", "allkeys-lru", "volatile-ttl"])
def test_a_replica_refuses_to_lead_where_redis_may_evict_its_keys(tmp_path, config, warnings, policy):
    server = RedisServer(tmp_path / "evicting", options=("--maxmemory", "100mb", "--maxmemory-policy", policy))
    server.start()
    try:
        store = make_store(server.client())
        replica = Replica(Settings(**FAST), config, store, "r1")
        replica.start()
        try:
            wait_for(lambda: any("not taking the lease" in line for line in warnings), message="the refusal")
            assert store.holder() is None
            refusal = next(line for line in warnings if "not taking the lease" in line)
            assert f"maxmemory-policy is '{policy}'" in refusal and "noeviction" in refusal
            assert "SCHEDULER_ALLOW_EVICTION" in refusal
        finally:
            replica.stop()
    finally:
        server.cleanup()


def test_allow_eviction_leads_anyway_with_a_warning(tmp_path, config, warnings):
    server = RedisServer(tmp_path / "evicting", options=("--maxmemory", "100mb", "--maxmemory-policy", "volatile-lru"))
    server.start()
    try:
        store = make_store(server.client())
        replica = Replica(Settings(**FAST, allow_eviction=True), config, store, "r1")
        replica.start()
        try:
            wait_for(lambda: replica.lease.held, message="r1 to lead")
            assert any("leading anyway because SCHEDULER_ALLOW_EVICTION is true" in line for line in warnings)
        finally:
            replica.stop()
    finally:
        server.cleanup()


def test_noeviction_or_no_memory_limit_is_safe(store, replicas, warnings):
    store.client.config_set("maxmemory", "100mb")
    store.client.config_set("maxmemory-policy", "noeviction")
    replica = replicas()
    wait_for(lambda: replica.lease.held, message="r1 to lead")
    assert not any("maxmemory-policy" in line for line in warnings)


# -- health, readiness, eligibility, metrics ----------------------------------------------------


def sample(replica: Replica, name: str, **labels: str) -> float | None:
    return replica.metrics.registry.get_sample_value(name, labels)


def test_a_leader_is_healthy_and_ready_and_counts_what_it_delivers(store, replicas):
    replica = replicas()
    wait_for(lambda: leading(replica), message="r1 to lead")
    assert replica.health() == (True, {"status": "ok"})
    ready, body = wait_for(lambda: (answer := replica.readiness())[0] and answer, message="r1 to be ready")
    assert body == {"status": "ok", "state": "leading", "leader": True, "epoch": replica.lease.epoch, "eligible": True}

    wait_for(lambda: (sample(replica, "scheduler_firings_delivered_total", schedule="beat") or 0) >= 4,
             message="two ticks of two tenants")
    assert sample(replica, "scheduler_is_leader") == 1
    assert sample(replica, "scheduler_lease_epoch") == store.holder().epoch
    # Read in one scrape: every delivered firing is in the lateness histogram.
    families = {family.name: family for family in replica.metrics.registry.collect()}
    delivered = next(s.value for s in families["scheduler_firings_delivered"].samples if s.labels["schedule"] == "beat")
    observed = next(s.value for s in families["scheduler_firing_lateness_seconds"].samples
                    if s.name.endswith("_count") and s.labels["schedule"] == "beat")
    assert observed == delivered
    wait_for(lambda: sample(replica, "scheduler_pending_firings", queue="default") is not None,
             message="the leader's queue gauges")
    wait_for(lambda: (sample(replica, "scheduler_lease_renewal_seconds_count") or 0) >= 1, message="a renewal")


def test_a_replica_that_is_not_eligible_never_leads_but_watches_who_does(store, replicas, warnings):
    replica = replicas("r1", eligible=False)
    wait_for(lambda: replica.readiness()[0], message="r1 to be ready")
    turn = replica.redis_answered
    wait_for(lambda: replica.redis_answered > turn, message="another lease turn")
    assert store.holder() is None, "the lease was free all along, and r1 left it"
    assert replica.readiness() == (True, {"status": "ok", "state": "standing by, not eligible", "leader": False,
                                          "epoch": 0, "eligible": False})
    assert any("not eligible to lead (SCHEDULER_ELIGIBLE=false)" in line for line in warnings)

    other = Lease(store, "r2", timedelta(seconds=30))
    other.acquire()
    wait_for(lambda: sample(replica, "scheduler_lease_epoch") == other.epoch, message="r1 to see r2 lead")
    other.release()
    wait_for(lambda: any("no replica leads, and this one is not eligible" in line for line in warnings),
             message="r1 to say that nobody leads")
    assert store.holder() is None
    assert sample(replica, "scheduler_is_leader") == 0


def test_readiness_fails_while_redis_does_not_answer(redis_server, replicas):
    replica = replicas()
    wait_for(lambda: replica.readiness()[0], message="r1 to be ready")
    redis_server.pause()
    try:
        ready, body = wait_for(lambda: (answer := replica.readiness()) and not answer[0] and answer, timeout=15,
                               message="r1 not ready")
        assert body["status"] == "unavailable" and body["reason"].startswith("Redis has not answered for ")
    finally:
        redis_server.resume()
    wait_for(lambda: replica.readiness()[0], timeout=30, message="r1 ready again")


def test_health_fails_with_a_reason_while_the_work_loop_is_stuck(replicas, monkeypatch):
    release = threading.Event()
    replica = replicas()
    monkeypatch.setattr(replica.worker, "_wait", lambda seconds: release.wait(30))
    replica.worker.wake.set()
    try:
        healthy, body = wait_for(lambda: (answer := replica.health()) and not answer[0] and answer,
                                 message="the work loop to stall")
        assert body["status"] == "stalled"
        assert body["reason"].startswith("the work loop has made no progress for ")
    finally:
        release.set()
