from __future__ import annotations

from collections.abc import Iterator

import pytest
from loguru import logger

from support import make_store

from scheduler.store.state import Store


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


@pytest.fixture
def errors() -> Iterator[list[str]]:
    """The text of every loguru ERROR (and above) logged during the test."""
    messages: list[str] = []
    sink = logger.add(lambda message: messages.append(str(message).rstrip("\n")), level="ERROR", format="{message}")
    yield messages
    logger.remove(sink)
