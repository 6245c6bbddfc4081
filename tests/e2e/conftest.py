from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from replicas import Cluster  # noqa: E402


@pytest.fixture
def make_cluster(tmp_path, redis_server):
    """Build a Cluster over the test's own redis-server; every replica is stopped afterwards."""
    clusters: list[Cluster] = []

    def make(config: Path, **settings: str) -> Cluster:
        cluster = Cluster(tmp_path, config, redis_server.url, **settings)
        clusters.append(cluster)
        return cluster

    yield make
    for cluster in clusters:
        cluster.stop_all()
