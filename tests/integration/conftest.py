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


def _captured(level: str, form: str) -> Iterator[list[str]]:
    """Every loguru line of ``level`` and above logged while the fixture lives, formatted as ``form``."""
    lines: list[str] = []
    sink = logger.add(lambda line: lines.append(str(line).rstrip("\n")), level=level, format=form)
    yield lines
    logger.remove(sink)


@pytest.fixture
def warnings() -> Iterator[list[str]]:
    """The text of every loguru WARNING (and above) logged during the test."""
    yield from _captured("WARNING", "{message}")


@pytest.fixture
def errors() -> Iterator[list[str]]:
    """The text of every loguru ERROR (and above) logged during the test."""
    yield from _captured("ERROR", "{message}")


@pytest.fixture
def logs() -> Iterator[list[str]]:
    """Every loguru line of INFO and above logged during the test, as "LEVEL message"."""
    yield from _captured("INFO", "{level} {message}")
