"""scheduler: a highly available clock that enqueues one job per tenant per tick, exactly once."""

__version__ = "0.1.0"
