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


class QueueType(StrEnum):
    REDIS_STREAM = "redis-stream"
    SIDEKIQ = "sidekiq"
    CELERY = "celery"
    SQS = "sqs"


@dataclass(frozen=True)
class QueueSpec:
    """One ``[queues.NAME]`` entry: where the firings of schedules with ``queue = NAME`` go.

    ``name`` is the worker-side name (the stream key, Sidekiq's or Celery's queue) when the entry
    gives one, else None: the schedule's own queue name is used. A Sidekiq or Celery target with
    ``redis_url`` or ``redis_url_env`` lives in another Redis and is fed through the outbox.
    """

    entry: str
    type: QueueType = QueueType.REDIS_STREAM
    name: str | None = None
    redis_url: str | None = None
    redis_url_env: str | None = None
    active_job: bool = False
    retry: bool | int = True
    url: str | None = None  # sqs
    region: str | None = None  # sqs
    endpoint: str | None = None  # sqs: where to send, when not the queue URL's own host

    @property
    def remote(self) -> bool:
        """Whether the target lives outside the scheduler's Redis (fed from the outbox by a relay)."""
        return self.type is QueueType.SQS or bool(self.redis_url or self.redis_url_env)


DEFAULT_QUEUE = QueueSpec("default")


def resolve_queue(queues: dict[str, QueueSpec], name: str) -> QueueSpec:
    """The entry a schedule's ``queue = name`` uses: its own, else [queues.default], else a stream."""
    return queues.get(name) or queues.get("default") or DEFAULT_QUEUE


@dataclass(frozen=True)
class Table:
    path: Path
    schedules: tuple[Schedule, ...]
    tenant_sets: dict[str, TenantSource]
    fingerprint: str  # content hash of the table and the tenant files it read
    queues: dict[str, QueueSpec] = field(default_factory=dict)

    def queue(self, name: str) -> QueueSpec:
        return resolve_queue(self.queues, name)

    def schedule(self, name: str) -> Schedule:
        for schedule in self.schedules:
            if schedule.name == name:
                return schedule
        raise KeyError(name)
