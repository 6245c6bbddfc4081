"""Real `scheduler run` processes serving /metrics, /healthz and /readyz; `scheduler health`
against them; a replica that is not eligible to lead; ECS task scale-in protection against a
stand-in for the ECS agent."""

from __future__ import annotations

import signal
import subprocess
import time

import pytest
from helpers import scheduler_env, write_table
from replicas import SCHEDULER, Cluster, Replica

from redis_server import free_port, wait_for

from ecs_agent import EcsAgent

pytestmark = pytest.mark.e2e

TABLE = """
[queues.remote]
type = "sidekiq"
redis_url = "{remote}"

[[schedule]]
name = "tick"
every = "1s"
tenants = ["acme", "globex", "initech", "umbrella"]
job = "Tick"
jitter = "700ms"

[[schedule]]
name = "beat"
every = "1s"
job = "Beat"

[[schedule]]
name = "export"
every = "1s"
job = "Export"
queue = "remote"
"""
EVERY_SECOND = """
[[schedule]]
name = "beat"
every = "1s"
job = "Beat"
"""


def sample(scrape: dict, name: str, **labels: str) -> float | None:
    return scrape.get((name, tuple(sorted(labels.items()))))


def health(replica: Replica | None, *args: str, port: int | None = None) -> subprocess.CompletedProcess:
    env = scheduler_env()
    env["SCHEDULER_HTTP_PORT"] = str(port if port is not None else replica.http_port)
    return subprocess.run([str(SCHEDULER), "health", *args], env=env, capture_output=True, text=True, timeout=30)


def test_metrics_and_probes_of_a_leader_and_a_standby(tmp_path, make_cluster, redis_server):
    cluster: Cluster = make_cluster(write_table(tmp_path, TABLE.format(remote=redis_server.url.replace("/0", "/1"))))
    first, second = cluster.start("r1"), cluster.start("r2")
    leader = cluster.leader()
    standby = second if leader is first else first
    epoch = cluster.holder()[0]

    # Delivered counts grow; every delivered firing is in the lateness histogram (one scrape).
    early = wait_for(lambda: (m := leader.metrics())
                     and (sample(m, "scheduler_firings_delivered_total", schedule="tick") or 0) >= 8 and m,
                     timeout=20, message="two ticks of 'tick' delivered")
    later = wait_for(lambda: (m := leader.metrics())
                     and sample(m, "scheduler_firings_delivered_total", schedule="tick")
                     > sample(early, "scheduler_firings_delivered_total", schedule="tick")
                     and sample(m, "scheduler_pending_firings", queue="default") is not None
                     and sample(m, "scheduler_outbox_backlog", queue="remote") is not None and m,
                     timeout=20, message="more firings, and the leader's queue gauges")
    for scrape in (early, later):
        for schedule in ("tick", "beat", "export"):
            delivered = sample(scrape, "scheduler_firings_delivered_total", schedule=schedule)
            assert sample(scrape, "scheduler_firing_lateness_seconds_count", schedule=schedule) == delivered
    m = later
    assert sample(m, "scheduler_firings_delivered_total", schedule="beat") >= 2
    assert sample(m, "scheduler_firings_late_total", schedule="tick") == 0
    assert sample(m, "scheduler_firings_deduplicated_total", schedule="tick") == 0
    assert sample(m, "scheduler_firings_skipped_total", schedule="tick", reason="catchup") == 0
    # Sensible lateness, jitter or not: nothing near misfire_grace (the 10 ms target is the bench's,
    # not a test's: two replicas, Redis and pytest share this machine's cores).
    for schedule in ("tick", "beat"):
        within = sample(m, "scheduler_firing_lateness_seconds_bucket", schedule=schedule, le="1.0")
        assert within == sample(m, "scheduler_firing_lateness_seconds_count", schedule=schedule)
        assert sample(m, "scheduler_firing_lateness_seconds_sum", schedule=schedule) >= 0
    last_tick = sample(m, "scheduler_last_tick_timestamp_seconds", schedule="beat", track="beat")
    assert abs(last_tick - time.time()) < 5
    assert sample(m, "scheduler_pending_firings", queue="default") >= 0
    assert sample(m, "scheduler_outbox_backlog", queue="remote") >= 0
    assert 0 <= sample(m, "scheduler_outbox_oldest_age_seconds", queue="remote") < 10
    assert sample(m, "scheduler_lease_renewal_seconds_count") >= 1
    assert sample(m, "scheduler_redis_errors_total", doing="work") == 0

    # Exactly one leader, and both replicas see the lease's epoch.
    assert sample(m, "scheduler_is_leader") == 1 and sample(m, "scheduler_lease_epoch") == epoch
    other = wait_for(lambda: (s := standby.metrics()) and sample(s, "scheduler_lease_epoch") == epoch and s,
                     message="the standby to see the epoch")
    assert sample(other, "scheduler_is_leader") == 0
    assert sample(other, "scheduler_pending_firings", queue="default") is None, "queue gauges: the leader's only"
    assert (sample(other, "scheduler_firings_delivered_total", schedule="tick") or 0) == 0

    # Probes: both healthy and ready, each saying what it is.
    assert leader.probe("/healthz") == (200, {"status": "ok"})
    assert standby.probe("/healthz") == (200, {"status": "ok"})
    assert leader.probe("/readyz") == (200, {"status": "ok", "state": "leading", "leader": True, "epoch": epoch,
                                             "eligible": True})
    assert standby.probe("/readyz") == (200, {"status": "ok", "state": "standing by", "leader": False,
                                              "epoch": epoch, "eligible": True})

    # `scheduler health`: 0 against a running replica, 1 where nothing listens.
    result = health(leader)
    assert (result.returncode, result.stdout) == (0, f"{leader.url}/healthz: ok\n")
    result = health(standby, "--ready")
    assert (result.returncode, result.stdout) == (0, f"{standby.url}/readyz: ok, standing by, epoch {epoch}\n")
    result = health(None, port=free_port())
    assert result.returncode == 1 and result.stdout == ""
    assert "no answer" in result.stderr and result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


def test_a_sigterm_closes_the_endpoints_with_the_replica(tmp_path, make_cluster):
    cluster = make_cluster(write_table(tmp_path, EVERY_SECOND))
    replica = cluster.start("r1")
    wait_for(lambda: replica.probe("/readyz")[0] == 200, message="r1 ready")
    replica.signal(signal.SIGTERM)
    assert replica.wait() == 0
    assert replica.get("/healthz")[0] == 0, "nothing listens once the replica is gone"
    assert "serving /metrics, /healthz and /readyz on http://127.0.0.1:" in replica.output()


def test_a_port_in_use_is_one_line_and_exit_1(tmp_path, make_cluster):
    cluster = make_cluster(write_table(tmp_path, EVERY_SECOND))
    first = cluster.start("r1")
    wait_for(lambda: first.probe("/healthz")[0] == 200, message="r1 serving")
    second = Replica("r2", cluster.config, cluster.redis_url, tmp_path / "r2.log", dict(cluster.settings),
                     http_port=first.http_port)
    cluster.replicas["r2"] = second.start()
    assert second.wait(20) == 1
    output = second.output()
    assert f"scheduler run: cannot serve /metrics, /healthz and /readyz on 127.0.0.1:{first.http_port}: " in output
    assert "Traceback" not in output
    assert "r2" not in (cluster.holder() or (0, ""))[1], "it never led"


def test_a_replica_that_is_not_eligible_never_leads_and_says_why(tmp_path, make_cluster):
    cluster = make_cluster(write_table(tmp_path, EVERY_SECOND))
    eligible = cluster.start("r1")
    cluster.leader()
    bystander = Replica("r2", cluster.config, cluster.redis_url, tmp_path / "r2.log",
                        {**cluster.settings, "SCHEDULER_ELIGIBLE": "false"})
    cluster.replicas["r2"] = bystander.start()
    wait_for(lambda: bystander.probe("/readyz")[0] == 200, message="r2 ready")
    status, body = bystander.probe("/readyz")
    assert body["state"] == "standing by, not eligible" and body["eligible"] is False
    assert "not eligible to lead (SCHEDULER_ELIGIBLE=false)" in bystander.output()

    wait_for(lambda: len(cluster.stream()) >= 2, message="firings from r1")
    eligible.signal(signal.SIGTERM)
    assert eligible.wait() == 0
    wait_for(lambda: "no replica leads, and this one is not eligible" in bystander.output(),
             message="r2 to say why no firings go out")
    count = len(cluster.stream())
    # Several lease TTLs (2 s each) and retry intervals (0.2 s): r2 never takes the lease, nothing is sent.
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        assert cluster.holder() is None
        assert len(cluster.stream()) == count
        time.sleep(0.1)
    assert bystander.probe("/readyz")[0] == 200, "standing by is ready: it serves, it just never leads"
    assert bystander.alive


def test_ecs_task_protection_follows_the_lease(tmp_path, make_cluster):
    agents = {name: EcsAgent().start() for name in ("r1", "r2")}
    try:
        cluster = make_cluster(write_table(tmp_path, EVERY_SECOND), SCHEDULER_ECS_TASK_PROTECTION="true")
        for name, agent in agents.items():
            replica = Replica(name, cluster.config, cluster.redis_url, tmp_path / f"{name}.log",
                              {**cluster.settings, "ECS_AGENT_URI": agent.uri})
            cluster.replicas[name] = replica.start()
        leader = cluster.leader()
        standby = next(r for r in cluster.replicas.values() if r is not leader)
        wait_for(lambda: agents[leader.name].states()[-1:] == [True], message="the leader's task protected")
        first = agents[leader.name].requests[-1]
        assert first.body == {"ProtectionEnabled": True, "ExpiresInMinutes": 60}
        assert first.path.endswith("/task-protection/v1/state")
        assert True not in agents[standby.name].states(), "a standby's task is never protected"

        leader.signal(signal.SIGTERM)  # a deploy or a scale-in: hand over, and lift the protection
        assert leader.wait() == 0
        assert agents[leader.name].states()[-1] is False
        cluster.leader(other_than=leader.name)
        wait_for(lambda: agents[standby.name].states()[-1:] == [True], message="the new leader's task protected")
        assert "ECS task scale-in protection on while leading" in standby.output()
    finally:
        for agent in agents.values():
            agent.stop()


def test_a_failing_ecs_agent_is_a_warning_and_leadership_goes_on(tmp_path, make_cluster):
    agent = EcsAgent().start()
    agent.answer = (400, {"failure": {"Arn": "arn", "Reason": "TASK_NOT_VALID", "Detail": None}})
    try:
        cluster = make_cluster(write_table(tmp_path, EVERY_SECOND), SCHEDULER_ECS_TASK_PROTECTION="true",
                               ECS_AGENT_URI=agent.uri)
        replica = cluster.start("r1")
        cluster.leader()
        wait_for(lambda: "could not turn on ECS task scale-in protection: the ECS agent refused: TASK_NOT_VALID"
                 in replica.output(), message="the warning")
        wait_for(lambda: len(cluster.stream()) >= 3, message="firings all the same")
        assert cluster.holder()[1] == "r1"
    finally:
        agent.stop()
