"""The oracle: what the streams must hold once the faults are over, derived from first principles
(an `every` schedule ticks at whole multiples of its period since the Unix epoch; each tenant's
jitter offset is fixed and below the schedule's jitter), never from the project's planner.

Times are Redis's: a stream entry id starts with Redis's clock in ms at the XADD, so "never before
enqueue_at" and lateness are judged by it, whatever clock the leader that wrote it had.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from faults.scenario import ScheduleSpec

KINDS = ("missing", "duplicate", "early", "late", "epoch order", "malformed", "silent schedule")


@dataclass(frozen=True)
class Entry:
    """One stream entry: its queue, its id ("<ms>-<seq>") and its fields, decoded."""

    queue: str
    id: str
    fields: Mapping[str, str]

    @property
    def ms(self) -> int:
        return int(self.id.split("-")[0])


@dataclass
class Verdict:
    violations: dict[str, list[str]] = field(default_factory=lambda: {kind: [] for kind in KINDS})
    missing_firings: int = 0
    lateness_ms: list[int] = field(default_factory=list)  # one per delivery, sorted
    epochs: list[int] = field(default_factory=list)  # every epoch that wrote

    @property
    def ok(self) -> bool:
        return not any(self.violations.values())

    def percentile(self, fraction: float) -> int:
        values = self.lateness_ms
        return values[min(len(values) - 1, int(fraction * len(values)))] if values else 0

    def figures(self) -> str:
        return (f"{len(self.lateness_ms):,} deliveries by epochs {self.epochs}; lateness p50 {self.percentile(0.5)} ms, "
                f"p99 {self.percentile(0.99)} ms, max {self.lateness_ms[-1] if self.lateness_ms else 0} ms")

    def summary(self, first: int = 5) -> str:
        counts = ", ".join(f"{kind} {len(found)}" for kind, found in self.violations.items() if found)
        lines = [f"violations: {counts or 'none'}"
                 + (f" ({self.missing_firings:,} missing firings)" if self.missing_firings else "")]
        for kind, found in self.violations.items():
            if found:
                lines.append(f"  {kind}:")
                lines += [f"    {line}" for line in found[:first]]
                if len(found) > first:
                    lines.append(f"    ... and {len(found) - first} more")
        return "\n".join(lines)


def verify(entries: Iterable[Entry], schedules: Sequence[ScheduleSpec], cutoff_ms: int, bound_ms: int) -> Verdict:
    """Check ``entries`` (each queue's in stream order): no firing twice, none before its enqueue_at
    nor more than ``bound_ms`` after it, epochs never going back within a stream, every field
    consistent with its schedule, and every tenant of every tick from the schedule's first delivered
    tick up to ``cutoff_ms`` present."""
    verdict = Verdict()
    found = verdict.violations
    specs = {spec.name: spec for spec in schedules}
    offsets: dict[tuple[str, str], int] = {}
    deliveries: dict[str, list[Entry]] = defaultdict(list)
    first_tick: dict[str, int] = {}
    latest_epoch: dict[str, tuple[int, str]] = {}
    for entry in entries:
        fields = entry.fields
        epoch = int(fields.get("epoch", "0"))
        if epoch not in verdict.epochs:
            verdict.epochs.append(epoch)
        before = latest_epoch.get(entry.queue)
        if before and epoch < before[0]:
            found["epoch order"].append(f"{entry.queue} {entry.id} ({fields.get('firing_id')}): epoch {epoch} "
                                        f"after epoch {before[0]} wrote {before[1]}")
        else:
            latest_epoch[entry.queue] = (epoch, entry.id)
        problem = _malformed(entry, specs, offsets)
        if problem:
            found["malformed"].append(f"{entry.queue} {entry.id}: {problem}")
            continue
        firing = fields["firing_id"]
        deliveries[firing].append(entry)
        tick_ms = _ms(fields["tick"])
        first_tick[fields["schedule"]] = min(tick_ms, first_tick.get(fields["schedule"], tick_ms))
        lateness = entry.ms - _ms(fields["enqueue_at"])
        verdict.lateness_ms.append(lateness)
        if lateness < 0:
            found["early"].append(f"{firing}: in the stream at {_instant(entry.ms)}, {-lateness} ms before its "
                                  f"enqueue_at {fields['enqueue_at']} (epoch {epoch})")
        elif lateness > bound_ms:
            found["late"].append(f"{firing}: in the stream at {_instant(entry.ms)}, {lateness} ms after its "
                                 f"enqueue_at (bound {bound_ms} ms, epoch {epoch})")
    verdict.lateness_ms.sort()
    verdict.epochs.sort()
    for firing, copies in deliveries.items():
        if len(copies) > 1:
            found["duplicate"].append(f"{firing} x{len(copies)}: " + ", ".join(
                f"epoch {c.fields['epoch']} at {_instant(c.ms)}" for c in copies))
    for spec in schedules:
        if spec.name not in first_tick:
            found["silent schedule"].append(f"{spec.name}: nothing delivered at all")
            continue
        _find_missing(verdict, spec, deliveries, range(first_tick[spec.name], cutoff_ms + 1, spec.period * 1000))
    return verdict


def _find_missing(verdict: Verdict, spec: ScheduleSpec, deliveries: Mapping[str, list[Entry]],
                  ticks: range) -> None:
    """One line per tick with some tenants missing; a run of ticks with every tenant missing (the
    scheduler lost whole ticks, or nobody worked) in one line."""
    whole: list[str] = []

    def close_run() -> None:
        if whole:
            verdict.violations["missing"].append(
                f"{spec.name}: {len(whole)} whole tick(s) {whole[0]} .. {whole[-1]}, all {len(spec.tenants)} "
                "tenants missing")
            verdict.missing_firings += len(whole) * len(spec.tenants)
            whole.clear()

    for tick_ms in ticks:
        tick = _tick(tick_ms)
        absent = [tenant for tenant in spec.tenants if f"{spec.name}/{tenant}/{tick}" not in deliveries]
        if len(absent) == len(spec.tenants):
            whole.append(tick)
            continue
        close_run()
        if absent:
            verdict.missing_firings += len(absent)
            verdict.violations["missing"].append(
                f"{spec.name} tick {tick}: {len(absent)} of {len(spec.tenants)} tenants missing "
                f"({', '.join(absent[:3])}{', ...' if len(absent) > 3 else ''})")
    close_run()


def _malformed(entry: Entry, specs: Mapping[str, ScheduleSpec], offsets: dict[tuple[str, str], int]) -> str | None:
    """What is wrong with an entry's fields for its schedule, or None. Remembers each tenant's offset,
    which must be the same at every tick (a failover never re-rolls the jitter)."""
    fields = entry.fields
    spec = specs.get(fields.get("schedule", ""))
    if spec is None:
        return f"unknown schedule {fields.get('schedule')!r}"
    tenant, tick = fields.get("tenant", ""), fields.get("tick", "")
    if tenant not in spec.tenants:
        return f"unknown tenant {tenant!r} of {spec.name}"
    if fields.get("firing_id") != f"{spec.name}/{tenant}/{tick}":
        return f"firing_id {fields.get('firing_id')!r} does not match schedule/tenant/tick"
    if fields.get("queue") != spec.queue or entry.queue != spec.queue:
        return f"{fields['firing_id']} in queue {entry.queue!r} (field {fields.get('queue')!r}), not {spec.queue!r}"
    tick_ms = _ms(tick)
    if tick_ms % (spec.period * 1000):
        return f"{fields['firing_id']}: tick off the {spec.period}s grid"
    offset = _ms(fields["enqueue_at"]) - tick_ms
    if not 0 <= offset < max(spec.jitter_ms, 1):
        return f"{fields['firing_id']}: enqueue_at {offset} ms after the tick, outside [0, {spec.jitter_ms})"
    known = offsets.setdefault((spec.name, tenant), offset)
    if known != offset:
        return f"{fields['firing_id']}: jitter offset {offset} ms, {known} ms at an earlier tick"
    return None


def _ms(iso: str) -> int:
    return round(datetime.fromisoformat(iso).timestamp() * 1000)


def _tick(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ms // 1000))


def _instant(ms: int) -> str:
    return time.strftime("%H:%M:%S", time.gmtime(ms // 1000)) + f".{ms % 1000:03d}"
