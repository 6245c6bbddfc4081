"""schedules.toml: loading, validation and the models the rest of the scheduler works from."""

from scheduler.table._load import load_table
from scheduler.table._model import (
    NO_TENANT,
    CatchUp,
    InlineTenants,
    QueueSpec,
    QueueType,
    RedisSetTenants,
    Schedule,
    Table,
    Tenant,
    TenantSource,
    resolve_queue,
)
from scheduler.table._tenants import all_safe, unsafe_name
from scheduler.table._words import parse_zone

__all__ = [
    "NO_TENANT",
    "CatchUp",
    "InlineTenants",
    "QueueSpec",
    "QueueType",
    "RedisSetTenants",
    "Schedule",
    "Table",
    "Tenant",
    "TenantSource",
    "all_safe",
    "load_table",
    "parse_zone",
    "resolve_queue",
    "unsafe_name",
]
