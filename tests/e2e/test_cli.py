"""The real `scheduler validate` and `scheduler dry-run` console scripts, run on tables in tmp_path.

Every dry-run here has a fixed --from, so its output is the same on every run. 2026-11-02 is a
Monday, the day after New York left daylight saving time.
"""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
import subprocess
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from helpers import SCHEDULER, run_scheduler, scheduler_env, write_table

REPO = Path(__file__).resolve().parents[2]
FROM = "2026-11-02T00:00:00Z"
START = datetime(2026, 11, 2, tzinfo=UTC)
REQUIRED = {
    "firing_id", "schedule", "tenant", "tick", "enqueue_at", "queue", "job", "args", "jitter_ms", "timezone", "late",
}
TICK = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")
INSTANT = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
# The sample table over the day from FROM: heartbeat every 30 s; sync-invoices every 15 min for 3
# tenants; nightly-report at 03:00 Tokyo (18:00 UTC) for 2; morning-digest at 09:00 Monday in Tokyo,
# Berlin and New York. usage-rollup reads a Redis set.
SAMPLE_DAY = {"heartbeat": 2880, "sync-invoices": 96 * 3, "nightly-report": 2, "morning-digest": 3}


def scheduler(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return run_scheduler(*args, env={"COLUMNS": "100", **(env or {})}, cwd=cwd)


def dry_run(config: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return scheduler("dry-run", "--config", str(config), *args, env=env)


def firings(result: subprocess.CompletedProcess) -> list[dict]:
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def parse(text: str) -> datetime:
    return datetime.fromisoformat(text)


@pytest.fixture
def sample(tmp_path: Path) -> Path:
    """The repository's sample schedules.toml with its tenants file, copied into tmp_path."""
    shutil.copy(REPO / "schedules.toml", tmp_path / "schedules.toml")
    (tmp_path / "tenants").mkdir()
    shutil.copy(REPO / "tenants" / "big.txt", tmp_path / "tenants" / "big.txt")
    return tmp_path / "schedules.toml"



def assert_clean_error(result: subprocess.CompletedProcess, code: int, *words: str) -> None:
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    for word in words:
        assert word in result.stderr


# -- validate -----------------------------------------------------------------------------------------


def test_validate_accepts_the_sample_table_and_summarises_it(sample):
    result = scheduler("validate", cwd=sample.parent)

    assert result.returncode == 0, result.stderr
    assert re.fullmatch(
        r"schedules\.toml: ok, 5 schedules, 7 tenants, [\d,]+ firings in the next 24 h \(not counted: 1 schedule "
        r"whose tenants are in Redis, unresolved: set 'active' \(redis set 'tenants:active'\); "
        r"set SCHEDULER_REDIS_URL to read them\)\n",
        result.stdout,
    ), result.stdout


def test_validate_lists_every_problem_at_once_with_file_line_and_schedule(tmp_path):
    config = write_table(tmp_path, """\
[defaults]
queue = "default"

[[schedule]]
name = "bad-cron"
cron = "61 * * * *"
job = "A"

[[schedule]]
name = "bad-zone"
every = "5m"
timezone = "Mars/Olympus"
job = "B"

[[schedule]]
name = "no-job"
every = "1h"
""")
    result = scheduler("validate", "--config", str(config))

    assert_clean_error(result, 1)
    assert result.stderr.splitlines() == [
        f"{config}:6: schedule \"bad-cron\": cron '61 * * * *': minute 61 is out of range 0-59",
        f"{config}:12: schedule \"bad-zone\": timezone 'Mars/Olympus': is not an IANA time zone name",
        f"{config}:15: schedule \"no-job\": job is required: it names what the worker runs",
        f"scheduler validate: 3 problems in {config}",
    ]


# -- a queue's stream among the scheduler's own keys -----------------------------------------------------

LEDGER_STREAM_TABLE = """\
[queues.beats]
type = "redis-stream"
stream = "{scheduler}:history:beat"

[[schedule]]
name = "beat"
every = "1m"
job = "Beat"
queue = "beats"
"""


def among_own_keys(config: Path, stream: str, prefix: str) -> str:
    return (f"{config}:3: queue \"beats\": stream '{stream}': lies under the scheduler's key prefix '{prefix}' "
            f"(SCHEDULER_KEY_PREFIX), among its own keys; the only streams allowed there are "
            f"'{prefix}:queue:<queue name>'")


@pytest.mark.parametrize("command", [
    pytest.param(["validate"], id="validate"),
    pytest.param(["dry-run", "--from", FROM], id="dry-run"),
    pytest.param(["pause", "beat"], id="pause"),
    pytest.param(["trigger", "beat"], id="trigger"),
])
def test_a_queue_stream_among_the_schedulers_own_keys_is_refused(tmp_path, command):
    config = write_table(tmp_path, LEDGER_STREAM_TABLE)

    result = scheduler(*command, "--config", str(config))

    assert_clean_error(result, 1)
    assert result.stderr.splitlines() == [
        among_own_keys(config, "{scheduler}:history:beat", "{scheduler}"),
        f"scheduler {command[0]}: 1 problem in {config}",
    ]


def test_run_refuses_a_queue_stream_under_the_key_prefix_of_its_settings(tmp_path, redis_server):
    config = write_table(tmp_path, LEDGER_STREAM_TABLE.replace("{scheduler}:history:beat", "{acme}:lease"))
    assert scheduler("validate", "--config", str(config)).returncode == 0, "not under the default prefix"

    result = scheduler("run", "--config", str(config),
                       env={"SCHEDULER_REDIS_URL": redis_server.url, "SCHEDULER_KEY_PREFIX": "{acme}",
                            "SCHEDULER_HTTP_PORT": "0"})

    assert_clean_error(result, 1)
    assert result.stderr.splitlines()[-2:] == [
        among_own_keys(config, "{acme}:lease", "{acme}"),
        f"scheduler run: 1 problem in {config}",
    ]
    assert redis_server.client().keys("*") == [], "nothing written"


# -- dry-run: jsonl -----------------------------------------------------------------------------------


def test_jsonl_lists_a_days_firings_of_the_sample_with_ids_and_jitter(sample):
    result = dry_run(sample, "--from", FROM, "--for", "24h", "--format", "jsonl")
    rows = firings(result)

    assert Counter(row["schedule"] for row in rows) == SAMPLE_DAY
    jitter = {"heartbeat": 0, "sync-invoices": 5 * 60_000, "nightly-report": 10 * 60_000, "morning-digest": 0}
    for row in rows:
        assert REQUIRED <= row.keys()
        assert TICK.fullmatch(row["tick"]) and INSTANT.fullmatch(row["enqueue_at"]), row
        assert row["firing_id"] == f"{row['schedule']}/{row['tenant']}/{row['tick']}"
        tick, enqueue_at = parse(row["tick"]), parse(row["enqueue_at"])
        assert START <= tick < START + timedelta(hours=24)
        assert enqueue_at == tick + timedelta(milliseconds=row["jitter_ms"])
        assert 0 <= row["jitter_ms"] < jitter[row["schedule"]] or row["jitter_ms"] == jitter[row["schedule"]] == 0
        assert row["late"] is False
    keys = [(parse(row["enqueue_at"]), row["schedule"], row["tenant"]) for row in rows]
    assert keys == sorted(keys)
    assert {row["tenant"] for row in rows if row["schedule"] == "heartbeat"} == {"-"}
    assert len({row["firing_id"] for row in rows}) == len(rows)
    # jitter spreads the tenants of a tick, and a tenant keeps its offset from tick to tick
    offsets = {(row["tenant"], row["jitter_ms"]) for row in rows if row["schedule"] == "sync-invoices"}
    assert len(offsets) == 3 and len({offset for _, offset in offsets}) == 3
    nightly = [row for row in rows if row["schedule"] == "nightly-report"]
    assert {row["tick"] for row in nightly} == {"2026-11-02T18:00:00Z"}
    assert all(row["args"] == {"kind": "daily"} and row["queue"] == "reports" for row in nightly)
    assert all(row["timezone"] == "Asia/Tokyo" and row["job"] == "NightlyReportJob" for row in nightly)
    digest = {row["tenant"]: (row["tick"], row["timezone"]) for row in rows if row["schedule"] == "morning-digest"}
    assert digest == {
        "acme": ("2026-11-02T00:00:00Z", "Asia/Tokyo"),
        "initech": ("2026-11-02T08:00:00Z", "Europe/Berlin"),
        "hooli": ("2026-11-02T14:00:00Z", "America/New_York"),
    }
    # the Redis set is reported, never silently empty
    assert "usage-rollup" in result.stderr and "'tenants:active'" in result.stderr
    assert "SCHEDULER_REDIS_URL" in result.stderr


def test_dry_run_is_deterministic_and_reads_the_default_config(sample):
    first = scheduler("dry-run", "--from", FROM, "--for", "6h", "--format", "jsonl", cwd=sample.parent)
    second = scheduler("dry-run", "--from", FROM, "--for", "6h", "--format", "jsonl", cwd=sample.parent)

    assert first.returncode == second.returncode == 0
    assert first.stdout == second.stdout
    assert len(first.stdout.splitlines()) == 720 + 24 * 3 + 1  # heartbeat, sync-invoices, morning-digest in Tokyo


def planned(fanout, start: datetime, end: datetime, outage: tuple[datetime, datetime] | None):
    """The planner's own answer for the ticks in (start, end], one fanout at a time: on time up to the
    outage, catch-up from its start at its end, on time after it. Returns (tick plans, skipped)."""
    if outage is None:
        return list(fanout.on_time(start, end)), 0
    down, up = outage
    plan = fanout.catch_up(down, up)
    return [*fanout.on_time(start, down), *plan.ticks, *fanout.on_time(up, end)], plan.skipped


def test_dry_run_agrees_with_the_planner_on_overlapping_jitter_zones_and_an_outage(tmp_path):
    """Many schedules whose jittered firings interleave, in several zones, as the planner plans them."""
    from scheduler.cli._common import resolve_tenants
    from scheduler.clock.instants import format_instant
    from scheduler.plan.preview import fanouts
    from scheduler.table import load_table

    zones = ["Asia/Tokyo", "Europe/Berlin", "America/New_York", "UTC"]
    tenants = ", ".join(f'{{ id = "t{n}", timezone = "{zones[n % 4]}" }}' for n in range(9))
    lines = [f"[tenants]\nmixed = [{tenants}]\n"]
    shapes = [
        ('every = "1m"', "50s"), ('every = "5m"', "4m"), ('cron = "*/5 * * * *"', "3m"),
        ('cron = "0,30 * * * *"', "20m"), ('every = "90s"', "1ms"), ('cron = "*/10 * * * *"', "0s"),
    ]
    for n, (cadence, jitter) in enumerate(shapes * 2):
        zone = "tenant" if n % 3 == 0 else zones[n % 4]
        catchup = ("all", "latest", "none")[n % 3]
        lines.append(
            f'[[schedule]]\nname = "s{n:02d}"\n{cadence}\ntimezone = "{zone}"\ntenants = "mixed"\njob = "J{n}"\n'
            f'catchup = "{catchup}"\n' + (f'jitter = "{jitter}"\n' if jitter != "0s" else "")
        )
    config = write_table(tmp_path, "\n".join(lines))
    table = load_table(config)
    resolved = resolve_tenants(table)
    start, end = START + timedelta(hours=1), START + timedelta(hours=4)
    down, up = START + timedelta(hours=2), START + timedelta(hours=2, minutes=37)

    for outage in (None, (down, up)):
        expected, skipped = [], Counter()
        for fanout in fanouts(table, resolved)[0]:
            window = (start - timedelta(microseconds=1), end - timedelta(microseconds=1))  # [start, end)
            plans, count = planned(fanout, *window, outage)
            expected += [firing for plan in plans for firing in plan.firings]
            skipped[fanout.track.schedule.name] += count
        expected.sort(key=lambda firing: (firing.enqueue_at, firing.schedule, firing.tenant))
        extra = ["--outage", f"{down.isoformat()}/{up.isoformat()}"] if outage else []
        result = dry_run(config, "--from", start.isoformat(), "--until", end.isoformat(), "--format", "jsonl", *extra)
        rows = firings(result)

        assert [(row["firing_id"], row["enqueue_at"], row["late"]) for row in rows] == [
            (firing.id, format_instant(firing.enqueue_at), firing.late) for firing in expected
        ]
        assert len(rows) > 1000
        if outage:
            assert any(row["late"] for row in rows)
            for name, count in skipped.items():
                if count:
                    assert f"skipped {count:,} firings of schedule {name} " in result.stderr


# -- dry-run: windows, filters and formats ------------------------------------------------------------


def test_count_gives_the_first_firings_in_order(sample):
    day = firings(dry_run(sample, "--from", FROM, "--format", "jsonl"))
    first = firings(dry_run(sample, "--from", FROM, "--count", "7", "--format", "jsonl"))
    table = dry_run(sample, "--from", FROM, "--count", "7")

    assert first == day[:7]
    assert table.returncode == 0
    assert table.stdout.splitlines()[-1] == f"7 firings, of 3 schedules: the first 7 firings from {FROM}"
    assert len(table.stdout.splitlines()) == 1 + 7 + 1


def test_count_reaches_past_a_day_when_it_has_to(tmp_path):
    config = write_table(tmp_path, '[[schedule]]\nname = "monthly"\ncron = "0 0 1 * *"\njob = "Bill"\n')
    rows = firings(dry_run(config, "--from", FROM, "--count", "3", "--format", "jsonl"))

    assert [row["tick"] for row in rows] == ["2026-12-01T00:00:00Z", "2027-01-01T00:00:00Z", "2027-02-01T00:00:00Z"]


def test_schedule_and_tenant_filters_narrow_the_firings(sample):
    jsonl = ("--from", FROM, "--format", "jsonl")
    one = firings(dry_run(sample, *jsonl, "--schedule", "sync-invoices", "--tenant", "big-2"))
    two = firings(dry_run(sample, *jsonl, "--schedule", "heartbeat", "--schedule", "nightly-report"))
    acme = dry_run(sample, *jsonl, "--tenant", "acme", "--tenant", "nobody")

    assert len(one) == 96 and {(row["schedule"], row["tenant"]) for row in one} == {("sync-invoices", "big-2")}
    assert Counter(row["schedule"] for row in two) == {"heartbeat": 2880, "nightly-report": 2}
    assert {(row["schedule"], row["tenant"]) for row in firings(acme)} == {("nightly-report", "acme"),
                                                                           ("morning-digest", "acme")}
    assert "--tenant 'nobody': no schedule fans out to it" in acme.stderr


def test_for_and_until_name_the_same_window_and_it_holds_its_start_not_its_end(sample):
    by_length = dry_run(sample, "--from", FROM, "--for", "90m", "--format", "jsonl")
    by_end = dry_run(sample, "--from", FROM, "--until", "2026-11-02T01:30:00Z", "--format", "jsonl")
    with_offset = dry_run(sample, "--from", "2026-11-02T09:00:00+09:00", "--for", "90m", "--format", "jsonl")
    naive = dry_run(sample, "--from", "2026-11-02T00:00:00", "--for", "90m", "--format", "jsonl")
    default = dry_run(sample, "--from", FROM, "--format", "jsonl")

    assert by_length.stdout == by_end.stdout == with_offset.stdout == naive.stdout
    ticks = {row["tick"] for row in firings(by_length) if row["schedule"] == "heartbeat"}
    assert min(ticks) == FROM and max(ticks) == "2026-11-02T01:29:30Z" and len(ticks) == 180
    assert len(firings(default)) == sum(SAMPLE_DAY.values())


def test_csv_has_a_header_and_the_same_firings_as_jsonl(sample):
    rows = firings(dry_run(sample, "--from", FROM, "--for", "3h", "--format", "jsonl"))
    result = dry_run(sample, "--from", FROM, "--for", "3h", "--format", "csv")

    assert result.returncode == 0
    header = "firing_id,tick,enqueue_at,schedule,tenant,queue,job,args,jitter_ms,timezone,late"
    assert result.stdout.splitlines()[0] == header
    table = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [row["firing_id"] for row in table] == [row["firing_id"] for row in rows]
    for line, row in zip(table, rows):
        assert set(line) == REQUIRED
        assert json.loads(line["args"]) == row["args"]
        assert int(line["jitter_ms"]) == row["jitter_ms"] and line["late"] == "false"
        assert (line["tick"], line["enqueue_at"], line["timezone"]) == (row["tick"], row["enqueue_at"], row["timezone"])


def test_csv_and_jsonl_quote_names_that_need_it(tmp_path):
    config = write_table(tmp_path, """\
[[schedule]]
name = 'odd,"name"'
every = "1h"
tenants = ['a,b', 'say"hi"', 'back\\slash', 'caf\u00e9']
job = 'Job, "quoted"'
args = { text = 'x,"y"' }
""")
    lines = firings(dry_run(config, "--from", FROM, "--for", "1h", "--format", "jsonl"))
    table = list(csv.DictReader(io.StringIO(dry_run(config, "--from", FROM, "--for", "1h", "--format", "csv").stdout)))

    tenants = {"a,b", 'say"hi"', "back\\slash", "caf\u00e9"}
    assert {row["tenant"] for row in lines} == tenants
    assert {row["firing_id"] for row in lines} == {f'odd,"name"/{tenant}/{FROM}' for tenant in tenants}
    assert [row["firing_id"] for row in table] == [row["firing_id"] for row in lines]
    assert [(row["schedule"], row["tenant"], row["job"]) for row in table] == [
        (row["schedule"], row["tenant"], row["job"]) for row in lines
    ]
    assert all(json.loads(row["args"]) == {"text": 'x,"y"'} for row in table)


def test_table_shows_utc_and_local_times_jitter_and_a_footer(sample):
    result = dry_run(sample, "--from", FROM, "--for", "24h")
    jsonl = firings(dry_run(sample, "--from", FROM, "--for", "24h", "--format", "jsonl"))
    lines = result.stdout.splitlines()

    assert result.returncode == 0
    assert lines[0].split() == ["ENQUEUE", "AT", "(UTC)", "LOCAL", "TIME", "TICK", "(UTC)", "JITTER", "SCHEDULE",
                                "TENANT", "QUEUE", "JOB"]
    assert lines[-1] == f"3,173 firings, of 4 schedules: ticks from {FROM} until 2026-11-03T00:00:00Z"
    digest = {line.split()[8]: line.split() for line in lines[1:-1] if "morning-digest" in line}
    assert digest["acme"][:7] == ["2026-11-02T00:00:00.000Z", "2026-11-02", "09:00:00.000", "+09:00", "Asia/Tokyo",
                                  "2026-11-02T00:00:00Z", "+0s"]
    assert digest["initech"][1:5] == ["2026-11-02", "09:00:00.000", "+01:00", "Europe/Berlin"]
    assert digest["hooli"][1:5] == ["2026-11-02", "09:00:00.000", "-05:00", "America/New_York"]
    sync = next(row for row in jsonl if row["schedule"] == "sync-invoices")
    cells = next(line.split() for line in lines if line.startswith(sync["enqueue_at"]) and "sync-invoices" in line)
    minutes, rest = divmod(sync["jitter_ms"], 60_000)
    assert cells[6].startswith(f"+{minutes}m" if minutes else "+") and cells[6].endswith("ms" if rest % 1000 else "s")
    assert cells[8:] == [sync["tenant"], "default", "InvoiceSync"]
    assert "Traceback" not in result.stderr and "tenants:active" in result.stderr


# -- dry-run: histogram -------------------------------------------------------------------------------


SPIKE = """\
[tenants]
sixty = [{ids}]

[[schedule]]
name = "spike"
cron = "*/15 * * * *"
tenants = "sixty"
job = "Spike"

[[schedule]]
name = "spread"
cron = "*/15 * * * *"
tenants = "sixty"
job = "Spread"
jitter = "10m"
""".format(ids=", ".join(f'"c{n:02d}"' for n in range(60)))


def histogram_rows(result: subprocess.CompletedProcess) -> tuple[str, dict[str, int]]:
    assert result.returncode == 0, result.stderr
    header, *rows = result.stdout.splitlines()
    counts = {}
    for row in rows:
        day, minute, count, *_ = row.split()
        counts[f"{day} {minute}"] = int(count.replace(",", ""))
    return header, counts


def test_histogram_shows_the_spike_at_the_quarter_hours_and_jitter_flattening_it(tmp_path):
    config = write_table(tmp_path, SPIKE)
    hour = ("--from", FROM, "--for", "1h", "--histogram")
    spike_header, spike = histogram_rows(dry_run(config, *hour, "--schedule", "spike"))
    _, spread = histogram_rows(dry_run(config, *hour, "--schedule", "spread"))

    assert spike_header.startswith("firings per 1m by enqueue_at, bucket start in UTC: 240 firings, at most 60 in one")
    assert len(spike) == 60
    assert {minute: count for minute, count in spike.items() if count} == {
        "2026-11-02 00:00": 60, "2026-11-02 00:15": 60, "2026-11-02 00:30": 60, "2026-11-02 00:45": 60,
    }
    assert sum(spread.values()) == 240
    assert max(spread.values()) < 20
    assert sum(1 for count in spread.values() if count) >= 30
    assert spread["2026-11-02 00:12"] == 0 and spread["2026-11-02 00:13"] == 0  # 10m of jitter, then quiet


def test_histogram_picks_a_wider_bucket_for_a_long_window_and_scales_bars(tmp_path):
    config = write_table(tmp_path, SPIKE)
    result = dry_run(config, "--from", FROM, "--for", "7d", "--histogram")
    header, counts = histogram_rows(result)

    assert header.startswith("firings per 3h by enqueue_at")
    assert len(counts) == 56 and set(counts.values()) == {2 * 60 * 12}
    assert all(len(line) <= 100 for line in result.stdout.splitlines()[1:])
    assert all(line.rstrip().endswith(line.rstrip()[-1] * 20) for line in result.stdout.splitlines()[1:])


def test_histogram_of_the_first_firings_counts_only_them(tmp_path):
    config = write_table(tmp_path, SPIKE)
    _, counts = histogram_rows(dry_run(config, "--from", FROM, "--count", "100", "--histogram", "--schedule", "spike",
                                       "--bucket", "15m"))

    assert counts == {"2026-11-02 00:00": 60, "2026-11-02 00:15": 40}


# -- dry-run: outages ---------------------------------------------------------------------------------


OUTAGE = """\
[defaults]
every = "1m"
tenants = ["a", "b"]
job = "Job"
catchup_window = "1h"

[[schedule]]
name = "keep-all"
catchup = "all"

[[schedule]]
name = "keep-latest"
catchup = "latest"

[[schedule]]
name = "keep-none"
catchup = "none"
"""


def test_outage_applies_each_catch_up_policy_and_reports_what_it_skipped(tmp_path):
    config = write_table(tmp_path, OUTAGE)
    result = dry_run(config, "--from", FROM, "--for", "30m", "--format", "jsonl",
                     "--outage", "2026-11-02T00:10:00Z/2026-11-02T00:20:00Z")
    rows = firings(result)

    def minutes(schedule: str) -> list[str]:
        return [row["tick"][14:16] + ("L" if row["late"] else "") for row in rows
                if row["schedule"] == schedule and row["tenant"] == "a"]

    on_time_before, on_time_after = [f"{m:02d}" for m in range(11)], [f"{m:02d}" for m in range(19, 30)]
    # late: handled at 00:20, more than misfire_grace (60 s) after enqueue_at; 00:19 is exactly 60 s old
    assert minutes("keep-all") == on_time_before + [f"{m}L" for m in range(11, 19)] + on_time_after
    assert minutes("keep-latest") == on_time_before + ["18L"] + on_time_after
    assert minutes("keep-none") == on_time_before + on_time_after
    notes = result.stderr.splitlines()
    skipped = [line.split(" (no leader")[0] for line in notes if "skipped" in line]
    assert skipped == [
        "note: catch-up policy 'latest' skipped 14 firings of schedule keep-latest",
        "note: catch-up policy 'none' skipped 16 firings of schedule keep-none",
    ]
    assert not any("keep-all" in line for line in notes)
    assert "note: 18 late firings caught up at 2026-11-02T00:20:00Z" in notes


def test_outage_in_the_table_marks_late_firings(tmp_path):
    config = write_table(tmp_path, OUTAGE)
    result = dry_run(config, "--from", FROM, "--for", "30m", "--schedule", "keep-latest",
                     "--outage", "2026-11-02T00:10:00Z/2026-11-02T00:20:00Z")

    late = [line for line in result.stdout.splitlines() if "late, enqueued" in line]
    assert [line.split()[5] for line in late] == ["2026-11-02T00:18:00Z"] * 2
    assert all(line.endswith("late, enqueued at 2026-11-02T00:20:00Z") for line in late)
    assert result.stdout.splitlines()[-1].startswith("46 firings, 2 of them late, of 1 schedule:")


# -- dry-run: Redis tenant sets -----------------------------------------------------------------------


def test_a_redis_set_is_read_when_scheduler_redis_url_is_set(sample, redis_server, redis_client):
    redis_client.sadd("tenants:active", "r1", "r2", "r3")
    env = {"SCHEDULER_REDIS_URL": redis_server.url}
    result = dry_run(sample, "--from", FROM, "--for", "1h", "--format", "jsonl", "--schedule", "usage-rollup", env=env)
    rows = firings(result)

    assert len(rows) == 12 * 3
    assert {row["tenant"] for row in rows} == {"r1", "r2", "r3"}
    assert {row["tick"][11:16] for row in rows} == {f"00:{m:02d}" for m in range(0, 60, 5)}
    assert "unresolved" not in result.stderr and "SCHEDULER_REDIS_URL" not in result.stderr


def test_an_unresolved_redis_set_leaves_only_its_schedule_out(sample):
    result = dry_run(sample, "--from", FROM, "--for", "1h", "--format", "jsonl", "--schedule", "usage-rollup")

    assert result.returncode == 0 and result.stdout == ""
    assert result.stderr.splitlines() == [
        "note: schedule 'usage-rollup' is left out: its tenants are the Redis set 'tenants:active' (tenant set "
        "'active'), unresolved; set SCHEDULER_REDIS_URL to read it"
    ]


# -- dry-run: refusals --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "code", "words"),
    [
        (["--from", "yesterday"], 1, ["--from 'yesterday': is not a time"]),
        (["--from", "2026-11-02T25:00:00Z"], 1, ["--from"]),
        (["--until", "2026-11-01T00:00:00Z"], 1, ["--until", "must be after --from"]),
        (["--for", "3x"], 1, ["--for '3x': is not a duration"]),
        (["--for", "0s"], 1, ["--for '0s': must be longer than zero"]),
        (["--count", "0"], 1, ["--count '0': must be a whole number, 1 or more"]),
        (["--count", "many"], 1, ["--count 'many'"]),
        (["--outage", "2026-11-02T01:00:00Z"], 1, ["--outage", "FROM/UNTIL"]),
        (["--outage", "2026-11-02T02:00:00Z/2026-11-02T01:00:00Z"], 1, ["--outage", "FROM must be before UNTIL"]),
        (["--outage", "2026-11-01T02:00:00Z/2026-11-02T01:00:00Z"], 1, ["--outage", "must lie inside the window"]),
        (["--outage", "2026-11-02T02:00:00Z/soon"], 1, ["--outage 'soon': is not a time"]),
        (["--schedule", "nightly", "--schedule", "nope"], 1,
         ["--schedule 'nightly': no schedule of that name", "(did you mean 'nightly-report'?)", "--schedule 'nope'"]),
        (["--bucket", "1q", "--histogram"], 1, ["--bucket '1q'"]),
        (["--count", "3", "--for", "1h"], 2, ["not allowed with argument"]),
        (["--histogram", "--format", "csv"], 2, ["not allowed with argument"]),
        (["--format", "xml"], 2, ["invalid choice: 'xml'"]),
    ],
    ids=lambda value: " ".join(value) if isinstance(value, list) else None,
)
def test_bad_arguments_are_refused_in_one_line_without_a_traceback(sample, args, code, words):
    result = dry_run(sample, "--from", FROM, *args)

    assert_clean_error(result, code, *words)
    if code == 1:
        assert len(result.stderr.splitlines()) == 1
        assert result.stderr.startswith("scheduler dry-run: ")


def test_a_broken_table_is_refused_by_dry_run_too(tmp_path):
    config = write_table(tmp_path, '[[schedule]]\nname = "x"\nevery = "soon"\njob = "J"\n')
    result = dry_run(config, "--from", FROM)

    assert_clean_error(result, 1, f"{config}:3: schedule \"x\": every 'soon': is not a duration",
                       f"scheduler dry-run: 1 problem in {config}")


def test_a_reader_that_goes_away_ends_dry_run_quietly(sample):
    process = subprocess.Popen(
        [str(SCHEDULER), "dry-run", "--config", str(sample), "--from", FROM, "--for", "30d", "--format", "jsonl"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=scheduler_env(),
    )
    assert process.stdout is not None and process.stderr is not None
    first = process.stdout.readline()
    process.stdout.close()  # like `| head -1`: the rest of a month of heartbeats meets a closed pipe
    code = process.wait(timeout=60)
    errors = process.stderr.read().decode()
    process.stderr.close()

    assert json.loads(first)["firing_id"] == f"heartbeat/-/{FROM}"
    assert code == 0
    assert "Traceback" not in errors and "BrokenPipe" not in errors
