"""``scheduler dry-run``'s lists of firings: jsonl and csv for programs, a table for people.

Both read a Stream of the window's firings in order. A long window holds millions of firings, so
the lines are put together from pieces computed once per slot (schedule and tenant) and once per
second, not formatted field by field.
"""

from __future__ import annotations

import json
import re
from bisect import bisect_right
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import TextIO
from zoneinfo import ZoneInfo

from scheduler.clock.instants import EPOCH, format_tick, utc_second
from scheduler.durations import format_duration
from scheduler.plan.preview import Batch, Lane, Run, Stream, Window

CSV_HEADER = "firing_id,tick,enqueue_at,schedule,tenant,queue,job,args,jitter_ms,timezone,late\n"

_US = 1_000_000  # microseconds a second
_MILLIS = [f".{n:03d}Z" for n in range(1000)]
_CHUNK = 2048  # firings of a long run joined at a time (about 0.5 MB: it stays in the caches)


# -- jsonl and csv ------------------------------------------------------------------------------------


_JSON_PLAIN = re.compile(r'[ !#-\[\]-~]*')  # printable ASCII but for " and backslash: as they are in JSON


def _json(text: str) -> str:
    """The inside of a JSON string."""
    return text if _JSON_PLAIN.fullmatch(text) else json.dumps(text)[1:-1]


def _csv(text: str) -> str:
    if any(char in text for char in ',"\r\n'):
        return '"' + text.replace('"', '""') + '"'
    return text


@dataclass
class _Pieces:
    """A lane's line pieces, one per slot; and the slots where the offset's second changes."""

    head: list[str]  # up to the tick in the firing id
    close: list[str] | None  # csv: the quote closing an id that needed quoting, after its tick
    tail: list[str]  # from the offset's milliseconds (``.123Z``, five characters) to the end of the line
    offset_seconds: list[int]
    group_starts: list[int]  # the first slot of each run of equal offset_seconds


class Lines:
    """jsonl or csv, a line per firing: ``head tick middle tick separator second tail``.

    Head and tail are computed once per slot, the part from the tick to the enqueue second once per
    tick and second, so an on-time run is put together with three slice assignments and a join per
    chunk, not a format per firing. jsonl keys and csv columns come in the order of CSV_HEADER.
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.middle, self.separator = ('","tick":"', '","enqueue_at":"') if kind == "jsonl" else (",", ",")
        self._pieces: dict[int, _Pieces] = {}

    def write(self, found: Stream, out: TextIO, limit: int | None = None, count_late: bool = False) -> int:
        """Write the firings (the first ``limit``); return how many were late (when counted)."""
        if self.kind == "csv":
            out.write(CSV_HEADER)
        left = limit if limit is not None else -1
        late = 0
        for chunk in found.chunks(self.lines):
            if isinstance(chunk, Run):
                batch, lo, hi = chunk
                hi = hi if left < 0 else min(hi, lo + left)
                if batch.positions is None and batch.tick_us % _US == 0 and self.pieces(batch.lane).close is None:
                    self._write_on_time(batch, lo, hi, out)
                else:
                    out.write("".join(self.lines(batch, lo, hi)))
                    late += sum(batch.late[lo:hi]) if batch.late else 0
                written = hi - lo
            else:
                lines = chunk if left < 0 else chunk[:left]
                out.write("".join(lines))
                if count_late:
                    late += sum(1 for line in lines if line.endswith(self._late_end))
                written = len(lines)
            if left >= 0:
                left -= written
                if not left:
                    break
        return late

    @property
    def _late_end(self) -> str:
        return "true}\n" if self.kind == "jsonl" else ",true\n"

    def pieces(self, lane: Lane) -> _Pieces:
        found = self._pieces.get(id(lane))
        if found is None:
            found = self._pieces[id(lane)] = self._lane_pieces(lane)
        return found

    def _lane_pieces(self, lane: Lane) -> _Pieces:
        close: list[str] | None = None
        tracks = [fanout.track for fanout in lane.fanouts]
        if self.kind == "jsonl":
            names = [_json(track.schedule.name) for track in tracks]
            common = [
                f'"queue":{json.dumps(track.schedule.queue)},"job":{json.dumps(track.schedule.job)},'
                f'"args":{track.schedule.args_json},"jitter_ms":'
                for track in tracks
            ]
            ends = [f',"timezone":{json.dumps(track.zone.key)},"late":false}}\n' for track in tracks]
            tenants = [_json(tenant) for tenant in lane.tenants]
            head = [f'{{"firing_id":"{names[m]}/{tenant}/' for m, tenant in zip(lane.members, tenants)]
            rest = [f'","schedule":"{names[m]}","tenant":"{tenant}",' for m, tenant in zip(lane.members, tenants)]
        else:
            names = [_csv(track.schedule.name) for track in tracks]
            common = [
                f"{_csv(track.schedule.queue)},{_csv(track.schedule.job)},{_csv(track.schedule.args_json)},"
                for track in tracks
            ]
            ends = [f",{_csv(track.zone.key)},false\n" for track in tracks]
            head = [f"{name}/{tenant}/" for name, tenant in zip(lane.names, lane.tenants)]
            rest = [f",{names[m]},{_csv(tenant)}," for m, tenant in zip(lane.members, lane.tenants)]
            if any(_csv(text) != text for text in head):  # rare: a quote or comma in a name
                close = ['"' if _csv(text) != text else "" for text in head]
                head = ['"' + text.replace('"', '""') if _csv(text) != text else text for text in head]
        tail = [
            f"{_MILLIS[offset // 1000 % 1000]}{rest[n]}{common[m]}{offset // 1000}{ends[m]}"
            for n, (offset, m) in enumerate(zip(lane.offsets, lane.members))
        ]
        offset_seconds = [offset // _US for offset in lane.offsets]
        starts = [n for n, second in enumerate(offset_seconds) if n == 0 or second != offset_seconds[n - 1]]
        return _Pieces(head, close, tail, offset_seconds, starts)

    def _middles(self, batch: Batch, pieces: _Pieces, lo: int, hi: int) -> list[str]:
        """From the tick to the enqueue second, for on-time slots lo..hi-1: one string per distinct second."""
        tick = format_tick(batch.tick)
        prefix = f"{tick}{self.middle}{tick}{self.separator}"
        tick_second = batch.tick_us // _US
        if hi - lo < 64:  # a few firings, maybe each in its own second
            return [prefix + utc_second(tick_second + offset) for offset in pieces.offset_seconds[lo:hi]]
        starts = pieces.group_starts
        group = bisect_right(starts, lo) - 1
        middles: list[str] = []
        while group < len(starts) and starts[group] < hi:
            stop = min(starts[group + 1] if group + 1 < len(starts) else hi, hi)
            middle = prefix + utc_second(tick_second + pieces.offset_seconds[starts[group]])
            middles += [middle] * (stop - max(lo, starts[group]))
            group += 1
        return middles

    def _write_on_time(self, batch: Batch, lo: int, hi: int, out: TextIO) -> None:
        """An on-time run of a whole-second tick, a chunk at a time: slice assignments and one join."""
        pieces = self.pieces(batch.lane)
        head, tail = pieces.head, pieces.tail
        middles = self._middles(batch, pieces, lo, hi)
        for start in range(lo, hi, _CHUNK):
            stop = min(hi, start + _CHUNK)
            line = [""] * (3 * (stop - start))
            line[0::3] = head[start:stop]
            line[1::3] = middles[start - lo : stop - lo]
            line[2::3] = tail[start:stop]
            out.write("".join(line))

    def lines(self, batch: Batch, lo: int, hi: int) -> list[str]:
        """Firings lo..hi-1 of any batch, a line each."""
        pieces = self.pieces(batch.lane)
        head, close, tail = pieces.head, pieces.close, pieces.tail
        if batch.positions is None and batch.tick_us % _US == 0 and close is None:
            return [h + m + t for h, m, t in zip(head[lo:hi], self._middles(batch, pieces, lo, hi), tail[lo:hi])]
        tick = format_tick(batch.tick)
        after = f"{self.middle}{tick}{self.separator}"
        lines = []
        for n in range(lo, hi):
            slot = batch.positions[n] if batch.positions is not None else n
            second, rest = divmod(batch.tick_us + batch.offsets[n], _US)
            end = tail[slot][5:]
            if batch.late is not None and batch.late[n]:
                before, _, behind = end.rpartition("false")
                end = f"{before}true{behind}"
            quote = close[slot] if close is not None else ""
            lines.append(f"{head[slot]}{tick}{quote}{after}{utc_second(second)}{_MILLIS[rest // 1000]}{end}")
        return lines


Row = tuple[str, bool, str]  # the line, whether late, the schedule


class TableFormat:
    """A table for people: enqueue time in UTC and in the schedule's (or tenant's) zone, the tick, the
    jitter offset, schedule, tenant, queue and job; a footer line with counts."""

    def __init__(self, found: Stream, window: Window) -> None:
        self.window = window
        lanes = found.lanes
        tracks = [fanout.track for lane in lanes for fanout in lane.fanouts]
        self.widths = [
            24,
            31 + max([len(track.zone.key) for track in tracks] + [3]),
            20,
            max([len(_jitter(lane.offsets[-1])) for lane in lanes if lane.offsets] + [6]),
            max([len(track.schedule.name) for track in tracks] + [8]),
            max([max(map(len, lane.tenants)) for lane in lanes if lane.tenants] + [6]),
            max([len(track.schedule.queue) for track in tracks] + [5]),
        ]
        self.local: dict[tuple[str, int], tuple[str, str]] = {}

    def line(self, cells: list[str]) -> str:
        *fixed, job, late = cells
        text = "  ".join(cell.ljust(width) for cell, width in zip(fixed, self.widths))
        return f"{text}  {job}{'  ' + late if late else ''}".rstrip() + "\n"

    def rows(self, batch: Batch, lo: int, hi: int) -> list[Row]:
        lane, outage = batch.lane, self.window.outage
        tick = format_tick(batch.tick)
        rows = []
        for n in range(lo, hi):
            slot = batch.positions[n] if batch.positions is not None else n
            schedule, zone = lane.schedule(slot), lane.zone_of(slot)
            offset = batch.offsets[n]
            second, rest = divmod(batch.tick_us + offset, _US)
            late = batch.late is not None and batch.late[n]
            rows.append((self.line([
                f"{utc_second(second)}{_MILLIS[rest // 1000]}",
                self._local(zone, second, rest // 1000),
                tick,
                _jitter(offset),
                schedule.name,
                lane.tenants[slot],
                schedule.queue,
                schedule.job,
                f"late, enqueued at {format_tick(outage[1])}" if late and outage else "",
            ]), late, schedule.name))
        return rows

    def write(self, found: Stream, out: TextIO) -> int:
        header = ["ENQUEUE AT (UTC)", "LOCAL TIME", "TICK (UTC)", "JITTER", "SCHEDULE", "TENANT", "QUEUE", "JOB"]
        out.write(self.line(header + (["LATE"] if self.window.outage else [""])))
        limit = self.window.count
        total = late = 0
        schedules: set[str] = set()
        for rows in self._row_lists(found):
            if limit is not None:
                rows = rows[: limit - total]
            out.write("".join(row[0] for row in rows))
            total += len(rows)
            late += sum(row[1] for row in rows)
            schedules.update(row[2] for row in rows)
            if total == limit:
                break
        out.write(self.footer(total, late, len(schedules)))
        return late

    def _row_lists(self, found: Stream) -> Iterator[list[Row]]:
        for chunk in found.chunks(self.rows):
            if isinstance(chunk, Run):
                for start in range(chunk.lo, chunk.hi, _CHUNK):
                    yield self.rows(chunk.batch, start, min(chunk.hi, start + _CHUNK))
            else:
                yield chunk

    def _local(self, zone: ZoneInfo, second: int, millis: int) -> str:
        key = (zone.key, second)
        text = self.local.get(key)
        if text is None:
            if len(self.local) > 100_000:
                self.local.clear()
            local = (EPOCH + timedelta(seconds=second)).astimezone(zone)
            offset = local.strftime("%z")
            text = self.local[key] = f"{local:%Y-%m-%d %H:%M:%S}", f"{offset[:3]}:{offset[3:]} {zone.key}"
        day_time, zone_text = text
        return f"{day_time}.{millis:03d} {zone_text}"

    def footer(self, total: int, late: int, schedules: int) -> str:
        if not total:
            return f"no firings: {self.window.describe()}\n"
        late_part = f", {late:,} of them late" if self.window.outage else ""
        return (
            f"{total:,} firing{'s' * (total != 1)}{late_part}, of {schedules} schedule{'s' * (schedules != 1)}: "
            f"{self.window.describe()}\n"
        )


def _jitter(offset_us: int) -> str:
    return "+" + format_duration(timedelta(microseconds=offset_us))
