"""One replica: a lease loop, and while it leads, the work loop that enqueues firings.

Timers run on APScheduler, on two single-thread executors:

* ``lease`` (its own thread, so a long tick never delays a renewal): standbys try to take the
  lease every retry_interval (and at once when the leader announces a release); the leader renews
  every TTL/3 and steps down when it cannot. Only this thread changes the lease.
* ``work``: at the next due instant, the leader plans each due track from its watermark, accepts
  the firings through the fenced script, and delivers pending firings whose jitter has run out.
  It only reads the lease; a fenced write that is refused wakes the lease job to find out why.
* ``reload``: re-reads schedules.toml when its content changed (and on SIGHUP); it shares the
  work thread, so the table never changes under a tick being handled.
"""

from __future__ import annotations

import hashlib
import random
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import redis
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger
from loguru import logger

from scheduler.clock.firing import format_instant, format_tick
from scheduler.clock.planner import Fanout
from scheduler.errors import NotLeader, RedisUnavailable, TableError
from scheduler.lease import Change, Lease
from scheduler.replica.tracks import TrackState, build_tracks
from scheduler.settings import Settings
from scheduler.store.state import CHUNK, Acceptance, Store
from scheduler.table import InlineTenants, Table, load_table

Clock = Callable[[], datetime]
MAX_BACKOFF = timedelta(seconds=30)


def utc_now() -> datetime:
    return datetime.now(UTC)


class Replica:
    def __init__(self, settings: Settings, config: Path, store: Store, replica_id: str, clock: Clock = utc_now):
        self.settings = settings
        self.config = config
        self.store = store
        self.clock = clock
        self.lease = Lease(store, replica_id, settings.lease_ttl)
        self.table: Table = load_table(config)
        self.tracks = build_tracks(self.table)
        self.stopping = threading.Event()
        self._digest = _digest(self.table)
        self._failures = 0
        self._working_for: str | None = None  # the lease token the work job last worked under
        self._listener: redis.client.PubSubWorkerThread | None = None
        self.timers = BackgroundScheduler(
            timezone=UTC,
            executors={"default": ThreadPoolExecutor(1), "lease": ThreadPoolExecutor(1)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
        )

    # -- life cycle -----------------------------------------------------------------------------

    def start(self) -> None:
        logger.info("replica {} starting with {} ({} schedules)", self.lease.replica_id, self.config,
                    len(self.table.schedules))
        now = self.clock()
        self.timers.add_job(self._lease_job, IntervalTrigger(seconds=self._retry), id="lease", executor="lease",
                            next_run_time=now)
        reload_every = self.settings.reload_interval.total_seconds()
        self.timers.add_job(self._reload_job, IntervalTrigger(seconds=reload_every), id="reload")
        self.timers.start()
        self._listen_for_releases()

    def stop(self) -> None:
        """Stop new work, let the running script call finish, release the lease."""
        self.stopping.set()
        self.timers.shutdown(wait=True)
        try:
            if self.lease.release() is Change.RELEASED:
                logger.info("released the lease of epoch {}", self.lease.epoch)
        except RedisUnavailable as error:
            logger.warning("could not release the lease ({}); it expires by itself", error)
        if self._listener is not None:
            # Stopped, not closed from here: the listener closes its own pub/sub connection, so no
            # connection still in subscribe mode goes back to the pool.
            self._listener.stop()
            self._listener.join(timeout=1)
        logger.info("replica {} stopped", self.lease.replica_id)

    def request_reload(self) -> None:
        """Re-read the table now (SIGHUP)."""
        self.timers.add_job(self._reload_job, id="reload-now", kwargs={"forced": True}, replace_existing=True)

    # -- the lease ------------------------------------------------------------------------------

    @property
    def _retry(self) -> float:
        return self.settings.retry_interval.total_seconds()

    def _lease_job(self) -> None:
        if self.stopping.is_set():
            return
        try:
            if self.lease.token is None:
                self._try_to_lead()
            elif self.lease.expire_if_stale() is Change.LOST:
                self._step_down("the lease may have expired before it could be renewed")
            else:
                self._renew()
        except RedisUnavailable as error:
            self._redis_trouble(error)
            return
        if self._failures:
            logger.info("Redis answers again")
            self._failures = 0

    def _try_to_lead(self) -> None:
        change = self.lease.acquire()
        if change is Change.ACQUIRED:
            logger.info("acquired the lease: leading with epoch {}", self.lease.epoch)
            self._set_lease_interval(self.settings.lease_ttl.total_seconds() / 3)
            self._publish_table()
            self._schedule_work(self.clock())
        elif change is Change.STANDING_BY:
            logger.info("standing by: {} leads", self.lease.holder)

    def _renew(self) -> None:
        remaining = self.lease.remaining
        if self.lease.renew() is Change.LOST:
            self._step_down("another replica holds the lease")
        elif remaining < self.settings.lease_ttl.total_seconds() / 3:
            logger.warning("renewed the lease late ({:.2f}s were left)", remaining)

    def _step_down(self, why: str) -> None:
        self.lease.drop()
        logger.warning("lost the lease: {}; standing by", why)
        self._set_lease_interval(self._retry)
        if self.timers.get_job("work"):
            self.timers.remove_job("work")

    def _redis_trouble(self, error: RedisUnavailable) -> None:
        self._failures += 1
        if self._failures == 1:
            logger.error("Redis is unreachable ({}); retrying with backoff", error)
        if self.lease.token and self.lease.expire_if_stale() is Change.LOST:
            self._step_down("it could not be renewed in time")
        delay = min(self._retry * 2 ** (self._failures - 1), MAX_BACKOFF.total_seconds())
        if self.lease.token:
            delay = min(delay, self.lease.remaining / 2)
        delay *= random.uniform(0.5, 1.0)
        self.timers.modify_job("lease", next_run_time=self.clock() + timedelta(seconds=delay))

    def _set_lease_interval(self, seconds: float) -> None:
        self.timers.reschedule_job("lease", trigger=IntervalTrigger(seconds=seconds))

    def _listen_for_releases(self) -> None:
        """A leader that stops publishes its release; wake the lease job at once when it does."""
        pubsub = self.store.client.pubsub(ignore_subscribe_messages=True)

        def released(_message: object) -> None:
            if not self.stopping.is_set() and self.lease.token is None:
                self.timers.modify_job("lease", next_run_time=self.clock())

        def trouble(error: BaseException, pubsub: object, thread: object) -> None:
            self.stopping.wait(self._retry)

        try:
            pubsub.subscribe(**{self.store.keys.released: released})
        except redis.RedisError:
            logger.debug("release notifications unavailable for now; relying on retries")
        self._listener = pubsub.run_in_thread(sleep_time=0.2, daemon=True, exception_handler=trouble)

    # -- the work -------------------------------------------------------------------------------

    def _schedule_work(self, when: datetime) -> None:
        if self.lease.token and not self.stopping.is_set():
            self.timers.add_job(self._work_job, DateTrigger(run_date=when), id="work", replace_existing=True)

    def _work_job(self) -> None:
        token = self.lease.token
        if self.stopping.is_set() or token is None:
            return
        if not self.lease.held:
            self._check_lease_now()
            return
        if token != self._working_for:
            # A new term: every track starts again from its watermark in Redis.
            self._working_for = token
            for state in self.tracks.values():
                state.due = None
        try:
            upcoming = self._handle_due_tracks(token)
            upcoming = min(filter(None, [upcoming, self._deliver_pending(token)]), default=None)
        except NotLeader:
            logger.warning("a fenced write was refused: the lease of epoch {} is no longer ours", self.lease.epoch)
            self._check_lease_now()
            return
        except RedisUnavailable as error:
            logger.error("work interrupted: {}; retrying", error)
            self._schedule_work(self.clock() + timedelta(seconds=self._retry))
            return
        if upcoming is not None:
            self._schedule_work(upcoming)

    def _check_lease_now(self) -> None:
        """Let the lease job (the only one that changes the lease) find out where it stands."""
        if not self.stopping.is_set():
            self.timers.modify_job("lease", next_run_time=self.clock())

    def _handle_due_tracks(self, token: str) -> datetime | None:
        now = self.clock()
        for state in self.tracks.values():
            if self.stopping.is_set() or not self.lease.held:
                return None
            if state.due is None or state.due <= now:
                self._handle(state, token, now)
        return min((state.due for state in self.tracks.values() if state.due), default=None)

    def _handle(self, state: TrackState, token: str, now: datetime) -> None:
        """Plan one track from its watermark and accept its firings, tenant batch by tenant batch."""
        schedule = state.track.schedule
        watermark = self.store.watermark(state.key)
        ttl = state.watermark_ttl(now)
        total, skipped, ticks = Acceptance(), 0, []
        for tenant_ids, last in state.batches(self.store.client):
            if self.stopping.is_set() or not self.lease.held:
                return
            plan = Fanout(state.track, tenant_ids).catch_up(watermark, now)
            result = self.store.accept(token, schedule, state.key, plan.ticks, now,
                                       plan.watermark if last else None, ttl)
            total.merge(result)
            skipped += plan.skipped
            ticks = plan.ticks
        if watermark is None:
            logger.info("schedule {}: first seen, starting after {}", state.key, format_instant(now))
        elif skipped:
            logger.warning("schedule {}: catch-up policy {!r} skipped {} late firings", state.key,
                           schedule.catchup.value, skipped)
        if ticks:
            span = format_tick(ticks[0].tick) + (f" .. {format_tick(ticks[-1].tick)}" if len(ticks) > 1 else "")
            logger.info("schedule {}: tick {}: {} enqueued, {} waiting out their jitter{}", state.key, span,
                        total.delivered, total.pending,
                        f", {total.duplicates} already accepted before" if total.duplicates else "")
        state.due = state.next_due(max(now, plan.watermark))

    def _deliver_pending(self, token: str) -> datetime | None:
        upcoming: list[datetime] = []
        for queue in sorted(self.store.queues()):
            moved, next_due = CHUNK, None
            while moved >= CHUNK and not self.stopping.is_set():
                moved, next_due = self.store.dispatch(token, queue, CHUNK)
            if next_due is not None:
                upcoming.append(next_due)
        return min(upcoming, default=None)

    # -- reloading ------------------------------------------------------------------------------

    def _reload_job(self, forced: bool = False) -> None:
        digest = _digest(self.table, self.config)
        if digest == self._digest and not forced:
            return
        self._digest = digest
        try:
            table = load_table(self.config)
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
        self.table, self.tracks = table, build_tracks(table)
        if self.lease.held:
            self._publish_table()
            self._schedule_work(self.clock())

    def _publish_table(self) -> None:
        try:
            self.store.publish_table(self.table.fingerprint, str(self.config), self.lease.replica_id,
                                     self.lease.epoch, self.clock())
        except RedisUnavailable as error:
            logger.warning("could not record the table's fingerprint: {}", error)


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
