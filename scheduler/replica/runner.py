"""One replica: a lease thread on APScheduler, and a work loop that does the leader's work.

* The lease job (APScheduler, its own thread, so a long pass never delays a renewal): standbys try to
  take the lease every retry_interval (and at once when the leader announces a release); the leader
  renews every TTL/3 and steps down when it cannot. Only this thread changes the lease. It is also
  the watchdog: a leader whose work loop has shown no progress for stall_timeout says so and gives
  the lease up, so a standby takes over; a replica whose loop is stuck does not try to lead.
* The work loop (replica/work.py): a plain thread that cannot be dropped; it plans and enqueues
  while the lease is held, and re-reads schedules.toml between passes.
* The relay (replica/relay.py): while the lease is held, sends what the outboxes hold to targets
  outside the scheduler's Redis (SQS; a Sidekiq or Celery Redis of its own).
* Before taking the lease, a replica checks that Redis will not evict its keys (maxmemory-policy).
* A Redis user that lacks a permission (NOPERM) is reported once per refusal, naming what Redis
  refused; a leader all of whose work is refused gives the lease up and leaves it to the others a
  while (one schedule's refusals stay that schedule's: replica/work.py).
  A replica with SCHEDULER_ELIGIBLE=false never takes it: it only watches who leads.
* Two more timers, each on an executor of its own so neither can delay a renewal: the leader's
  queue gauges (pending firings, outbox backlog; scheduler/metrics.py), and with
  SCHEDULER_ECS_TASK_PROTECTION the ECS task's scale-in protection while leading (protection.py).
* health() and readiness() answer /healthz and /readyz (endpoints.py) from what the threads last did.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import redis
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger
from loguru import logger

from scheduler import __version__
from scheduler.backoff import backoff
from scheduler.errors import RedisPermissionError, RedisRefused, RedisUnavailable
from scheduler.lease import Change, Lease
from scheduler.logs import set_context
from scheduler.metrics import Metrics
from scheduler.replica.protection import TaskProtection
from scheduler.replica.relay import Relay
from scheduler.replica.work import Worker
from scheduler.settings import Settings, ecs_agent_uri
from scheduler.store.connection import refusal
from scheduler.store.state import Store
from scheduler.table import load_table

MAX_BACKOFF = timedelta(seconds=30)
POLICY_CHECK_EVERY = 60.0  # seconds between checks of Redis's maxmemory-policy while standing by
SAFE_POLICIES = ("noeviction",)
HEARTBEAT_FORGET = timedelta(hours=1)  # a replica silent this long drops out of `scheduler status`
PERMISSION_REST = 60.0  # seconds a leader whose work Redis refused leaves the lease to the others
GAUGES_EVERY = 5.0  # seconds between the leader's readings of its queue gauges


def _wall_now() -> datetime:
    """For APScheduler's own timers only; no decision that replicas share is taken on it."""
    return datetime.now(UTC)


class Replica:
    def __init__(self, settings: Settings, config: Path, store: Store, replica_id: str,
                 on_crash: Callable[[], None] = lambda: None):
        self.settings = settings
        self.config = config
        self.store = store
        self.lease = Lease(store, replica_id, settings.lease_ttl)
        self.stopping = threading.Event()
        self.metrics = Metrics()
        self.metrics.watch(self.lease)
        self.worker = Worker(store, self.lease, config, load_table(config, store.keys.prefix), settings.reload_interval,
                             settings.retry_interval, self.stopping, on_fenced=self._check_lease_now,
                             on_crash=on_crash, on_refused=self._work_refused,
                             metrics=self.metrics)
        self.relay = Relay(store, self.lease, settings, self.stopping, routes=lambda: self.worker.routes,
                           on_crash=on_crash, metrics=self.metrics)
        agent = ecs_agent_uri() if settings.ecs_task_protection else None
        self.protection = TaskProtection(agent) if agent else None
        self.redis_answered: float | None = None  # monotonic time of the lease job's last turn Redis answered
        self._failures = 0
        self._policy_checked = -POLICY_CHECK_EVERY
        self._policy_refused: str | None = None
        self._resting_until = 0.0  # after giving the lease up, let a standby take it first
        self._refusals: set[str] = set()  # what Redis refused for lack of permission, each reported once
        self._refusals_lock = threading.Lock()
        self._refused_work: RedisPermissionError | None = None  # set by the work loop, read by the lease job
        self._writes_refused: RedisRefused | None = None  # Redis answers the lease job but refuses its writes
        self._listener: redis.client.PubSubWorkerThread | None = None
        # Held while the lease job runs. APScheduler's shutdown(wait=True) holds its job-store lock
        # while it waits for running jobs, and the lease job calls into the scheduler (modify_job,
        # reschedule_job): stop() takes this lock first, so no job is left to deadlock with it.
        self._lease_running = threading.Lock()
        self.timers = BackgroundScheduler(
            timezone=UTC,
            executors={"lease": ThreadPoolExecutor(1), "gauges": ThreadPoolExecutor(1),
                       "protection": ThreadPoolExecutor(1)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
        )

    # -- life cycle -----------------------------------------------------------------------------

    def start(self) -> None:
        logger.info("replica {} starting with {} ({} schedules)", self.lease.replica_id, self.config,
                    len(self.worker.table.schedules))
        set_context(lambda: {"replica": self.lease.replica_id, "epoch": self.lease.epoch if self.lease.token else None})
        if not self.settings.eligible:
            logger.warning("not eligible to lead (SCHEDULER_ELIGIBLE=false): this replica never takes the lease; "
                           "it watches who leads and serves health and metrics")
        if self.settings.ecs_task_protection and self.protection is None:
            logger.warning("SCHEDULER_ECS_TASK_PROTECTION is true but ECS_AGENT_URI is not set (not on ECS?): "
                           "this task is not protected from scale-in")
        self.worker.start()
        self.relay.start()
        self.timers.add_job(self._lease_job, IntervalTrigger(seconds=self._retry), id="lease", executor="lease",
                            next_run_time=_wall_now())
        self.timers.add_job(self._gauges_job, IntervalTrigger(seconds=GAUGES_EVERY), id="gauges", executor="gauges",
                            next_run_time=_wall_now())
        if self.protection is not None:
            self.timers.add_job(self._protection_job, IntervalTrigger(seconds=self._retry), id="protection",
                                executor="protection", next_run_time=_wall_now())
        self.timers.start()
        self._listen_for_releases()

    def stop(self) -> None:
        """Stop new work, let the running script call finish, release the lease."""
        self.stopping.set()
        self.worker.join(timeout=5)
        self.relay.join(timeout=5)
        with self._lease_running:
            pass  # a lease job in flight finishes; any later one sees `stopping` and returns at once
        self.timers.shutdown(wait=True)
        try:
            if self.lease.release() is Change.RELEASED:
                logger.info("released the lease of epoch {}", self.lease.epoch)
        except RedisUnavailable as error:
            logger.warning("could not release the lease ({}); it expires by itself", error)
        try:
            self.store.forget_replica(self.lease.replica_id)
        except RedisUnavailable:
            pass  # forgotten an hour after its last heartbeat anyway
        if self.protection is not None:
            self.protection.release()
        if self._listener is not None:
            # Stopped, not closed from here: the listener closes its own pub/sub connection, so no
            # connection still in subscribe mode goes back to the pool.
            self._listener.stop()
            self._listener.join(timeout=1)
        logger.info("replica {} stopped", self.lease.replica_id)

    def request_reload(self) -> None:
        """Re-read the table now (SIGHUP)."""
        self.worker.request_reload()

    # -- health ---------------------------------------------------------------------------------

    def health(self) -> tuple[bool, dict[str, Any]]:
        """/healthz: alive, and the work loop shows progress (what the watchdog checks)."""
        stalled = self.worker.stalled_for()
        if stalled >= self.settings.stall_timeout.total_seconds():
            return False, {"status": "stalled", "reason": f"the work loop has made no progress for {stalled:.1f}s"}
        return True, {"status": "ok"}

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        """/readyz: Redis answered the lease job lately, and the replica leads or stands by."""
        leading, epoch = self.metrics.lease_state()
        body: dict[str, Any] = {"leader": bool(leading), "epoch": epoch, "eligible": self.settings.eligible}
        answered = self.redis_answered
        if self.stopping.is_set():
            return False, {"status": "stopping", "reason": "the replica is stopping", **body}
        if answered is None:
            return False, {"status": "unavailable", "reason": "Redis has not answered yet", **body}
        silent = time.monotonic() - answered
        if silent > self._ready_within:
            return False, {"status": "unavailable", "reason": f"Redis has not answered for {silent:.1f}s", **body}
        refused = self._writes_refused
        if refused is not None:
            return False, {"status": "unavailable", "reason": f"Redis answers but refuses writes: {refused.reply}", **body}
        state = "leading" if leading else "standing by" if self.settings.eligible else "standing by, not eligible"
        failing = self.worker.failing() if leading else {}
        if failing:
            return True, {"status": "degraded", "state": state, "failing": failing, **body}
        return True, {"status": "ok", "state": state, **body}

    @property
    def _ready_within(self) -> float:
        """How long Redis may stay silent before the replica is not ready: a leader renews three
        times in a lease TTL, a standby tries every retry interval."""
        return max(self.settings.lease_ttl.total_seconds(), 2 * self._retry)

    # -- the lease ------------------------------------------------------------------------------

    @property
    def _retry(self) -> float:
        return self.settings.retry_interval.total_seconds()

    def _lease_job(self) -> None:
        with self._lease_running:
            if not self.stopping.is_set():
                self._lease_turn()

    def _lease_turn(self) -> None:
        try:
            if self.lease.token is None:
                self._try_to_lead()
            elif self.lease.expire_if_stale() is Change.LOST:
                self._step_down("the lease may have expired before it could be renewed")
            elif self.worker.stalled_for() > self.settings.stall_timeout.total_seconds():
                self._give_up(f"the work loop has made no progress for {self.worker.stalled_for():.1f}s")
            elif (refused := self._refused_work) is not None:
                self._give_up(f"Redis refuses the leader's work for lack of permission ({refused.refusal})",
                              rest=max(PERMISSION_REST, self.settings.lease_ttl.total_seconds()))
            else:
                self._renew()
            self._heartbeat()
        except RedisUnavailable as error:
            self.metrics.redis_error("lease")
            if isinstance(error, RedisRefused) and not isinstance(error, RedisPermissionError):
                self.redis_answered = time.monotonic()  # it answered: with a refusal (OOM, READONLY)
                self._writes_refused = error
            self._redis_trouble(error)
            return
        self.redis_answered = time.monotonic()
        self._writes_refused = None
        if self._failures:
            logger.info("Redis answers again")
            self._failures = 0

    def _heartbeat(self) -> None:
        """Tell `scheduler status` this replica is alive, and what it is doing."""
        leading = self.lease.token is not None
        self.store.heartbeat(self.lease.replica_id, {
            "role": "leader" if leading else "standby", "epoch": self.lease.epoch if leading else None,
            "table": self.worker.table.fingerprint, "version": __version__,
            **({"failing": self.worker.failing()} if leading else {}),
        }, HEARTBEAT_FORGET)

    def _try_to_lead(self) -> None:
        if not self.settings.eligible or time.monotonic() < self._resting_until or not self._fit_to_lead():
            self._watch()
            return
        change = self.lease.acquire()
        if change is Change.ACQUIRED:
            self._refused_work = None
            logger.info("acquired the lease: leading with epoch {}", self.lease.epoch)
            self._set_lease_interval(self.settings.lease_ttl.total_seconds() / 3)
            self.worker.wake.set()
            self._leadership_changed()
        elif change is Change.STANDING_BY:
            logger.info("standing by: {} leads", self.lease.holder)

    def _watch(self) -> None:
        """Not trying to lead: still see who does (for /readyz and the epoch gauge), and say when
        nobody does while this replica may not take over."""
        previous, holder = self.lease.holder, self.store.holder()
        self.lease.holder = holder
        if holder and holder != previous:
            logger.info("standing by: {} leads", holder)
        elif previous and not holder and not self.settings.eligible:
            logger.warning("no replica leads, and this one is not eligible to (SCHEDULER_ELIGIBLE=false): "
                           "no firings go out until an eligible replica takes the lease")

    def _fit_to_lead(self) -> bool:
        """Whether this replica may take the lease: its work loop runs, and Redis keeps its keys."""
        stalled = self.worker.stalled_for()
        if stalled > self.settings.stall_timeout.total_seconds():
            logger.error("not taking the lease: the work loop has made no progress for {:.1f}s", stalled)
            return False
        if time.monotonic() - self._policy_checked >= POLICY_CHECK_EVERY:
            # Marked checked only once INFO answered: a replica that could not read the policy
            # (Redis down, INFO refused) must not lead on an unchecked one.
            self._policy_refused = self._check_eviction_policy()
            self._policy_checked = time.monotonic()
        return self._policy_refused is None

    def _check_eviction_policy(self) -> str | None:
        """Refuse to lead (and say why, loudly) where Redis may evict the scheduler's keys."""
        policy, maxmemory = self.store.eviction()
        if policy in SAFE_POLICIES or maxmemory == 0:
            return None
        why = (f"Redis's maxmemory-policy is {policy!r} (maxmemory {maxmemory} bytes): under memory pressure it "
               "may evict the scheduler's keys (dedup records, watermarks, the lease) and so send a firing "
               "twice or skip one. Set maxmemory-policy to noeviction")
        if self.settings.allow_eviction:
            if self._policy_refused is None:
                logger.warning("{}; leading anyway because SCHEDULER_ALLOW_EVICTION is true", why)
            return None
        logger.error("not taking the lease: {} (or set SCHEDULER_ALLOW_EVICTION=true to run anyway)", why)
        return why

    def _renew(self) -> None:
        remaining = self.lease.remaining
        sent = time.monotonic()
        change = self.lease.renew()
        self.metrics.renewed(time.monotonic() - sent)
        if change is Change.LOST:
            self._step_down("another replica holds the lease")
        elif remaining < self.settings.lease_ttl.total_seconds() / 3:
            logger.warning("renewed the lease late ({:.2f}s were left)", remaining)

    def _give_up(self, why: str, rest: float | None = None) -> None:
        """Hand the lease over on purpose: released at once, so a standby takes it now; this replica
        does not try to lead again for ``rest`` seconds (default one lease TTL)."""
        logger.error("giving the lease up: {}", why)
        self._refused_work = None
        self._resting_until = time.monotonic() + (rest if rest is not None else self.settings.lease_ttl.total_seconds())
        self.lease.release()
        self._set_lease_interval(self._retry)
        self._leadership_changed()

    def _step_down(self, why: str) -> None:
        self.lease.drop()
        logger.warning("lost the lease: {}; standing by", why)
        self._set_lease_interval(self._retry)
        self._leadership_changed()

    def _redis_trouble(self, error: RedisUnavailable) -> None:
        self._failures += 1
        if isinstance(error, RedisPermissionError):
            self._report_refusal(error)
        elif self._failures == 1 and isinstance(error, RedisRefused):
            logger.error("Redis answers but refuses the lease job's writes ({}); retrying with backoff", error)
        elif self._failures == 1:
            logger.error("Redis is unreachable ({}); retrying with backoff", error)
        if self.lease.token and self.lease.expire_if_stale() is Change.LOST:
            self._step_down("it could not be renewed in time")
        cap = MAX_BACKOFF.total_seconds()
        if self.lease.token:
            cap = min(cap, self.lease.remaining / 2)  # a leader tries again while its lease still holds
        delay = backoff(self._failures, self._retry, cap)
        self.timers.modify_job("lease", next_run_time=_wall_now() + timedelta(seconds=delay))

    def _report_refusal(self, error: RedisPermissionError) -> None:
        """Log what Redis refused for lack of permission, once per distinct refusal (any thread)."""
        with self._refusals_lock:
            if error.refusal in self._refusals:
                return
            self._refusals.add(error.refusal)
        logger.error("{}", error)

    def _work_refused(self, error: RedisPermissionError) -> None:
        """The work loop's writes or reads were refused: say so, and let the lease job give the lease up."""
        self._report_refusal(error)
        self._refused_work = error
        self._check_lease_now()

    def _leadership_changed(self) -> None:
        """Let the gauges and the task protection catch up now rather than at their next turn."""
        self.timers.modify_job("gauges", next_run_time=_wall_now())
        if self.protection is not None:
            self.timers.modify_job("protection", next_run_time=_wall_now())

    # -- the leader's gauges and the task's protection (timers of their own) -------------------------

    def _gauges_job(self) -> None:
        if self.stopping.is_set():
            return
        if not self.lease.held:
            self.metrics.forget_queues()
            return
        try:
            self.metrics.refresh_queues(self.store, {schedule.queue for schedule in self.worker.table.schedules})
        except RedisUnavailable:
            self.metrics.redis_error("gauges")

    def _protection_job(self) -> None:
        if self.protection is not None and not self.stopping.is_set():
            self.protection.turn(self.lease.held)

    def _set_lease_interval(self, seconds: float) -> None:
        self.timers.reschedule_job("lease", trigger=IntervalTrigger(seconds=seconds))

    def _check_lease_now(self) -> None:
        """Let the lease job (the only one that changes the lease) find out where it stands."""
        if not self.stopping.is_set():
            self.timers.modify_job("lease", next_run_time=_wall_now())

    def _listen_for_releases(self) -> None:
        """A leader that stops publishes its release; wake the lease job at once when it does."""
        pubsub = self.store.client.pubsub(ignore_subscribe_messages=True)

        def released(_message: object) -> None:
            if not self.stopping.is_set() and self.lease.token is None:
                self.timers.modify_job("lease", next_run_time=_wall_now())

        def trouble(error: BaseException, pubsub: object, thread: object) -> None:
            refused = refusal(error) if isinstance(error, redis.ResponseError) else None
            if refused is not None:  # the channel is not in the user's ACL: standbys rely on retries
                self._report_refusal(RedisPermissionError("listening for lease releases", refused))
            self.stopping.wait(self._retry)

        try:
            pubsub.subscribe(**{self.store.keys.released: released})
        except redis.RedisError:
            logger.debug("release notifications unavailable for now; relying on retries")
        self._listener = pubsub.run_in_thread(sleep_time=0.2, daemon=True, exception_handler=trouble)
