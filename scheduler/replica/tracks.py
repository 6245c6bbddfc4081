"""What the leader works through: a track per schedule and zone, with a way to stream its tenants."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from scheduler.clock.cadence import next_tick
from scheduler.errors import RedisPermissionError, RedisRefused, RedisUnavailable
from scheduler.plan.planner import Track, tracks_of
from scheduler.table import InlineTenants, RedisSetTenants, Table
from scheduler.tenants import TenantSets

BATCH = 10_000  # tenants planned and accepted at a time, so a million-member set never sits in memory
STATE_MARGIN = timedelta(days=7)  # a removed schedule's watermark outlives it by this much, then expires


@dataclass(frozen=True)
class Trouble:
    """Why a track's (or a queue's) last attempts failed, until one works again."""

    reason: str  # what was being done, and Redis's own words
    failures: int  # attempts failed in a row
    denial: RedisPermissionError | None = None  # the last failure, when it was for lack of permission

    @staticmethod
    def after(previous: Trouble | None, error: RedisUnavailable) -> Trouble:
        """The trouble once ``error`` has failed one more attempt."""
        reason = f"{error.doing}: {error.reply}" if isinstance(error, RedisRefused) else str(error)
        denial = error if isinstance(error, RedisPermissionError) else None
        return Trouble(reason, (previous.failures if previous else 0) + 1, denial)

    def news(self, previous: Trouble | None) -> bool:
        """Whether this trouble says something ``previous`` did not (worth a log line)."""
        return previous is None or previous.reason != self.reason


@dataclass
class TrackState:
    track: Track
    tenant_ids: list[str] | None  # None: a Redis set, read when the tick is handled
    due: datetime | None = None  # when to handle it next; None: at once
    trouble: Trouble | None = None  # why its last attempts failed, until one works again

    @property
    def key(self) -> str:
        return self.track.key

    def batches(self, sets: TenantSets) -> Iterator[list[str]]:
        """The tenants in batches of at most BATCH; at least one (maybe empty) batch."""
        if self.tenant_ids is not None:
            ids = self.tenant_ids
            for start in range(0, len(ids), BATCH) or [0]:
                yield ids[start : start + BATCH]
            return
        source = self.track.schedule.tenants
        assert isinstance(source, RedisSetTenants)
        empty = True
        for batch in sets.batches(source.key, BATCH):
            empty = False
            yield batch
        if empty:
            yield []

    def next_due(self, after: datetime) -> datetime:
        return next_tick(self.track.schedule.cadence, self.track.zone, after)

    def watermark_ttl(self, now: datetime) -> timedelta:
        """Long enough to outlive two intervals, the catch-up window and a week of outage."""
        first = self.next_due(now)
        period = self.next_due(first) - first
        return 2 * period + self.track.schedule.catchup_window + STATE_MARGIN


def build_tracks(table: Table) -> dict[str, TrackState]:
    """A TrackState per track of the table, each due at once (its watermark says what is left to do)."""
    states: dict[str, TrackState] = {}
    for schedule in table.schedules:
        source = schedule.tenants
        if isinstance(source, RedisSetTenants):
            zone = schedule.zone or schedule.default_zone
            groups = [(Track(schedule, zone), None)]
        else:
            members = source.tenants if isinstance(source, InlineTenants) else ()
            groups = tracks_of(schedule, members)
        for track, ids in groups:
            states[track.key] = TrackState(track, ids)
    return states
