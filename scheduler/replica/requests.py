"""Operators' requests that the leader carries out between passes: ``trigger`` and ``backfill``.

The command adds a request to ``{scheduler}:requests`` (a stream) and waits for its result. The
leader reads the stream between passes, sends the request's firings through fenced scripts, then
answers it in one fenced step that also removes it (complete.lua). A request whose leader dies
half-way is carried out by the next leader, and nothing the first one sent goes out twice:

* trigger: a manual firing per tenant, ``<schedule>/<tenant>/manual-<request id>``; the request's
  own dedup set holds the tenants already sent.
* backfill: the window's ticks, with the firing ids catch-up would give them, through the same
  dedup sets and finished-tick records as catch-up. So a tick already fired (by catch-up, or by an
  earlier backfill) is deduplicated, and a window is fired once however often it is asked for.
  It reaches back only as far as those records do (catchup_window + 24 h), and only up to the
  schedule's watermark: later ticks are the schedule's own to fire.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from loguru import logger

from scheduler.clock.cadence import ticks_between
from scheduler.clock.firing import format_instant
from scheduler.clock.planner import Fanout, TickPlan, ticks_in
from scheduler.errors import RedisUnavailable
from scheduler.replica.tracks import TrackState
from scheduler.store.delivery import Delivery
from scheduler.store.ledger import Decision
from scheduler.store.state import CHUNK, DEDUP_MARGIN, Acceptance, entry_instant, instant_of, token_parts
from scheduler.table import NO_TENANT, RedisSetTenants, Schedule

if TYPE_CHECKING:
    from scheduler.replica.work import Worker

REQUESTS_PER_TURN = 10
RESULT_KEPT = timedelta(days=1)  # how long a request's result waits for the command to read it
MAX_BACKFILL_FIRINGS = 1_000_000  # firings of one backfill request, at most
_EPSILON = timedelta(microseconds=1)


class Refused(Exception):
    """The request cannot be carried out; the reason is its answer."""


def carry_out_requests(worker: Worker, token: str) -> set[str]:
    """Carry out the waiting requests; returns the queues left with firings waiting out their jitter.
    RedisUnavailable and NotLeader propagate: the request stays, and is carried out later."""
    pending: set[str] = set()
    for request_id, fields in worker.store.requests(REQUESTS_PER_TURN):
        kind, name = fields.get("kind", ""), fields.get("schedule", "")
        line: list[str] = []
        try:
            schedule = _schedule(worker, name)
            if kind == "trigger":
                result, line = _trigger(worker, token, request_id, schedule, fields.get("tenant") or None)
            elif kind == "backfill":
                result, line = _backfill(worker, token, request_id, schedule, fields, pending)
            else:
                raise Refused(f"unknown request {kind!r}")
        except Refused as refusal:
            result = {"status": "refused", "error": str(refusal)}
            logger.warning("request {} ({} {}) refused: {}", request_id, kind, name, refusal)
        else:
            tenant = fields.get("tenant") or None
            single = {"tenant": tenant, "firing_id": result["firing_id"]} if kind == "trigger" and tenant else {}
            logger.bind(schedule=name, count=int(result["fired"]), **(single or {"tenant": tenant})).info(
                "request {}: {} {}{}: {} fired, {} deduplicated", request_id, kind, name,
                f" for {tenant}" if tenant else "", result["fired"], result["deduplicated"])
        result["epoch"] = str(token_parts(token)[1])
        worker.store.complete(token, request_id, result, name if line else None, line, RESULT_KEPT)
    return pending


def _schedule(worker: Worker, name: str) -> Schedule:
    try:
        return worker.table.schedule(name)
    except KeyError:
        raise Refused(f"no schedule named {name!r} in the running table ({worker.table.fingerprint})") from None


def _states(worker: Worker, schedule: Schedule) -> list[TrackState]:
    return [state for state in worker.tracks.values() if state.track.schedule.name == schedule.name]


def _tenants(worker: Worker, state: TrackState, tenant: str | None) -> Iterator[list[str]]:
    """The track's tenants in batches, or just ``tenant`` when it is one of them."""
    if tenant is None:
        yield from state.batches(worker.store.client)
        return
    if state.tenant_ids is not None:
        if tenant in state.tenant_ids:
            yield [tenant]
        return
    source = state.track.schedule.tenants
    assert isinstance(source, RedisSetTenants)
    with worker.store.errors("reading a tenant set"):
        member = worker.store.client.sismember(source.key, tenant)
    if member:
        yield [tenant]


def _tenant_count(worker: Worker, state: TrackState) -> int:
    if state.tenant_ids is not None:
        return len(state.tenant_ids)
    source = state.track.schedule.tenants
    assert isinstance(source, RedisSetTenants)
    with worker.store.errors("counting a tenant set"):
        return int(worker.store.client.scard(source.key))


def _check_tenant(schedule: Schedule, tenant: str | None, found: bool) -> None:
    if tenant is None:
        return
    if schedule.tenants is None:
        raise Refused(f"schedule {schedule.name!r} has no tenants: leave --tenant out")
    if not found:
        raise Refused(f"{tenant!r} is not a tenant of schedule {schedule.name!r} ({schedule.tenants.describe()})")


def _trigger(worker: Worker, token: str, request_id: str, schedule: Schedule,
             tenant: str | None) -> tuple[dict[str, str], list[str]]:
    instant = entry_instant(request_id)
    calls = []
    for state in _states(worker, schedule):
        for batch in _tenants(worker, state, tenant):
            for start in range(0, len(batch), CHUNK):
                calls.append(worker.store.trigger_call(token, request_id, schedule, format_instant(instant),
                                                       batch[start : start + CHUNK], RESULT_KEPT))
    _check_tenant(schedule, tenant, bool(calls))
    fired = deduplicated = 0
    for reply in worker.store.send(calls, "triggering a schedule"):
        if isinstance(reply, RedisUnavailable):
            raise reply
        fired, deduplicated = fired + reply[0], deduplicated + reply[1]
    worker._beat()
    extra = {"request": request_id} | ({"tenant": tenant} if tenant else {})
    line = Decision("triggered", extra=extra).line(schedule.name, schedule.name, instant, token_parts(token)[1],
                                                   fired, deduplicated)
    example = f"{schedule.name}/{tenant or (NO_TENANT if schedule.tenants is None else '<tenant>')}/manual-{request_id}"
    return {"status": "done", "fired": str(fired), "deduplicated": str(deduplicated), "firing_id": example}, line


def _backfill(worker: Worker, token: str, request_id: str, schedule: Schedule, fields: dict[str, str],
              pending: set[str]) -> tuple[dict[str, str], list[str]]:
    try:
        start, end = (instant_of(int(fields[name])) for name in ("from", "until"))
    except (KeyError, ValueError):
        raise Refused("malformed backfill request: it needs 'from' and 'until' in ms since the epoch") from None
    tenant = fields.get("tenant") or None
    now = worker.clock.read()
    remember = schedule.catchup_window + DEDUP_MARGIN
    horizon = now - remember
    if start < horizon:
        raise Refused(
            f"--from {format_instant(start)} is too far back: the scheduler remembers which ticks of "
            f"{schedule.name!r} it fired for catchup_window + 24 h, so only ticks after {format_instant(horizon)} "
            "can be backfilled exactly once")
    if end > now + timedelta(days=1):
        raise Refused(f"--until {format_instant(end)} is more than a day ahead of Redis's clock: backfill is for "
                      "ticks that have passed")
    states = _states(worker, schedule)
    windows: list[tuple[TrackState, list[datetime]]] = []
    left = firings = 0
    for state, watermark in zip(states, worker.store.watermarks([state.key for state in states])):
        handled_until = start - _EPSILON if watermark is None else max(start - _EPSILON, min(end, watermark))
        left += ticks_in(state.track, handled_until, end)[0]  # not handled by the schedule yet: its own to fire
        ticks = list(ticks_between(schedule.cadence, state.track.zone, start - _EPSILON, handled_until))
        windows.append((state, ticks))
        firings += len(ticks) * (1 if tenant else _tenant_count(worker, state))
    if firings > MAX_BACKFILL_FIRINGS:
        raise Refused(f"the window holds {firings:,} firings; at most {MAX_BACKFILL_FIRINGS:,} at a time: split it")
    delivery = Delivery(worker.store, token, progress=worker._beat)
    ticks_sent, found = 0, False
    first: datetime | None = None
    last: datetime | None = None
    for state, ticks in windows:
        for batch in _tenants(worker, state, tenant):
            found = True
            fanout = Fanout(state.track, batch)
            delivery.accept(schedule, state.key, [TickPlan(tick, fanout.firings_at(tick)) for tick in ticks], remember)
        if ticks:
            ticks_sent += len(ticks)
            first, last = min(first or ticks[0], ticks[0]), max(last or ticks[-1], ticks[-1])
            if tenant is None:  # a whole tick is finished, as catch-up finishes it; one tenant's is not
                decisions: dict[datetime | None, Decision] = {
                    tick: Decision("backfilled", extra={"request": request_id}) for tick in ticks}
                delivery.finish(schedule.name, state.key, ticks, ticks[0], state.watermark_ttl(now), remember,
                                decisions)
    _check_tenant(schedule, tenant, found)
    outcome = delivery.close()
    if outcome.error is not None:
        raise outcome.error
    accepted = Acceptance()
    for counts in outcome.accepted.values():
        accepted.add((counts.delivered, counts.pending, counts.duplicates))
    if accepted.pending:
        pending.add(schedule.queue)
    fired = accepted.delivered + accepted.pending
    line: list[str] = []
    if tenant is not None and first is not None and last is not None:  # whole ticks wrote a line each
        line = Decision("backfilled", span=(first, last, ticks_sent), extra={"request": request_id, "tenant": tenant}
                        ).line(schedule.name, schedule.name, None, token_parts(token)[1], fired, accepted.duplicates)
    result = {"status": "done", "ticks": str(ticks_sent), "fired": str(fired), "deduplicated": str(accepted.duplicates),
              "left": str(left)}
    return result, line
