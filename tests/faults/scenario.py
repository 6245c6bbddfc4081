"""A fault scenario drawn from a seed: the table, the replicas' clocks and a timeline of faults.

Everything random comes from ``random.Random(seed)``, so the same seed gives the same table, clocks
and timeline. Which replica happens to lead when a "leader" fault hits depends on timing; the
harness logs who was hit.

The table is chosen so that a correct scheduler delivers *every* tick: catch-up ``all``, a
``misfire_grace`` longer than any fault and a ``catchup_window`` longer still. The window is still
shorter than the largest clock skews on purpose: a replica whose wall clock runs minutes ahead
must not judge a tick older than the window (docs/guarantees.md, "One clock").
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

LEASE_TTL = 2.0
SETTINGS = {
    "SCHEDULER_LEASE_TTL": f"{LEASE_TTL}s",
    "SCHEDULER_RETRY_INTERVAL": "0.2s",
    "SCHEDULER_RELOAD_INTERVAL": "1s",
}
REPLICAS = ("r1", "r2", "r3")
NO_TENANT = "-"
DENSE_FILE = "tenants/dense.txt"
SLACK = 5.0  # seconds of lateness allowed beyond a failover and twice the longest Redis fault
# Seconds between two faults of a lane; a replica started again gets long enough to install its
# signal handlers before the next replica fault (a SIGTERM during interpreter start-up kills it).
GAP = {"replica": 3.0, "redis": 0.5}

# kind -> (lane, shortest, longest) in seconds; faults of one lane never overlap each other.
KINDS = {
    "replica-kill": ("replica", 0.3, 4.0),  # down for this long, then started again
    "replica-stop": ("replica", LEASE_TTL + 0.5, LEASE_TTL + 4.0),  # SIGSTOP past the lease TTL
    "replica-term": ("replica", 0.2, 3.0),  # SIGTERM; started again after this long
    "redis-pause": ("redis", 0.5, 5.0),
    "redis-restart": ("redis", 0.3, 3.0),
    "redis-full": ("redis", 1.0, 6.0),
    "redis-busy": ("redis", 0.5, 2.0),  # how long the script spins
}


@dataclass(frozen=True)
class ScheduleSpec:
    """One `every` schedule as the oracle sees it: its grid, its jitter bound and its tenants."""

    name: str
    period: int  # seconds; ticks lie at whole multiples of it since the Unix epoch
    jitter_ms: int  # offsets lie in [0, jitter_ms); 0 means none
    tenants: tuple[str, ...]  # (NO_TENANT,) for a schedule without tenants
    queue: str
    source: str  # how the table names its tenants: "file", "set", "inline" or "none"


@dataclass(frozen=True)
class Planned:
    """A fault of the timeline, ``at`` seconds after it starts. ``target`` is "leader" (whoever holds
    the lease then), a replica's name, or "redis"."""

    at: float
    kind: str
    duration: float
    target: str
    threshold_ms: int = 0  # redis-busy: busy-reply-threshold
    headroom: int = 0  # redis-full: bytes allowed above the memory in use

    @property
    def end(self) -> float:
        return self.at + self.duration

    def describe(self) -> str:
        extra = ""
        if self.kind == "redis-busy":
            extra = f", busy after {self.threshold_ms} ms"
        elif self.kind == "redis-full":
            extra = f", {self.headroom // 1024} KiB headroom"
        return f"+{self.at:5.1f}s {self.kind} {self.target} for {self.duration:.2f}s{extra}"


@dataclass
class Scenario:
    seed: int
    seconds: float
    schedules: list[ScheduleSpec]
    skews: dict[str, float]  # replica -> wall clock offset in seconds
    misfire_grace: int
    catchup_window: int
    timeline: list[Planned] = field(default_factory=list)

    @property
    def dense(self) -> ScheduleSpec:
        return self.schedules[0]

    @property
    def longest_redis_fault(self) -> float:
        return max((f.duration for f in self.timeline if f.target == "redis"), default=0.0)

    @property
    def lateness_bound(self) -> float:
        """How late (Redis's clock) any firing may reach its stream: the longest Redis fault, as much
        again for the replicas' reconnect backoff, the lease TTL for the failover after it, and
        SLACK. A replica fault costs at most a failover: two other replicas stand by."""
        return LEASE_TTL + 2 * self.longest_redis_fault + SLACK

    def table(self) -> str:
        lines = [
            "[defaults]",
            'catchup = "all"',
            f'catchup_window = "{self.catchup_window}s"',
            f'misfire_grace = "{self.misfire_grace}s"',
            "",
            "[tenants]",
        ]
        for spec in self.schedules:
            if spec.source == "file":
                lines.append(f'{spec.name} = {{ file = "{DENSE_FILE}" }}')
            elif spec.source == "set":
                lines.append(f"{spec.name} = {list(spec.tenants)!r}")
        for spec in self.schedules:
            lines += ["", "[[schedule]]", f'name = "{spec.name}"', f'every = "{spec.period}s"',
                      f'job = "{spec.name.title()}Job"', f'queue = "{spec.queue}"']
            if spec.source in ("file", "set"):
                lines.append(f'tenants = "{spec.name}"')
            elif spec.source == "inline":
                lines.append(f"tenants = {list(spec.tenants)!r}")
            if spec.jitter_ms:
                lines.append(f'jitter = "{spec.jitter_ms}ms"')
        return "\n".join(lines) + "\n"

    def describe(self) -> str:
        schedules = "; ".join(
            f"{s.name}: every {s.period}s x {len(s.tenants)} tenants ({s.source}), "
            f"jitter {s.jitter_ms} ms, queue {s.queue}"
            for s in self.schedules
        )
        clocks = ", ".join(f"{name} {offset:+.1f}s" if offset else f"{name} true" for name, offset in self.skews.items())
        return "\n".join([
            f"fault scenario seed {self.seed} ({self.seconds:.0f} s of faults); "
            f"reproduce: FAULT_SEEDS={self.seed} FAULT_SECONDS={self.seconds:g} .venv/bin/python -m pytest "
            "tests/faults/test_harness.py -k guarantees",
            f"table: {schedules}; catch-up all, window {self.catchup_window}s, misfire_grace {self.misfire_grace}s",
            f"replica clocks: {clocks}; lease TTL {LEASE_TTL}s; lateness bound {self.lateness_bound:.1f}s",
            "timeline:",
            *(f"  {fault.describe()}" for fault in self.timeline),
        ])


def build(seed: int, seconds: float) -> Scenario:
    rng = random.Random(seed)
    schedules = _schedules(rng)
    skews = {name: _skew(rng) for name in REPLICAS}
    scenario = Scenario(seed, seconds, schedules, skews, misfire_grace=rng.choice([20, 30]),
                        catchup_window=rng.choice([60, 90, 120]))
    scenario.timeline = _timeline(rng, seconds, scenario.dense.period)
    return scenario


def _schedules(rng: random.Random) -> list[ScheduleSpec]:
    dense_period = rng.choice([2, 3])
    team_period = rng.choice([2, 3])
    dense = [f"d{n:05d}" for n in range(rng.randint(2000, 4000))]
    specs = [
        ScheduleSpec("dense", dense_period, _jitter(rng, dense_period, 0.8), tuple(dense), "bulk", "file"),
        ScheduleSpec("fast", 1, _jitter(rng, 1, 0.5), tuple(f"f{n}" for n in range(rng.randint(5, 40))),
                     "default", "inline"),
        ScheduleSpec("team", team_period, _jitter(rng, team_period, 0.5),
                     tuple(f"team-{n}" for n in range(rng.randint(3, 12))), "default", "set"),
    ]
    if rng.random() < 0.5:
        specs.append(ScheduleSpec("beat", rng.choice([1, 2, 3]), 0, (NO_TENANT,), "default", "none"))
    return specs


def _jitter(rng: random.Random, period: int, chance: float) -> int:
    """No jitter, or up to 90 % of the period (jitter must stay below the interval)."""
    return rng.randint(100, int(period * 900)) if rng.random() < chance else 0


def _skew(rng: random.Random) -> float:
    """A true clock half the time; else seconds, tens of seconds or minutes off, ahead or behind."""
    if rng.random() < 0.5:
        return 0.0
    low, high = rng.choice([(1, 5), (30, 60), (90, 240)])
    return round(rng.choice([-1, 1]) * rng.uniform(low, high), 1)


def _timeline(rng: random.Random, seconds: float, period: int) -> list[Planned]:
    """Faults one after another on each lane (replicas, Redis); the two lanes may overlap."""
    timeline: list[Planned] = []
    free = {"replica": 0.0, "redis": 0.0}
    t = 0.0
    while True:
        kind = rng.choice(list(KINDS))
        lane, shortest, longest = KINDS[kind]
        at = round(max(t, free[lane]), 2)
        duration = _duration(rng, kind, at, shortest, longest, period)
        if at + duration > seconds:
            return timeline
        target = "redis" if lane == "redis" else ("leader" if rng.random() < 0.75 else rng.choice(REPLICAS))
        timeline.append(Planned(
            at, kind, duration, target,
            threshold_ms=rng.randint(50, 100) if kind == "redis-busy" else 0,
            headroom=rng.choice([16, 64, 256]) * 1024 if kind == "redis-full" else 0,
        ))
        free[lane] = at + duration + GAP[lane]
        t = at + rng.uniform(0.5, 4.0)


def _duration(rng: random.Random, kind: str, at: float, shortest: float, longest: float, period: int) -> float:
    """Mostly uniform. Biased where a known weak spot lies: half the Redis pauses last 1.0-1.9 s,
    around the leader's renewal margin (the lease is still valid in Redis, not by the leader's own
    reckoning); half the OOM and BUSY spells end just after a dense tick starts, while the leader is
    pipelining its chunks (timeline time 0 lies on a dense tick)."""
    if kind == "redis-pause" and rng.random() < 0.5:
        return round(rng.uniform(1.0, 1.9), 2)
    if kind in ("redis-full", "redis-busy") and rng.random() < 0.5:
        end = math.ceil((at + shortest) / period) * period + rng.uniform(0.0, 0.25)
        return round(end - at, 2)
    return round(rng.uniform(shortest, longest), 2)
