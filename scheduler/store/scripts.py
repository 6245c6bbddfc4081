"""The Lua scripts one Redis client sends: their text and SHA1, loading them, and calling them.

A script is one or more files of a package's ``lua/`` folder joined (the store's scripts that
deliver start with the targets' ``deliver.lua``). A :class:`Scripts` set belongs to one client (the
store's, or a relay sender's for a target's own Redis) and is the only thing that sends them:

* it sends bare EVALSHA, and a NOSCRIPT reply (a restarted or flushed Redis: nothing ran) loads the
  script and sends the call again;
* it knows each script's text by its SHA1, because Redis names only the script and the line of a
  command the ACL refused inside one: the errors it raises name the command.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib.resources import files
from typing import Any

import redis


def lua(package: str, name: str) -> str:
    """The text of ``lua/<name>`` in ``package`` (shipped in the wheel as package data)."""
    return files(package).joinpath("lua", name).read_text(encoding="utf-8")


@dataclass(frozen=True)
class Script:
    text: str
    sha: str


class Scripts:
    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self._texts: dict[str, str] = {}

    @property
    def texts(self) -> Mapping[str, str]:
        """SHA1 -> text of every script this set sends (to name a command refused inside one)."""
        return self._texts

    def add(self, *texts: str) -> Script:
        """The script made of ``texts`` joined, known to this set from now on."""
        text = "\n".join(texts)
        script = Script(text, hashlib.sha1(text.encode()).hexdigest())
        self._texts[script.sha] = text
        return script

    def call(self, script: Script, keys: Sequence[str], args: Sequence[str | int]) -> Any:
        """One call; an error reply raises redis-py's ResponseError, for the caller to translate."""
        try:
            return self.client.evalsha(script.sha, len(keys), *keys, *args)
        except redis.exceptions.NoScriptError:
            self.client.script_load(script.text)
            return self.client.evalsha(script.sha, len(keys), *keys, *args)

    def pipelined(self, calls: Sequence[tuple[Script, Sequence[str], Sequence[str | int]]]) -> list[Any]:
        """``calls`` in one pipelined round trip (and one more for those Redis answered NOSCRIPT).
        Each reply in order; an error reply is left in its place as redis-py's ResponseError."""
        replies = self._pipeline(calls)
        missing = [n for n, reply in enumerate(replies) if isinstance(reply, redis.exceptions.NoScriptError)]
        if missing:
            for script in {calls[n][0] for n in missing}:
                self.client.script_load(script.text)
            for n, reply in zip(missing, self._pipeline([calls[n] for n in missing])):
                replies[n] = reply
        return replies

    def load(self, scripts: Sequence[Script]) -> None:
        """Load ``scripts`` ahead, so the first pipelined calls pay no NOSCRIPT round trip."""
        pipe = self.client.pipeline(transaction=False)
        for script in scripts:
            pipe.script_load(script.text)
        pipe.execute()

    def _pipeline(self, calls: Sequence[tuple[Script, Sequence[str], Sequence[str | int]]]) -> list[Any]:
        pipe = self.client.pipeline(transaction=False)
        for script, keys, args in calls:
            pipe.execute_command("EVALSHA", script.sha, len(keys), *keys, *args)
        return pipe.execute(raise_on_error=False)
