"""Resolving a schedule's tenants: inline and file sets are in the table, Redis sets are read live."""

from __future__ import annotations

from collections.abc import Iterator

import redis
from loguru import logger

from scheduler.store.connection import redis_errors
from scheduler.table import InlineTenants, RedisSetTenants, Schedule, Tenant, TenantSource, all_safe, unsafe_name

SCAN_BATCH = 10_000


def scan_redis_set(client: redis.Redis, key: str, batch: int = SCAN_BATCH) -> Iterator[list[str]]:
    """Stream a Redis set's members as tenant ids, in batches, with SSCAN (a million members never sit
    in one reply).

    SSCAN may return a member twice; the enqueue script's dedup makes that harmless. Members that
    could not be tenant ids are skipped with a warning, never enqueued.
    """
    cursor = 0
    while True:
        with redis_errors(f"reading tenant set {key!r}"):
            cursor, members = client.sscan(key, cursor, count=batch)
        ids = _valid_ids(key, members)
        # COUNT is a hint: a small (intset) set comes back whole, a big one a few over COUNT.
        for start in range(0, len(ids), batch):
            yield ids[start : start + batch]
        if cursor == 0:
            return


class TenantSets:
    """The Redis sets that hold tenants, as the leader reads them: streamed in batches, asked about
    one member, counted. Errors come out as RedisUnavailable (RedisPermissionError for a refusal)."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client

    def batches(self, key: str, size: int = SCAN_BATCH) -> Iterator[list[str]]:
        return scan_redis_set(self.client, key, size)

    def contains(self, key: str, tenant: str) -> bool:
        with redis_errors(f"reading tenant set {key!r}"):
            return bool(self.client.sismember(key, tenant))

    def count(self, key: str) -> int:
        with redis_errors(f"counting tenant set {key!r}"):
            return int(self.client.scard(key))


def _valid_ids(key: str, members: list[bytes]) -> list[str]:
    """The members that are safe tenant ids. A reply whose members are all fine (the usual case) is
    checked in one go, as one string; otherwise member by member, each refusal logged."""
    try:
        ids = [member.decode("utf-8") for member in members]
    except UnicodeDecodeError:
        pass
    else:
        if all_safe(ids):
            return ids
    valid = []
    for member in members:
        try:
            tenant_id = member.decode("utf-8")
        except UnicodeDecodeError:
            logger.warning("redis set {!r}: skipping member {!r}: tenant id is not UTF-8", key, member[:80])
            continue
        reason = unsafe_name(tenant_id)
        if reason:
            logger.warning("redis set {!r}: skipping member {!r}: tenant id {}", key, tenant_id[:80], reason)
            continue
        valid.append(tenant_id)
    return valid


def resolve(source: TenantSource, client: redis.Redis | None) -> list[Tenant] | None:
    """All tenants of a source, or None for a Redis set when no Redis is at hand."""
    if isinstance(source, InlineTenants):
        return list(source.tenants)
    assert isinstance(source, RedisSetTenants)
    if client is None:
        return None
    return [Tenant(tenant_id) for batch in scan_redis_set(client, source.key) for tenant_id in batch]


def tenants_of(schedule: Schedule, client: redis.Redis | None) -> list[Tenant] | None:
    """The schedule's tenants ([] for a schedule without tenants), or None when unresolved."""
    if schedule.tenants is None:
        return []
    return resolve(schedule.tenants, client)
