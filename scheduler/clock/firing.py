"""A firing is (schedule, tenant, tick): the unit that reaches a queue exactly once."""

from __future__ import annotations

import time
from datetime import datetime
from functools import lru_cache
from typing import NamedTuple

from scheduler.clock.cadence import EPOCH


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


def firing_id(schedule: str, tenant: str, tick: datetime) -> str:
    return f"{schedule}/{tenant}/{format_tick(tick)}"


class Firing(NamedTuple):
    """A tuple, because a tick of 100,000 tenants builds 100,000 of them (a frozen dataclass takes
    three times as long to make)."""

    schedule: str
    tenant: str
    tick: datetime
    enqueue_at: datetime
    late: bool = False  # handled more than misfire_grace after enqueue_at, and kept by the policy

    @property
    def id(self) -> str:
        return firing_id(self.schedule, self.tenant, self.tick)
