"""A firing is (schedule, tenant, tick): the unit that reaches a queue exactly once."""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

from scheduler.clock.instants import format_tick


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
