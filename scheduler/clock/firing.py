"""A firing is (schedule, tenant, tick): the unit that reaches a queue exactly once."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime


def format_tick(instant: datetime) -> str:
    """A tick as it appears in firing ids: ``YYYY-MM-DDTHH:MM:SSZ`` in UTC."""
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def format_instant(instant: datetime) -> str:
    """Any instant in ISO 8601 UTC with ``Z``, to the millisecond: ``2026-11-22T03:04:05.123Z``."""
    utc = instant.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def firing_id(schedule: str, tenant: str, tick: datetime) -> str:
    return f"{schedule}/{tenant}/{format_tick(tick)}"


@dataclass(frozen=True, slots=True)
class Firing:
    schedule: str
    tenant: str
    tick: datetime
    enqueue_at: datetime
    late: bool = False  # handled more than misfire_grace after enqueue_at, and kept by the policy

    @property
    def id(self) -> str:
        return firing_id(self.schedule, self.tenant, self.tick)
