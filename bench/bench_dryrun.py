"""Benchmark ``scheduler dry-run`` on two large tables, through the real console script.

    .venv/bin/python bench/bench_dryrun.py [--repeat 3] [--keep DIR]

* ``many``: 1,000 schedules (mixed cron and every, most with jitter, 1-5 tenants each, several
  zones, some ``timezone = "tenant"``) over one day;
* ``wide``: one ``every = "1m"`` schedule over a 100,000-line tenants file, for one hour: 6,000,000
  firings.

Each is run with ``--format jsonl`` to /dev/null and with ``--histogram`` (to /dev/null), ``repeat``
times; the median wall time (process start to exit, so Python's start-up, loading the table and
resolving tenants are included) and firings per second are printed. The target is under 5 s each.
"""

from __future__ import annotations

import argparse
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SCHEDULER = Path(sys.executable).parent / "scheduler"
START = "2026-11-02T00:00:00Z"  # a Monday, so weekday crons fire
TARGET_SECONDS = 5.0
ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Asia/Tokyo", "Australia/Sydney"]
EVERY = [("30s", "10s"), ("1m", "20s"), ("5m", "2m"), ("10m", "5m"), ("15m", "5m"), ("30m", "10m"), ("1h", "15m")]


def cron_pool(rng: random.Random) -> list[tuple[str, str]]:
    """Cron expressions as a large table has them: shared favourites and minutes spread by hand."""
    pool = [
        ("*/5 * * * *", "1m"), ("*/15 * * * *", "5m"), ("0 * * * *", "10m"), ("@hourly", "10m"),
        ("@daily", "30m"), ("0 9 * * 1-5", "15m"), ("*/10 8-18 * * 1-5", "2m"), ("0 */6 * * *", "30m"),
    ]
    pool += [(f"{minute} * * * *", "5m") for minute in rng.sample(range(60), 20)]
    daily = zip(rng.sample(range(60), 30), rng.choices(range(24), k=30))
    pool += [(f"{minute} {hour} * * *", "20m") for minute, hour in daily]
    return pool


def many_table(directory: Path, schedules: int = 1000, seed: int = 7) -> Path:
    rng = random.Random(seed)
    tenants = [(f"tenant-{n:03d}", rng.choice(ZONES)) for n in range(200)]
    pool = cron_pool(rng)
    lines = ["[defaults]", 'queue = "default"', ""]
    for n in range(schedules):
        chosen = rng.sample(tenants, rng.randint(1, 5))
        lines += ["[[schedule]]", f'name = "job-{n:04d}"', f'job = "Job{n % 37}"']
        per_tenant = False
        if rng.random() < 0.4:
            every, jitter = rng.choice(EVERY)
            lines.append(f'every = "{every}"')
        else:
            cron, jitter = rng.choice(pool)
            lines.append(f'cron = "{cron}"')
            per_tenant = rng.random() < 0.2
            lines.append(f'timezone = "{"tenant" if per_tenant else rng.choice(ZONES)}"')
        if rng.random() < 0.8:
            lines.append(f'jitter = "{jitter}"')
        if per_tenant:
            inline = ", ".join(f'{{ id = "{tenant}", timezone = "{zone}" }}' for tenant, zone in chosen)
        else:
            inline = ", ".join(f'"{tenant}"' for tenant, _ in chosen)
        lines += [f"tenants = [{inline}]", f'args = {{ batch = {n % 10} }}', ""]
    path = directory / "many.toml"
    path.write_text("\n".join(lines))
    return path


def wide_table(directory: Path, tenants: int = 100_000) -> Path:
    (directory / "tenants.txt").write_text("".join(f"customer-{n:06d}\n" for n in range(tenants)))
    path = directory / "wide.toml"
    path.write_text(
        '[tenants]\nall = { file = "tenants.txt" }\n\n'
        '[[schedule]]\nname = "sync"\nevery = "1m"\ntenants = "all"\njob = "SyncJob"\njitter = "45s"\n'
    )
    return path


def run(table: Path, window: list[str], shape: list[str]) -> tuple[float, str]:
    command = [str(SCHEDULER), "dry-run", "--config", str(table), "--from", START, *window, *shape]
    started = time.perf_counter()
    done = subprocess.run(command, stdout=subprocess.PIPE if "--histogram" in shape else subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr}")
    return elapsed, done.stdout or ""


def count_firings(table: Path, window: list[str]) -> int:
    """How many firings the window holds, from the histogram's header line."""
    _, chart = run(table, window, ["--histogram"])
    header = chart.splitlines()[0]
    return int(header.split(": ", 1)[1].split(" firings", 1)[0].replace(",", ""))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--keep", type=Path, help="write the tables here and keep them")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-dryrun-") as temporary:
        directory = options.keep or Path(temporary)
        directory.mkdir(parents=True, exist_ok=True)
        cases = [
            ("1,000 schedules x 1 day", many_table(directory), ["--for", "24h"]),
            ("1m x 100,000 tenants x 1 hour", wide_table(directory), ["--for", "1h"]),
        ]
        print(f"scheduler dry-run, median of {options.repeat} runs, wall time of the whole process")
        print("(start-up: the same process with --count 1, i.e. imports, loading and validating the table,")
        print(" resolving tenants and planning the lanes; the rest is listing or counting the firings)")
        failed = False
        for label, table, window in cases:
            firings = count_firings(table, window)
            startup = statistics.median(
                run(table, ["--count", "1"], ["--format", "jsonl"])[0] for _ in range(options.repeat)
            )
            print(f"  {label}: {firings:,} firings; start-up {startup:.2f} s")
            for shape_label, shape in (("jsonl > /dev/null", ["--format", "jsonl"]), ("--histogram", ["--histogram"])):
                times = [run(table, window, shape)[0] for _ in range(options.repeat)]
                median = statistics.median(times)
                verdict = "ok" if median < TARGET_SECONDS else f"OVER the {TARGET_SECONDS:.0f} s target"
                failed |= median >= TARGET_SECONDS
                rest = median - startup
                # The histogram skips the line pieces that --count 1 builds, so it can beat "start-up".
                after = f"after start-up: {rest:5.2f} s" if rest > 0.05 else "no slower than start-up"
                print(
                    f"    {shape_label:<18} {median:6.2f} s  {firings / median:>10,.0f} firings/s  ({after})"
                    f"  [{', '.join(f'{t:.2f}' for t in times)}]  {verdict}"
                )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
