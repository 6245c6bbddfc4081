"""The leader's work loop: a plain thread that nothing can drop, deciding on Redis's clock.

    while not stopping:
        beat (the watchdog in the lease thread reads it)
        re-read the table if it changed (between passes, never under one)
        if leading and something is due by Redis's clock: one pass
        else wait until the next due instant, a wake-up, or a second, whichever is first

A pass reads Redis's clock (TIME), plans every due track from its watermark (plan/passes.py, a
tenant batch at a time), hands each batch's firings to the delivery (store/delivery.py), which sends
the firings of every track due at that instant together and finishes the ticks that were fully
accepted, and delivers pending firings whose enqueue_at has come. Operators' requests are carried
out between passes (replica/requests.py).

Planning is pure (the watermark and ``now`` in, firings out), so the loop wakes a little before a
due instant (the *lead*: twice what planning took last time), plans as of that instant, and sends
when Redis's clock reaches it: the firings go out at the tick, not a planning time after it. The
enqueue script still decides what is due by Redis's TIME, so a send a hair early only parks a
firing as pending until its instant. The replica's own wall clock is
never consulted: "due", "late", "first seen" and every expiry are Redis's TIME; the replica's
monotonic clock only measures how long to sleep until Redis's clock reaches the next due instant.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

from loguru import logger

from scheduler.backoff import backoff
from scheduler.clock.instants import NEVER, format_instant, format_tick
from scheduler.errors import NotLeader, RedisPermissionError, RedisRefused, RedisUnavailable, TableError
from scheduler.keys import Token
from scheduler.lease import Lease
from scheduler.metrics import PAUSED, Metrics
from scheduler.plan.passes import TrackPlan, TrackPlanner, held_tenants, paused_plan
from scheduler.replica.requests import Requests
from scheduler.replica.tracks import TrackState, Trouble, build_tracks
from scheduler.store.calls import Acceptance
from scheduler.store.delivery import Delivery
from scheduler.store.replies import dispatched
from scheduler.store.state import CHUNK, DEDUP_MARGIN, Store
from scheduler.table import InlineTenants, Table, load_table
from scheduler.targets import Routes
from scheduler.tenants import TenantSets

IDLE_BEAT = 1.0  # the longest the loop waits without going round (and beating)
MAX_BACKOFF = 5.0  # the longest wait before retrying a pass that Redis refused
MIN_LEAD, MAX_LEAD = 0.05, 1.0  # how long before a due instant planning may start, in seconds
REQUESTS_EVERY = 0.5  # how often a leader looks for operators' requests (trigger, backfill), in seconds
REQUEST_SLACK = 0.1  # ... when the next pass is at least this far off, in seconds
REQUEST_PATIENCE = 0.5  # ... or, at the latest, this long after that, even with a pass due


class _Stopping(Exception):
    """The replica stops while a pass waits for its instant: nothing more is sent."""


class RedisClock:
    """Redis's clock as this replica sees it: the last TIME reply, carried forward on the monotonic
    clock (read half-way through the round trip). Only for knowing how long to sleep."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._anchor: tuple[datetime, float] | None = None

    def read(self) -> datetime:
        sent = time.monotonic()
        now = self.store.time()
        self._anchor = (now, (sent + time.monotonic()) / 2)
        return now

    def seconds_until(self, instant: datetime) -> float:
        if self._anchor is None:
            return 0.0
        redis_then, local_then = self._anchor
        return (instant - redis_then).total_seconds() - (time.monotonic() - local_then)


class Worker:
    def __init__(self, store: Store, lease: Lease, config: Path, table: Table, reload_interval: timedelta,
                 retry_interval: timedelta, stopping: threading.Event, on_fenced: Callable[[], None],
                 on_crash: Callable[[], None],
                 on_refused: Callable[[RedisPermissionError], None] = lambda error: None,
                 metrics: Metrics | None = None) -> None:
        self.store = store
        self.tenants = TenantSets(store.client)
        self.metrics = metrics or Metrics()
        self.lease = lease
        self.config = config
        self._adopt(table)
        self.reload_interval = reload_interval.total_seconds()
        self.retry = retry_interval.total_seconds()
        self.stopping = stopping
        self.on_fenced = on_fenced  # a fenced write was refused: let the lease thread find out why
        self.on_crash = on_crash  # the loop died of an unexpected error: the process must stop
        self.on_refused = on_refused  # Redis refused a command for lack of permission: say so, step down
        self.wake = threading.Event()
        self.clock = RedisClock(store)
        self.requests = Requests(store, self.tenants, now=self.clock.read, progress=self._beat)
        self.last_beat = time.monotonic()
        self._digest = _digest(table)
        self._next_reload_check = 0.0
        self._reload_forced = False
        self._term: Token | None = None  # the lease token the loop last worked under
        self._queues: dict[str, datetime | None] = {}  # queue -> when its next pending firing is due
        self._queue_trouble: dict[str, Trouble] = {}  # queue -> why its pending firings wait
        self._failures = 0
        self._lead = MIN_LEAD
        self._next_requests = 0.0
        self._thread = threading.Thread(target=self._run, name="work", daemon=True)

    # -- the loop -------------------------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def join(self, timeout: float) -> None:
        self.wake.set()
        self._thread.join(timeout)

    def stalled_for(self) -> float:
        """Seconds since the loop last showed progress (a pass, a round trip, or an idle turn)."""
        return time.monotonic() - self.last_beat

    def request_reload(self) -> None:
        self._reload_forced = True
        self.wake.set()

    def _beat(self) -> None:
        self.last_beat = time.monotonic()

    def _run(self) -> None:
        try:
            self._loop()
        except Exception:
            # A bug, not a Redis failure: it stops beating, so the watchdog gives the lease up.
            logger.opt(exception=True).critical("the work loop failed; this replica stops")
            self.on_crash()

    def _loop(self) -> None:
        while not self.stopping.is_set():
            self._beat()
            self._reload_if_changed()
            token = self.lease.token
            if token is None or not self.lease.held:
                self._term = None
                self._wait(IDLE_BEAT)
                continue
            if token == self._term:
                wait = self._seconds_until_due()
                since = time.monotonic() - self._next_requests
                # Between passes when there is room; while firings are due back to back (a jitter
                # window over many tenants), within REQUESTS_EVERY + REQUEST_PATIENCE all the same.
                if since >= 0 and (wait > REQUEST_SLACK or since >= REQUEST_PATIENCE):
                    self._next_requests = time.monotonic() + REQUESTS_EVERY
                    self._wait(self._guarded(token, self._handle_requests))
                    continue
                if wait > 0:
                    self._wait(wait)
                    continue
            self._wait(self._guarded(token, self._pass))

    def _wait(self, seconds: float) -> None:
        if seconds > 0:
            with self.metrics.idle(min(seconds, IDLE_BEAT)):  # a scrape renders now, not during a pass
                if self.wake.wait(min(seconds, IDLE_BEAT)):
                    self.wake.clear()

    def _seconds_until_due(self) -> float:
        """Until the next pass: a lead before the next track is due, or when a pending firing is."""
        tracks = [state.due for state in self.tracks.values()]
        due = [instant - timedelta(seconds=self._lead) for instant in tracks if instant is not None]
        due += [instant for instant in self._queues.values() if instant is not None]
        if None in tracks or None in self._queues.values():
            return 0.0
        return self.clock.seconds_until(min(due)) if due else IDLE_BEAT

    def _pass_instant(self, now: datetime) -> datetime:
        """The instant a pass plans as of: the next due track's, if that lies within the lead."""
        due = [state.due for state in self.tracks.values()]
        if None in due:
            return now
        upcoming = min(due, default=now)
        return upcoming if now < upcoming <= now + timedelta(seconds=self._lead) else now

    def _send_at(self, instant: datetime, started: float) -> Callable[[], None]:
        """What a pass does before its first send: learn the lead, then wait for ``instant``."""

        def wait() -> None:
            self._lead = min(MAX_LEAD, max(MIN_LEAD, 2 * (time.monotonic() - started)))
            delay = self.clock.seconds_until(instant)
            if delay > 0 and self.stopping.wait(delay):
                raise _Stopping

        return wait

    def _pass(self, token: Token) -> None:
        now = self.clock.read()
        if token != self._term:
            self._begin_term(token, now)
        instant = self._pass_instant(now)
        self._handle_due_tracks(token, instant)
        self._deliver_pending(token, instant)

    def _handle_requests(self, token: Token) -> None:
        pending = self.requests.carry_out(token, self.table, self.tracks, self.routes)
        for queue in pending:
            self._queues[queue] = None  # a backfill left firings waiting out their jitter

    def _guarded(self, token: Token, work: Callable[[Token], None]) -> float:
        """Do ``work`` (a pass, or operators' requests) under ``token``; returns how long to wait
        before the next turn (0: go round at once)."""
        try:
            work(token)
        except _Stopping:
            return 0.0
        except NotLeader:
            logger.warning("a fenced write was refused: the lease of epoch {} is no longer ours", self.lease.epoch)
            self.on_fenced()
            return IDLE_BEAT
        except RedisPermissionError as error:
            # Retrying will not help until the ACL changes: the lease thread reports it and gives the
            # lease up, so a replica whose user has the permission can lead meanwhile.
            self._failures += 1
            self.on_refused(error)
            return backoff(self._failures, self.retry, MAX_BACKOFF)
        except RedisUnavailable as error:
            self.metrics.redis_error("work")
            self._failures += 1
            if self._failures == 1:
                logger.error("work interrupted: {}; retrying", error)
            return backoff(self._failures, self.retry, MAX_BACKOFF)
        if self._failures:
            logger.info("work resumed after {} failed attempts", self._failures)
            self._failures = 0
        return 0.0

    def _begin_term(self, token: Token, now: datetime) -> None:
        """A new term: every track starts again from its watermark, every queue is checked."""
        self.store.load_scripts()
        for state in self.tracks.values():
            state.due = None
        self._queues = {queue: None for queue in self.store.queues() | self._table_queues()}
        self.store.publish_table(token, self.table.fingerprint, str(self.config), now)
        self._term = token

    def _table_queues(self) -> set[str]:
        return {schedule.queue for schedule in self.table.schedules}

    # -- tracks ---------------------------------------------------------------------------------

    def _handle_due_tracks(self, token: Token, now: datetime) -> None:
        """Plan and send every track due at ``now`` (Redis's clock now, or an instant within the lead)."""
        due = [state for state in self.tracks.values() if state.due is None or state.due <= now]
        if not due:
            return
        delivery = Delivery(self.store, token, progress=self._beat, before_send=self._send_at(now, time.monotonic()))
        planned: list[tuple[TrackState, TrackPlan]] = []
        watermarks, paused = self.store.pass_state([state.key for state in due])
        for state, watermark in zip(due, watermarks):
            if isinstance(watermark, RedisRefused):  # its watermark holds garbage: only this track waits
                self._failed(state, now, watermark)
                continue
            ttl = state.watermark_ttl(now)
            try:
                plan = self._plan(state, watermark, now, ttl, delivery, paused)
            except RedisRefused as error:  # its tenant set cannot be read: only this track waits
                self._failed(state, now, error)
                continue
            if plan is None:
                break  # stopping, or the lease is gone: what was not finished is planned again
            delivery.finish(plan, ttl, plan.schedule.catchup_window + DEDUP_MARGIN)
            planned.append((state, plan))
        outcome = delivery.close()
        for state, plan in planned:
            if state.key in outcome.finished:
                accepted = outcome.accepted.get(state.key, Acceptance())
                if accepted.pending:
                    self._queues[plan.schedule.queue] = now
                state.due = state.next_due(max(now, plan.advanced_to))
                self._works(state)
                _log(plan, now, accepted)
                if plan.paused_firings:
                    self.metrics.skipped(plan.schedule.name, PAUSED, plan.paused_firings)
            elif state.key in outcome.refused:  # a write of this track was refused: it alone retries
                self._failed(state, now, outcome.refused[state.key])
        self.metrics.pass_finished([plan for _, plan in planned], outcome)
        denials = [state.trouble.denial for state in self.tracks.values() if state.trouble and state.trouble.denial]
        if denials and len(denials) == len(self.tracks):
            # None of the leader's work is allowed: a replica whose Redis user may do it should lead.
            raise denials[-1]

    def failing(self) -> dict[str, str]:
        """The tracks whose last attempt failed, with why (for /readyz and status)."""
        return {state.key: state.trouble.reason for state in list(self.tracks.values()) if state.trouble}

    def _failed(self, state: TrackState, now: datetime, error: RedisUnavailable) -> None:
        """One track's planning or writing was refused (a tenant set of the wrong type, a command the
        ACL denies, a write Redis refuses): it is retried on its own backoff, at least every
        MAX_BACKOFF seconds, while every other track goes on. Logged when the reason changes."""
        previous, state.trouble = state.trouble, Trouble.after(state.trouble, error)
        state.due = self._retry_at(now, state.trouble)
        schedule = state.track.schedule
        self.metrics.schedule_failed(schedule.name)
        if state.trouble.news(previous):
            logger.bind(schedule=schedule.name, queue=schedule.queue).error(
                "schedule {} (queue {}): {}; it is retried on its own, every other schedule goes on", state.key,
                schedule.queue, state.trouble.reason)

    def _works(self, state: TrackState) -> None:
        if state.trouble is not None:
            logger.bind(schedule=state.track.schedule.name).info(
                "schedule {}: works again after {} failed attempts", state.key, state.trouble.failures)
            self.metrics.schedule_works(state.track.schedule.name)
        state.trouble = None

    def _retry_at(self, now: datetime, trouble: Trouble) -> datetime:
        """When to try again what failed ``trouble.failures`` times in a row: at most MAX_BACKOFF on."""
        return now + timedelta(seconds=backoff(trouble.failures, self.retry, MAX_BACKOFF))

    def _plan(self, state: TrackState, watermark: datetime | None, now: datetime, ttl: timedelta,
              delivery: Delivery, paused: dict[str, str]) -> TrackPlan | None:
        """Plan ``state``'s track, tenant batch by tenant batch, each batch's firings handed to
        ``delivery`` (their dedup records kept ``ttl``) as soon as it is planned; None if interrupted. A paused schedule's ticks, and a
        paused tenant's firings, are recorded as paused, not sent."""
        schedule = state.track.schedule
        if watermark is not None and schedule.name in paused:
            tenants = len(state.tenant_ids) if state.tenant_ids is not None else 0
            return paused_plan(state.track, tenants, watermark, now, paused[schedule.name])
        planner = TrackPlanner(state.track, watermark, now, held_tenants(paused, schedule.name))
        target = self.routes.target(schedule.queue)
        for tenant_ids in state.batches(self.tenants):
            if self.stopping.is_set() or not self.lease.held:
                return None
            delivery.accept(schedule, state.key, planner.batch(tenant_ids), ttl, target)
        return planner.result()

    # -- pending firings ------------------------------------------------------------------------

    def _deliver_pending(self, token: Token, now: datetime) -> None:
        """Move every due pending firing to its queue: one pipelined call per queue that has any."""
        due = sorted(queue for queue, at in self._queues.items() if at is None or at <= now)
        while due and not self.stopping.is_set():
            calls = [self.store.dispatch_call(token, self.routes.target(queue), CHUNK) for queue in due]
            replies = self.store.send(token, calls, "delivering pending firings")
            self._beat()
            again = []
            for queue, reply in zip(due, replies):
                if isinstance(reply, RedisUnavailable):  # this queue's target refused: it alone waits
                    self._queue_failed(queue, now, reply)
                    continue
                if self._queue_trouble.pop(queue, None) is not None:
                    logger.info("queue {}: pending firings are delivered again", queue)
                moved, upcoming = dispatched(reply)
                self.metrics.dispatched(reply)
                self._queues[queue] = upcoming or NEVER
                if moved >= CHUNK:
                    again.append(queue)
            due = again

    def _queue_failed(self, queue: str, now: datetime, error: RedisUnavailable) -> None:
        previous = self._queue_trouble.get(queue)
        trouble = self._queue_trouble[queue] = Trouble.after(previous, error)
        if trouble.news(previous):
            logger.error("queue {}: {}; its pending firings wait, retried on their own", queue, trouble.reason)
        self._queues[queue] = self._retry_at(now, trouble)

    # -- reloading ------------------------------------------------------------------------------

    def _adopt(self, table: Table) -> None:
        """Run ``table``: its tracks, and where its queues go (the relay reads ``routes`` too)."""
        self.table, self.tracks = table, build_tracks(table)
        self.routes = Routes(self.store.keys, table)

    def _reload_if_changed(self) -> None:
        if not self._reload_forced and time.monotonic() < self._next_reload_check:
            return
        forced, self._reload_forced = self._reload_forced, False
        self._next_reload_check = time.monotonic() + self.reload_interval
        digest = _digest(self.table, self.config)
        if digest == self._digest and not forced:
            return
        self._digest = digest
        try:
            table = load_table(self.config, self.store.keys.prefix)
        except TableError as error:
            logger.error("{} is broken; still running the last good table ({}):\n{}", self.config,
                         self.table.fingerprint, error)
            return
        if table.fingerprint == self.table.fingerprint:
            if forced:
                logger.info("reloaded {}: unchanged ({})", self.config, table.fingerprint)
            return
        logger.info("reloaded {}: {} -> {} ({} schedules)", self.config, self.table.fingerprint,
                    table.fingerprint, len(table.schedules))
        self._adopt(table)
        self._term = None  # publish the new table and start every track from its watermark


def _log(plan: TrackPlan, now: datetime, accepted: Acceptance) -> None:
    key, schedule = plan.key, plan.schedule
    if plan.paused:
        logger.bind(schedule=schedule.name, count=plan.paused).info(
            "schedule {}: paused, {} tick(s) recorded as paused", key, plan.paused)
    if plan.watermark is None:
        logger.info("schedule {}: first seen, starting after {}", key, format_instant(now))
    elif plan.skipped:
        logger.bind(schedule=schedule.name, count=plan.skipped).warning(
            "schedule {}: catch-up policy {!r} skipped {} late firings", key, schedule.catchup.value, plan.skipped)
    if plan.ticks:
        span = format_tick(plan.ticks[0]) + (f" .. {format_tick(plan.ticks[-1])}" if len(plan.ticks) > 1 else "")
        bound = logger.bind(schedule=schedule.name, tick=format_tick(plan.ticks[-1]), queue=schedule.queue,
                            count=accepted.delivered + accepted.pending)
        bound.info("schedule {}: tick {}: {} enqueued, {} waiting out their jitter{}", key, span, accepted.delivered,
                   accepted.pending, f", {accepted.duplicates} already accepted before" if accepted.duplicates else "")


def _digest(table: Table, config: Path | None = None) -> str:
    """A cheap content hash of the table file and the tenant files it read, to notice edits."""
    digest = hashlib.sha256()
    for path in [config or table.path, *_tenant_files(table)]:
        try:
            digest.update(path.read_bytes())
        except OSError:
            digest.update(b"\0missing\0")
    return digest.hexdigest()


def _tenant_files(table: Table) -> list[Path]:
    return [s.file for s in table.tenant_sets.values() if isinstance(s, InlineTenants) and s.file]

