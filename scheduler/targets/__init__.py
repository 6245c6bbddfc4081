"""Queue targets: where the leader's firings land."""

from scheduler.targets.base import Target
from scheduler.targets.stream import STREAM_FIELDS, StreamTarget

__all__ = ["STREAM_FIELDS", "StreamTarget", "Target"]
