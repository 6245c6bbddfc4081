"""Best-effort line numbers for places in a TOML text (tomllib reports none once parsing succeeds)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_HEADER = re.compile(r"^\s*(\[\[?)\s*([A-Za-z0-9_.\"' -]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(r"^\s*(\"[^\"]*\"|'[^']*'|[A-Za-z0-9_-]+)\s*=")


@dataclass
class _Block:
    line: int
    keys: dict[str, int] = field(default_factory=dict)


class Locator:
    """Maps (table, index, key) to the line where a user would look for it."""

    def __init__(self, text: str) -> None:
        self._blocks: dict[tuple[str, int], _Block] = {}
        counts: dict[str, int] = {}
        current = _Block(line=1)
        self._blocks[("", 0)] = current
        for number, line in enumerate(text.split("\n"), start=1):
            header = _HEADER.match(line)
            if header:
                name = header.group(2).strip().strip("\"'")
                index = counts.get(name, 0)
                counts[name] = index + 1 if header.group(1) == "[[" else 1
                current = _Block(line=number)
                self._blocks[(name, index)] = current
                continue
            key = _KEY.match(line)
            if key:
                current.keys.setdefault(key.group(1).strip("\"'"), number)

    def line(self, table: str, index: int = 0, key: str | None = None) -> int | None:
        block = self._blocks.get((table, index))
        if block is None:
            return None
        if key is not None and key in block.keys:
            return block.keys[key]
        return block.line
