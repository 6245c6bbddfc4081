from __future__ import annotations

import pytest

from redis_server import RedisServer


@pytest.fixture
def redis_server(tmp_path):
    """A fresh redis-server of this test's own, on a free port."""
    (tmp_path / "redis").mkdir()
    server = RedisServer(tmp_path / "redis").start()
    yield server
    server.cleanup()


@pytest.fixture
def redis_client(redis_server):
    client = redis_server.client()
    yield client
    client.close()
