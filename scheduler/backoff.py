"""How long to wait before trying again: one rule for every retry loop of a replica."""

from __future__ import annotations

import random


def backoff(failures: int, base: float, cap: float) -> float:
    """Seconds to wait after ``failures`` failures in a row (1 for the first): ``base`` doubled per
    failure, at most ``cap``, times a random factor in [0.5, 1) so that replicas which failed
    together (Redis went away under all of them) do not all come back at the same instant."""
    return min(base * 2 ** (failures - 1), cap) * random.uniform(0.5, 1.0)
