"""One pass's fenced writes: the firings of every track due at one instant, then their finishing.

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

from scheduler.clock.planner import TickPlan
from scheduler.errors import RedisUnavailable
from scheduler.store.ledger import Decision
from scheduler.store.state import ROUND_TRIP_FIRINGS, Acceptance, Call, Store, token_parts
from scheduler.table import Schedule


@dataclass
class Outcome:
    accepted: dict[str, Acceptance] = field(default_factory=dict)  # by track
    schedules: dict[str, str] = field(default_factory=dict)  # track -> its schedule's name
    finished: set[str] = field(default_factory=set)  # tracks whose every tick was finished
    error: RedisUnavailable | None = None  # the first refusal, when anything was left undone


@dataclass
class _Finish:
    schedule: str
    track: str
    ticks: list[datetime]
    watermark: datetime
    ttl: timedelta
    remember: timedelta
    decisions: dict[datetime | None, Decision]


class Delivery:
    def __init__(self, store: Store, token: str, progress: Callable[[], None] = lambda: None,
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

    def accept(self, schedule: Schedule, track: str, ticks: Sequence[TickPlan], dedup_ttl: timedelta) -> None:
        """Queue the calls that accept ``ticks``' firings; a full round trip's worth goes out at once."""
        self.outcome.schedules[track] = schedule.name
        for call in self.store.enqueue_calls(self.token, schedule, track, ticks, dedup_ttl):
            self._calls.append(call)
            self._firings += call.firings
            if self._firings >= ROUND_TRIP_FIRINGS:
                self._send()

    def finish(self, schedule: str, track: str, ticks: Sequence[datetime], watermark: datetime, ttl: timedelta,
               remember: timedelta, decisions: dict[datetime | None, Decision] | None = None) -> None:
        """Once every accept of ``track`` is queued: finish its ``ticks`` in order and move its
        watermark to ``watermark`` (which may lie past the last tick, or stand alone with no ticks).
        Each tick gets its ledger line from its decision and the replies; ``decisions[None]``, when
        given, is the line of the watermark's move (a range skipped or paused, a first start)."""
        self._finishes.append(_Finish(schedule, track, list(ticks), watermark, ttl, remember, decisions or {}))

    def close(self) -> Outcome:
        """Send what is queued, then finish every tick of which no chunk was refused."""
        self._send()
        self._ready()
        calls: list[Call] = []
        epoch = token_parts(self.token)[1]
        for finish in self._finishes:
            refused = False
            for tick in finish.ticks:
                if (finish.track, tick) in self._refused:
                    refused = True
                    break
                accepted = self._by_tick.get((finish.track, tick), Acceptance())
                line = finish.decisions.get(tick, Decision()).line(
                    finish.track, finish.schedule, tick, epoch, accepted.delivered + accepted.pending,
                    accepted.duplicates)
                calls.append(self.store.finish_call(self.token, finish.schedule, finish.track, tick, tick, finish.ttl,
                                                    finish.remember, line))
            if refused:
                continue
            if not finish.ticks or finish.watermark > finish.ticks[-1] or None in finish.decisions:
                moved = finish.decisions.get(None)
                line = moved.line(finish.track, finish.schedule, None, epoch) if moved else ()
                calls.append(self.store.finish_call(self.token, finish.schedule, finish.track, None, finish.watermark,
                                                    finish.ttl, finish.remember, line))
            self.outcome.finished.add(finish.track)
        for call, reply in zip(calls, self.store.send(calls, "finishing ticks")):
            if isinstance(reply, RedisUnavailable):
                self.outcome.finished.discard(call.track)
                self.outcome.error = self.outcome.error or reply
        self.progress()
        return self.outcome

    def _ready(self) -> None:
        before_send, self.before_send = self.before_send, lambda: None
        before_send()

    def _send(self) -> None:
        calls, self._calls, self._firings = self._calls, [], 0
        if not calls:
            return
        self._ready()
        for call, reply in zip(calls, self.store.send(calls)):
            if isinstance(reply, RedisUnavailable):
                self._refused.add((call.track, call.tick))
                self.outcome.error = self.outcome.error or reply
            else:
                self.outcome.accepted.setdefault(call.track, Acceptance()).add(reply, call)
                self._by_tick.setdefault((call.track, call.tick), Acceptance()).add(reply)
        self.progress()
