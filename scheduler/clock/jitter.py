"""Deterministic jitter: every replica and every dry-run computes the same offset for a tenant."""

from __future__ import annotations

from datetime import timedelta
from hashlib import blake2b

_SPAN = 2**64


def jitter_offset(schedule: str, tenant: str, jitter: timedelta) -> timedelta:
    """The tenant's offset in ``[0, jitter)``, uniform over the window, to the millisecond.

    A hash of ``schedule/tenant`` (not of the tick) fixes it, so a failover never re-rolls it and a
    tenant keeps its slot from one tick to the next.
    """
    window_ms = int(jitter.total_seconds() * 1000)
    if window_ms <= 0:
        return timedelta(0)
    digest = blake2b(f"{schedule}/{tenant}".encode(), digest_size=8).digest()
    return timedelta(milliseconds=int.from_bytes(digest, "big") * window_ms // _SPAN)
