from __future__ import annotations

import os
from pathlib import Path

import pytest

from replicas import Cluster, scheduler_user_rules

# TESTS_REDIS_ACL_USER=1 runs every replica these fixtures start as a Redis user holding only what
# `scheduler acl` grants (tenant sets under tenants:*, the table's queue keys), and fails a test whose
# Redis logged any ACL refusal: how the ACL was shown to be complete (docs/redis.md).
ACL_USER_MODE = os.environ.get("TESTS_REDIS_ACL_USER") == "1"
ACL_USER, ACL_PASSWORD = "scheduler", "acl-user-pw-never-logged"


@pytest.fixture
def make_cluster(tmp_path, redis_server):
    """Build a Cluster over the test's own redis-server; every replica is stopped afterwards."""
    clusters: list[Cluster] = []

    def make(config: Path, **settings: str) -> Cluster:
        if ACL_USER_MODE:
            redis_server.add_user(ACL_USER, ACL_PASSWORD, scheduler_user_rules(config))
            cluster = Cluster(tmp_path, config, redis_server.url_for(ACL_USER, ACL_PASSWORD),
                              client=redis_server.client(), **settings)
        else:
            cluster = Cluster(tmp_path, config, redis_server.url, **settings)
        clusters.append(cluster)
        return cluster

    yield make
    for cluster in clusters:
        cluster.stop_all()
    if ACL_USER_MODE and redis_server.process is not None:
        refused = [(entry["reason"], entry["context"], entry["object"], entry["username"])
                   for entry in redis_server.acl_log()]
        assert not refused, f"the scheduler's ACL refused: {refused}"
