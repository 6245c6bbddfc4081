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

A backfill goes in steps: read the window from the request (``backfill_window``), refuse what
reaches too far (``check_reach``), find each track's ticks left to fire (``backfill_ticks``), bound
the firings, send them, and say what was done (``backfill_result``). All but the sending are pure.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from loguru import logger

from scheduler.clock.cadence import ticks_between
from scheduler.clock.instants import entry_instant, format_instant, instant_of
from scheduler.errors import RedisRefused, RedisUnavailable
from scheduler.keys import Token
from scheduler.plan.ledger import Decision
from scheduler.plan.passes import TrackPlan
from scheduler.plan.planner import Fanout, TickPlan, ticks_in
from scheduler.replica.tracks import TrackState
from scheduler.store.calls import Acceptance
from scheduler.store.delivery import Delivery
from scheduler.store.state import CHUNK, DEDUP_MARGIN, Store
from scheduler.table import NO_TENANT, RedisSetTenants, Schedule, Table
from scheduler.targets import Routes, Target
from scheduler.tenants import TenantSets

REQUESTS_PER_TURN = 10
RESULT_KEPT = timedelta(days=1)  # how long a request's result waits for the command to read it
MAX_BACKFILL_FIRINGS = 1_000_000  # firings of one backfill request, at most
BACKFILL_AHEAD = timedelta(days=1)  # how far past Redis's clock a backfill's --until may reach
_EPSILON = timedelta(microseconds=1)


class Refused(Exception):
    """The request cannot be carried out; the reason is its answer."""


@dataclass(frozen=True)
class BackfillTicks:
    """One track's part of a backfill window: the ticks to fire, and how many later ticks of the
    window the schedule has not handled yet (left to it)."""

    state: TrackState
    ticks: list[datetime]
    left: int


class Requests:
    """Carries out the waiting requests, with what it is given: the store, the tenant sets, Redis's
    clock (``now``), and ``progress`` to call after each round trip (the work loop's heartbeat)."""

    def __init__(self, store: Store, tenants: TenantSets, now: Callable[[], datetime],
                 progress: Callable[[], None]) -> None:
        self.store = store
        self.tenants = tenants
        self.now = now
        self.progress = progress

    def carry_out(self, token: Token, table: Table, tracks: Mapping[str, TrackState], routes: Routes) -> set[str]:
        """Carry out the waiting requests against the running ``table`` (its ``tracks``, its
        ``routes``); returns the queues left with firings waiting out their jitter. A request Redis
        refuses (a tenant set of the wrong type, a command the ACL denies) is answered with that
        refusal and removed, never retried; what it sent before stays sent. Redis unreachable and
        NotLeader propagate: the request stays, and is carried out later."""
        pending: set[str] = set()
        for request_id, fields in self.store.requests(REQUESTS_PER_TURN):
            kind, name = fields.get("kind", ""), fields.get("schedule", "")
            tenant = fields.get("tenant") or None
            line: list[str] = []
            try:
                schedule = _schedule(table, name)
                states = [state for state in tracks.values() if state.track.schedule.name == name]
                target = routes.target(schedule.queue)
                if kind == "trigger":
                    result, line = self._trigger(token, request_id, schedule, states, tenant, target)
                elif kind == "backfill":
                    result, line = self._backfill(token, request_id, schedule, states, fields, target, pending)
                else:
                    raise Refused(f"unknown request {kind!r}")
            except Refused as refusal:
                result = {"status": "refused", "error": str(refusal)}
                logger.warning("request {} ({} {}) refused: {}", request_id, kind, name, refusal)
            except RedisRefused as error:  # answered and removed: retrying it would only meet the same refusal
                result = {"status": "refused", "error": f"Redis refused it while {error.doing}: {error.reply}"}
                logger.warning("request {} ({} {}) refused by Redis while {}: {}", request_id, kind, name, error.doing,
                               error.reply)
            else:
                single = {"tenant": tenant, "firing_id": result["firing_id"]} if kind == "trigger" and tenant else {}
                logger.bind(schedule=name, count=int(result["fired"]), **(single or {"tenant": tenant})).info(
                    "request {}: {} {}{}: {} fired, {} deduplicated", request_id, kind, name,
                    f" for {tenant}" if tenant else "", result["fired"], result["deduplicated"])
            result["epoch"] = str(token.epoch)
            self.store.complete(token, request_id, fields, result, name if line else None, line, RESULT_KEPT)
        return pending

    # -- tenants --------------------------------------------------------------------------------

    def _tenants(self, state: TrackState, tenant: str | None) -> Iterator[list[str]]:
        """The track's tenants in batches, or just ``tenant`` when it is one of them."""
        if tenant is None:
            yield from state.batches(self.tenants)
            return
        if state.tenant_ids is not None:
            if tenant in state.tenant_ids:
                yield [tenant]
            return
        if self.tenants.contains(_redis_set(state), tenant):
            yield [tenant]

    def _tenant_count(self, state: TrackState) -> int:
        if state.tenant_ids is not None:
            return len(state.tenant_ids)
        return self.tenants.count(_redis_set(state))

    # -- trigger --------------------------------------------------------------------------------

    def _trigger(self, token: Token, request_id: str, schedule: Schedule, states: Sequence[TrackState],
                 tenant: str | None, target: Target) -> tuple[dict[str, str], list[str]]:
        instant = entry_instant(request_id)
        calls = []
        for state in states:
            for batch in self._tenants(state, tenant):
                for start in range(0, len(batch), CHUNK):
                    calls.append(self.store.trigger_call(token, request_id, schedule, format_instant(instant),
                                                         batch[start : start + CHUNK], RESULT_KEPT, target))
        check_tenant(schedule, tenant, bool(calls))
        fired = deduplicated = 0
        for reply in self.store.send(token, calls, "triggering a schedule"):
            if isinstance(reply, RedisUnavailable):
                raise reply
            fired, deduplicated = fired + reply[0], deduplicated + reply[1]
        self.progress()
        extra = {"request": request_id} | ({"tenant": tenant} if tenant else {})
        line = Decision("triggered", extra=extra).line(schedule.name, schedule.name, instant, token.epoch,
                                                       fired, deduplicated)
        example = f"{schedule.name}/{tenant or (NO_TENANT if schedule.tenants is None else '<tenant>')}/manual-{request_id}"
        return {"status": "done", "fired": str(fired), "deduplicated": str(deduplicated), "firing_id": example}, line

    # -- backfill -------------------------------------------------------------------------------

    def _backfill(self, token: Token, request_id: str, schedule: Schedule, states: Sequence[TrackState],
                  fields: Mapping[str, str], target: Target, pending: set[str]) -> tuple[dict[str, str], list[str]]:
        start, end = backfill_window(fields)
        tenant = fields.get("tenant") or None
        now = self.now()
        check_reach(schedule, start, end, now)
        windows = backfill_ticks(states, self.store.watermarks([state.key for state in states]), start, end)
        firings = sum(len(window.ticks) * (1 if tenant else self._tenant_count(window.state)) for window in windows)
        if firings > MAX_BACKFILL_FIRINGS:
            raise Refused(f"the window holds {firings:,} firings; at most {MAX_BACKFILL_FIRINGS:,} at a time: split it")
        accepted = self._send_backfill(token, request_id, schedule, windows, tenant, target, now)
        if accepted.pending:
            pending.add(schedule.queue)
        return backfill_result(request_id, schedule, windows, tenant, accepted, token.epoch)

    def _send_backfill(self, token: Token, request_id: str, schedule: Schedule, windows: Sequence[BackfillTicks],
                       tenant: str | None, target: Target, now: datetime) -> Acceptance:
        """Send every window's firings, as catch-up sends them; whole ticks (no ``tenant``) are
        finished as catch-up finishes them, each with its ledger line."""
        remember = schedule.catchup_window + DEDUP_MARGIN
        delivery = Delivery(self.store, token, progress=self.progress)
        found = False
        for window in windows:
            state, ticks = window.state, window.ticks
            for batch in self._tenants(state, tenant):
                found = True
                fanout = Fanout(state.track, batch)
                delivery.accept(schedule, state.key, [TickPlan(tick, fanout.firings_at(tick)) for tick in ticks],
                                remember, target, unsent=True)
            if ticks and tenant is None:  # a whole tick is finished, as catch-up finishes it; one tenant's is not
                decisions: dict[datetime | None, Decision] = {
                    tick: Decision("backfilled", extra={"request": request_id}) for tick in ticks}
                plan = TrackPlan(state.key, schedule, ticks[0], ticks[0], ticks, decisions)
                delivery.finish(plan, state.watermark_ttl(now), remember)
        check_tenant(schedule, tenant, found)
        outcome = delivery.close()
        if outcome.error is not None:
            raise outcome.error
        accepted = Acceptance()
        for counts in outcome.accepted.values():
            accepted.add((counts.delivered, counts.pending, counts.duplicates))
        return accepted


def _schedule(table: Table, name: str) -> Schedule:
    try:
        return table.schedule(name)
    except KeyError:
        raise Refused(f"no schedule named {name!r} in the running table ({table.fingerprint})") from None


def _redis_set(state: TrackState) -> str:
    source = state.track.schedule.tenants
    assert isinstance(source, RedisSetTenants)
    return source.key


def check_tenant(schedule: Schedule, tenant: str | None, found: bool) -> None:
    """Refuse a ``--tenant`` the schedule does not fan out to (``found``: whether any was)."""
    if tenant is None:
        return
    if schedule.tenants is None:
        raise Refused(f"schedule {schedule.name!r} has no tenants: leave --tenant out")
    if not found:
        raise Refused(f"{tenant!r} is not a tenant of schedule {schedule.name!r} ({schedule.tenants.describe()})")


def backfill_window(fields: Mapping[str, str]) -> tuple[datetime, datetime]:
    """The request's window, ``from`` and ``until`` (ms since the epoch, both included)."""
    try:
        start, end = (instant_of(int(fields[name])) for name in ("from", "until"))
    except (KeyError, ValueError):
        raise Refused("malformed backfill request: it needs 'from' and 'until' in ms since the epoch") from None
    return start, end


def check_reach(schedule: Schedule, start: datetime, end: datetime, now: datetime) -> None:
    """Refuse a window that starts before the dedup records reach back (catchup_window + 24 h
    before ``now``), or ends more than a day ahead of ``now``."""
    horizon = now - (schedule.catchup_window + DEDUP_MARGIN)
    if start < horizon:
        raise Refused(
            f"--from {format_instant(start)} is too far back: the scheduler remembers which ticks of "
            f"{schedule.name!r} it fired for catchup_window + 24 h, so only ticks after {format_instant(horizon)} "
            "can be backfilled exactly once")
    if end > now + BACKFILL_AHEAD:
        raise Refused(f"--until {format_instant(end)} is more than a day ahead of Redis's clock: backfill is for "
                      "ticks that have passed")


def backfill_ticks(states: Sequence[TrackState], watermarks: Sequence[datetime | None], start: datetime,
                   end: datetime) -> list[BackfillTicks]:
    """Each track's ticks of ``[start, end]`` that its schedule has handled already (up to its
    watermark: a track never handled has none), and how many of the window it has not."""
    windows = []
    for state, watermark in zip(states, watermarks):
        handled_until = start - _EPSILON if watermark is None else max(start - _EPSILON, min(end, watermark))
        left = ticks_in(state.track, handled_until, end)[0]
        ticks = list(ticks_between(state.track.schedule.cadence, state.track.zone, start - _EPSILON, handled_until))
        windows.append(BackfillTicks(state, ticks, left))
    return windows


def backfill_result(request_id: str, schedule: Schedule, windows: Sequence[BackfillTicks], tenant: str | None,
                    accepted: Acceptance, epoch: int) -> tuple[dict[str, str], list[str]]:
    """The request's answer, and the ledger line of a one-tenant backfill (whole ticks wrote a line
    each when they were finished)."""
    sent = [tick for window in windows for tick in window.ticks]
    fired = accepted.delivered + accepted.pending
    line: list[str] = []
    if tenant is not None and sent:
        span = (min(sent), max(sent), len(sent))
        line = Decision("backfilled", span=span, extra={"request": request_id, "tenant": tenant}).line(
            schedule.name, schedule.name, None, epoch, fired, accepted.duplicates)
    result = {"status": "done", "ticks": str(len(sent)), "fired": str(fired),
              "deduplicated": str(accepted.duplicates), "left": str(sum(window.left for window in windows))}
    return result, line
