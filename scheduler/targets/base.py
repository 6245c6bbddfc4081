"""What a queue target is: where accepted firings are written, inside the fenced Redis scripts.

A target contributes a Lua function ``deliver(keys, message)`` that the enqueue and dispatch
scripts call, and the Redis keys it writes for a queue. Because the write happens inside the same
script that checks the lease and the dedup record, a target gets exactly-once for free. Targets
whose queue lives outside Redis (SQS) will deliver into an outbox stream drained by a relay.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from importlib.resources import files


class Target(ABC):
    #: the file under scheduler/targets/lua/ that defines ``deliver(keys, message)``
    lua_file: str

    def deliver_lua(self) -> str:
        return files("scheduler.targets").joinpath("lua", self.lua_file).read_text(encoding="utf-8")

    @abstractmethod
    def keys(self, queue: str) -> list[str]:
        """The Redis keys ``deliver`` writes for ``queue``, in the order it reads them."""
