"""``scheduler dry-run --histogram``: firings per minute (or wider bucket) as a terminal bar chart."""

from __future__ import annotations

import shutil
from bisect import bisect_left
from collections import Counter
from datetime import timedelta
from typing import TextIO

from scheduler.clock.instants import EPOCH
from scheduler.durations import format_duration
from scheduler.plan.preview import Batch, Run, Stream, Window, micros

HISTOGRAM_ROWS = 60
BUCKETS = [timedelta(minutes=m) for m in (1, 2, 5, 10, 15, 30)] + [
    timedelta(hours=h) for h in (1, 2, 3, 4, 6, 12, 24, 48)
] + [timedelta(days=7)]

_MICROSECOND = timedelta(microseconds=1)


class Histogram:
    """Firings per bucket of enqueue_at, as bars scaled to the terminal. Buckets are aligned to the epoch
    (so a bucket of an hour starts at :00 UTC); without --bucket they are a minute, or wider on long
    windows so the chart keeps to about 60 rows."""

    def __init__(self, window: Window, bucket: timedelta | None) -> None:
        self.window = window
        self.bucket = bucket

    def write(self, found: Stream, out: TextIO) -> int:
        base = self.bucket or BUCKETS[0]
        base_us = base // _MICROSECOND
        counts: Counter[int] = Counter()
        late = 0
        if self.window.count is None:  # order does not matter: count whole batches
            for batch in found.batches():
                count_run(counts, batch, 0, len(batch.offsets), base_us)
                late += sum(batch.late) if batch.late else 0
        else:
            left = self.window.count
            for chunk in found.chunks(_instants):
                if isinstance(chunk, Run):
                    batch, lo, hi = chunk
                    hi = min(hi, lo + left)
                    count_run(counts, batch, lo, hi, base_us)
                    late += sum(batch.late[lo:hi]) if batch.late else 0
                    left -= hi - lo
                else:
                    for enqueue_us, is_late in chunk[:left]:
                        counts[enqueue_us // base_us] += 1
                        late += is_late
                    left -= len(chunk[:left])
                if not left:
                    break
        first = micros(self.window.start) // base_us
        last = max(counts, default=first)
        if self.window.count is None:
            last = max(last, (micros(self.window.end) - 1) // base_us)
        size = self.bucket or _bucket_for((last - first + 1) * base)
        factor = size // base
        rows: Counter[int] = Counter()
        for key, count in counts.items():
            rows[key // factor] += count
        self._draw(rows, first // factor, last // factor, size, out)
        return late

    def _draw(self, rows: Counter[int], first: int, last: int, size: timedelta, out: TextIO) -> None:
        total, peak = sum(rows.values()), max(rows.values(), default=0)
        seconds = size % timedelta(minutes=1) != timedelta(0)
        label_format = "%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M"
        count_width = max(len(f"{peak:,}"), 5)
        label_width = len(EPOCH.strftime(label_format))
        room = max(10, shutil.get_terminal_size((80, 24)).columns - label_width - count_width - 4)
        bar = "\u2588" if _can_encode(out, "\u2588") else "#"
        out.write(
            f"firings per {format_duration(size)} by enqueue_at, bucket start in UTC: {total:,} firings, "
            f"at most {peak:,} in one bucket; {self.window.describe()}\n"
        )
        lines = []
        for key in range(first, last + 1):
            count = rows.get(key, 0)
            length = max(1, round(count * room / peak)) if count else 0
            start = EPOCH + size * key
            lines.append(f"{start.strftime(label_format)}  {count:>{count_width},}  {bar * length}\n")
            if len(lines) > 4096:
                out.write("".join(lines))
                lines.clear()
        out.write("".join(lines))


def _instants(batch: Batch, lo: int, hi: int) -> list[tuple[int, bool]]:
    late = batch.late or [False] * len(batch.offsets)
    return [(batch.tick_us + batch.offsets[n], late[n]) for n in range(lo, hi)]


def count_run(counts: Counter[int], batch: Batch, lo: int, hi: int, size_us: int) -> None:
    """Add firings lo..hi-1 of a batch to their buckets: a bisection per bucket, not a step per firing."""
    if hi <= lo:
        return
    offsets, tick_us = batch.offsets, batch.tick_us
    first = (tick_us + offsets[lo]) // size_us
    last = (tick_us + offsets[hi - 1]) // size_us
    if last - first >= hi - lo:  # few firings over many buckets
        for n in range(lo, hi):
            counts[(tick_us + offsets[n]) // size_us] += 1
        return
    for key in range(first, last + 1):
        stop = hi if key == last else bisect_left(offsets, (key + 1) * size_us - tick_us, lo, hi)
        if stop > lo:
            counts[key] += stop - lo
        lo = stop


def _bucket_for(span: timedelta) -> timedelta:
    for size in BUCKETS:
        if span <= size * HISTOGRAM_ROWS:
            return size
    days = -(-span // (timedelta(days=1) * HISTOGRAM_ROWS))
    return timedelta(days=days)


def _can_encode(out: TextIO, text: str) -> bool:
    try:
        text.encode(getattr(out, "encoding", None) or "ascii")
    except (UnicodeEncodeError, LookupError):
        return False
    return True
