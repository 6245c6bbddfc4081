"""Each queue type with its real consumer: real replicas go through a leader failover (SIGKILL),
and the real worker program performs every firing exactly once (at least once, deduplicated by the
firing id, where docs/queues.md says so)."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import signal
import uuid
from collections import Counter

import pytest
import redis
from faults.proxy import Proxy
from helpers import write_table
from replicas import PREFIX, Cluster
from failover import owed, relay_leftovers, run_through_failover, wait_for_ticks

from redis_server import RedisServer, wait_for
from workers.sidekiq import INSTALL_HINT as SIDEKIQ_HINT, SIDEKIQ, SidekiqWorker, performed

CELERY = importlib.util.find_spec("celery") is not None
if CELERY:
    from workers.celery_worker import CeleryWorker, performed as celery_performed
MOTO = all(importlib.util.find_spec(name) for name in ("boto3", "moto", "flask"))
if MOTO:
    from workers.sqs import REGION as SQS_REGION, SqsServer

pytestmark = pytest.mark.e2e
TENANTS = ["acme", "globex", "initech"]


def every_second(queues: str, *schedules: tuple[str, str, str]) -> str:
    """A table with ``queues`` and one every-second schedule per (name, job, queue) over TENANTS."""
    text = queues + f"\n[tenants]\nfew = {TENANTS!r}\n"
    for name, job, queue in schedules:
        text += (f'\n[[schedule]]\nname = "{name}"\nevery = "1s"\ntenants = "few"\njob = "{job}"\n'
                 f'queue = "{queue}"\nargs = {{ kind = "daily", ids = [] }}\n')
    return text


def assert_exactly_once(ids: list[str], expected: set[str]) -> None:
    doubled = sorted(firing for firing, n in Counter(ids).items() if n > 1)
    assert not doubled, f"performed more than once: {doubled[:10]}"
    assert set(ids) == expected, f"missing: {sorted(expected - set(ids))[:10]}, unexpected: {sorted(set(ids) - expected)[:10]}"


@pytest.mark.skipif(SIDEKIQ is None, reason=f"sidekiq is not installed ({SIDEKIQ_HINT})")
def test_sidekiq_performs_every_firing_once_through_a_failover_plain_and_active_job(tmp_path, make_cluster, redis_server):
    table = every_second("""
[queues.reports]
type = "sidekiq"

[queues.rails]
type = "sidekiq"
queue = "mailers"
active_job = true
""", ("plain", "RecordJob", "reports"), ("wrapped", "RecordActiveJob", "rails"))
    cluster = make_cluster(write_table(tmp_path, table))
    with SidekiqWorker(redis_server.url, tmp_path / "sidekiq", queues=("reports", "mailers")) as worker:
        run_through_failover(cluster, "plain")
        expected = owed(cluster, "plain", TENANTS) | owed(cluster, "wrapped", TENANTS)
        wait_for(lambda: len(performed(cluster.client)) >= len(expected), timeout=30,
                 message=f"sidekiq to perform {len(expected)} jobs")
        worker.stop()
    records = performed(cluster.client)
    assert_exactly_once([record["firing"]["firing_id"] for record in records], expected)
    assert cluster.client.llen("queue:reports") == cluster.client.llen("queue:mailers") == 0
    assert int(cluster.client.get("stat:failed") or 0) == 0
    plain = next(record for record in records if record["class"] == "RecordJob")
    assert plain["firing"]["args"] == {"kind": "daily", "ids": []} and plain["firing"]["late"] is False
    wrapped = next(record for record in records if record["class"] == "RecordActiveJob")
    assert wrapped["indifferent"] is True, "a Rails job reads firing[:tenant] and firing['tenant'] alike"
    assert {record["firing"]["epoch"] for record in records} >= {1, 2}, "both leaders delivered"



@pytest.mark.skipif(SIDEKIQ is None, reason=f"sidekiq is not installed ({SIDEKIQ_HINT})")
def test_sidekiq_in_a_redis_of_its_own_gets_every_firing_once_through_the_relay(tmp_path, make_cluster):
    """Sidekiq's Redis is another server, with a password, named by an environment variable: the relay
    feeds it through a failover, its markers keep a batch sent twice from being performed twice, and
    the password never shows in any replica's output."""
    password = "s3cret-sidekiq-pw"
    other = RedisServer(tmp_path / "sidekiq-redis", options=("--requirepass", password)).start()
    try:
        url = f"redis://:{password}@127.0.0.1:{other.port}/0"
        queues = '[queues.reports]\ntype = "sidekiq"\nredis_url_env = "SIDEKIQ_REDIS_URL"\n'
        table = every_second(queues, ("plain", "RecordJob", "reports"))
        cluster = make_cluster(write_table(tmp_path, table), SIDEKIQ_REDIS_URL=url)
        sidekiq_redis = redis.Redis.from_url(url)
        with SidekiqWorker(url, tmp_path / "sidekiq", queues=("reports",)) as worker:
            run_through_failover(cluster, "plain")
            expected = owed(cluster, "plain", TENANTS)
            relay_leftovers(cluster, queues, ["reports"])
            wait_for(lambda: len(performed(sidekiq_redis)) >= len(expected), timeout=30,
                     message=f"sidekiq to perform {len(expected)} jobs")
            worker.stop()
        assert_exactly_once([record["firing"]["firing_id"] for record in performed(sidekiq_redis)], expected)
        assert not cluster.client.exists("queue:reports"), "nothing went to the scheduler's own Redis"
        assert cluster.client.xlen(f"{PREFIX}:outbox:reports") == 0
        for replica in cluster.replicas.values():
            assert password not in replica.log.read_text()
        sidekiq_redis.close()
    finally:
        other.cleanup()



@pytest.mark.skipif(not CELERY, reason="celery is not installed (pip install -e '.[dev]')")
def test_a_celery_worker_runs_every_firing_once_through_a_failover(tmp_path, make_cluster, redis_server):
    table = every_second('[queues.billing]\ntype = "celery"\nqueue = "billing-tasks"\n',
                         ("bill", "RecordTask", "billing"))
    cluster = make_cluster(write_table(tmp_path, table))
    with CeleryWorker(redis_server.url, tmp_path / "celery", queues=("billing-tasks",)) as worker:
        run_through_failover(cluster, "bill")
        expected = owed(cluster, "bill", TENANTS)
        wait_for(lambda: len(celery_performed(cluster.client)) >= len(expected), timeout=30,
                 message=f"celery to run {len(expected)} tasks")
        worker.stop()
    records = celery_performed(cluster.client)
    assert_exactly_once([record["firing"]["firing_id"] for record in records], expected)
    assert all(record["id"] == str(uuid.uuid5(uuid.NAMESPACE_URL, record["firing"]["firing_id"])) for record in records)
    assert records[0]["firing"]["args"] == {"kind": "daily", "ids": []} and records[0]["firing"]["late"] is False
    assert cluster.client.llen("billing-tasks") == 0 and not cluster.client.hlen("unacked")
    assert "ERROR" not in worker.log()


# What a replica needs to reach the local SQS: credentials to sign with (moto checks none).
AWS_TESTING = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


def outbox_xdel(queue: str):
    """A request matcher: the relay's XDEL on ``queue``'s outbox (what follows a successful send)."""
    return lambda request: request[0].upper() == b"XDEL" and request[1].endswith(f":outbox:{queue}".encode())


@pytest.mark.skipif(not MOTO, reason="boto3 and moto[server] are not installed (pip install -e '.[dev]')")
def test_sqs_through_the_outbox_the_relay_killed_between_send_and_removal(tmp_path, redis_server):
    """Each leader in turn is SIGKILLed right after the target accepted a batch and before the outbox
    forgot it: the next leader sends that batch again. The FIFO queue drops the copies (its dedup id);
    the standard queue holds each firing of that batch twice, and every other firing once."""
    with SqsServer(tmp_path / "sqs") as sqs, Proxy(redis_server.port) as proxy:
        fifo, standard = sqs.create_queue("exports.fifo", fifo=True), sqs.create_queue("audit", fifo=False)
        queues = f"""
[queues.exports]
type = "sqs"
url = "{fifo}"
region = "{SQS_REGION}"

[queues.audit]
type = "sqs"
url = "{standard}"
region = "{SQS_REGION}"
"""
        table = every_second(queues, ("export", "ExportJob", "exports"), ("audit", "AuditJob", "audit"))
        cluster = Cluster(tmp_path, write_table(tmp_path, table), proxy.url, **AWS_TESTING)
        try:
            cluster.start("r1")
            cluster.start("r2")
            batches = {}
            for queue in ("audit", "exports"):
                leader = cluster.leader()
                wait_for_ticks(cluster, "export", 2)
                fault = proxy.refuse(outbox_xdel(queue))
                assert fault.wait(15), f"no relay send to {queue}"
                leader.signal(signal.SIGKILL)
                leader.wait(10)
                batches[queue] = len(fault.matched[0]) - 2  # XDEL key id...: the firings sent again
                cluster.leader(timeout=15, other_than=leader.name)
                cluster.start(leader.name)
            wait_for_ticks(cluster, "export", 2)
            cluster.stop_all()
            expected_exports, expected_audit = owed(cluster, "export", TENANTS), owed(cluster, "audit", TENANTS)
            relay_leftovers(cluster, queues, ["audit", "exports"])
            exports, audit = sqs.drain(fifo), sqs.drain(standard)
        finally:
            cluster.stop_all()

    assert_exactly_once([json.loads(m["Body"])["firing_id"] for m in exports], expected_exports)
    for message in exports:
        body = json.loads(message["Body"])
        assert message["MessageGroupId"] == body["tenant"]
        assert message["MessageDeduplicationId"] == hashlib.sha256(body["firing_id"].encode()).hexdigest()
    audit_ids = Counter(json.loads(m["Body"])["firing_id"] for m in audit)
    assert set(audit_ids) == expected_audit, "nothing lost"
    assert max(audit_ids.values()) == 2
    assert sum(n - 1 for n in audit_ids.values()) == batches["audit"], "copies only of the batch sent again"
    body = json.loads(exports[0]["Body"])
    assert set(body) == {"firing_id", "schedule", "tenant", "tick", "enqueue_at", "job", "queue", "args", "late", "epoch"}
    assert body["args"] == {"kind": "daily", "ids": []} and body["job"] == "ExportJob"
