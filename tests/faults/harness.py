"""The seeded fault harness: runs a Scenario (scenario.py) against real parts (a redis-server, three
`scheduler run` replicas), plays its timeline of faults (injectors.py), then reads the streams back
and checks the guarantees (oracle.py).

A run: start Redis and the replicas; wait until every schedule has delivered two ticks; play the
timeline (time 0 on a dense tick); note Redis's clock as the cutoff once every fault is over;
poll until every tick up to the cutoff is delivered or the lateness bound has passed; stop the
replicas (SIGTERM, exit 0 expected); read every stream and judge.
"""

from __future__ import annotations

import json
import math
import random
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import redis
from e2e.replicas import PREFIX, Replica
from redis.backoff import NoBackoff
from redis.retry import Retry

from faults import injectors
from faults.oracle import Entry, Verdict, verify
from faults.scenario import DENSE_FILE, SETTINGS, Planned, Scenario, build
from redis_server import RedisServer

WARM_UP = 60.0  # seconds the replicas get to deliver two ticks of every schedule (a slow, shared machine)
SETTLE_EXTRA = 10.0  # seconds of polling beyond the lateness bound and the largest jitter
PAGE = 10_000  # stream entries per XRANGE


@dataclass
class Report:
    scenario: Scenario
    verdict: Verdict
    played: list[str]  # the timeline as it happened, who was hit included
    problems: list[str]  # misbehaviour seen while faulting: crashes, bad exit codes
    directory: Path
    cutoff_ms: int  # Redis's clock once every fault was over: every tick up to it must be delivered
    seconds: float  # how long the whole run took

    @property
    def ok(self) -> bool:
        return self.verdict.ok and not self.problems

    def explain(self) -> str:
        lines = [self.scenario.describe(), "played:", *(f"  {line}" for line in self.played),
                 f"cutoff {time.strftime('%H:%M:%S', time.gmtime(self.cutoff_ms // 1000))}Z (Redis's clock); "
                 f"figures: {self.verdict.figures()}; run took {self.seconds:.0f} s",
                 self.verdict.summary()]
        if self.problems:
            lines += ["problems:", *(f"  {problem}" for problem in self.problems)]
        lines.append(f"replica logs, report.txt (and on failure streams.jsonl, every entry read): {self.directory}")
        return "\n".join(lines)


def run_seed(seed: int, seconds: float, directory: Path) -> Report:
    scenario = build(seed, seconds)
    print(scenario.describe(), flush=True)
    with Run(scenario, directory) as run:
        report = run.execute()
    (directory / "report.txt").write_text(report.explain() + "\n")
    print(f"seed {seed}: {'ok' if report.ok else 'FAILED'}; {report.verdict.figures()}; "
          f"{report.verdict.summary(first=3)}; {len(report.problems)} problems; {report.seconds:.0f} s", flush=True)
    return report


class Run:
    def __init__(self, scenario: Scenario, directory: Path) -> None:
        self.scenario = scenario
        self.directory = directory
        self.rng = random.Random(scenario.seed + 1)  # the choices the timeline leaves to run time
        self.server = RedisServer(directory / "redis")
        config = directory / "schedules.toml"
        config.write_text(scenario.table())
        injectors.write_tenant_file(directory / DENSE_FILE, list(scenario.dense.tenants))
        self.replicas = {
            name: Replica(name, config, self.server.url, directory / f"{name}.log",
                          {**SETTINGS, **(injectors.skewed_clock(offset) if offset else {})})
            for name, offset in scenario.skews.items()
        }
        self.down: set[str] = set()  # replicas under a fault: not to be restarted, nor hit twice
        self.lock = threading.Lock()  # over `down` and restarts: the lanes and the crash watch share them
        self.errors: list[Exception] = []
        self.played: list[str] = []
        self.problems: list[str] = []
        self.entries: dict[str, list[Entry]] = {}
        self.origin = 0.0

    def __enter__(self) -> "Run":
        self.server.start()
        self.client = self.server.client()
        # For "who leads?" during faults: never hang on a paused Redis, never retry.
        self.quick = redis.Redis(host="127.0.0.1", port=self.server.port, socket_timeout=1,
                                 socket_connect_timeout=1, retry=Retry(NoBackoff(), 0))
        for replica in self.replicas.values():
            replica.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        for replica in self.replicas.values():
            replica.stop()
        self.client.close()
        self.quick.close()
        self.server.cleanup()

    def execute(self) -> Report:
        started = time.monotonic()
        if self._warm_up():
            self._play()
        else:
            self.problems.append(f"no fault played: some schedule had not delivered two ticks {WARM_UP:.0f} s "
                                 "after the replicas started")
        cutoff = self._redis_ms()
        self._settle(cutoff)
        self._stop_replicas()
        self._read()
        bound_ms = int(self.scenario.lateness_bound * 1000)
        entries = [entry for queue in sorted(self.entries) for entry in self.entries[queue]]
        verdict = verify(entries, self.scenario.schedules, cutoff, bound_ms)
        if not verdict.ok:
            with (self.directory / "streams.jsonl").open("w") as dump:
                for entry in entries:
                    dump.write(json.dumps({"queue": entry.queue, "id": entry.id, **entry.fields}) + "\n")
        return Report(self.scenario, verdict, self.played, self.problems, self.directory, cutoff,
                      time.monotonic() - started)

    # -- phases ---------------------------------------------------------------------------------

    def _warm_up(self) -> bool:
        """Until every schedule has delivered two ticks, so its first tick is a finished one; False
        when that takes longer than WARM_UP (a broken scheduler, not a slow one)."""
        def two_ticks_each() -> bool:
            self._read()
            ticks: dict[str, set[str]] = {spec.name: set() for spec in self.scenario.schedules}
            for entries in self.entries.values():
                for entry in entries:
                    ticks.setdefault(entry.fields.get("schedule", ""), set()).add(entry.fields.get("tick"))
            return all(len(seen) >= 2 for seen in ticks.values())

        deadline = time.monotonic() + WARM_UP
        while not two_ticks_each():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.5)
        return True

    def _play(self) -> None:
        """Play the timeline, one thread per lane (replica faults, Redis faults): each fault starts
        at its time, or when the one before it on its lane is over. Sleeping there is the faults'
        own timing (a pause of N seconds is N seconds long), not synchronisation. Meanwhile this
        thread restarts any replica that died without a fault."""
        period = self.scenario.dense.period
        boundary = math.ceil(time.time() / period + 1) * period  # the replicas' ticks, on this host's clock
        self.origin = time.monotonic() + boundary - time.time()
        redis_faults = [fault for fault in self.scenario.timeline if fault.target == "redis"]
        replica_faults = [fault for fault in self.scenario.timeline if fault.target != "redis"]
        lanes = [threading.Thread(target=self._lane, args=(faults,), daemon=True)
                 for faults in (redis_faults, replica_faults)]
        for thread in lanes:
            thread.start()
        while any(thread.is_alive() for thread in lanes) or self._now() < self.scenario.seconds:
            self._restart_crashed()
            time.sleep(0.2)
        self._restart_crashed()
        if self.errors:
            raise self.errors[0]

    def _lane(self, timeline: list[Planned]) -> None:
        """Play one lane's faults in turn. A fault that overran (a replica stuck on SIGTERM) delays
        the rest of its lane rather than shortening it: every fault keeps its duration and gap."""
        lag = 0.0
        try:
            for planned in timeline:
                self._sleep_until(planned.at + lag)
                lag = max(lag, self._now() - planned.at)
                started = self._inflict(planned)
                self._sleep_until(planned.end + lag)
                if started:
                    self._undo(planned, *started)
        except Exception as error:  # a fault that could not be played fails the run, not the verdict
            self.errors.append(error)

    def _settle(self, cutoff: int) -> None:
        """Poll until every tick up to ``cutoff`` is delivered, or the lateness bound has passed."""
        longest_jitter = max(spec.jitter_ms for spec in self.scenario.schedules) / 1000
        deadline = time.monotonic() + self.scenario.lateness_bound + longest_jitter + SETTLE_EXTRA
        while True:
            self._read()
            entries = [entry for queue in self.entries.values() for entry in queue]
            if not verify(entries, self.scenario.schedules, cutoff, 10**12).violations["missing"]:
                return
            if time.monotonic() > deadline:
                return
            time.sleep(1.0)

    def _stop_replicas(self) -> None:
        for name, replica in self.replicas.items():
            replica.stop()
            code = replica.process.returncode
            if code != 0:
                self.problems.append(f"at the end, {name} exited with code {code} on SIGTERM, not 0")

    # -- faults ---------------------------------------------------------------------------------

    def _inflict(self, planned: Planned) -> tuple[injectors.Fault, str] | None:
        if planned.target == "redis":
            victim, why = "redis", ""
            fault = {
                "redis-pause": lambda: injectors.RedisPause(self.server),
                "redis-restart": lambda: injectors.RedisRestart(self.server),
                "redis-full": lambda: injectors.RedisFull(self.server, planned.headroom),
                "redis-busy": lambda: injectors.RedisBusy(self.server, planned.threshold_ms, planned.duration),
            }[planned.kind]()
        else:
            with self.lock:
                victim, why = self._victim(planned.target)
                if victim is None:
                    self._note(f"{planned.kind} {planned.target}: skipped, no replica is up")
                    return None
                self.down.add(victim)
            fault = {
                "replica-kill": injectors.ReplicaKill,
                "replica-stop": injectors.ReplicaPause,
                "replica-term": injectors.ReplicaTerm,
            }[planned.kind](self.replicas[victim])
        fault.start()
        self._note(f"{planned.kind} {victim}{why} for {planned.duration:.2f}s")
        return fault, victim

    def _undo(self, planned: Planned, fault: injectors.Fault, victim: str) -> None:
        fault.stop()
        with self.lock:
            self.down.discard(victim)
        self._note(f"{planned.kind} {victim}: over")
        if fault.problem:
            self.problems.append(f"+{self._now():.1f}s {fault.problem}")

    def _victim(self, target: str) -> tuple[str | None, str]:
        """The replica a fault hits, and why: the named one, or the lease holder, or (no holder to
        be seen: Redis is down or nobody leads) one drawn from those up."""
        if target != "leader":
            return (target, "") if target not in self.down else (None, "")
        try:
            holder = self.quick.get(f"{PREFIX}:lease")
        except redis.RedisError:
            holder = None
        name = holder.decode().partition(":")[2] if holder else None
        if name in self.replicas and name not in self.down:
            return name, f" (holds the lease: {holder.decode()})"
        up = sorted(set(self.replicas) - self.down)
        return (self.rng.choice(up), " (no lease holder to be seen: drawn)") if up else (None, "")

    def _restart_crashed(self) -> None:
        """A replica that died although no fault stopped it is a problem; start it again."""
        with self.lock:
            for name, replica in self.replicas.items():
                if name not in self.down and not replica.alive:
                    self.problems.append(f"+{self._now():.1f}s {name} exited by itself with code "
                                         f"{replica.process.returncode}; started again")
                    replica.start()

    # -- reading --------------------------------------------------------------------------------

    def _read(self) -> None:
        """Read what was added to each queue's stream since the last read (streams only grow)."""
        for queue in {spec.queue for spec in self.scenario.schedules}:
            entries = self.entries.setdefault(queue, [])
            while True:
                start = f"({entries[-1].id}" if entries else "-"
                page = self.client.xrange(f"{PREFIX}:queue:{queue}", start, "+", count=PAGE)
                entries += [Entry(queue, entry_id.decode(), {k.decode(): v.decode() for k, v in fields.items()})
                            for entry_id, fields in page]
                if len(page) < PAGE:
                    break

    def _redis_ms(self) -> int:
        seconds, micros = self.client.time()
        return seconds * 1000 + micros // 1000

    # -- time -----------------------------------------------------------------------------------

    def _now(self) -> float:
        return time.monotonic() - self.origin

    def _sleep_until(self, at: float) -> None:
        remaining = self.origin + at - time.monotonic()
        if remaining > 0:
            time.sleep(remaining)

    def _note(self, text: str) -> None:
        wall = time.time()
        stamp = time.strftime("%H:%M:%S", time.gmtime(wall)) + f".{int(wall * 1000) % 1000:03d}"
        line = f"+{self._now():5.1f}s {stamp}Z {text}"
        self.played.append(line)
        print(line, flush=True)
