"""What a window of time would enqueue: the planner run over a table, as dry-run and validate show it.

An outage ``(down, up)`` simulates that no leader ran between the two instants: ticks up to ``down``
are handled on time, the next leader takes over at ``up`` with the watermark at ``down`` and applies
each schedule's catch-up policy, exactly as ``scheduler run`` does after a failover.

``stream`` gives a window's firings in order (by enqueue_at, then schedule, then tenant) without
building them all, for windows of millions of firings:

* a ``Lane`` gathers the fanouts whose ticks are the same (one cadence and, for cron, one zone),
  their (schedule, tenant) slots sorted once by jitter offset, then schedule, then tenant: the order
  of the firings of each of its ticks;
* a ``Batch`` is one tick of a lane (after an outage, what the catch-up policy kept of it);
* ``merge`` takes batches in tick order: a batch that nothing else overlaps goes out as a ``Run``
  that the caller writes however is fastest; where batches overlap, their firings are rendered one
  by one, keyed by one integer (enqueue time and rank of schedule and tenant) and sorted a slice at
  a time.
"""

from __future__ import annotations

import heapq
from bisect import bisect_left
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import chain
from typing import NamedTuple, TypeVar
from zoneinfo import ZoneInfo

from scheduler.clock.cadence import Cadence, Every, ticks_between
from scheduler.clock.instants import EPOCH, format_tick
from scheduler.clock.firing import Firing
from scheduler.plan.planner import Fanout, tracks_of
from scheduler.table import Schedule, Table, Tenant

_MICROSECOND = timedelta(microseconds=1)


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


@dataclass(frozen=True)
class Window:
    """Ticks at or after ``start`` and before ``end``; with ``count``, the first ``count`` firings."""

    start: datetime
    end: datetime
    count: int | None = None
    outage: tuple[datetime, datetime] | None = None

    def describe(self) -> str:
        if self.count is not None:
            return f"the first {self.count:,} firings from {format_tick(self.start)}"
        return f"ticks from {format_tick(self.start)} until {format_tick(self.end)}"


# -- streaming ----------------------------------------------------------------------------------------


def micros(instant: datetime) -> int:
    """An aware instant as whole microseconds since the Unix epoch."""
    return (instant - EPOCH) // _MICROSECOND


class Lane:
    """Slots (schedule, tenant) whose ticks are the same: by jitter offset, then schedule, then tenant.

    Position ``n`` is the slot of ``names[n]`` and ``tenants[n]``, ``offsets[n]`` microseconds after
    each tick; ``fanouts[members[n]]`` is the fanout (schedule and zone) it belongs to.
    """

    def __init__(self, fanouts: list[Fanout]) -> None:
        self.fanouts = fanouts
        self.cadence: Cadence = fanouts[0].track.schedule.cadence
        self.zone: ZoneInfo = fanouts[0].track.zone
        if len(fanouts) == 1:  # the common big case: one schedule's tenants
            pairs = sorted((offset // _MICROSECOND, tenant) for tenant, offset in fanouts[0].offsets)
            name = fanouts[0].track.schedule.name
            slots = [(offset, name, tenant, 0) for offset, tenant in pairs]
        else:
            slots = sorted(
                (offset // _MICROSECOND, fanout.track.schedule.name, tenant, member)
                for member, fanout in enumerate(fanouts)
                for tenant, offset in fanout.offsets
            )
        self.offsets: list[int] = [slot[0] for slot in slots]
        self.names: list[str] = [slot[1] for slot in slots]
        self.tenants: list[str] = [slot[2] for slot in slots]
        self.members: list[int] = [slot[3] for slot in slots]
        self.scaled: list[int] = []  # offset * scale + rank, set by merge when batches overlap
        self._positions: dict[tuple[str, str], int] | None = None

    def position(self, schedule: str, tenant: str) -> int:
        if self._positions is None:
            self._positions = {slot: n for n, slot in enumerate(zip(self.names, self.tenants))}
        return self._positions[schedule, tenant]

    def schedule(self, position: int) -> Schedule:
        return self.fanouts[self.members[position]].track.schedule

    def zone_of(self, position: int) -> ZoneInfo:
        return self.fanouts[self.members[position]].track.zone


def lanes_of(selected: list[Fanout]) -> list[Lane]:
    """Fanouts grouped by their ticks: an ``every`` ignores zones, a cron is read in its zone's clock."""
    groups: dict[tuple[Cadence, str], list[Fanout]] = {}
    for fanout in selected:
        cadence = fanout.track.schedule.cadence
        key = (cadence, "" if isinstance(cadence, Every) else fanout.track.zone.key)
        groups.setdefault(key, []).append(fanout)
    return [Lane(members) for members in groups.values()]


@dataclass(slots=True)
class Batch:
    """One tick of a lane: ``offsets`` of its firings in order; ``positions`` None when they are all
    the lane's slots, on time; after an outage, the slots the catch-up policy kept, ``late`` saying
    which of them are late."""

    lane: Lane
    tick: datetime
    tick_us: int
    offsets: list[int]
    positions: list[int] | None = None
    late: list[bool] | None = None


def lane_batches(
    lane: Lane, start: datetime, end: datetime, outage: tuple[datetime, datetime] | None = None
) -> tuple[Iterator[Batch], dict[str, int]]:
    """The lane's ticks in ``(start, end]`` as batches; and the firings the catch-up policy skipped,
    by track key. With an outage, ticks up to its start are on time, the planner's catch-up from
    there at its end decides what is kept of the ticks in between, and ticks after it are on time."""

    def on_time(since: datetime, until: datetime) -> Iterator[Batch]:
        for tick in ticks_between(lane.cadence, lane.zone, since, until):
            yield Batch(lane, tick, micros(tick), lane.offsets)

    if outage is None or not start <= outage[0] < end:
        return on_time(start, end), {}
    down, up = outage
    plans = [fanout.catch_up(down, min(up, end)) for fanout in lane.fanouts]
    skipped = {plan.key: plan.skipped for plan in plans if plan.skipped}
    kept: dict[datetime, list[Firing]] = {}
    for plan in plans:
        for tick_plan in plan.ticks:
            kept.setdefault(tick_plan.tick, []).extend(tick_plan.firings)

    def chained() -> Iterator[Batch]:
        yield from on_time(start, down)
        for tick in sorted(kept):
            if kept[tick]:
                yield _kept_batch(lane, tick, kept[tick])
        if up < end:
            yield from on_time(up, end)

    return chained(), skipped


def _kept_batch(lane: Lane, tick: datetime, firings: list[Firing]) -> Batch:
    late = {lane.position(firing.schedule, firing.tenant): firing.late for firing in firings}
    positions = sorted(late)
    offsets = [lane.offsets[n] for n in positions]
    return Batch(lane, tick, micros(tick), offsets, positions, [late[n] for n in positions])


class Run(NamedTuple):
    """Firings lo..hi-1 of a batch, with no other firing between them."""

    batch: Batch
    lo: int
    hi: int


T = TypeVar("T")
Render = Callable[[Batch, int, int], list[T]]  # firings lo..hi-1 of a batch, one item each
_SLICE = 8192  # firings taken at a time where batches overlap


def merge(sources: Iterable[Iterator[Batch]], lanes: list[Lane], render: Render[T]) -> Iterator[Run | list[T]]:
    """The firings of all sources, by enqueue_at, then schedule, then tenant.

    Each source yields batches by tick, and no firing comes before its tick, so whatever comes before
    the earliest tick still waiting can go out. While nothing is pending, a batch's firings before
    the next tick go out as a Run; the rest of it, and every batch taken while something is pending,
    is rendered and keyed, and a slice of such firings is sorted and sent out up to the next tick as
    a list of rendered items. Nothing assumes that a lane's ticks are further apart than its jitter.
    """
    waiting: list[tuple[int, int, Batch, Iterator[Batch]]] = []  # (tick_us, seq, batch, source)
    keys: list[int] = []  # (enqueue_us * scale + rank) of the pending firings, in order after each sort
    items: list[T] = []  # the pending firings, rendered
    scale = 0
    seq = 0

    def wait_for_next(source: Iterator[Batch]) -> None:
        nonlocal seq
        for batch in source:
            if batch.offsets:
                seq += 1
                heapq.heappush(waiting, (batch.tick_us, seq, batch, source))
                return

    def hold(batch: Batch, lo: int) -> None:
        nonlocal scale
        if not scale:
            scale = _rank(lanes)
        scaled = batch.lane.scaled
        slots = scaled[lo:] if batch.positions is None else [scaled[n] for n in batch.positions[lo:]]
        keys.extend(map((batch.tick_us * scale).__add__, slots))
        items.extend(render(batch, lo, len(batch.offsets)))

    for source in sources:
        wait_for_next(source)
    while waiting or keys:
        if not keys:
            tick_us, _, batch, source = heapq.heappop(waiting)
            wait_for_next(source)
            offsets = batch.offsets
            cut = len(offsets)
            if waiting and offsets[-1] >= waiting[0][0] - tick_us:
                cut = bisect_left(offsets, waiting[0][0] - tick_us)
            if cut:
                yield Run(batch, 0, cut)
            if cut < len(offsets):
                hold(batch, cut)
            continue
        taken, wanted = 0, max(_SLICE, len(keys))
        while waiting and taken < wanted:
            _, _, batch, source = heapq.heappop(waiting)
            wait_for_next(source)
            hold(batch, 0)
            taken += len(batch.offsets)
        order = sorted(range(len(keys)), key=keys.__getitem__)
        keys[:] = [keys[n] for n in order]
        items[:] = [items[n] for n in order]
        cut = bisect_left(keys, waiting[0][0] * scale) if waiting else len(keys)
        if cut:
            yield items[:cut]
            del keys[:cut], items[:cut]


def _rank(lanes: list[Lane]) -> int:
    """Give every slot of every lane its ``scaled`` key part; return the scale."""
    slots = sorted((name, tenant, index, n) for index, lane in enumerate(lanes)
                   for n, (name, tenant) in enumerate(zip(lane.names, lane.tenants)))
    scale = len(slots) + 1
    for lane in lanes:
        lane.scaled = [offset * scale for offset in lane.offsets]
    for rank, (_, _, index, n) in enumerate(slots):
        lanes[index].scaled[n] += rank
    return scale


@dataclass
class Stream:
    """A window's firings, not built yet; read them once, with ``chunks`` (in order) or ``batches`` (any order)."""

    lanes: list[Lane]
    sources: list[Iterator[Batch]]
    skipped: dict[str, int] = field(default_factory=dict)  # track key -> firings dropped by catch-up
    unresolved: list[Schedule] = field(default_factory=list)

    def chunks(self, render: Render[T]) -> Iterator[Run | list[T]]:
        return merge(self.sources, self.lanes, render)

    def batches(self) -> Iterator[Batch]:
        return chain.from_iterable(self.sources)


def stream(
    table: Table,
    tenants: dict[str, list[Tenant] | None],
    window: Window,
    only_schedules: Collection[str] = (),
    only_tenants: Collection[str] = (),
) -> Stream:
    """The firings of the window's ticks, by enqueue_at, then schedule, then tenant, not built yet;
    the catch-up plans of an outage are made at once."""
    selected, unresolved = fanouts(table, tenants, only_schedules, only_tenants)
    result = Stream(lanes_of(selected), [], unresolved=unresolved)
    start, end = window.start - _MICROSECOND, window.end - _MICROSECOND  # the planner's (start, end]
    for lane in result.lanes:
        batches, skipped = lane_batches(lane, start, end, window.outage)
        result.sources.append(batches)
        result.skipped.update(skipped)
    return result
