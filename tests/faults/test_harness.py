"""The seeded fault harness over a few fixed seeds (each run prints its seed, table, clocks and
timeline, and leaves report.txt and the replicas' logs in its tmp_path), and the oracle itself on
synthetic streams: each violation it must report, and a clean stream it must pass.

Long runs by hand: ``FAULT_SEEDS="1-20" FAULT_SECONDS=300 .venv/bin/python -m pytest -s
tests/faults/test_harness.py -k guarantees`` (seeds as a list "4,7,9" or a range "1-20"; FAULT_SEED
works too). A longer FAULT_SECONDS keeps the seed's table, clocks and the start of its timeline.
"""

from __future__ import annotations

import os
import time

import pytest
from clocks import faketime_available

from faults.harness import run_seed
from faults.oracle import Entry, verify
from faults.scenario import LEASE_TTL, ScheduleSpec, build


def _seeds(text: str) -> list[int]:
    seeds: list[int] = []
    for part in text.split(","):
        first, _, last = part.strip().partition("-")
        seeds += range(int(first), int(last or first) + 1)
    return seeds


SEEDS = _seeds(os.environ.get("FAULT_SEEDS") or os.environ.get("FAULT_SEED") or "1,4,13")
SECONDS = float(os.environ.get("FAULT_SECONDS", "40"))


@pytest.mark.e2e
@pytest.mark.timeout(max(180, int(SECONDS) + 150))
@pytest.mark.parametrize("seed", SEEDS)
def test_guarantees_hold_under_a_seeded_fault_timeline(seed, tmp_path):
    if any(build(seed, SECONDS).skews.values()) and not faketime_available():
        pytest.skip("this seed skews replica clocks and libfaketime is not installed")
    report = run_seed(seed, SECONDS, tmp_path)
    assert report.ok, report.explain()


# -- the oracle ---------------------------------------------------------------------------------

SPEC = ScheduleSpec("s", 2, 500, ("a", "b"), "default", "inline")
T0 = 1_800_000_000_000  # ms, on the 2 s grid
OFFSET = {"a": 100, "b": 300}
BOUND = 5_000


def tick(k: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime((T0 + 2000 * k) // 1000))


def firing(k: int, tenant: str, epoch: int = 1, lateness: int = 5, offset: int | None = None) -> Entry:
    """The Entry of (s, tenant, tick k), in the stream ``lateness`` ms after its enqueue_at."""
    at = T0 + 2000 * k + (OFFSET[tenant] if offset is None else offset)
    enqueue_at = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(at // 1000)) + f".{at % 1000:03d}Z"
    fields = {"firing_id": f"s/{tenant}/{tick(k)}", "schedule": "s", "tenant": tenant, "tick": tick(k),
              "enqueue_at": enqueue_at, "job": "SJob", "args": "{}", "queue": "default", "epoch": str(epoch)}
    return Entry("default", f"{at + lateness}-0", fields)


def clean_stream() -> list[Entry]:
    return [firing(k, tenant) for k in range(5) for tenant in ("a", "b")]


def test_the_oracle_passes_a_clean_stream():
    verdict = verify(clean_stream(), [SPEC], cutoff_ms=T0 + 8000, bound_ms=BOUND)

    assert verdict.ok, verdict.summary()
    assert len(verdict.lateness_ms) == 10
    assert verdict.percentile(0.99) == 5


def test_the_oracle_reports_missing_duplicate_early_late_and_stale_epoch_firings():
    entries = [
        firing(0, "a"), firing(0, "b"),
        firing(1, "a"),                                   # b of tick 1 never comes
        firing(2, "a", epoch=2), firing(1, "a", epoch=2, lateness=2100),  # a failover writes a of tick 1 again
        firing(2, "b", epoch=2, lateness=-10),            # before its enqueue_at
        firing(3, "a", epoch=2), firing(3, "b", epoch=2, lateness=BOUND + 1),
        firing(4, "b", epoch=2), firing(4, "a", epoch=1, lateness=50),  # the old leader writes after the new one
    ]

    verdict = verify(entries, [SPEC], cutoff_ms=T0 + 8000, bound_ms=BOUND)

    found = verdict.violations
    assert found["missing"] == [f"s tick {tick(1)}: 1 of 2 tenants missing (b)"]
    assert verdict.missing_firings == 1
    assert len(found["duplicate"]) == 1 and found["duplicate"][0].startswith(f"s/a/{tick(1)} x2: epoch 1 at")
    assert len(found["early"]) == 1 and f"s/b/{tick(2)}" in found["early"][0] and "10 ms before" in found["early"][0]
    assert len(found["late"]) == 1 and f"s/b/{tick(3)}" in found["late"][0]
    assert len(found["epoch order"]) == 1 and f"s/a/{tick(4)}): epoch 1 after epoch 2" in found["epoch order"][0]
    assert found["malformed"] == [] and found["silent schedule"] == []
    assert "missing 1, duplicate 1, early 1, late 1, epoch order 1" in verdict.summary()


def test_the_oracle_reports_a_rerolled_jitter_an_off_grid_tick_lost_ticks_and_a_silent_schedule():
    off_grid = firing(1, "b")
    off_grid = Entry("default", off_grid.id, {**off_grid.fields, "tick": tick(1).replace(":02Z", ":03Z"),
                                              "firing_id": f"s/b/{tick(1).replace(':02Z', ':03Z')}"})
    entries = [firing(0, "a"), firing(0, "b"), firing(1, "a", offset=200), off_grid]
    silent = ScheduleSpec("quiet", 1, 0, ("x",), "default", "inline")

    verdict = verify(entries, [SPEC, silent], cutoff_ms=T0 + 6000, bound_ms=BOUND)

    malformed = verdict.violations["malformed"]
    assert len(malformed) == 2
    assert "jitter offset 200 ms, 100 ms at an earlier tick" in malformed[0]
    assert "tick off the 2s grid" in malformed[1]
    assert verdict.violations["silent schedule"] == ["quiet: nothing delivered at all"]
    # Both entries of tick 1 are malformed, so they deliver nothing; ticks 2 and 3 never came.
    assert verdict.violations["missing"] == [f"s: 3 whole tick(s) {tick(1)} .. {tick(3)}, all 2 tenants missing"]
    assert verdict.missing_firings == 6


def test_a_seed_always_builds_the_same_scenario_within_its_rules():
    for seed in range(1, 30):
        scenario = build(seed, 40)
        again = build(seed, 40)
        assert (scenario.describe(), scenario.table()) == (again.describe(), again.table())
        assert scenario.timeline and all(fault.end <= 40 for fault in scenario.timeline)
        for on_redis in (True, False):
            lane = [fault for fault in scenario.timeline if (fault.target == "redis") == on_redis]
            assert all(first.end < second.at for first, second in zip(lane, lane[1:])), "one lane overlaps itself"
        assert all(spec.jitter_ms < spec.period * 1000 for spec in scenario.schedules)
        assert scenario.misfire_grace > LEASE_TTL + 2 * scenario.longest_redis_fault
    assert build(1, 40).describe() != build(2, 40).describe()
