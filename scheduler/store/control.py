"""What operators' commands read and write in the shared Redis, beside the running replicas.

Nothing here is fenced, and nothing here fires: a pause is a mark the leader reads at each pass, a
trigger or backfill is a request the leader carries out through its fenced scripts
(scheduler/replica/requests.py), and the rest only reads.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from scheduler.clock.instants import entry_instant, format_instant, ms_of, whole_ms
from scheduler.plan.ledger import Line
from scheduler.keys import Token
from scheduler.store.replies import pause_marks
from scheduler.store.scripts import lua
from scheduler.store.state import Store

PENDING_COUNTED = 10_000  # pending firings of a queue counted by schedule, at most
QUEUED_KEPT = timedelta(days=1)  # how long asking again finds the same request still queued, at least


def paused_field(schedule: str, tenant: str | None) -> str:
    """The field of ``{scheduler}:paused`` for a schedule, or one of its tenants."""
    return schedule if tenant is None else f"{schedule}/{tenant}"


@dataclass(frozen=True)
class LeaseView:
    replica: str | None
    epoch: int
    expires_in: float | None  # seconds, by Redis's clock


class Control:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.client = store.client
        self.keys = store.keys
        self._request = store.scripts.add(lua("scheduler.store", "request.lua"))

    # -- pause ----------------------------------------------------------------------------------

    def pause(self, schedule: str, tenant: str | None) -> tuple[bool, str]:
        """Mark ``schedule`` (or one tenant of it) paused; (newly paused, since when)."""
        field = paused_field(schedule, tenant)
        since = format_instant(self.store.time())
        with self.store.errors("pausing"):
            added = self.client.hsetnx(self.keys.paused, field, json.dumps({"since": since}))
            if not added:
                since = json.loads(self.client.hget(self.keys.paused, field) or "{}").get("since", since)
        return bool(added), since

    def resume(self, schedule: str, tenant: str | None) -> bool:
        """Lift the mark; False when there was none."""
        with self.store.errors("resuming"):
            return bool(self.client.hdel(self.keys.paused, paused_field(schedule, tenant)))

    def paused(self) -> dict[str, str]:
        """``schedule`` or ``schedule/tenant`` -> since when."""
        with self.store.errors("reading pauses"):
            marks = self.client.hgetall(self.keys.paused)
        return pause_marks(marks)

    # -- requests -------------------------------------------------------------------------------

    def request(self, kind: str, new: bool = False, **fields: str) -> tuple[str, bool]:
        """Ask the leader for a trigger or a backfill: (the request id, True), or (the id of the same
        request queued and unanswered, False), unless ``new`` asks for another all the same."""
        asked = {"kind": kind, **fields}
        pairs = [item for pair in asked.items() for item in pair]
        with self.store.errors("sending the request"):
            added, request_id = self.store.scripts.call(
                self._request, [self.keys.requests, self.keys.requested(asked)],
                [whole_ms(QUEUED_KEPT), int(new), *pairs])
        return request_id.decode(), bool(added)

    def result(self, request_id: str, timeout: float) -> dict[str, str] | None:
        """The request's result once a leader answered it, or None when none did within ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            with self.store.errors("waiting for the result"):
                found = self.client.hgetall(self.keys.result(request_id))
            if found:
                return {key.decode(): value.decode() for key, value in found.items()}
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.1)

    # -- history --------------------------------------------------------------------------------

    def history(self, schedule: str, count: int, since: datetime | None = None) -> list[Line]:
        """The schedule's last ``count`` ledger lines (after ``since``), oldest first."""
        low = str(ms_of(since)) if since else "-"
        with self.store.errors("reading the ledger"):
            entries = self.client.xrevrange(self.keys.history(schedule), "+", low, count=count)
        return [Line(entry_instant(entry), {key.decode(): value.decode() for key, value in fields.items()})
                for entry, fields in reversed(entries)]

    # -- status ---------------------------------------------------------------------------------

    def lease(self) -> LeaseView:
        pipe = self.client.pipeline(transaction=False)
        pipe.get(self.keys.lease)
        pipe.pttl(self.keys.lease)
        pipe.get(self.keys.epoch)
        with self.store.errors("reading the lease"):
            token, ttl, epoch = pipe.execute()
        if not token:
            return LeaseView(None, int(epoch or 0), None)
        held = Token.parse(token)
        return LeaseView(held.replica, held.epoch, ttl / 1000 if ttl and ttl > 0 else None)

    def running_table(self) -> dict[str, str]:
        with self.store.errors("reading the running table"):
            record = self.client.hgetall(self.keys.table)
        return {key.decode(): value.decode() for key, value in record.items()}

    def replicas(self, now: datetime) -> list[dict[str, Any]]:
        """Every replica heard from in the last hour: its report, and how long ago it was heard."""
        pipe = self.client.pipeline(transaction=False)
        pipe.zrange(self.keys.replicas, 0, -1, withscores=True)
        pipe.hgetall(self.keys.replica_info)
        with self.store.errors("reading replicas"):
            seen, info = pipe.execute()
        now_ms = ms_of(now)
        found = []
        for replica, heard in seen:
            report = json.loads(info.get(replica, b"{}"))
            found.append({"replica": replica.decode(), "seen_ago": round(max(0.0, (now_ms - heard) / 1000), 3),
                          **report})
        return found

    def queue_view(self, queues: list[str]) -> list[dict[str, Any]]:
        """Per queue: its pending firings (waiting out their jitter), counted by schedule, and its outbox."""
        pipe = self.client.pipeline(transaction=False)
        for queue in queues:
            pipe.zcard(self.keys.pending(queue))
            pipe.zrange(self.keys.pending(queue), 0, PENDING_COUNTED - 1)
            pipe.xlen(self.keys.outbox(queue))
            pipe.xrange(self.keys.outbox(queue), count=1)
        with self.store.errors("reading queues"):
            replies = pipe.execute()
        views = []
        for n, queue in enumerate(queues):
            total, ids, outbox, first = replies[4 * n : 4 * n + 4]
            by_schedule: dict[str, int] = {}
            for firing_id in ids:
                name = firing_id.decode().partition("/")[0]
                by_schedule[name] = by_schedule.get(name, 0) + 1
            oldest = entry_instant(first[0][0]) if first else None
            views.append({"queue": queue, "pending": int(total), "pending_by_schedule": by_schedule,
                          "pending_counted_all": int(total) <= PENDING_COUNTED, "outbox": int(outbox),
                          "outbox_oldest": format_instant(oldest) if oldest else None})
        return views
