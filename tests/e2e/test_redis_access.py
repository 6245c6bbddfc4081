"""Real `scheduler run` replicas against Redis as ElastiCache serves it: TLS only, a private CA
(SCHEDULER_REDIS_CA_FILE), and a user holding nothing but the ACL `scheduler acl` prints.

* The main paths (a jittered schedule, a Redis tenant set, Sidekiq and Celery queues in the
  scheduler's Redis, a Sidekiq Redis of its own fed by the relay, reload, SIGTERM hand-over, SIGKILL
  failover, validate and dry-run) run with Redis's ACL LOG empty: the ACL is complete.
* A certificate the replica cannot trust (no CA given; another host's) is one clear line, retried,
  and the replica never leads.
* A user lacking one permission gets one clear line naming what Redis refused and pointing at
  `scheduler acl`, no traceback, and nothing enqueued; a leader whose work is refused steps down.
"""

from __future__ import annotations

import signal
import subprocess
from collections import Counter
from pathlib import Path

import pytest
from helpers import queue_entries, scheduler_env, write_table
from replicas import PREFIX, SCHEDULER, Cluster
from replicas import scheduler_user_rules as rules

from redis_server import RedisServer, wait_for
from scheduler.acl import render
from tls_certs import CertificateAuthority

pytestmark = pytest.mark.e2e
USER, PASSWORD = "scheduler", "Tls-acl-pw-7Qz2-never-print-me"
FEW = ["acme", "globex", "initech"]
TABLE = f"""
[tenants]
active = {{ redis_set = "tenants:active" }}
few = {FEW!r}

{queue_entries("reports", "billing")}
[queues.remote]
type = "sidekiq"
redis_url_env = "SIDEKIQ_REDIS_URL"

[[schedule]]
name = "spread"
every = "2s"
jitter = "1500ms"
tenants = "few"
job = "Spread"

[[schedule]]
name = "fromset"
every = "1s"
tenants = "active"
job = "Report"
queue = "reports"

[[schedule]]
name = "bill"
every = "1s"
tenants = "few"
job = "Bill"
queue = "billing"

[[schedule]]
name = "far"
every = "1s"
tenants = "few"
job = "Far"
queue = "remote"
"""
ADDED = '\n[[schedule]]\nname = "added"\nevery = "1s"\njob = "Added"\n'


@pytest.fixture
def ca(tmp_path) -> CertificateAuthority:
    return CertificateAuthority(tmp_path / "tls")


@pytest.fixture
def servers(tmp_path):
    """Start TLS redis-servers (each stopped afterwards)."""
    started: list[RedisServer] = []

    def start(name: str, tls) -> RedisServer:
        started.append(RedisServer(tmp_path / name, tls=tls).start())
        return started[-1]

    yield start
    for server in started:
        server.cleanup()


def refusals(server: RedisServer) -> list[tuple[str, str, str, str]]:
    return [(e["reason"], e["context"], e["object"], e["username"]) for e in server.acl_log()]


def run_cli(*arguments: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    clean = scheduler_env()
    return subprocess.run([str(SCHEDULER), *arguments], env={**clean, **env}, cwd=cwd, capture_output=True,
                          text=True, timeout=30)


def test_over_tls_as_the_acl_user_the_main_paths_leave_the_acl_log_empty(tmp_path, ca, servers):
    config = write_table(tmp_path, TABLE)
    main = servers("redis", ca.server("redis"))
    target = servers("sidekiq-redis", ca.server("sidekiq-redis"))
    for server in (main, target):
        server.add_user(USER, PASSWORD, rules(config))
    admin, target_admin = main.client(), target.client()
    admin.sadd("tenants:active", "t1", "t2", "t3")
    settings = {"SCHEDULER_REDIS_CA_FILE": str(ca.path), "SIDEKIQ_REDIS_URL": target.url_for(USER, PASSWORD)}
    cluster = Cluster(tmp_path, config, main.url_for(USER, PASSWORD), client=admin, **settings)
    try:
        cluster.start("r1")
        cluster.settings["SCHEDULER_LOG_JSON"] = "true"  # r2 and r3 log JSON lines
        cluster.start("r2")
        cluster.start("r3")
        first = cluster.leader()
        wait_for(lambda: cluster.pending() > 0, timeout=15, message="firings waiting out their jitter")
        wait_for(lambda: admin.llen("queue:reports") >= 6 and admin.llen("billing-tasks") >= 6
                 and target_admin.llen("queue:remote") >= 6, timeout=15, message="every queue fed")

        config.write_text(TABLE + ADDED)  # reload: seen by every replica within the reload interval
        first.signal(signal.SIGHUP)
        wait_for(lambda: any(m["schedule"] == "added" for m in cluster.stream()), message="the added schedule")

        first.signal(signal.SIGTERM)  # hand-over
        second = cluster.leader(timeout=5, other_than=first.name)
        assert first.wait(5) == 0
        before = admin.llen("queue:reports")
        wait_for(lambda: admin.llen("queue:reports") >= before + 6, message=f"{second.name} delivering")

        second.signal(signal.SIGKILL)  # failover: the lease expires, the third takes it
        second.wait(5)
        third = cluster.leader(timeout=10, other_than=second.name)
        before = target_admin.llen("queue:remote"), cluster.client.xlen(f"{PREFIX}:queue:default")
        wait_for(lambda: target_admin.llen("queue:remote") >= before[0] + 6
                 and cluster.client.xlen(f"{PREFIX}:queue:default") >= before[1] + 6, timeout=15,
                 message=f"{third.name} delivering to the relay and the stream")

        env = {"SCHEDULER_REDIS_URL": main.url_for(USER, PASSWORD), "SCHEDULER_REDIS_CA_FILE": str(ca.path)}
        validated = run_cli("validate", env=env, cwd=tmp_path)
        assert validated.returncode == 0 and ", 6 tenants, " in validated.stdout, validated.stdout + validated.stderr
        previewed = run_cli("dry-run", "--schedule", "fromset", "--count", "3", "--format", "jsonl", env=env,
                            cwd=tmp_path)
        assert previewed.returncode == 0 and len(previewed.stdout.splitlines()) == 3, previewed.stderr
    finally:
        cluster.stop_all()

    assert refusals(main) == [] and refusals(target) == []
    spread = Counter(m["firing_id"] for m in cluster.stream() if m["schedule"] == "spread")
    assert spread and max(spread.values()) == 1, "each jittered firing once through hand-over and failover"
    assert {m["epoch"] for m in cluster.stream()} >= {"1", "2", "3"}, "three leaders delivered"
    for replica in cluster.replicas.values():
        output = replica.log.read_text()
        assert PASSWORD not in output
        assert "Traceback" not in output and "lack of permission" not in output and "TLS" not in output
    admin.close()
    target_admin.close()


# -- certificates the replica cannot trust --------------------------------------------------------


def lines_with(text: str, fragment: str) -> list[str]:
    return [line for line in text.splitlines() if fragment in line]


def handshakes_refused(server: RedisServer) -> int:
    """TLS handshakes the server saw fail (it logs each: "Error accepting a client connection: ...")."""
    log = server.directory / "redis.log"
    return log.read_text(errors="replace").count("Error accepting a client connection") if log.exists() else 0


@pytest.mark.parametrize("case", ["no-ca", "other-host"])
def test_a_certificate_the_replica_cannot_trust_is_one_clear_line_and_it_never_leads(tmp_path, ca, servers, case):
    if case == "no-ca":  # the private CA is not given: the server's chain ends in an unknown root
        server, settings = servers("redis", ca.server("redis")), {}
        why = "certificate verify failed: self"
    else:  # the CA is given, but the certificate names another host
        server = servers("redis", ca.server("other", ("redis.example.com",)))
        settings = {"SCHEDULER_REDIS_CA_FILE": str(ca.path)}
        why = "certificate verify failed: IP address mismatch, certificate is not valid for '127.0.0.1'"
    server.add_user(USER, PASSWORD, rules(write_table(tmp_path, TABLE)))
    cluster = Cluster(tmp_path, tmp_path / "schedules.toml", server.url_for(USER, PASSWORD), client=server.client(),
                      **settings)
    try:
        replica = cluster.start("r1")
        wait_for(lambda: "certificate verify failed" in replica.output(), message="the TLS refusal")
        tried = handshakes_refused(server)
        wait_for(lambda: handshakes_refused(server) >= tried + 2, timeout=15, message="the replica to try again, twice")
        assert replica.alive
    finally:
        cluster.stop_all()
    output = replica.output()
    [line] = lines_with(output, "certificate verify failed")
    assert (f"Redis is unreachable (reading Redis's memory settings: TLS handshake with "
            f"rediss://{USER}:***@127.0.0.1:{server.port}/0 failed: {why}") in line
    assert line.endswith("); retrying with backoff")
    assert "Traceback" not in output and PASSWORD not in output
    assert "acquired the lease" not in output and cluster.holder() is None


# -- a missing permission ---------------------------------------------------------------------------


SIDEKIQ_ONLY = f"""
{queue_entries("reports")}
[[schedule]]
name = "report"
every = "1s"
tenants = {FEW!r}
job = "Report"
queue = "reports"
"""
STREAM_ONLY = f"""
[[schedule]]
name = "tick"
every = "1s"
tenants = {FEW!r}
job = "Tick"
"""


def acl_log_count(server: RedisServer, refused: str) -> int:
    return sum(entry["count"] for entry in server.acl_log() if entry["object"] == refused)


@pytest.mark.parametrize("removed, refused, while_doing, message", [
    ("-info", "info", "reading Redis's memory settings", "NOPERM this user has no permissions to run the 'info' command"),
    ("-evalsha", "evalsha", "taking the lease", "NOPERM this user has no permissions to run the 'evalsha' command"),
])
def test_a_user_that_may_not_run_a_command_the_lease_needs_never_leads(tmp_path, servers, removed, refused,
                                                                       while_doing, message):
    server = servers("redis", None)
    config = write_table(tmp_path, STREAM_ONLY)
    # The line for a table of streams only (no selectors: a selector's +evalsha would still allow it).
    server.add_user(USER, PASSWORD, [*render(PREFIX).rules(), removed])
    cluster = Cluster(tmp_path, config, server.url_for(USER, PASSWORD), client=server.client())
    try:
        replica = cluster.start("r1")
        wait_for(lambda: "lack of permission" in replica.output(), message="the refusal")
        wait_for(lambda: acl_log_count(server, refused) >= 3, timeout=15, message="the replica to try again")
        assert replica.alive
    finally:
        cluster.stop_all()
    output = replica.output()
    assert lines_with(output, "lack of permission") == lines_with(output, "ERROR")
    [line] = lines_with(output, "lack of permission")
    assert line.endswith(f"Redis refused a command for lack of permission while {while_doing} ({message}): "
                         "the scheduler's Redis user needs the ACL printed by `scheduler acl`")
    assert "Traceback" not in output and "acquired the lease" not in output
    assert cluster.holder() is None and not server.client().keys(f"{PREFIX}:queue:*")


@pytest.mark.parametrize("case", ["queue-keys", "in-script"])
def test_a_leader_whose_work_is_refused_says_what_and_steps_down_for_a_replica_that_may(tmp_path, servers, case):
    server = servers("redis", None)
    if case == "queue-keys":  # the line printed without --queue-keys: Sidekiq's keys are missing
        config = write_table(tmp_path, SIDEKIQ_ONLY)
        limited = render(PREFIX).rules()
        message = "(NOPERM this user has no permissions to access one of the keys used as arguments)"
        enqueued = lambda: admin.llen("queue:reports")  # noqa: E731
    else:  # XADD taken away: the enqueue script's own call to it is refused
        config = write_table(tmp_path, STREAM_ONLY)
        limited = [*rules(config), "-xadd"]
        message = "(NOPERM the script's XADD (line "
        enqueued = lambda: admin.xlen(f"{PREFIX}:queue:default")  # noqa: E731
    server.add_user("limited", PASSWORD, limited)
    server.add_user(USER, PASSWORD, rules(config))
    admin = server.client()
    refused = Cluster(tmp_path, config, server.url_for("limited", PASSWORD), client=admin)
    allowed = Cluster(tmp_path, config, server.url_for(USER, PASSWORD), client=admin)
    try:
        r1 = refused.start("r1")
        wait_for(lambda: "giving the lease up" in r1.output(), message="r1 to step down")
        wait_for(lambda: refused.holder() is None, message="the lease released at once")
        assert enqueued() == 0
        allowed.start("r2")
        allowed.leader(timeout=5)
        wait_for(lambda: enqueued() >= 6, message="r2 delivering")
        assert r1.alive
    finally:
        refused.stop_all()
        allowed.stop_all()
    output = r1.output()
    [line] = lines_with(output, "lack of permission while")
    # Which write is refused first (a pending firing's delivery, a tick's enqueue or its finishing)
    # depends on how the pass goes; what was refused does not.
    assert message in line
    assert line.endswith("the scheduler's Redis user needs the ACL printed by `scheduler acl`")
    [gave_up] = lines_with(output, "giving the lease up")
    assert "Redis refuses the leader's work for lack of permission (NOPERM" in gave_up
    assert output.count("acquired the lease") == 1, "r1 leaves the lease to the others a while"
    assert "Traceback" not in output and PASSWORD not in output
    admin.close()
