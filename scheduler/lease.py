"""The leader lease as this replica sees it: held only while its own monotonic clock says so.

Redis holds the truth (``store.acquire/renew/release``); this class adds the local rule that keeps a
paused or partitioned leader honest: it stops acting ``margin`` before the lease could have expired,
measured from the moment it *sent* the last successful renewal.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

from scheduler.keys import Token
from scheduler.store.state import Store


class Change(StrEnum):
    ACQUIRED = "acquired"
    RENEWED = "renewed"
    LOST = "lost"
    RELEASED = "released"
    STANDING_BY = "standing by"
    UNCHANGED = "unchanged"


@dataclass
class Lease:
    store: Store
    replica_id: str
    ttl: timedelta
    clock: "type[time] | object" = time  # anything with monotonic(); tests may pass their own
    token: Token | None = None
    epoch: int = 0  # the epoch of the lease this replica holds, or held last
    holder: Token | None = None  # another replica's lease, as last seen
    _valid_until: float = 0.0

    @property
    def margin(self) -> float:
        return min(1.0, self.ttl.total_seconds() / 5)

    @property
    def held(self) -> bool:
        return self.token is not None and self.clock.monotonic() < self._valid_until

    @property
    def remaining(self) -> float:
        return max(0.0, self._valid_until - self.clock.monotonic()) if self.token else 0.0

    def acquire(self) -> Change:
        """Try to take the lease; RedisUnavailable propagates."""
        sent = self.clock.monotonic()
        token, holder = self.store.acquire(self.replica_id, self.ttl)
        if token is None:
            previous, self.holder = self.holder, holder
            return Change.STANDING_BY if previous != holder else Change.UNCHANGED
        self.epoch, self.token, self.holder = token.epoch, token, None
        self._valid_until = sent + self.ttl.total_seconds() - self.margin
        return Change.ACQUIRED

    def renew(self) -> Change:
        """Extend the lease; LOST when Redis says another holds it (or nobody)."""
        if self.token is None:
            return Change.UNCHANGED
        sent = self.clock.monotonic()
        if not self.store.renew(self.token, self.ttl):
            self.drop()
            return Change.LOST
        self._valid_until = sent + self.ttl.total_seconds() - self.margin
        return Change.RENEWED

    def expire_if_stale(self) -> Change:
        """Drop a lease the local clock can no longer vouch for (a pause, or renewals failing)."""
        if self.token is not None and not self.held:
            self.drop()
            return Change.LOST
        return Change.UNCHANGED

    def release(self) -> Change:
        if self.token is None:
            return Change.UNCHANGED
        token = self.token
        self.drop()
        return Change.RELEASED if self.store.release(token) else Change.LOST

    def drop(self) -> None:
        self.token = None
        self._valid_until = 0.0
