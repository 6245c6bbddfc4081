"""What the scripts and reads answer, decoded into the scheduler's values (scripts' replies are
arrays of integers and strings; their meaning is in each script's header)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

from scheduler.clock.instants import instant_of
from scheduler.errors import RedisRefused


def watermarks(keys: Sequence[str], values: Sequence[bytes | None]) -> list[datetime | None | RedisRefused]:
    """MGET of watermark keys: each track's last handled tick, None for a track never handled, or
    the refusal to read a key that holds no tick (garbage written there), so only its track stops."""
    return [_watermark(key, value) for key, value in zip(keys, values)]


def _watermark(key: str, value: bytes | None) -> datetime | None | RedisRefused:
    if not value:
        return None
    try:
        return instant_of(int(value))
    except ValueError:
        return RedisRefused(f"reading watermark '{key}'", f"it holds {value[:32]!r}, not a tick in milliseconds")


def pause_marks(marks: Mapping[bytes, bytes]) -> dict[str, str]:
    """``{scheduler}:paused`` as read: ``schedule`` or ``schedule/tenant`` -> since when."""
    return {field.decode(): _since(value) for field, value in marks.items()}


def _since(mark: bytes) -> str:
    """A mark's ``since``; a mark that is no JSON object still pauses, since an unknown instant."""
    try:
        return str(json.loads(mark).get("since", ""))
    except (ValueError, AttributeError):
        return ""


def dispatched(reply: Sequence[Any]) -> tuple[int, datetime | None]:
    """A dispatch call's reply as (firings moved, the next pending enqueue_at or None)."""
    moved, upcoming = reply[0], reply[1]
    return int(moved), (instant_of(upcoming) if upcoming >= 0 else None)


def dispatched_groups(reply: Sequence[Any]) -> Iterator[tuple[str, int, bool, int]]:
    """What a dispatch call delivered, for metrics: (schedule, lateness in ms, late, firings) groups."""
    flat = reply[2] if len(reply) > 2 else ()
    for n in range(0, len(flat), 4):
        schedule = flat[n]
        yield (schedule.decode() if isinstance(schedule, bytes) else str(schedule), int(flat[n + 1]),
               bool(flat[n + 2]), int(flat[n + 3]))


def entries(reply: Sequence[tuple[bytes, Mapping[bytes, bytes]]]) -> list[tuple[str, dict[str, str]]]:
    """Stream entries as read (XRANGE, one stream of XREAD): [(entry id, fields)] as text."""
    return [(entry.decode(), {key.decode(): value.decode() for key, value in fields.items()})
            for entry, fields in reply]
