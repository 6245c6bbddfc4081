"""Every Prometheus series a replica exports, on a registry of its own (several replicas can live in
one test process, each with its own numbers).

The leader's work loop is latency-critical, so it pays almost nothing for metrics: a pass hands over
what it already knows once its writes are done (``pass_finished``: one lock, a few additions per
track), and a dispatch reply already carries its firings grouped by lateness (``dispatched``). The
firing series are plain numbers kept here and turned into Prometheus families only when someone
scrapes (``_Collector``). The lateness histogram is filled a call at a time, not a firing at a time:
the firings of one enqueue call were judged by one TIME, so with their enqueue_at sorted one
bisection per bucket places them all, and without jitter they share one enqueue_at (one lateness).
A 100,000-tenant tick costs about a hundred such steps, where ``Histogram.observe`` per firing
would cost about 150 ms; a dispatch reply comes grouped by lateness already.

Gauges that need Redis (pending firings, outbox backlog) are read by ``refresh_queues``, which the
replica runs on a timer of its own while it leads; a scrape only reads the last snapshot.

A scrape is CPU work in the replica's process (about 25 ms for 100 schedules), and a thread
rendering it takes turns at the GIL with the work loop: measured on 100 schedules due each second,
four scrapes a second moved p99 lateness from 9 ms to 19..26 ms. So a scrape waits
(``wait_until_idle``) until the work loop sleeps with time to spare before its next due instant
(``idle``), at most IDLE_WAIT, then renders: p99 8..9 ms again under the same scrapes.
"""

from __future__ import annotations

import threading
import time
from bisect import bisect_left
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.utils import floatToGoString

from scheduler.store.replies import dispatched_groups

if TYPE_CHECKING:
    from scheduler.lease import Lease
    from scheduler.plan.passes import TrackPlan
    from scheduler.store.delivery import Outcome
    from scheduler.store.state import Store

# Lateness in seconds: the 10 ms target sits on a boundary; a caught-up firing lands in the long tail.
LATENESS_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
                    60.0, 300.0, 3600.0)
_BOUNDS_MS = [round(bound * 1000, 6) for bound in LATENESS_BUCKETS]
_BUCKET_LABELS = [floatToGoString(bound) for bound in LATENESS_BUCKETS] + ["+Inf"]
RENEWAL_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
CATCHUP = "catchup"  # the skip reason of the catch-up policies ('latest', 'none')
PAUSED = "paused"  # the skip reason of `scheduler pause` (a schedule, or one tenant)
TROUBLE = ("lease", "work", "relay", "gauges")  # the `doing` label of scheduler_redis_errors_total
IDLE_WAIT = 1.0  # seconds a scrape waits at most for the work loop to be idle (a busy loop still gets scraped)
MIN_IDLE, MAX_IDLE = 0.02, 0.5  # seconds of idleness a scrape asks for: four times its last render, within these


class LatenessBuckets:
    """A lateness histogram of one schedule: per-bucket counts (not cumulative; +Inf last), the sum
    and the count, filled a (lateness in ms, firings) group or an enqueue call at a time."""

    __slots__ = ("counts", "total_ms", "count")

    def __init__(self) -> None:
        self.counts = [0] * (len(_BOUNDS_MS) + 1)
        self.total_ms = 0
        self.count = 0

    def add(self, lateness_ms: int, firings: int = 1) -> None:
        self.counts[bisect_left(_BOUNDS_MS, lateness_ms)] += firings
        self.total_ms += lateness_ms * firings
        self.count += firings

    def add_due(self, now_ms: int, due_ms: Sequence[int]) -> None:
        """Firings delivered at ``now_ms`` whose enqueue_at (ms) were ``due_ms``, sorted: each one's
        lateness is now_ms minus its enqueue_at, bucketed with one bisection per bucket."""
        firings = len(due_ms)
        if not firings:
            return
        if due_ms[0] == due_ms[-1]:  # one enqueue_at (no jitter): one lateness
            self.add(now_ms - due_ms[0], firings)
            return
        counted = 0
        for bucket, bound in enumerate(_BOUNDS_MS):
            within = firings - bisect_left(due_ms, now_ms - bound)  # lateness <= bound
            self.counts[bucket] += within - counted
            counted = within
        self.counts[-1] += firings - counted
        self.total_ms += firings * now_ms - sum(due_ms)
        self.count += firings

    def cumulative(self) -> list[tuple[str, int]]:
        """The buckets as Prometheus shows them: (le, firings at most that late)."""
        running, buckets = 0, []
        for label, count in zip(_BUCKET_LABELS, self.counts):
            running += count
            buckets.append((label, running))
        return buckets

    def copy(self) -> LatenessBuckets:
        other = LatenessBuckets()
        other.counts, other.total_ms, other.count = list(self.counts), self.total_ms, self.count
        return other


@dataclass
class ScheduleStats:
    """What one schedule's firings did, since this replica started."""

    delivered: int = 0
    deduplicated: int = 0
    late: int = 0
    skipped: dict[str, int] = field(default_factory=lambda: {CATCHUP: 0})
    lateness: LatenessBuckets = field(default_factory=LatenessBuckets)
    last_ticks: dict[str, float] = field(default_factory=dict)  # track -> its last tick handled, Unix seconds
    failures: int = 0  # attempts at its work that Redis refused (a broken key, a missing permission)
    failing: bool = False  # its last attempt was refused

    def copy(self) -> ScheduleStats:
        return ScheduleStats(self.delivered, self.deduplicated, self.late, dict(self.skipped), self.lateness.copy(),
                             dict(self.last_ticks), self.failures, self.failing)


@dataclass(frozen=True)
class QueueGauges:
    """The leader's last reading of its queues: firings waiting out their jitter, and each outbox's
    backlog as (firings, age in seconds of the oldest)."""

    pending: Mapping[str, int] = field(default_factory=dict)
    outboxes: Mapping[str, tuple[int, float]] = field(default_factory=dict)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._lock = threading.Lock()
        self._schedules: dict[str, ScheduleStats] = {}
        self._trouble = dict.fromkeys(TROUBLE, 0)
        self._queues = QueueGauges()
        self._lease: Lease | None = None
        self._idle_until = float("inf")  # monotonic: the work loop sleeps until then (0: it works; inf: none yet)
        self._render_seconds = 0.0  # what the last scrape took to render
        self.renewals = Histogram(
            "scheduler_lease_renewal_seconds", "Round-trip time of each lease renewal.",
            buckets=RENEWAL_BUCKETS, registry=self.registry)
        self.registry.register(_Collector(self))

    # -- what the replica tells -----------------------------------------------------------------

    def watch(self, lease: Lease) -> None:
        """Export ``lease``'s state (read at each scrape): scheduler_is_leader, scheduler_lease_epoch."""
        self._lease = lease

    def pass_finished(self, planned: Iterable[TrackPlan], outcome: Outcome) -> None:
        """After a pass's writes: the firings every track's enqueue calls delivered or found already
        accepted (also those of tracks left unfinished: they were written), and, for each finished
        track (``planned``: the pass's plans), its catch-up skips and last tick. A track left
        unfinished is planned again, so its skips are counted then."""
        with self._lock:
            for track, accepted in outcome.accepted.items():
                stats = self._stats(outcome.schedules.get(track, track))
                stats.delivered += accepted.delivered
                stats.deduplicated += accepted.duplicates
                stats.late += accepted.late
                for now_ms, due_ms in accepted.deliveries:
                    stats.lateness.add_due(now_ms, due_ms)
            for plan in planned:
                if plan.key not in outcome.finished:
                    continue
                stats = self._stats(plan.schedule.name)
                stats.skipped[CATCHUP] += plan.skipped
                if plan.ticks:
                    stats.last_ticks[plan.key] = plan.ticks[-1].timestamp()

    def dispatched(self, reply: Sequence[Any]) -> None:
        """A dispatch call's reply: the firings it moved from pending to their queue."""
        if len(reply) < 3 or not reply[2]:
            return
        with self._lock:
            for schedule, lateness, late, firings in dispatched_groups(reply):
                stats = self._stats(schedule)
                stats.delivered += firings
                stats.late += firings if late else 0
                stats.lateness.add(lateness, firings)

    def skipped(self, schedule: str, reason: str, firings: int) -> None:
        """Firings not sent on purpose, by reason (``catchup``, or another rule's own word)."""
        with self._lock:
            skipped = self._stats(schedule).skipped
            skipped[reason] = skipped.get(reason, 0) + firings

    def schedule_failed(self, schedule: str) -> None:
        """An attempt at one schedule's work was refused; it is retried on its own."""
        with self._lock:
            stats = self._stats(schedule)
            stats.failures += 1
            stats.failing = True

    def schedule_works(self, schedule: str) -> None:
        """One schedule's work went through again."""
        with self._lock:
            if schedule in self._schedules:
                self._schedules[schedule].failing = False

    def redis_error(self, doing: str) -> None:
        """A Redis call of the lease job, the work loop, the relay or the gauges failed."""
        with self._lock:
            self._trouble[doing] = self._trouble.get(doing, 0) + 1

    def renewed(self, seconds: float) -> None:
        self.renewals.observe(seconds)

    def refresh_queues(self, store: Store, queues: Iterable[str] = ()) -> None:
        """Read the queue gauges from Redis (the leader, on its own timer; a few round trips):
        pending firings of ``queues`` and of every queue that ever had any, and every outbox's
        backlog with the age of its oldest firing by Redis's clock. RedisUnavailable propagates."""
        names = sorted(set(queues) | store.queues())
        pending = store.pending_counts(names)
        outboxes = {}
        boxes = sorted(store.outbox_queues())
        if boxes:
            now = store.time()
            for queue in boxes:
                count, oldest = store.outbox_backlog(queue)
                outboxes[queue] = (count, max(0.0, (now - oldest).total_seconds()) if oldest else 0.0)
        self._queues = QueueGauges(pending, outboxes)

    def forget_queues(self) -> None:
        """Not leading: export no queue gauges, so only the leader's numbers add up."""
        self._queues = QueueGauges()

    @contextmanager
    def idle(self, seconds: float) -> Iterator[None]:
        """The work loop sleeps for up to ``seconds`` (it may be woken sooner: then it says so)."""
        self._idle_until = time.monotonic() + seconds
        try:
            yield
        finally:
            self._idle_until = 0.0

    def wait_until_idle(self, timeout: float = IDLE_WAIT) -> None:
        """Before rendering a scrape: wait until the work loop is asleep for long enough to render
        without getting in its way, or ``timeout`` at most."""
        needed = min(MAX_IDLE, max(MIN_IDLE, 4 * self._render_seconds))
        deadline = time.monotonic() + timeout
        while self._idle_until - time.monotonic() < needed and time.monotonic() < deadline:
            time.sleep(0.005)

    def rendered(self, seconds: float) -> None:
        self._render_seconds = seconds

    def _stats(self, schedule: str) -> ScheduleStats:
        stats = self._schedules.get(schedule)
        if stats is None:
            stats = self._schedules[schedule] = ScheduleStats()
        return stats

    # -- what a scrape reads --------------------------------------------------------------------

    def snapshot(self) -> tuple[dict[str, ScheduleStats], dict[str, int]]:
        """A consistent copy of the firing series and the Redis error counts."""
        with self._lock:
            return {name: stats.copy() for name, stats in self._schedules.items()}, dict(self._trouble)

    def lease_state(self) -> tuple[int, int]:
        """(1 if this replica holds the lease now else 0, the epoch of the lease as it last saw it:
        its own while it leads, the leader's while it stands by, 0 before it saw any)."""
        lease = self._lease
        if lease is None:
            return 0, 0
        if lease.held:
            return 1, lease.epoch
        return 0, lease.holder.epoch if lease.holder is not None else lease.epoch


class _Collector:
    """Builds the families of Metrics' own numbers at each scrape."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        schedules, trouble = self.metrics.snapshot()
        names = sorted(schedules)

        delivered = CounterMetricFamily(
            "scheduler_firings_delivered", "Firings put on their queue (or its outbox), at once or after their "
            "jitter.", labels=["schedule"])
        deduplicated = CounterMetricFamily(
            "scheduler_firings_deduplicated", "Firings found already accepted (a retried or re-planned tick).",
            labels=["schedule"])
        skipped = CounterMetricFamily(
            "scheduler_firings_skipped", "Firings not sent on purpose, by reason (catchup: the catch-up policy; paused: scheduler pause).",
            labels=["schedule", "reason"])
        late = CounterMetricFamily(
            "scheduler_firings_late", "Firings delivered more than misfire_grace after their enqueue_at.",
            labels=["schedule"])
        lateness = HistogramMetricFamily(
            "scheduler_firing_lateness_seconds", "Delivery time by Redis's clock minus enqueue_at.",
            labels=["schedule"])
        last_tick = GaugeMetricFamily(
            "scheduler_last_tick_timestamp_seconds", "The last tick handled, per schedule and track (zone).",
            labels=["schedule", "track"])
        failures = CounterMetricFamily(
            "scheduler_schedule_failures", "Attempts at a schedule's work that Redis refused (a tenant set of the "
            "wrong type, a missing permission, a refused write); the schedule is retried on its own.",
            labels=["schedule"])
        failing = GaugeMetricFamily(
            "scheduler_schedule_failing", "1 while a schedule's last attempt was refused, else 0 (leader only).",
            labels=["schedule"])
        for name in names:
            stats = schedules[name]
            delivered.add_metric([name], stats.delivered)
            deduplicated.add_metric([name], stats.deduplicated)
            late.add_metric([name], stats.late)
            for reason, firings in sorted(stats.skipped.items()):
                skipped.add_metric([name, reason], firings)
            lateness.add_metric([name], stats.lateness.cumulative(), stats.lateness.total_ms / 1000)
            for track, tick in sorted(stats.last_ticks.items()):
                last_tick.add_metric([name, track], tick)
            failures.add_metric([name], stats.failures)
            failing.add_metric([name], int(stats.failing))
        yield from (delivered, deduplicated, skipped, late, lateness, last_tick, failures, failing)

        leading, epoch = self.metrics.lease_state()
        yield GaugeMetricFamily("scheduler_is_leader", "1 while this replica holds the lease, else 0.", leading)
        yield GaugeMetricFamily("scheduler_lease_epoch", "The epoch of the lease as this replica last saw it "
                                "(its own while leading).", epoch)

        queues = self.metrics._queues
        pending = GaugeMetricFamily("scheduler_pending_firings", "Firings waiting out their jitter (leader only).",
                                    labels=["queue"])
        backlog = GaugeMetricFamily("scheduler_outbox_backlog", "Firings waiting in a queue's outbox for the "
                                    "relay (leader only).", labels=["queue"])
        oldest = GaugeMetricFamily("scheduler_outbox_oldest_age_seconds", "How long the oldest firing of an "
                                   "outbox has waited, by Redis's clock; 0 when empty (leader only).",
                                   labels=["queue"])
        for queue, count in sorted(queues.pending.items()):
            pending.add_metric([queue], count)
        for queue, (count, age) in sorted(queues.outboxes.items()):
            backlog.add_metric([queue], count)
            oldest.add_metric([queue], age)
        yield from (pending, backlog, oldest)

        errors = CounterMetricFamily("scheduler_redis_errors", "Redis calls that failed, by what was calling.",
                                     labels=["doing"])
        for doing, count in sorted(trouble.items()):
            errors.add_metric([doing], count)
        yield errors
