"""A pass, planned: what the leader decides for each due track before anything is written.

The work loop reads each due track's watermark and the pause marks (one round trip), then plans
the track here and hands each piece of the plan to the delivery (scheduler/store/delivery.py):

    TrackPlanner(track, watermark, now, held).batch(tenant_ids)  -> the ticks' firings to accept
    TrackPlanner.result()                                        -> TrackPlan: the ticks to finish,
                                                                    the new watermark, the ledger's
                                                                    decisions
    paused_plan(...)                                             -> the TrackPlan of a paused schedule

Tenants come in batches (a million-member Redis set is streamed, never held whole), so a track is
planned a batch at a time and each batch's firings are delivered before the next batch is read;
the finishing of its ticks is planned once every batch is in. Everything here is pure: the
watermark, the pause marks and ``now`` are arguments.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from scheduler.clock.instants import format_instant
from scheduler.durations import format_duration
from scheduler.plan.ledger import Decision
from scheduler.plan.planner import Fanout, Plan, TickPlan, Track, ticks_in
from scheduler.table import Schedule


@dataclass
class TrackPlan:
    """What one pass decided for one track: the ticks it finishes (in order), where its watermark
    goes once they are finished, what the ledger says of each tick (``decisions[None]``: of the
    watermark's move itself, a range skipped or paused, a first start), and what to log."""

    key: str
    schedule: Schedule
    watermark: datetime | None  # as read before planning; None: the track was never handled
    advanced_to: datetime  # the watermark once every tick is finished (may lie past the last tick)
    ticks: list[datetime] = field(default_factory=list)
    decisions: dict[datetime | None, Decision] = field(default_factory=dict)
    skipped: int = 0  # firings the catch-up policy dropped
    paused: int = 0  # ticks not fired because the schedule is paused
    paused_firings: int = 0  # firings not sent because the schedule or their tenant is paused


def held_tenants(paused: Mapping[str, str], schedule: str) -> dict[str, str]:
    """The paused tenants of ``schedule`` (tenant -> since when), from the pause marks
    (``schedule`` or ``schedule/tenant`` -> since when)."""
    prefix = schedule + "/"
    return {key[len(prefix):]: since for key, since in paused.items() if key.startswith(prefix)}


def paused_plan(track: Track, tenants: int, watermark: datetime, now: datetime, since: str) -> TrackPlan:
    """A paused schedule's plan: its ticks in ``(watermark, now]`` are recorded as paused (one
    ledger line for the range), none is fired. ``tenants``: how many each tick would have fired
    (0 where they are only known by reading a Redis set)."""
    count, first, last = ticks_in(track, watermark, now)
    plan = TrackPlan(track.key, track.schedule, watermark, last or watermark, paused=count)
    if count and first and last:
        plan.decisions[None] = Decision("paused", paused=count * tenants, span=(first, last, count),
                                        reason=f"schedule paused since {since}")
    plan.paused_firings = sum(decision.paused for decision in plan.decisions.values())
    return plan


class TrackPlanner:
    """One track's plan at ``now``, built tenant batch by tenant batch; ``held`` are its paused
    tenants (their firings are recorded as paused, not planned)."""

    def __init__(self, track: Track, watermark: datetime | None, now: datetime, held: Mapping[str, str]) -> None:
        self.track = track
        self.now = now
        self.held = held
        self._plan = TrackPlan(track.key, track.schedule, watermark, now)

    def batch(self, tenant_ids: Sequence[str]) -> list[TickPlan]:
        """The ticks' firings of these tenants to accept now."""
        plan = self._plan
        stopped = [tenant for tenant in tenant_ids if tenant in self.held] if self.held else []
        if stopped:
            tenant_ids = [tenant for tenant in tenant_ids if tenant not in self.held]
        planned = Fanout(self.track, tenant_ids).catch_up(plan.watermark, self.now)
        _decide(plan.decisions, self.track.schedule, planned, self.now, stopped, len(tenant_ids))
        plan.skipped += planned.skipped
        plan.ticks, plan.advanced_to = [tick.tick for tick in planned.ticks], planned.watermark
        return planned.ticks

    def result(self) -> TrackPlan:
        """The track's plan, once every batch is planned."""
        plan = self._plan
        plan.paused_firings = sum(decision.paused for decision in plan.decisions.values())
        if plan.watermark is None:
            plan.decisions[None] = Decision("started", reason=f"first seen: starting after {format_instant(self.now)}")
        return plan


def _decide(decisions: dict[datetime | None, Decision], schedule: Schedule, plan: Plan, now: datetime,
            stopped: list[str], tenants: int) -> None:
    """Add one tenant batch's plan to the decisions of its ticks (what the ledger will say of them)."""
    why = (f"late by more than misfire_grace ({format_duration(schedule.misfire_grace)}): catch-up policy "
           f"{schedule.catchup.value!r}, catchup_window {format_duration(schedule.catchup_window)}")
    examined = 0
    for tick in plan.ticks:
        decision = decisions.setdefault(tick.tick, Decision())
        examined += tick.skipped
        decision.skipped += tick.skipped
        if tick.skipped:
            decision.reason = why
        if now > tick.tick + schedule.misfire_grace:  # only then can a firing of this tick be late
            decision.late += sum(1 for firing in tick.firings if firing.late)
        decision.unsent += tick.skipped_tenants
        if stopped:
            decision.paused += len(stopped)
            decision.paused_tenants += stopped
            decision.unsent += stopped
    if plan.skipped > examined and tenants:
        first, last = plan.skipped_ticks
        bulk = decisions.setdefault(None, Decision("skipped", reason=why))
        bulk.skipped += plan.skipped - examined
        bulk.span = (first, last, (plan.skipped - examined) // tenants)
