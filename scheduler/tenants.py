"""Resolving a schedule's tenants: inline and file sets are in the table, Redis sets are read live."""

from __future__ import annotations

from collections.abc import Iterator

import redis
from loguru import logger

from scheduler.store.connection import redis_errors
from scheduler.table import InlineTenants, RedisSetTenants, Schedule, Tenant, TenantSource, all_safe, unsafe_name

SCAN_BATCH = 10_000
EXAMPLES = 3  # skipped members a scan's warning shows, each for a reason of its own
SHOWN = 32  # characters (bytes, for a member that is not UTF-8) of each one shown


def scan_redis_set(client: redis.Redis, key: str, batch: int = SCAN_BATCH) -> Iterator[list[str]]:
    """Stream a Redis set's members as tenant ids, in batches, with SSCAN (a million members never sit
    in one reply).

    SSCAN may return a member twice; the enqueue script's dedup makes that harmless. Members that
    could not be tenant ids are skipped, never enqueued, and told in one warning per scan, logged as
    soon as the last reply is in (before the last batch is handed out, so it does not depend on the
    consumer asking for more): how many, with an example for each of up to EXAMPLES reasons. A scan
    abandoned part way (a lost lease, Redis gone) says nothing: the tick is planned, and the set
    scanned, again.
    """
    skipped = _Skipped(key)
    cursor = 0
    while True:
        with redis_errors(f"reading tenant set {key!r}"):
            cursor, members = client.sscan(key, cursor, count=batch)
        ids = _valid_ids(members, skipped)
        if cursor == 0:
            skipped.report()
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


def _valid_ids(members: list[bytes], skipped: _Skipped) -> list[str]:
    """The members that are safe tenant ids. A reply whose members are all fine (the usual case) is
    checked in one go, as one string; otherwise member by member, each refusal kept in ``skipped``."""
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
            skipped.add(member, "is not UTF-8")
            continue
        reason = unsafe_name(tenant_id)
        if reason:
            skipped.add(tenant_id, reason)
            continue
        valid.append(tenant_id)
    return valid


class _Skipped:
    """The members one scan of a set skipped: how many, and the first one skipped for each reason."""

    def __init__(self, key: str) -> None:
        self.key = key
        self.count = 0
        self.examples: dict[str, str] = {}  # reason -> the first member skipped for it, as shown

    def add(self, member: str | bytes, reason: str) -> None:
        self.count += 1
        if len(self.examples) < EXAMPLES and reason not in self.examples:
            # repr escapes what could forge or garble a log line (newlines, escapes, bidi controls).
            self.examples[reason] = repr(member[:SHOWN]) + ("..." if len(member) > SHOWN else "")

    def report(self) -> None:
        """``redis set 'tenants:b': skipped 99,812 members that are not tenant ids (e.g. 'a b': ...; ...)``."""
        if not self.count:
            return
        examples = [f"{shown}: {reason}" for reason, shown in self.examples.items()]
        if self.count > len(examples):
            examples.append("...")
        what = "member that is not a tenant id" if self.count == 1 else "members that are not tenant ids"
        logger.warning("redis set {!r}: skipped {:,} {} (e.g. {})", self.key, self.count, what, "; ".join(examples))


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
