"""The planner: which firings a leader enqueues when it handles a schedule at ``now``.

``scheduler run`` and ``scheduler dry-run`` both plan through this module, so what dry-run shows is
what run does. Everything here is pure: ``now`` and the watermark are arguments.

Lateness is judged per firing (docs/schedules.md, "Catch-up and jitter"): a firing is *late* when it is
handled more than ``misfire_grace`` after its own ``enqueue_at``. Late firings follow the schedule's
policy, tenant by tenant:

* ``all``: keep those whose tick lies within ``catchup_window`` of ``now``;
* ``latest``: keep only the tenant's most recent late tick, if it lies within ``catchup_window``;
* ``none``: keep none.

``catchup_window`` bounds both policies: a late tick older than the window is never delivered,
whatever the policy (a weekly report cut off by a 50-hour outage is skipped, not sent two days late).

A firing that is not late is always kept, even after an outage, and waits out its jitter as usual.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from scheduler.clock.cadence import Cadence, Every, ticks_between
from scheduler.clock.firing import Firing
from scheduler.clock.jitter import jitter_offset
from scheduler.table import NO_TENANT, CatchUp, Schedule, Tenant

_EPSILON = timedelta(microseconds=1)
_NO_OFFSET = timedelta(0)


@dataclass(frozen=True)
class Track:
    """One schedule's ticks in one zone. A ``timezone = "tenant"`` schedule has a track per zone."""

    schedule: Schedule
    zone: ZoneInfo

    @property
    def key(self) -> str:
        """Names the track's watermark; schedule names cannot contain "/", zone names can."""
        if self.schedule.per_tenant_zone:
            return f"{self.schedule.name}/{self.zone.key}"
        return self.schedule.name


def tracks_of(schedule: Schedule, tenants: Sequence[Tenant]) -> list[tuple[Track, list[str]]]:
    """Split a schedule's tenants by the zone their ticks are computed in."""
    if schedule.tenants is None:
        return [(Track(schedule, schedule.zone or schedule.default_zone), [NO_TENANT])]
    if not schedule.per_tenant_zone:
        assert schedule.zone is not None
        return [(Track(schedule, schedule.zone), [tenant.id for tenant in tenants])]
    groups: dict[str, tuple[ZoneInfo, list[str]]] = {}
    for tenant in tenants:
        zone = schedule.zone_of(tenant)
        groups.setdefault(zone.key, (zone, []))[1].append(tenant.id)
    return [(Track(schedule, zone), ids) for _, (zone, ids) in sorted(groups.items())]


@dataclass
class TickPlan:
    tick: datetime
    firings: list[Firing]
    skipped: int = 0
    skipped_tenants: list[str] = field(default_factory=list)  # the tenants the policy dropped from this tick


@dataclass
class Plan:
    """What handling a track at ``now`` does: the firings to enqueue and what the policy dropped."""

    key: str
    ticks: list[TickPlan]
    watermark: datetime  # the watermark once every tick here is handled
    skipped: int = 0  # firings dropped by the catch-up policy, ticks skipped wholesale included
    skipped_ticks: list[datetime] = field(default_factory=list)  # first and last tick dropped wholesale

    @property
    def firings(self) -> Iterator[Firing]:
        for tick in self.ticks:
            yield from tick.firings

    @property
    def late(self) -> int:
        return sum(1 for firing in self.firings if firing.late)


class Fanout:
    """A track with its tenants, their jitter offsets computed once."""

    def __init__(self, track: Track, tenant_ids: Sequence[str]) -> None:
        self.track = track
        schedule = track.schedule
        if schedule.jitter:
            self.offsets = [(tenant, jitter_offset(schedule.name, tenant, schedule.jitter)) for tenant in tenant_ids]
        else:
            self.offsets = [(tenant, _NO_OFFSET) for tenant in tenant_ids]

    def firings_at(self, tick: datetime) -> list[Firing]:
        """The tick's firings as a healthy leader handles them: at the tick, none late."""
        name = self.track.schedule.name
        return [Firing(name, tenant, tick, tick + offset) for tenant, offset in self.offsets]

    def on_time(self, start: datetime, end: datetime) -> Iterator[TickPlan]:
        """The ticks in ``(start, end]`` with their firings, as a healthy leader handles them."""
        for tick in ticks_between(self.track.schedule.cadence, self.track.zone, start, end):
            yield TickPlan(tick, self.firings_at(tick))

    def catch_up(self, watermark: datetime | None, now: datetime) -> Plan:
        """Plan the ticks in ``(watermark, now]``; a track never handled before starts after ``now``."""
        key = self.track.key
        if watermark is None:
            return Plan(key, [], watermark=now)
        schedule, zone = self.track.schedule, self.track.zone
        cadence = schedule.cadence
        # Ticks up to `cutoff` are late for every tenant: offsets are below the jitter, and late means
        # *more* than misfire_grace after enqueue_at, so a tick exactly at the grace is not.
        cutoff = now - schedule.jitter - schedule.misfire_grace - _EPSILON
        window_start = now - schedule.catchup_window
        if schedule.catchup is CatchUp.LATEST:
            _, last = _count_and_last(cadence, zone, watermark, cutoff)
            bulk_end = last - _EPSILON if last and last >= window_start else max(watermark, cutoff)
        elif schedule.catchup is CatchUp.ALL:
            bulk_end = max(watermark, min(cutoff, window_start - _EPSILON))
        else:
            bulk_end = max(watermark, cutoff)
        bulk, bulk_last = _count_and_last(cadence, zone, watermark, bulk_end)
        plan = Plan(key, [], watermark=bulk_last or watermark, skipped=bulk * len(self.offsets))
        if bulk:
            plan.skipped_ticks = [next(cadence.after(watermark, zone)), bulk_last]
        examined = list(ticks_between(cadence, zone, bulk_end, now))
        latest_late = self._latest_late(examined, now) if schedule.catchup is CatchUp.LATEST else {}
        for tick in examined:
            if now <= tick + schedule.misfire_grace:  # no firing of this tick is late (offsets are >= 0)
                plan.ticks.append(TickPlan(tick, self.firings_at(tick)))
                plan.watermark = tick
                continue
            decided = TickPlan(tick, [])
            for tenant, offset in self.offsets:
                enqueue_at = tick + offset
                if now <= enqueue_at + schedule.misfire_grace:
                    decided.firings.append(Firing(schedule.name, tenant, tick, enqueue_at))
                elif tick >= window_start and (schedule.catchup is CatchUp.ALL or latest_late.get(tenant) == tick):
                    decided.firings.append(Firing(schedule.name, tenant, tick, enqueue_at, late=True))
                else:
                    decided.skipped += 1
                    decided.skipped_tenants.append(tenant)
            plan.ticks.append(decided)
            plan.skipped += decided.skipped
            plan.watermark = tick
        return plan

    def _latest_late(self, ticks: list[datetime], now: datetime) -> dict[str, datetime]:
        """Each tenant's most recent late tick among ``ticks``."""
        grace = self.track.schedule.misfire_grace
        latest: dict[str, datetime] = {}
        for tick in reversed(ticks):
            if now <= tick + grace:
                continue  # no firing of this tick is late
            for tenant, offset in self.offsets:
                if tenant not in latest and now > tick + offset + grace:
                    latest[tenant] = tick
            if len(latest) == len(self.offsets):
                break
        return latest


def ticks_in(track: Track, start: datetime, end: datetime) -> tuple[int, datetime | None, datetime | None]:
    """How many of ``track``'s ticks lie in ``(start, end]``, the first of them and the last."""
    count, last = _count_and_last(track.schedule.cadence, track.zone, start, end)
    first = next(track.schedule.cadence.after(start, track.zone)) if count else None
    return count, first, last


def _count_and_last(cadence: Cadence, zone: ZoneInfo, start: datetime, end: datetime) -> tuple[int, datetime | None]:
    """How many ticks lie in ``(start, end]``, and the last of them."""
    if end <= start:
        return 0, None
    if isinstance(cadence, Every):
        count = cadence.count_between(start, end, zone)
        if not count:
            return 0, None
        first = next(cadence.after(start, zone))
        return count, first + cadence.period * (count - 1)
    count, last = 0, None
    for tick in ticks_between(cadence, zone, start, end):
        count, last = count + 1, tick
    return count, last
