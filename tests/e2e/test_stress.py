"""Real replicas under the conditions that broke them: a dense jittered table, a chunk Redis refuses,
a tick cut off before a long outage, and replica clocks that are off.

Each test reads the stream back and judges it on Redis's clock: a stream entry id's first part is
the time, in ms by Redis's clock, at which the entry was written.
"""

from __future__ import annotations

import math
import signal
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis
from faults.proxy import OOM, Proxy
from helpers import write_table
from replicas import PREFIX, Cluster, Replica

from clocks import SKEWABLE_REDIS, faketime_available, faketime_env
from redis_server import RedisServer, wait_for

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not faketime_available(), reason="needs libfaketime (.ci/run installs Debian's faketime)"),
]


@pytest.fixture
def redis_server(tmp_path):
    """The suite's redis-server (this overrides tests/conftest.py's for this module's tests), but
    without an fsync per write: on this shared machine a slow disk can stall an fsync for seconds,
    which would make firings late for reasons that have nothing to do with the breaks tested here.
    The test that restarts Redis starts its own, durable one."""
    (tmp_path / "redis").mkdir()
    server = RedisServer(tmp_path / "redis", options=("--appendfsync", "no")).start()
    yield server
    server.cleanup()


# -- reading the stream back --------------------------------------------------------------------


def tick_text(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def tick_ms(text: str) -> int:
    return int(datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()) * 1000


def instant_ms(text: str) -> int:
    moment = datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000 + 0.5)


def redis_ms(client: redis.Redis) -> int:
    seconds, micros = client.time()
    return seconds * 1000 + micros // 1000


@dataclass(frozen=True)
class Landed:
    """One stream entry: which firing, when it was due, when Redis wrote it (all ms)."""

    firing_id: str
    tick: int
    enqueue_at: int
    written: int

    @property
    def lateness(self) -> int:
        return self.written - self.enqueue_at


class StreamReader:
    """Reads a queue's stream incrementally (a 24,000-entry stream is polled many times)."""

    def __init__(self, client: redis.Redis, queue: str = "default") -> None:
        self.client = client
        self.stream = f"{PREFIX}:queue:{queue}"
        self.entries: list[Landed] = []
        self.per_tick: Counter[int] = Counter()
        self._last = "-"

    def poll(self) -> list[Landed]:
        while True:
            batch = self.client.xrange(self.stream, min=self._last, count=10_000)
            if self._last != "-":
                batch = [entry for entry in batch if entry[0].decode() != self._last]
            if not batch:
                return self.entries
            for entry_id, fields in batch:
                text = {key.decode(): value.decode() for key, value in fields.items()}
                landed = Landed(text["firing_id"], tick_ms(text["tick"]), instant_ms(text["enqueue_at"]),
                                int(entry_id.decode().split("-")[0]))
                self.entries.append(landed)
                self.per_tick[landed.tick] += 1
            self._last = batch[-1][0].decode()

    @property
    def first_tick(self) -> int | None:
        return min(self.per_tick, default=None)


def problems_with(
    entries: list[Landed], schedule: str, tenants: list[str], period_ms: int, first: int, cutoff: int,
    late_after_ms: int,
) -> list[str]:
    """What is wrong with the firings of every tick in [first, cutoff]: missing, doubled, delivered
    before their enqueue_at, or more than ``late_after_ms`` after it (on Redis's clock)."""
    expected = {f"{schedule}/{tenant}/{tick_text(tick)}" for tick in range(first, cutoff + 1, period_ms)
                for tenant in tenants}
    window = [entry for entry in entries if first <= entry.tick <= cutoff]
    counts = Counter(entry.firing_id for entry in window)
    problems = []
    missing = expected - set(counts)
    if missing:
        ticks = sorted({firing.rsplit("/", 1)[1] for firing in missing})
        problems.append(f"{len(missing)} of {len(expected)} firings never landed, in {len(ticks)} of "
                        f"{len(range(first, cutoff + 1, period_ms))} ticks ({ticks[0]} .. {ticks[-1]}), "
                        f"e.g. {sorted(missing)[:3]}")
    doubled = sorted(firing for firing, n in counts.items() if n > 1)
    if doubled:
        problems.append(f"{len(doubled)} firings landed more than once, e.g. {doubled[:3]}")
    unexpected = sorted(set(counts) - expected)
    if unexpected:
        problems.append(f"{len(unexpected)} firings nobody expected, e.g. {unexpected[:3]}")
    early = [entry for entry in window if entry.lateness < 0]
    if early:
        worst = min(early, key=lambda entry: entry.lateness)
        problems.append(f"{len(early)} firings landed before their enqueue_at, by up to {-worst.lateness} ms "
                        f"({worst.firing_id})")
    late = [entry for entry in window if entry.lateness > late_after_ms]
    if late:
        worst = max(late, key=lambda entry: entry.lateness)
        problems.append(f"{len(late)} firings landed more than {late_after_ms} ms after their enqueue_at, "
                        f"up to {worst.lateness} ms ({worst.firing_id})")
    return problems


# -- replicas -----------------------------------------------------------------------------------


def start_replica(cluster: Cluster, name: str, clock_offset: float = 0.0, redis_url: str | None = None) -> Replica:
    """A replica of ``cluster``, its wall clock ``clock_offset`` seconds off (monotonic untouched)."""
    settings = dict(cluster.settings)
    if clock_offset:
        settings.update(faketime_env(clock_offset, base={}))
    replica = Replica(name, cluster.config, redis_url or cluster.redis_url, cluster.directory / f"{name}.log",
                      settings)
    cluster.replicas[name] = replica.start()
    return replica


@pytest.fixture
def clusters(tmp_path) -> Iterator[list[Cluster]]:
    """Clusters a test builds by hand (through a proxy, over its own Redis); stopped afterwards."""
    built: list[Cluster] = []
    yield built
    for cluster in built:
        cluster.stop_all()


def cluster_over(clusters: list[Cluster], directory: Path, config: Path, replicas_url: str,
                 server: RedisServer) -> Cluster:
    """Replicas that reach Redis at ``replicas_url`` (a proxy); the test reads Redis directly."""
    cluster = Cluster(directory, config, replicas_url)
    cluster.client = server.client()
    clusters.append(cluster)
    return cluster


def tenants_file(directory: Path, count: int, width: int) -> list[str]:
    tenants = [f"tenant-{n:0{width}d}" for n in range(count)]
    (directory / "tenants.txt").write_text("\n".join(tenants) + "\n")
    return tenants


# -- 1. the work loop must never stop while its replica leads ----------------------------------

DENSE_RUN_MS = 35_000
DENSE_LATE_AFTER_MS = 3_000


@pytest.mark.parametrize("leader_ahead", [0.2])
def test_a_leader_a_little_ahead_of_redis_keeps_delivering_a_dense_jittered_table(tmp_path, make_cluster,
                                                                                   leader_ahead):
    """3,000 tenants every 5 s spread over 4 s: a firing is due every 1.3 ms. The leader's clock
    runs ``leader_ahead`` seconds ahead of Redis's, so the next due instant Redis reports is
    already past by the leader's clock as it finishes a run: its work must still go on, every tick."""
    tenants = tenants_file(tmp_path, 3_000, 4)
    cluster = make_cluster(write_table(tmp_path, """
        [tenants]
        dense = { file = "tenants.txt" }

        [[schedule]]
        name = "dense"
        every = "5s"
        jitter = "4s"
        tenants = "dense"
        job = "Dense"
    """))
    start_replica(cluster, "r1", clock_offset=leader_ahead)
    cluster.leader(timeout=20)
    start_replica(cluster, "r2")
    period, jitter = 5_000, 4_000
    # The leader starts the track after the instant it first saw it: every tick after it is due.
    first_seen = wait_for(lambda: cluster.watermark("dense"), timeout=20, message="the track first seen")
    first = (first_seen // period + 1) * period
    stream = StreamReader(cluster.client)

    def overdue_ticks(now: int) -> list[int]:
        """Ticks whose every firing should have landed by ``now`` and has not."""
        return [tick for tick in range(first, now - jitter - DENSE_LATE_AFTER_MS, period)
                if stream.per_tick[tick] < len(tenants)]

    # Watch for DENSE_RUN_MS of Redis time, or until a tick is overdue (a stalled loop never recovers).
    end = first + DENSE_RUN_MS
    while True:
        now = redis_ms(cluster.client)
        stream.poll()  # read after `now`: what it shows had landed by then
        if now >= end or overdue_ticks(now):
            break
        time.sleep(0.25)  # a poll interval, not synchronisation
    cutoff = (now - jitter - DENSE_LATE_AFTER_MS - first) // period * period + first

    problems = problems_with(stream.entries, "dense", tenants, period, first, cutoff, DENSE_LATE_AFTER_MS)
    holder = cluster.holder()
    assert not problems, (f"ticks {tick_text(first)} .. {tick_text(cutoff)}, lease held by {holder}, "
                          f"{cluster.pending()} firings still pending:\n" + "\n".join(problems))
    assert cutoff - first >= 4 * period, "the run was too short to judge"


# -- 2. a chunk Redis refuses must not be lost -------------------------------------------------


def test_a_chunk_refused_in_the_middle_of_a_pipeline_is_still_delivered(tmp_path, redis_server, clusters):
    """2,500 tenants, so a tick is three script calls of 1,000 firings sent in one pipeline. Redis
    (through the proxy) refuses the middle one once with OOM: those 1,000 must land all the same."""
    tenants = tenants_file(tmp_path, 2_500, 4)
    config = write_table(tmp_path, """
        [tenants]
        wide = { file = "tenants.txt" }

        [[schedule]]
        name = "wide"
        every = "5s"
        tenants = "wide"
        job = "Wide"
    """)
    with Proxy(redis_server.port) as proxy:
        refusal = proxy.refuse(b"tenant-1500", reply=OOM)
        cluster = cluster_over(clusters, tmp_path, config, proxy.url, redis_server)
        start_replica(cluster, "r1")
        cluster.leader(timeout=20)
        start_replica(cluster, "r2")

        assert refusal.wait(30), "no request named tenant-1500"
        stream = StreamReader(cluster.client)
        wait_for(lambda: stream.poll() and stream.first_tick, timeout=20, message="the refused tick's other firings")
        refused_tick = stream.first_tick  # the first tick with tenants is the one whose chunk was refused

        def next_tick_complete() -> bool:
            stream.poll()
            return any(tick > refused_tick and n >= len(tenants) for tick, n in stream.per_tick.items())

        wait_for(next_tick_complete, timeout=30, interval=0.2, message="the following tick in full")
        cluster.stop_all()  # while the proxy still runs: they release the lease through it

    problems = problems_with(stream.entries, "wide", tenants, 5_000, refused_tick, refused_tick, 10**9)
    assert refusal.fired == 1
    assert not problems, f"tick {tick_text(refused_tick)}, one call of it refused with OOM:\n" + "\n".join(problems)


# -- 3. a half-written tick must never be sent twice ------------------------------------------

WEEK_S = 7 * 24 * 3600
OUTAGE_S = 50 * 3600
LEAD_S = 8  # the fake clocks start this long before the weekly tick


@pytest.mark.parametrize(
    ("window", "rest_delivered"),
    [
        pytest.param("24h", False, id="older-than-the-window-the-rest-is-skipped"),
        pytest.param("72h", True, id="within-the-window-the-rest-is-delivered-once"),
    ],
)
def test_a_tick_cut_off_half_way_is_never_sent_twice_after_a_fifty_hour_outage(tmp_path, clusters, window,
                                                                                rest_delivered):
    """A weekly tick of 25,000 tenants is cut off half way: the proxy forwards the leader's request
    holding tenant-10500 and keeps back the ones after it, then the leader is SIGKILLed (11,000
    firings are in). Redis and a new replica come back 50 h later. catchup = "latest" delivers the
    rest late if the tick lies within catchup_window, and skips it (counted) if not: never twice."""
    tenants = tenants_file(tmp_path, 25_000, 5)
    config = write_table(tmp_path, f"""
        [tenants]
        everyone = {{ file = "tenants.txt" }}

        [[schedule]]
        name = "weekly"
        every = "7d"
        tenants = "everyone"
        job = "Weekly"
        catchup_window = "{window}"
    """)
    # Weekly ticks fall on multiples of 7 days since the Unix epoch: move every clock to LEAD_S before one.
    real = time.time()
    tick_s = math.ceil((real + LEAD_S) / WEEK_S) * WEEK_S
    offset = tick_s - LEAD_S - real
    tick = tick_s * 1000

    server = RedisServer(tmp_path / "redis", binary=SKEWABLE_REDIS, env=faketime_env(offset))
    try:
        server.start()
        with Proxy(server.port) as proxy:
            hold = proxy.hold(b"tenant-10500", times=None)  # every time: redis-py resends on a timeout
            cluster = cluster_over(clusters, tmp_path, config, proxy.url, server)
            leader = start_replica(cluster, "r1", clock_offset=offset)
            first_seen = wait_for(lambda: cluster.watermark("weekly"), timeout=30, message="the track first seen")
            assert first_seen < tick, f"the replica started after the tick ({first_seen} >= {tick}): raise LEAD_S"

            assert hold.wait(LEAD_S + 30), "the leader never sent tenant-10500's chunk"
            leader.signal(signal.SIGKILL)
            leader.wait()
        # Redis may still be running the calls the proxy forwarded before the held one: count what
        # the tick wrote once Redis has dropped the dead leader's connections (the test's own never
        # run scripts), so that nothing more runs.
        wait_for(lambda: not [c for c in cluster.client.client_list() if c["cmd"].startswith("eval")],
                 timeout=15, message="Redis to drop the dead leader's connections")
        written = cluster.client.xlen(f"{PREFIX}:queue:default")
        assert 0 < written < len(tenants), f"the tick is not half written: {written} firings in the stream"

        server.stop()
        server.env = faketime_env(offset + OUTAGE_S)
        server.start()
        cluster.client = server.client()
        successor = start_replica(cluster, "r2", clock_offset=offset + OUTAGE_S, redis_url=server.url)
        cluster.leader(timeout=30)
        settled = _watermark_past_or_stream_still(cluster, "weekly", tick, timeout=60)

        counts = Counter(message["firing_id"] for message in cluster.stream())
        doubled = sorted(firing for firing, n in counts.items() if n > 1)
        assert not doubled, (f"{len(doubled)} firings of tick {tick_text(tick)} landed twice ({written} were "
                             f"written before the outage, {len(counts)} distinct now, {settled}), e.g. {doubled[:3]}")
        if rest_delivered:
            assert len(counts) == len(tenants), f"{len(tenants) - len(counts)} firings of the tick never landed"
        else:
            assert len(counts) == written, "a tick older than catchup_window delivers nothing more"
            assert "catch-up policy 'latest' skipped" in successor.output()
    finally:
        for cluster in clusters:
            cluster.stop_all()  # before their Redis goes
        server.cleanup()


def _watermark_past_or_stream_still(cluster: Cluster, track: str, tick: int, timeout: float) -> str:
    """Wait until the new leader has handled the track: its watermark at or past ``tick``, or, at
    the deadline, a stream that has not moved for the last 5 s."""
    deadline = time.monotonic() + timeout
    last_length, still_since = -1, time.monotonic()
    while True:
        watermark = cluster.watermark(track)
        if watermark is not None and watermark >= tick:
            return f"watermark at {tick_text(watermark)}"
        length = cluster.client.xlen(f"{PREFIX}:queue:default")
        if length != last_length:
            last_length, still_since = length, time.monotonic()
        if time.monotonic() > deadline:
            assert time.monotonic() - still_since >= 5, "the stream was still growing at the deadline"
            return f"watermark at {watermark}, stream still at {length}"
        time.sleep(0.2)  # a poll interval, not synchronisation


# -- 4. lateness and due instants are Redis's clock's, not a replica's -------------------------

FEW = ["a", "b", "c", "d", "e"]
EVERY_SECOND = f"""
[[schedule]]
name = "beat"
every = "1s"
tenants = {FEW!r}
job = "Beat"
"""
ON_TIME_MS = 1_000


def test_a_standby_75_seconds_ahead_takes_over_without_skipping_or_rushing_a_tick(tmp_path, make_cluster):
    cluster = make_cluster(write_table(tmp_path, EVERY_SECOND))
    healthy = start_replica(cluster, "r1")
    cluster.leader(timeout=20)
    ahead = start_replica(cluster, "r2", clock_offset=75)
    wait_for(lambda: "standing by" in ahead.output(), timeout=20, message="r2 standing by")
    stream = StreamReader(cluster.client)
    wait_for(lambda: len(stream.poll() and stream.per_tick) >= 3, timeout=20, message="three ticks from r1")

    handover = redis_ms(cluster.client)
    healthy.signal(signal.SIGTERM)
    assert healthy.wait(10) == 0
    cluster.leader(timeout=10, other_than="r1")
    wait_for(lambda: redis_ms(cluster.client) > handover + 6_000, timeout=30, message="six seconds after the hand-over")

    stream.poll()
    cutoff = (handover + 4_000) // 1000 * 1000
    problems = problems_with(stream.entries, "beat", FEW, 1_000, stream.first_tick, cutoff, ON_TIME_MS)
    assert not problems, (f"hand-over at {datetime.fromtimestamp(handover / 1000, UTC):%H:%M:%S.%f} to a replica "
                          f"75 s ahead, ticks {tick_text(stream.first_tick)} .. {tick_text(cutoff)}:\n"
                          + "\n".join(problems))


def test_a_replica_30_seconds_behind_delivers_each_firing_on_time(tmp_path, make_cluster):
    cluster = make_cluster(write_table(tmp_path, EVERY_SECOND))
    start_replica(cluster, "r1", clock_offset=-30)
    cluster.leader(timeout=20)
    stream = StreamReader(cluster.client)
    wait_for(lambda: len(stream.poll() and stream.per_tick) >= 5, timeout=60, message="five ticks")

    now = redis_ms(cluster.client)
    cutoff = min(max(stream.per_tick), (now - 2_000) // 1000 * 1000)
    problems = problems_with(stream.entries, "beat", FEW, 1_000, stream.first_tick, cutoff, ON_TIME_MS)
    assert not problems, (f"a replica 30 s behind Redis, ticks {tick_text(stream.first_tick)} .. "
                          f"{tick_text(cutoff)}:\n" + "\n".join(problems))
