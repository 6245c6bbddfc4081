"""A pass's fenced script calls, and what their replies say was accepted.

A pass sends many calls pipelined; each :class:`Call` keeps what the caller needs once the replies
are back: which track and tick it concerns (to know which ticks were fully accepted), and for an
enqueue call its firings' enqueue_at (to measure the lateness of what it delivered).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from scheduler.clock.firing import Firing
from scheduler.store.scripts import Script


@dataclass(frozen=True)
class Call:
    """One fenced script call of a pass, with the track and tick it concerns (for the caller to
    know which ticks were fully accepted). An enqueue call also keeps its chunk of firings and the
    tick's enqueue_at stamps (datetime -> (ms, ISO)), by reference, for delivered_at."""

    script: Script
    keys: list[str]
    args: list[str | int]
    track: str = ""
    tick: datetime | None = None
    firings: int = 0
    chunk: Sequence[Firing] = field(default=(), compare=False, repr=False)
    stamps: Mapping[datetime, tuple[int, str]] = field(default_factory=dict, compare=False, repr=False)



@dataclass
class Acceptance:
    """What the enqueue calls of one track accepted: firings delivered at once, parked pending (they
    wait out their jitter), already accepted before, and how many of the delivered ones were late.
    ``deliveries`` tells the metrics when each delivered firing was due: per enqueue call that
    delivered any, (the TIME it judged them by, their enqueue_at, sorted), both in ms. It is left
    out of comparisons."""

    delivered: int = 0
    pending: int = 0
    duplicates: int = 0
    late: int = 0
    deliveries: list[tuple[int, list[int]]] = field(default_factory=list, compare=False, repr=False)

    def add(self, result: Sequence[int], call: Call | None = None) -> None:
        """Count an enqueue reply in; with its ``call``, when its delivered firings were due too."""
        self.delivered += result[0]
        self.pending += result[1]
        self.duplicates += result[2]
        if len(result) > 4:
            self.late += result[3]
            if call is not None and result[0] > 0 and call.stamps:
                self.deliveries.append((int(result[4]), delivered_at(call, result)))


def delivered_at(call: Call, reply: Sequence[int]) -> list[int]:
    """The enqueue_at in ms of the firings an enqueue ``call`` delivered, sorted (so the metrics
    bucket their lateness, TIME minus enqueue_at, with a bisection per bucket, not per firing).

    The reply says how many were delivered and the TIME it judged them by (now_ms); the call knows
    its firings' enqueue_at. A firing due by now_ms that was not a duplicate was delivered. Without
    jitter every firing of a tick shares one enqueue_at: one list repetition per chunk. With jitter
    the chunk's stamps are looked up once per firing, only when something was delivered. When some
    due firings were duplicates (a retried tick), which ones the reply does not say: the earliest
    due are taken as the duplicates, since an earlier attempt would have delivered those.
    """
    delivered, now_ms = int(reply[0]), int(reply[4])
    if len(call.stamps) == 1:
        ((at_ms, _),) = call.stamps.values()
        return [at_ms] * delivered
    stamps = call.stamps
    due = sorted(at_ms for at_ms in (stamps[firing.enqueue_at][0] for firing in call.chunk) if at_ms <= now_ms)
    return due[max(0, len(due) - delivered):]
