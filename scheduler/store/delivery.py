"""One pass's fenced writes: the firings of every track due at one instant, then their finishing.

The pass plans (scheduler/plan/passes.py) and this writes what it planned: ``accept`` each piece
of firings as it is planned, ``finish`` each track's plan once all of its firings are queued, then
``close``.

A tick is finished (recorded done, its dedup set dropped, the watermark moved past it) only after
every chunk of it was accepted. So the enqueue calls of a pass go out first, pipelined across
tracks (every schedule due at one instant in one round trip, up to ROUND_TRIP_FIRINGS); the replies
say which (track, tick) had a chunk refused (OOM, BUSY); then one more round trip finishes, track
by track and in tick order, each tick up to the first one with a refusal. What was refused is
planned again on the next pass, and the dedup set of the unfinished tick makes that safe.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from scheduler.errors import RedisUnavailable
from scheduler.keys import Token
from scheduler.plan.ledger import Decision
from scheduler.plan.passes import TrackPlan
from scheduler.plan.planner import TickPlan
from scheduler.store.calls import Acceptance, Call
from scheduler.store.state import ROUND_TRIP_FIRINGS, Store
from scheduler.table import Schedule
from scheduler.targets import Target


@dataclass
class Outcome:
    accepted: dict[str, Acceptance] = field(default_factory=dict)  # by track
    schedules: dict[str, str] = field(default_factory=dict)  # track -> its schedule's name
    finished: set[str] = field(default_factory=set)  # tracks whose every tick was finished
    refused: dict[str, RedisUnavailable] = field(default_factory=dict)  # track -> its first refusal
    error: RedisUnavailable | None = None  # the first refusal, when anything was left undone


@dataclass
class _Finish:
    plan: TrackPlan
    ttl: timedelta
    remember: timedelta


class Delivery:
    def __init__(self, store: Store, token: Token, progress: Callable[[], None] = lambda: None,
                 before_send: Callable[[], None] = lambda: None) -> None:
        self.store = store
        self.token = token
        self.progress = progress  # called after each round trip: the work loop is not stuck
        self.before_send = before_send  # called once, before the first round trip (it may wait)
        self._calls: list[Call] = []
        self._firings = 0
        self._refused: set[tuple[str, datetime | None]] = set()
        self._finishes: list[_Finish] = []
        self._by_tick: dict[tuple[str, datetime | None], Acceptance] = {}
        self.outcome = Outcome()

    def accept(self, schedule: Schedule, track: str, ticks: Sequence[TickPlan], dedup_ttl: timedelta,
               target: Target, unsent: bool = False) -> None:
        """Queue the calls that accept ``ticks``' firings into ``target``; a full round trip's worth
        goes out at once. ``unsent``: a backfill's, see Store.enqueue_calls."""
        self.outcome.schedules[track] = schedule.name
        for call in self.store.enqueue_calls(self.token, schedule, track, ticks, dedup_ttl, target, unsent):
            self._calls.append(call)
            self._firings += call.firings
            if self._firings >= ROUND_TRIP_FIRINGS:
                self._send()

    def finish(self, plan: TrackPlan, ttl: timedelta, remember: timedelta) -> None:
        """Once every accept of ``plan``'s track is queued: finish its ticks in order and move its
        watermark to ``plan.advanced_to`` (which may lie past the last tick, or stand alone with no
        ticks). Each tick gets its ledger line from its decision and the replies;
        ``decisions[None]``, when there is one, is the line of the watermark's move."""
        self._finishes.append(_Finish(plan, ttl, remember))

    def close(self) -> Outcome:
        """Send what is queued, then finish every tick of which no chunk was refused."""
        self._send()
        self._ready()
        calls: list[Call] = []
        epoch = self.token.epoch
        for finish in self._finishes:
            plan, refused = finish.plan, False
            track, schedule = plan.key, plan.schedule.name
            for tick in plan.ticks:
                if (track, tick) in self._refused:
                    refused = True
                    break
                accepted = self._by_tick.get((track, tick), Acceptance())
                decision = plan.decisions.get(tick, Decision())
                line = decision.line(track, schedule, tick, epoch, accepted.delivered + accepted.pending,
                                     accepted.duplicates)
                calls.append(self.store.finish_call(self.token, schedule, track, tick, tick, finish.ttl,
                                                    finish.remember, line, decision.unsent))
            if refused:
                continue
            if not plan.ticks or plan.advanced_to > plan.ticks[-1] or None in plan.decisions:
                moved = plan.decisions.get(None)
                line = moved.line(track, schedule, None, epoch) if moved else ()
                calls.append(self.store.finish_call(self.token, schedule, track, None, plan.advanced_to,
                                                    finish.ttl, finish.remember, line))
            self.outcome.finished.add(track)
        for call, reply in zip(calls, self.store.send(self.token, calls, "finishing ticks")):
            if isinstance(reply, RedisUnavailable):
                self.outcome.finished.discard(call.track)
                self._refuse(call.track, reply)
        self.progress()
        return self.outcome

    def _refuse(self, track: str, error: RedisUnavailable) -> None:
        self.outcome.refused.setdefault(track, error)
        self.outcome.error = self.outcome.error or error

    def _ready(self) -> None:
        before_send, self.before_send = self.before_send, lambda: None
        before_send()

    def _send(self) -> None:
        calls, self._calls, self._firings = self._calls, [], 0
        if not calls:
            return
        self._ready()
        for call, reply in zip(calls, self.store.send(self.token, calls)):
            if isinstance(reply, RedisUnavailable):
                self._refused.add((call.track, call.tick))
                self._refuse(call.track, reply)
            else:
                self.outcome.accepted.setdefault(call.track, Acceptance()).add(reply, call)
                self._by_tick.setdefault((call.track, call.tick), Acceptance()).add(reply)
        self.progress()
