"""Instants as the scheduler writes them: in firing ids, in messages, and in Redis (milliseconds).

Every instant is an aware UTC datetime; these are the only conversions to and from text and
Redis's integers.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from functools import lru_cache

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
NEVER = datetime.max.replace(tzinfo=UTC)


@lru_cache(maxsize=8192)
def utc_second(epoch_second: int) -> str:
    """Whole seconds since the Unix epoch as ``YYYY-MM-DDTHH:MM:SS`` (UTC), formatted once each."""
    # A tick's firings share a few hundred distinct seconds at most (its jitter window), so
    # formatting each second once keeps a 100,000-tenant tick from calling strftime 100,000 times.
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch_second))


def _since_epoch(instant: datetime) -> tuple[int, int]:
    """Whole seconds and milliseconds since the Unix epoch, exactly (no float rounding)."""
    delta = instant - EPOCH
    return delta.days * 86_400 + delta.seconds, delta.microseconds // 1000


def format_tick(instant: datetime) -> str:
    """A tick as it appears in firing ids: ``YYYY-MM-DDTHH:MM:SSZ`` in UTC."""
    return utc_second(_since_epoch(instant)[0]) + "Z"


def format_instant(instant: datetime) -> str:
    """Any instant in ISO 8601 UTC with ``Z``, to the millisecond: ``2026-11-22T03:04:05.123Z``."""
    seconds, millis = _since_epoch(instant)
    return f"{utc_second(seconds)}.{millis:03d}Z"


def ms_of(instant: datetime) -> int:
    """An instant as whole milliseconds since the Unix epoch, as Redis's keys and scripts hold it."""
    return int(instant.timestamp() * 1000)


def instant_of(ms: int) -> datetime:
    """Milliseconds since the Unix epoch as an instant (UTC)."""
    return datetime.fromtimestamp(ms / 1000, UTC)


def entry_instant(entry_id: bytes | str) -> datetime:
    """When a stream entry was added, by Redis's clock: the first part of its id, in ms."""
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    return instant_of(int(text.partition("-")[0]))


def whole_ms(span: timedelta) -> int:
    """A duration as whole milliseconds, at least 1 (a TTL or a BLOCK of 0 means 'forever' to Redis)."""
    return max(1, int(span.total_seconds() * 1000))
