"""The validated table: what schedules.toml says once every field has been checked and parsed."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from scheduler.clock.cadence import Cadence

UTC_ZONE = ZoneInfo("UTC")
NO_TENANT = "-"  # the tenant of a firing whose schedule has no tenants (docs/guarantees.md, "Words")


class CatchUp(StrEnum):
    ALL = "all"
    LATEST = "latest"
    NONE = "none"


class Tenant(NamedTuple):
    id: str
    zone: ZoneInfo | None = None


@dataclass(frozen=True)
class InlineTenants:
    """Tenant ids written in the table, or read from a file next to it when the table is loaded."""

    tenants: tuple[Tenant, ...]
    name: str | None = None
    file: Path | None = None

    def describe(self) -> str:
        source = f"file {self.file.name}" if self.file else "inline"
        label = f"set {self.name!r} ({source})" if self.name else source
        return f"{len(self.tenants)} tenants, {label}"


@dataclass(frozen=True)
class RedisSetTenants:
    """Tenant ids kept in a Redis set, read when each tick is handled."""

    key: str
    name: str

    def describe(self) -> str:
        return f"set {self.name!r} (redis set {self.key!r})"


TenantSource = InlineTenants | RedisSetTenants


@dataclass(frozen=True)
class Schedule:
    name: str
    cadence: Cadence
    zone: ZoneInfo | None  # None: each tenant's own zone ("timezone = 'tenant'")
    default_zone: ZoneInfo  # for tenants that carry no zone of their own
    tenants: TenantSource | None
    job: str
    queue: str
    args: dict[str, Any] = field(default_factory=dict)
    jitter: timedelta = timedelta(0)
    catchup: CatchUp = CatchUp.LATEST
    catchup_window: timedelta = timedelta(hours=24)
    misfire_grace: timedelta = timedelta(seconds=60)

    @property
    def per_tenant_zone(self) -> bool:
        return self.zone is None

    def zone_of(self, tenant: Tenant) -> ZoneInfo:
        return self.zone or tenant.zone or self.default_zone

    @property
    def args_json(self) -> str:
        return json.dumps(self.args, sort_keys=True, separators=(",", ":"))


@dataclass(frozen=True)
class Table:
    path: Path
    schedules: tuple[Schedule, ...]
    tenant_sets: dict[str, TenantSource]
    fingerprint: str  # content hash of the table and the tenant files it read

    def schedule(self, name: str) -> Schedule:
        for schedule in self.schedules:
            if schedule.name == name:
                return schedule
        raise KeyError(name)
