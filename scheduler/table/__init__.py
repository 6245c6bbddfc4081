"""schedules.toml: loading, validation and the models the rest of the scheduler works from."""

from scheduler.table._load import all_safe, load_table, parse_zone, unsafe_name
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
