"""Figures for `scheduler run`: fan-out, lateness and SIGTERM hand-over, with real processes.

Run by hand (not part of the test suite):  .venv/bin/python bench/bench_replica.py

* fan-out: one `every = "10s"` schedule over a 100,000-member Redis tenant set; for each of three
  ticks, how long after the tick the first and the last of its 100,000 firings are in the stream;
* lateness: `every = "1s"` over 50 tenants with `jitter = "800ms"` for 30 s; for each firing, when
  it reached the stream (the stream entry id is Redis's own clock, in ms) minus its enqueue_at;
* many schedules: 100 schedules, each `every = "1s"` over one tenant, for 30 s; the same lateness
  measure (every schedule is due at the same instant, so this is one pass's reach);
* hand-over: two replicas; SIGTERM the leader and time until the other one holds the lease.

Each scenario starts its own redis-server on a free port. Name scenarios to run only those:
`bench/bench_replica.py lateness many_schedules`.
"""

from __future__ import annotations

import signal
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "e2e")]

from helpers import write_table  # noqa: E402
from redis_server import RedisServer, wait_for  # noqa: E402
from replicas import PREFIX, Cluster  # noqa: E402

HANDOVERS = 10
FAN_OUT_TICKS = 3


def _ms(iso: str) -> int:
    return int(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1000)


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def _cluster(directory: Path, server: RedisServer, table: str) -> Cluster:
    return Cluster(directory, write_table(directory, table), server.url)


def fan_out(directory: Path, server: RedisServer) -> str:
    cluster = _cluster(directory, server, """
        [tenants]
        everyone = { redis_set = "tenants:everyone" }

        [[schedule]]
        name = "wide"
        every = "10s"
        tenants = "everyone"
        job = "Wide"
    """)
    members = [f"tenant-{n}" for n in range(100_000)]
    for start in range(0, len(members), 10_000):
        cluster.client.sadd("tenants:everyone", *members[start : start + 10_000])
    try:
        cluster.start("r1")
        stream = f"{PREFIX}:queue:default"
        wait_for(lambda: cluster.client.xlen(stream) >= FAN_OUT_TICKS * 100_000, timeout=90,
                 message=f"{FAN_OUT_TICKS} ticks of 100,000 firings")
    finally:
        cluster.stop_all()
    ticks: dict[str, list[int]] = {}  # tick -> stream times (Redis's clock, ms) of its firings
    for message in cluster.stream():
        ticks.setdefault(message["tick"], []).append(int(message["_id"].split("-")[0]))
    spans = [
        f"{min(times) - _ms(tick)}..{max(times) - _ms(tick)} ms"
        for tick, times in sorted(ticks.items())[:FAN_OUT_TICKS]
    ]
    return f"fan-out: 100,000 tenants a tick, first..last firing in the stream after the tick: {', '.join(spans)}"


def _lateness_over(cluster: Cluster, label: str, seconds: int = 30) -> str:
    """Run one replica for ``seconds`` and report stream time minus enqueue_at of every firing."""
    try:
        cluster.start("r1")
        cluster.leader()
        time.sleep(seconds)  # the measurement window itself, not synchronisation
    finally:
        cluster.stop_all()
    late = [int(m["_id"].split("-")[0]) - _ms(m["enqueue_at"]) for m in cluster.stream()]
    return (
        f"{label}: {len(late)} firings over {seconds} s, stream time minus enqueue_at: "
        f"p50 {_percentile(late, 0.5)} ms, p99 {_percentile(late, 0.99)} ms, max {max(late)} ms, min {min(late)} ms"
    )


def lateness(directory: Path, server: RedisServer) -> str:
    tenants = [f"t{n:02d}" for n in range(50)]
    cluster = _cluster(directory, server, f"""
        [[schedule]]
        name = "tick"
        every = "1s"
        tenants = {tenants!r}
        job = "Tick"
        jitter = "800ms"
    """)
    return _lateness_over(cluster, "lateness, 50 tenants with jitter")


def many_schedules(directory: Path, server: RedisServer) -> str:
    table = "".join(f"""
        [[schedule]]
        name = "s{n:03d}"
        every = "1s"
        tenants = ["acme"]
        job = "Job{n:03d}"
    """ for n in range(100))
    return _lateness_over(_cluster(directory, server, table), "lateness, 100 schedules every second")


def hand_over(directory: Path, server: RedisServer) -> str:
    cluster = _cluster(directory, server, """
        [[schedule]]
        name = "beat"
        every = "1s"
        job = "Beat"
    """)
    timings = []
    try:
        for name in ("r1", "r2"):
            cluster.start(name)
        for round_ in range(HANDOVERS):
            leader = cluster.leader()
            wait_for(lambda: sum(r.alive for r in cluster.replicas.values()) == 2, message="two replicas")
            started = time.monotonic()
            leader.signal(signal.SIGTERM)
            wait_for(lambda: (held := cluster.holder()) and held[1] != leader.name, timeout=15, interval=0.001,
                     message="the other replica holding the lease")
            timings.append((time.monotonic() - started) * 1000)
            leader.wait()
            cluster.start(leader.name)
            wait_for(lambda r=cluster.replicas[leader.name]: "standing by" in r.output(), message="standby")
    finally:
        cluster.stop_all()
    return (
        f"hand-over on SIGTERM ({HANDOVERS} rounds): median {statistics.median(timings):.0f} ms, "
        f"max {max(timings):.0f} ms"
    )


SCENARIOS = {scenario.__name__: scenario for scenario in (fan_out, lateness, many_schedules, hand_over)}


def main() -> None:
    for scenario in [SCENARIOS[name] for name in sys.argv[1:]] or SCENARIOS.values():
        with tempfile.TemporaryDirectory() as directory:
            server = RedisServer(Path(directory) / "redis").start()
            try:
                print(scenario(Path(directory), server), flush=True)
            finally:
                server.cleanup()


if __name__ == "__main__":
    main()
