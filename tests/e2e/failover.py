"""Running real replicas through a leader failover, and the firings they owe, for the tests that
check each queue type with its real consumer (test_queue_workers.py)."""

from __future__ import annotations

import re
import signal
from datetime import UTC, datetime, timedelta

from replicas import PREFIX, Cluster

from redis_server import wait_for
from scheduler.clock.instants import format_tick


def first_seen(cluster: Cluster, schedule: str) -> datetime:
    """The instant the first leader started ``schedule`` after (its log line "first seen, starting after")."""
    pattern = re.compile(rf"schedule {re.escape(schedule)}: first seen, starting after (\S+)")

    def found() -> str | None:
        for replica in cluster.replicas.values():  # every incarnation's output: the first may be dead
            match = pattern.search(replica.log.read_text(errors="replace") if replica.log.exists() else "")
            if match:
                return match.group(1)
        return None

    text = wait_for(found, timeout=15, message=f"schedule {schedule} to be first seen")
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def watermark(cluster: Cluster, track: str) -> datetime | None:
    value = cluster.watermark(track)
    return datetime.fromtimestamp(value / 1000, UTC) if value else None


def wait_for_ticks(cluster: Cluster, track: str, count: int) -> None:
    """Until ``track``'s watermark has moved ``count`` seconds on (an every-second schedule's ticks)."""
    start = wait_for(lambda: watermark(cluster, track), timeout=15, message=f"a watermark for {track}")
    wait_for(lambda: watermark(cluster, track) >= start + timedelta(seconds=count), timeout=15 + count,
             message=f"{count} more ticks of {track}")


def run_through_failover(cluster: Cluster, track: str, before: int = 3, after: int = 3) -> None:
    """Two replicas; the leader is SIGKILLed after ``before`` ticks, the other one leads ``after``
    more ticks; then both stop (SIGTERM)."""
    cluster.start("r1")
    cluster.start("r2")
    leader = cluster.leader()
    wait_for_ticks(cluster, track, before)
    leader.signal(signal.SIGKILL)
    leader.wait(10)
    cluster.leader(timeout=15, other_than=leader.name)
    wait_for_ticks(cluster, track, after)
    cluster.stop_all()


def owed(cluster: Cluster, schedule: str, tenants: list[str]) -> set[str]:
    """The firing ids of an every-second ``schedule`` from its first tick to its watermark."""
    start, end = first_seen(cluster, schedule), watermark(cluster, schedule)
    assert end is not None
    first = int(start.timestamp()) + 1
    return {f"{schedule}/{tenant}/{format_tick(datetime.fromtimestamp(second, UTC))}"
            for second in range(first, int(end.timestamp()) + 1) for tenant in tenants}


def relay_leftovers(cluster: Cluster, queues: str, outboxes: list[str]) -> None:
    """Once the replicas stopped, what their relays had not sent yet waits in the outboxes: a new
    leader of a table with the same queues and no schedules sends it on, and fires nothing new."""
    cluster.config.write_text(queues)
    cluster.start("drainer")
    wait_for(lambda: all(cluster.client.xlen(f"{PREFIX}:outbox:{queue}") == 0 for queue in outboxes),
             timeout=30, message="a new leader's relay to empty the outboxes")
    cluster.stop_all()
