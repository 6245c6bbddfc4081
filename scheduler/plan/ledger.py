"""The decision ledger: one line per tick a leader decided, kept per schedule (``scheduler history``).

A line is written by the same fenced script that finishes the tick (or answers an operator's
request), so a tick has exactly one line however many leaders planned it. Its fields:

    tick            the tick (or ``from`` / ``until`` / ``ticks`` for a range decided at once)
    track           the track, when the schedule has one per time zone
    outcome         fired | deduplicated | skipped | paused | empty (no tenants) | started | triggered
                    | backfilled
    fired           firings accepted (delivered, or waiting out their jitter)
    late            of those, firings handled more than misfire_grace after their enqueue_at
    deduplicated    firings an earlier leader (or an earlier run of the request) had accepted
    skipped         firings the catch-up policy dropped
    paused          firings not sent because the schedule or the tenant was paused
    tenants         the paused tenants (JSON list), when only some were
    tenant          the one tenant of a trigger or backfill
    request         the operator's request id (trigger, backfill)
    reason          why, in words
    epoch           the leader's epoch

Lines are a stream whose ids are Redis's clock: older than the retention, they are trimmed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime

from scheduler.clock.instants import format_tick


@dataclass
class Decision:
    """What a pass decided for one tick (or a range of ticks) before Redis's replies came back."""

    outcome: str = ""  # "" for a tick: decided by the counts once the replies are in
    skipped: int = 0
    late: int = 0
    paused: int = 0
    paused_tenants: list[str] = field(default_factory=list)
    reason: str = ""
    span: tuple[datetime, datetime, int] | None = None  # a range: first tick, last tick, how many
    extra: dict[str, str] = field(default_factory=dict)  # request, tenant
    unsent: list[str] = field(default_factory=list)  # the tick's tenants not sent (paused, skipped): backfill's

    def line(self, track: str, schedule: str, tick: datetime | None, epoch: int, fired: int = 0,
             deduplicated: int = 0) -> list[str]:
        """The ledger line's fields and values."""
        fields: dict[str, str] = {}
        if self.span is not None:
            first, last, count = self.span
            fields.update({"from": format_tick(first), "until": format_tick(last), "ticks": str(count)})
        elif tick is not None:
            fields["tick"] = format_tick(tick)
        if track != schedule:
            fields["track"] = track
        outcome = self.outcome or _outcome(fired, deduplicated, self.paused, self.skipped)
        if outcome in ("backfilled", "triggered") and deduplicated and not fired:
            outcome = "deduplicated"  # the request was carried out before: nothing went out this time
        fields["outcome"] = outcome
        counts = {"fired": fired, "late": self.late, "deduplicated": deduplicated, "skipped": self.skipped,
                  "paused": self.paused}
        fields.update({name: str(value) for name, value in counts.items() if value})
        if self.paused_tenants:
            fields["tenants"] = json.dumps(sorted(self.paused_tenants))
        fields.update(self.extra)
        if self.reason:
            fields["reason"] = self.reason
        fields["epoch"] = str(epoch)
        return [item for pair in fields.items() for item in pair]


def _outcome(fired: int, deduplicated: int, paused: int, skipped: int) -> str:
    if fired:
        return "fired"
    if deduplicated:
        return "deduplicated"
    if paused and not skipped:
        return "paused"
    return "skipped" if skipped else "empty"


@dataclass(frozen=True)
class Line:
    """A ledger line as read back: when it was written (Redis's clock) and its fields."""

    written: datetime
    fields: dict[str, str]

    def concerns(self, tenant: str) -> bool:
        """Whether the line says something of ``tenant``: every tick-wide line does."""
        own = self.fields.get("tenant")
        return own is None or own == tenant

    def for_tenant(self, tenant: str) -> str:
        """The line's outcome as it applies to ``tenant``."""
        if tenant in json.loads(self.fields.get("tenants", "[]")):
            return "paused"
        return self.fields.get("outcome", "")
