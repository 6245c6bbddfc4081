from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from loguru import logger

sys.path.insert(0, str(Path(__file__).parent))

from support import make_store  # noqa: E402

from scheduler.store.state import Store  # noqa: E402


@pytest.fixture
def store(redis_client) -> Store:
    """A Store over the test's own redis-server, every key under support.PREFIX."""
    return make_store(redis_client)


@pytest.fixture
def warnings() -> Iterator[list[str]]:
    """The text of every loguru WARNING (and above) logged during the test."""
    messages: list[str] = []
    sink = logger.add(lambda message: messages.append(str(message)), level="WARNING", format="{message}")
    yield messages
    logger.remove(sink)
