"""What a window of time would enqueue: the planner run over a table, as dry-run and validate show it.

An outage ``(down, up)`` simulates that no leader ran between the two instants: ticks up to ``down``
are handled on time, the next leader takes over at ``up`` with the watermark at ``down`` and applies
each schedule's catch-up policy, exactly as ``scheduler run`` does after a failover.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from datetime import datetime

from scheduler.clock.firing import Firing
from scheduler.clock.planner import Fanout, TickPlan, tracks_of
from scheduler.table import Schedule, Table, Tenant


@dataclass
class Preview:
    firings: list[Firing]  # by enqueue_at, then id
    skipped: dict[str, int] = field(default_factory=dict)  # track key -> firings dropped by catch-up
    unresolved: list[Schedule] = field(default_factory=list)  # Redis tenant sets nobody could read


def fanouts(
    table: Table,
    tenants: dict[str, list[Tenant] | None],
    only_schedules: Collection[str] = (),
    only_tenants: Collection[str] = (),
) -> tuple[list[Fanout], list[Schedule]]:
    """A Fanout per track of each selected schedule, and the schedules whose tenants are unresolved."""
    result, unresolved = [], []
    for schedule in table.schedules:
        if only_schedules and schedule.name not in only_schedules:
            continue
        members = tenants.get(schedule.name)
        if members is None:
            unresolved.append(schedule)
            continue
        for track, ids in tracks_of(schedule, members):
            chosen = [tenant for tenant in ids if not only_tenants or tenant in only_tenants]
            if chosen:
                result.append(Fanout(track, chosen))
    return result, unresolved


def tick_plans(
    fanout: Fanout, start: datetime, end: datetime, outage: tuple[datetime, datetime] | None = None
) -> tuple[Iterator[TickPlan], int]:
    """The fanout's ticks in ``(start, end]``, with an outage applied; and the firings it skipped."""
    if outage is None or not start <= outage[0] < end:
        return fanout.on_time(start, end), 0
    down, up = outage
    plan = fanout.catch_up(down, min(up, end))

    def chained() -> Iterator[TickPlan]:
        yield from fanout.on_time(start, down)
        yield from plan.ticks
        if up < end:
            yield from fanout.on_time(up, end)

    return chained(), plan.skipped


def preview(
    table: Table,
    tenants: dict[str, list[Tenant] | None],
    start: datetime,
    end: datetime,
    outage: tuple[datetime, datetime] | None = None,
    only_schedules: Collection[str] = (),
    only_tenants: Collection[str] = (),
) -> Preview:
    selected, unresolved = fanouts(table, tenants, only_schedules, only_tenants)
    result = Preview([], unresolved=unresolved)
    for fanout in selected:
        plans, skipped = tick_plans(fanout, start, end, outage)
        for plan in plans:
            result.firings.extend(plan.firings)
        if skipped:
            result.skipped[fanout.track.key] = skipped
    result.firings.sort(key=lambda firing: (firing.enqueue_at, firing.schedule, firing.tenant))
    return result
