"""The metrics' own bookkeeping: lateness buckets against prometheus_client's Histogram, what a pass
and a dispatch reply add, the lateness of an enqueue call's delivered firings, and the collector."""

from __future__ import annotations

import random
import threading
import time
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest
from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from scheduler.clock.cadence import Every
from scheduler.clock.firing import Firing
from scheduler.keys import Token
from scheduler.metrics import CATCHUP, LATENESS_BUCKETS, LatenessBuckets, Metrics
from scheduler.plan.passes import TrackPlan
from scheduler.store.delivery import Outcome
from scheduler.table import Schedule
from scheduler.store.calls import Acceptance, Call, delivered_at
from scheduler.store.replies import dispatched, dispatched_groups

TICK = datetime(2026, 11, 24, 18, 15, tzinfo=UTC)
TICK_MS = int(TICK.timestamp() * 1000)


def ms(instant: datetime) -> int:
    return int(instant.timestamp() * 1000)


def samples(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a scrape, by (name, sorted labels), read back through the text format."""
    text = generate_latest(metrics.registry).decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(metrics: Metrics, name: str, **labels: str) -> float | None:
    return samples(metrics).get((name, tuple(sorted(labels.items()))))


# -- lateness buckets ---------------------------------------------------------------------------


def test_lateness_buckets_count_each_value_where_prometheus_histogram_would():
    values = [0, 1, 2, 3, 5, 6, 10, 11, 25, 26, 999, 1000, 1001, 2500, 59_999, 60_000, 3_600_000, 3_600_001]
    rng = random.Random(7)
    values += [rng.randrange(0, 100_000) for _ in range(500)]
    reference = Histogram("reference", "", buckets=LATENESS_BUCKETS, registry=CollectorRegistry())
    ours = LatenessBuckets()
    for lateness in values:
        reference.observe(lateness / 1000)
        ours.add(lateness)

    expected = {s.labels["le"]: s.value for s in reference.collect()[0].samples if s.name.endswith("_bucket")}
    assert dict(ours.cumulative()) == expected
    assert ours.count == len(values)
    assert ours.total_ms / 1000 == pytest.approx(sum(values) / 1000)


def test_firings_judged_at_one_time_are_bucketed_as_observe_would():
    rng = random.Random(11)
    now_ms = TICK_MS + 3_600_000
    for due in ([TICK_MS] * 1000, sorted(rng.randrange(TICK_MS, now_ms + 1) for _ in range(1000)),
                sorted([now_ms, now_ms - 1, now_ms - 2, now_ms - 3, now_ms - 10, now_ms - 11, now_ms - 60_000])):
        reference = Histogram("reference", "", buckets=LATENESS_BUCKETS, registry=CollectorRegistry())
        for at_ms in due:
            reference.observe((now_ms - at_ms) / 1000)
        ours = LatenessBuckets()
        ours.add_due(now_ms, due)
        expected = {s.labels["le"]: s.value for s in reference.collect()[0].samples if s.name.endswith("_bucket")}
        assert dict(ours.cumulative()) == expected
        assert ours.count == len(due) and ours.total_ms == sum(now_ms - at_ms for at_ms in due)


def test_a_value_counted_many_times_at_once_is_one_addition():
    buckets = LatenessBuckets()
    buckets.add(3, 100_000)
    assert buckets.count == 100_000
    assert buckets.total_ms == 300_000
    cumulative = dict(buckets.cumulative())
    assert cumulative["0.0025"] == 0 and cumulative["0.005"] == 100_000 and cumulative["+Inf"] == 100_000


# -- what an enqueue call delivered -------------------------------------------------------------


def chunk_call(enqueue_at: list[datetime]) -> Call:
    firings = [Firing("s", f"t{n}", TICK, at) for n, at in enumerate(enqueue_at)]
    stamps = {at: (ms(at), "") for at in set(enqueue_at)}
    return Call(None, [], [], "s", TICK, len(firings), firings, stamps)  # type: ignore[arg-type]


def test_without_jitter_a_chunk_is_one_enqueue_at():
    call = chunk_call([TICK] * 1000)
    assert delivered_at(call, [1000, 0, 0, 0, TICK_MS + 4]) == [TICK_MS] * 1000
    assert delivered_at(call, [0, 0, 1000, 0, TICK_MS + 4]) == [], "all duplicates: nothing delivered"


def test_with_jitter_only_the_due_firings_count():
    offsets = [0, 0, 3, 7, 900, 1500]
    call = chunk_call([TICK + timedelta(milliseconds=o) for o in offsets])
    # TIME was tick + 8 ms: four firings were due (lateness 8, 8, 5, 1), two wait in pending.
    assert delivered_at(call, [4, 2, 0, 0, TICK_MS + 8]) == [TICK_MS, TICK_MS, TICK_MS + 3, TICK_MS + 7]


def test_due_duplicates_are_taken_from_the_earliest_due():
    call = chunk_call([TICK + timedelta(milliseconds=o) for o in (0, 0, 3, 7)])
    # Two of the four due firings were accepted by an earlier attempt: the two due longest ago.
    assert delivered_at(call, [2, 0, 2, 0, TICK_MS + 8]) == [TICK_MS + 3, TICK_MS + 7]


def test_acceptance_adds_old_and_new_replies():
    call = chunk_call([TICK] * 3)
    accepted = Acceptance()
    accepted.add([3, 0, 0])  # the reply shape before late and now_ms
    accepted.add([3, 0, 0, 3, TICK_MS + 90_000], call)
    accepted.add([2, 0, 1, 2, TICK_MS + 90_010], call)
    assert accepted == Acceptance(delivered=8, pending=0, duplicates=1, late=5)
    assert accepted.deliveries == [(TICK_MS + 90_000, [TICK_MS] * 3), (TICK_MS + 90_010, [TICK_MS] * 2)]


def test_a_hundred_thousand_firing_tick_is_a_hundred_steps():
    firings = [TICK] * 100_000
    accepted = Acceptance()
    for start in range(0, len(firings), 1000):
        call = chunk_call(firings[start : start + 1000])
        accepted.add([1000, 0, 0, 0, TICK_MS + start // 1000], call)
    assert accepted.delivered == 100_000
    assert len(accepted.deliveries) == 100
    buckets = LatenessBuckets()
    for now_ms, due in accepted.deliveries:
        buckets.add_due(now_ms, due)
    assert buckets.count == 100_000
    assert dict(buckets.cumulative())["0.001"] == 2000 and dict(buckets.cumulative())["0.1"] == 100_000


# -- dispatch replies ---------------------------------------------------------------------------


def test_a_dispatch_reply_keeps_its_two_first_fields_and_groups_what_it_delivered():
    reply = [3, TICK_MS + 5000, [b"tick", 2, 0, 2, b"report", 70_000, 1, 1]]
    assert dispatched(reply) == (3, datetime.fromtimestamp((TICK_MS + 5000) / 1000, UTC))
    assert list(dispatched_groups(reply)) == [("tick", 2, False, 2), ("report", 70_000, True, 1)]
    assert dispatched([0, -1]) == (0, None)
    assert list(dispatched_groups([0, -1])) == []


def test_dispatched_firings_are_delivered_late_and_in_the_histogram():
    metrics = Metrics()
    metrics.dispatched([3, -1, [b"tick", 2, 0, 2, b"report", 70_000, 1, 1]])
    metrics.dispatched([0, -1, []])
    assert value(metrics, "scheduler_firings_delivered_total", schedule="tick") == 2
    assert value(metrics, "scheduler_firings_late_total", schedule="tick") == 0
    assert value(metrics, "scheduler_firings_late_total", schedule="report") == 1
    assert value(metrics, "scheduler_firing_lateness_seconds_count", schedule="report") == 1
    assert value(metrics, "scheduler_firing_lateness_seconds_sum", schedule="report") == 70.0
    assert value(metrics, "scheduler_firing_lateness_seconds_bucket", schedule="tick", le="0.0025") == 2


# -- a pass -------------------------------------------------------------------------------------


def Planned(key: str, schedule: str, ticks: list[datetime], skipped: int = 0) -> TrackPlan:
    """What the work loop hands over for each planned track: its plan."""
    every_minute = Schedule(schedule, Every(timedelta(minutes=1)), ZoneInfo("UTC"), ZoneInfo("UTC"), None, "Job", "default")
    return TrackPlan(key, every_minute, ticks[0] - timedelta(minutes=1), ticks[-1], ticks, skipped=skipped)


def test_a_pass_counts_every_accepted_firing_and_each_finished_tracks_skips_and_last_tick():
    metrics = Metrics()
    nightly = Acceptance(delivered=2, duplicates=1, late=2, deliveries=[(TICK_MS + 61_000, [TICK_MS] * 2)])
    tokyo = Acceptance(delivered=3, deliveries=[(TICK_MS + 4, [TICK_MS] * 3)])
    unfinished = Acceptance(delivered=5, deliveries=[(TICK_MS + 2, [TICK_MS] * 5)])
    outcome = Outcome(accepted={"nightly": nightly, "zoned@Asia/Tokyo": tokyo, "wide": unfinished},
                      schedules={"nightly": "nightly", "zoned@Asia/Tokyo": "zoned", "wide": "wide"},
                      finished={"nightly", "zoned@Asia/Tokyo"})
    planned = [Planned("nightly", "nightly", [TICK - timedelta(minutes=2), TICK], skipped=4),
               Planned("zoned@Asia/Tokyo", "zoned", [TICK]),
               Planned("wide", "wide", [TICK], skipped=9)]

    metrics.pass_finished(planned, outcome)

    assert value(metrics, "scheduler_firings_delivered_total", schedule="nightly") == 2
    assert value(metrics, "scheduler_firings_deduplicated_total", schedule="nightly") == 1
    assert value(metrics, "scheduler_firings_late_total", schedule="nightly") == 2
    assert value(metrics, "scheduler_firings_skipped_total", schedule="nightly", reason=CATCHUP) == 4
    assert value(metrics, "scheduler_firings_delivered_total", schedule="wide") == 5, "written, even if unfinished"
    assert value(metrics, "scheduler_firings_skipped_total", schedule="wide", reason=CATCHUP) == 0, (
        "an unfinished track is planned again: its skips are counted when it finishes")
    assert value(metrics, "scheduler_last_tick_timestamp_seconds", schedule="zoned",
                 track="zoned@Asia/Tokyo") == TICK.timestamp()
    assert value(metrics, "scheduler_last_tick_timestamp_seconds", schedule="wide", track="wide") is None
    for schedule, delivered in (("nightly", 2), ("zoned", 3), ("wide", 5)):
        assert value(metrics, "scheduler_firing_lateness_seconds_count", schedule=schedule) == delivered


def test_another_skip_reason_is_a_label_of_its_own():
    metrics = Metrics()
    metrics.skipped("nightly", "paused", 7)
    assert value(metrics, "scheduler_firings_skipped_total", schedule="nightly", reason="paused") == 7
    assert value(metrics, "scheduler_firings_skipped_total", schedule="nightly", reason=CATCHUP) == 0


def test_each_replica_has_its_own_registry():
    first, second = Metrics(), Metrics()
    first.skipped("a", CATCHUP, 1)
    assert value(first, "scheduler_firings_skipped_total", schedule="a", reason=CATCHUP) == 1
    assert value(second, "scheduler_firings_skipped_total", schedule="a", reason=CATCHUP) is None


# -- lease and queue gauges ---------------------------------------------------------------------


def test_lease_gauges_read_the_lease_at_each_scrape():
    metrics = Metrics()
    assert value(metrics, "scheduler_is_leader") == 0 and value(metrics, "scheduler_lease_epoch") == 0
    lease = SimpleNamespace(held=True, epoch=7, holder=None)
    metrics.watch(lease)  # type: ignore[arg-type]
    assert value(metrics, "scheduler_is_leader") == 1 and value(metrics, "scheduler_lease_epoch") == 7
    lease.held, lease.holder = False, Token(9, "r2")
    assert value(metrics, "scheduler_is_leader") == 0 and value(metrics, "scheduler_lease_epoch") == 9


class FakeStore:
    def __init__(self) -> None:
        self.now = TICK

    def queues(self) -> set[str]:
        return {"default"}

    def pending_counts(self, queues):
        return {queue: 3 if queue == "default" else 0 for queue in queues}

    def outbox_queues(self) -> set[str]:
        return {"exports", "quiet"}

    def time(self) -> datetime:
        return self.now

    def outbox_backlog(self, queue):
        return (4, TICK - timedelta(seconds=90)) if queue == "exports" else (0, None)


def test_queue_gauges_show_the_last_reading_and_only_while_leading():
    metrics = Metrics()
    metrics.refresh_queues(FakeStore(), {"reports"})  # type: ignore[arg-type]
    assert value(metrics, "scheduler_pending_firings", queue="default") == 3
    assert value(metrics, "scheduler_pending_firings", queue="reports") == 0
    assert value(metrics, "scheduler_outbox_backlog", queue="exports") == 4
    assert value(metrics, "scheduler_outbox_oldest_age_seconds", queue="exports") == 90
    assert value(metrics, "scheduler_outbox_oldest_age_seconds", queue="quiet") == 0
    metrics.forget_queues()
    assert value(metrics, "scheduler_pending_firings", queue="default") is None


def test_redis_errors_are_counted_by_caller_from_zero():
    metrics = Metrics()
    metrics.redis_error("work")
    metrics.redis_error("work")
    assert value(metrics, "scheduler_redis_errors_total", doing="work") == 2
    assert value(metrics, "scheduler_redis_errors_total", doing="lease") == 0
    metrics.renewed(0.003)
    assert value(metrics, "scheduler_lease_renewal_seconds_count") == 1


# -- scrapes wait for the work loop to sleep ----------------------------------------------------


def test_a_scrape_waits_while_the_work_loop_works_and_not_while_it_sleeps():
    metrics = Metrics()
    started = time.monotonic()
    metrics.wait_until_idle(timeout=5)
    assert time.monotonic() - started < 0.5, "no work loop yet: nothing to wait for"

    with metrics.idle(10):
        started = time.monotonic()
        metrics.wait_until_idle(timeout=5)
        assert time.monotonic() - started < 0.5, "the loop sleeps long enough"
    started = time.monotonic()
    metrics.wait_until_idle(timeout=0.2)
    assert time.monotonic() - started >= 0.2, "a working loop holds the scrape up to the timeout"

    metrics.rendered(0.05)  # a slow render asks for four times its time
    with metrics.idle(0.15):
        started = time.monotonic()
        metrics.wait_until_idle(timeout=0.2)
        assert time.monotonic() - started >= 0.2


def test_a_scrape_renders_as_soon_as_the_loop_goes_to_sleep():
    metrics = Metrics()
    with metrics.idle(0):
        pass  # the loop works from here on
    woke = threading.Event()

    def loop() -> None:
        time.sleep(0.1)
        with metrics.idle(5):
            woke.wait(5)

    worker = threading.Thread(target=loop)
    worker.start()
    started = time.monotonic()
    metrics.wait_until_idle(timeout=3)
    waited = time.monotonic() - started
    woke.set()
    worker.join()
    assert 0.05 <= waited < 1
