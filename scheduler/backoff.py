"""How long to wait before trying again: one rule for every retry loop of a replica."""

from __future__ import annotations

import random


def backoff(failures: int, base: float, cap: float) -> float:
    """Seconds to wait after ``failures`` failures in a row (1 for the first): ``base`` doubled per
    failure, at most ``cap``, times a random factor in [0.5, 1) so that replicas which failed
    together (Redis went away under all of them) do not all come back at the same instant."""
    doublings = min(failures - 1, 64)  # past that the cap holds anyway, and 2 ** 1024 overflows a float
    return min(base * 2 ** doublings, cap) * random.uniform(0.5, 1.0)
