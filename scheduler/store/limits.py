"""How much of the decision ledger the store keeps (SCHEDULER_HISTORY_KEEP, SCHEDULER_HISTORY_LINES)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta


@dataclass(frozen=True)
class LedgerLimits:
    """Per schedule: lines younger than ``keep``, and at most ``lines`` of them (a schedule that
    ticks every second writes 86,400 a day)."""

    keep: timedelta = timedelta(days=7)
    lines: int = 100_000
