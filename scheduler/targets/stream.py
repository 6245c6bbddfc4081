"""Redis Streams: one stream per queue, one XADD per firing."""

from __future__ import annotations

from scheduler.targets.base import Target

STREAM_FIELDS = ("firing_id", "schedule", "tenant", "tick", "enqueue_at", "job", "args", "queue", "epoch")


class StreamTarget(Target):
    lua_file = "stream.lua"

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def keys(self, queue: str) -> list[str]:
        return [self.stream(queue)]

    def stream(self, queue: str) -> str:
        """The stream a worker reads for ``queue``: ``{scheduler}:queue:<queue>`` by default."""
        return f"{self.prefix}:queue:{queue}"
