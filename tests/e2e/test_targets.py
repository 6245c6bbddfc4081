"""Each queue type with its real consumer: real replicas go through a leader failover (SIGKILL),
and the real worker program performs every firing exactly once (at least once, deduplicated by the
firing id, where docs/queues.md says so)."""

from __future__ import annotations

from collections import Counter

import pytest
from replicas import write_table
from targets import owed, run_through_failover

from redis_server import wait_for
from workers.sidekiq import INSTALL_HINT as SIDEKIQ_HINT, SIDEKIQ, SidekiqWorker, performed

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
