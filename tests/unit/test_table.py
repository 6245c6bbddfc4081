"""Loading schedules.toml: the accepted shapes, and every refusal naming file, line, schedule and field."""

from __future__ import annotations

import textwrap
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from scheduler.clock.cadence import Cron, Every
from scheduler.errors import Problem, SchedulerError, TableError
from scheduler.table import CatchUp, InlineTenants, RedisSetTenants, Tenant, all_safe, load_table, unsafe_name

SAMPLE = Path(__file__).resolve().parents[2] / "schedules.toml"
UTC_ZONE = ZoneInfo("UTC")
NOT_A_DURATION = 'is not a duration; write it like "90s", "5m", "1h30m" or "2d"'
BREAKS_IDS = "(they would break firing ids and Redis keys)"
NOT_JSON = ("JSON has no NaN or Infinity, and workers' JSON parsers (Ruby's, Node's) refuse them; "
            "write a finite number or a string")


def write(directory: Path, text: str, name: str = "schedules.toml") -> Path:
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def problems_of(path: Path) -> list[Problem]:
    with pytest.raises(TableError) as raised:
        load_table(path)
    assert str(raised.value) == "\n".join(str(problem) for problem in raised.value.problems)
    return raised.value.problems


# -- the repository's own sample ------------------------------------------------------------------


def test_the_sample_table_loads():
    table = load_table(SAMPLE)
    assert [s.name for s in table.schedules] == [
        "nightly-report", "morning-digest", "sync-invoices", "usage-rollup", "heartbeat",
    ]
    assert sorted(table.tenant_sets) == ["active", "big", "enterprise", "regional"]


def test_the_sample_nightly_report():
    s = load_table(SAMPLE).schedule("nightly-report")
    assert s.cadence == Cron("0 3 * * *")
    assert s.zone == ZoneInfo("Asia/Tokyo")
    assert s.tenants.tenants == (Tenant("acme"), Tenant("globex"))
    assert (s.job, s.queue, s.args) == ("NightlyReportJob", "reports", {"kind": "daily"})
    assert (s.jitter, s.catchup, s.catchup_window) == (timedelta(minutes=10), CatchUp.ALL, timedelta(hours=6))
    assert s.misfire_grace == timedelta(seconds=60)  # from [defaults]


def test_the_sample_per_tenant_zones_file_and_redis_sets():
    table = load_table(SAMPLE)
    digest = table.schedule("morning-digest")
    assert digest.per_tenant_zone and digest.zone is None
    assert [(t.id, t.zone.key) for t in digest.tenants.tenants] == [
        ("acme", "Asia/Tokyo"), ("initech", "Europe/Berlin"), ("hooli", "America/New_York"),
    ]
    assert (digest.queue, digest.catchup) == ("default", CatchUp.LATEST)

    invoices = table.schedule("sync-invoices")
    assert invoices.cadence == Every(timedelta(minutes=15))
    assert [t.id for t in invoices.tenants.tenants] == ["big-1", "big-2", "big-3"]  # comment line skipped
    assert invoices.tenants.file == SAMPLE.parent / "tenants" / "big.txt"

    rollup = table.schedule("usage-rollup")
    assert rollup.tenants == RedisSetTenants(key="tenants:active", name="active")
    assert rollup.catchup is CatchUp.NONE

    heartbeat = table.schedule("heartbeat")
    assert (heartbeat.cadence, heartbeat.tenants) == (Every(timedelta(seconds=30)), None)
    assert (heartbeat.zone, heartbeat.misfire_grace) == (UTC_ZONE, timedelta(seconds=10))


# -- defaults --------------------------------------------------------------------------------------


DEFAULTS = """
    [defaults]
    timezone = "Asia/Tokyo"
    queue = "default"
    every = "10m"
    job = "DefaultJob"
    jitter = "1m"
    catchup = "all"

    [[schedule]]
    name = "inherits"

    [[schedule]]
    name = "overrides"
    cron = "0 3 * * *"
    timezone = "Europe/Berlin"
    queue = "reports"
    job = "OwnJob"
    jitter = "2m"
    catchup = "none"
    catchup_window = "1h"
    misfire_grace = "5s"
    args = { kind = "daily", ids = [1, 2] }
"""


def test_defaults_apply(tmp_path):
    s = load_table(write(tmp_path, DEFAULTS)).schedule("inherits")
    assert s.cadence == Every(timedelta(minutes=10))
    assert (s.zone, s.default_zone) == (ZoneInfo("Asia/Tokyo"), ZoneInfo("Asia/Tokyo"))
    assert (s.queue, s.job, s.jitter, s.catchup) == ("default", "DefaultJob", timedelta(minutes=1), CatchUp.ALL)
    assert (s.catchup_window, s.misfire_grace, s.args) == (timedelta(hours=24), timedelta(seconds=60), {})


def test_schedule_fields_override_defaults(tmp_path):
    s = load_table(write(tmp_path, DEFAULTS)).schedule("overrides")
    assert s.cadence == Cron("0 3 * * *")  # a cron of its own replaces the default every
    assert s.zone == ZoneInfo("Europe/Berlin")
    assert (s.queue, s.job, s.jitter, s.catchup) == ("reports", "OwnJob", timedelta(minutes=2), CatchUp.NONE)
    assert (s.catchup_window, s.misfire_grace) == (timedelta(hours=1), timedelta(seconds=5))
    assert s.args == {"kind": "daily", "ids": [1, 2]}
    assert s.args_json == '{"ids":[1,2],"kind":"daily"}'


def test_built_in_defaults_without_a_defaults_table(tmp_path):
    s = load_table(write(tmp_path, """
        [[schedule]]
        name = "bare"
        every = "30s"
        job = "Bare"
    """)).schedule("bare")
    assert (s.zone, s.queue, s.tenants, s.jitter) == (UTC_ZONE, "default", None, timedelta(0))
    assert (s.catchup, s.catchup_window, s.misfire_grace) == (CatchUp.LATEST, timedelta(hours=24), timedelta(seconds=60))


def test_tenant_zone_schedule_uses_default_zone_for_tenants_without_one(tmp_path):
    s = load_table(write(tmp_path, """
        [defaults]
        timezone = "Europe/Berlin"

        [tenants]
        mixed = [{ id = "acme", timezone = "Asia/Tokyo" }, "plain"]

        [[schedule]]
        name = "digest"
        cron = "0 9 * * *"
        timezone = "tenant"
        tenants = "mixed"
        job = "Digest"
    """)).schedule("digest")
    assert s.per_tenant_zone
    assert [s.zone_of(t).key for t in s.tenants.tenants] == ["Asia/Tokyo", "Europe/Berlin"]


def test_inline_tenant_list(tmp_path):
    s = load_table(write(tmp_path, """
        [[schedule]]
        name = "inline"
        every = "5m"
        tenants = ["acme", { id = "initech", timezone = "Europe/Berlin" }]
        job = "J"
    """)).schedule("inline")
    assert s.tenants == InlineTenants((Tenant("acme"), Tenant("initech", ZoneInfo("Europe/Berlin"))))


def test_fingerprint_covers_the_tenant_files(tmp_path):
    table = """
        [tenants]
        big = { file = "tenants/big.txt" }

        [[schedule]]
        name = "sync"
        every = "15m"
        tenants = "big"
        job = "Sync"
    """
    write(tmp_path, "big-1\nbig-2\n", name="tenants/big.txt")
    path = write(tmp_path, table)
    first, again = load_table(path).fingerprint, load_table(path).fingerprint
    write(tmp_path, "big-1\nbig-2\nbig-3\n", name="tenants/big.txt")
    assert first == again
    assert load_table(path).fingerprint != first


# -- refusals: one problem each ----------------------------------------------------------------------

SCHEDULE_A = 'schedule "a"'

REFUSALS = [
    pytest.param(
        """
        [[schedule]]
        name = "nightly-report"
        cron = "61 * * * *"
        job = "J"
        """,
        3, 'schedule "nightly-report"', "cron '61 * * * *': minute 61 is out of range 0-59",
        id="cron-minute-out-of-range",
    ),
    pytest.param(
        """
        [[schedule]]
        name = "a"
        cron = "0 3 * *"
        job = "J"
        """,
        3, SCHEDULE_A,
        "cron '0 3 * *': has 4 fields; cron takes 5 (minute hour day-of-month month day-of-week) or a macro",
        id="cron-four-fields",
    ),
    pytest.param(
        """
        [[schedule]]
        name = "a"
        cron = "0 0 30 2 *"
        job = "J"
        """,
        3, SCHEDULE_A, "cron '0 0 30 2 *': never matches a real date",
        id="cron-february-30th",
    ),
    pytest.param(
        """
        [[schedule]]
        name = "a"
        cron = "0 3 * * *"
        job = "J"

        [[schedule]]
        name = "a"
        every = "5m"
        job = "J"
        """,
        7, SCHEDULE_A, "name 'a': is used by an earlier schedule (line 1)",
        id="duplicate-schedule-name",
    ),
    pytest.param(
        """
        [[schedule]]
        name = "a"
        cron = "0 3 * * *"
        every = "5m"
        job = "J"
        """,
        4, SCHEDULE_A, "give cron or every, not both",
        id="both-cron-and-every",
    ),
    pytest.param(
        """
        [[schedule]]
        name = "a"
        job = "J"
        """,
        1, SCHEDULE_A, "cron or every is required",
        id="neither-cron-nor-every",
    ),
    pytest.param(
        """
        [[schedule]]
        name = "a"
        cron = "0 3 * * *"
        timezone = "Europe/Berln"
        job = "J"
        """,
        4, SCHEDULE_A, "timezone 'Europe/Berln': is not an IANA time zone name (did you mean 'Europe/Berlin'?)",
        id="unknown-time-zone-with-suggestion",
    ),
    pytest.param(
        """
        [[schedule]]
        name = "a"
        cron = "0 3 * * *"
        timezone = "Mars/Olympus_Mons"
        job = "J"
        """,
        4, SCHEDULE_A, "timezone 'Mars/Olympus_Mons': is not an IANA time zone name",
        id="unknown-time-zone",
    ),
    pytest.param(
        """
        [tenants]
        enterprise = ["acme"]

        [[schedule]]
        name = "a"
        cron = "0 3 * * *"
        tenants = "enterprize"
        job = "J"
        """,
        7, SCHEDULE_A, "tenants 'enterprize': no tenant set of that name in [tenants] (known: enterprise)",
        id="unknown-tenant-set",
    ),
    pytest.param(
        """
        [[schedule]]
        name = "a"
        every = "5m"
        jitter = "5m"
        job = "J"
        """,
        4, SCHEDULE_A,
        "jitter '5m': must be shorter than the schedule's shortest interval (5m), "
        "or firings of one tick would overtake the next",
        id="jitter-equal-to-every",
    ),
    pytest.param(
        """
        [[schedule]]
        name = "a"
        cron = "*/15 * * * *"
        jitter = "20m"
        job = "J"
        """,
        4, SCHEDULE_A,
        "jitter '20m': must be shorter than the schedule's shortest interval (15m), "
        "or firings of one tick would overtake the next",
        id="jitter-longer-than-cron-interval",
    ),
    pytest.param(
        """
        [[schedule]]
        name = "a"
        cron = "45 1,2 * * *"
        timezone = "America/New_York"
        jitter = "30m"
        job = "J"
        """,
        5, SCHEDULE_A,
        "jitter '30m': must be shorter than the schedule's shortest interval (15m), "
        "or firings of one tick would overtake the next",
        id="jitter-longer-than-dst-shortened-interval",
    ),
    pytest.param(
        """
        [defaults]
        jitter = "10m"

        [[schedule]]
        name = "a"
        every = "5m"
        job = "J"
        """,
        4, SCHEDULE_A,
        "jitter '10m': must be shorter than the schedule's shortest interval (5m), "
        "or firings of one tick would overtake the next",
        id="jitter-from-defaults-reported-at-the-schedule",
    ),
    pytest.param(
        """
        [[schedule]]
        name = "a"
        every = "0s"
        job = "J"
        """,
        3, SCHEDULE_A, "every '0s': must be longer than zero",
        id="every-zero",
    ),
    pytest.param(
        """
        [[schedule]]
        name = "a"
        every = "5m"
        jitter = "0ms"
        job = "J"
        """,
        4, SCHEDULE_A, "jitter '0ms': must be longer than zero",
        id="jitter-zero",
    ),
    pytest.param(
        """
        [[schedule]]
        name = "a"
        every = "5m"
        catchup_window = "0m"
        job = "J"
        """,
        4, SCHEDULE_A, "catchup_window '0m': must be longer than zero",
        id="catchup-window-zero",
    ),
    pytest.param(
        """
        [[schedule]]
        name = "a"
        every = "5m"
        misfire_grace = "-5s"
        job = "J"
        """,
        4, SCHEDULE_A, f"misfire_grace '-5s': {NOT_A_DURATION}",
        id="misfire-grace-negative",
    ),
    pytest.param(
        """
        [[schedule]]
        name = "a"
        every = "5x"
        job = "J"
        """,
        3, SCHEDULE_A, f"every '5x': {NOT_A_DURATION}",
        id="every-unknown-unit",
    ),
    pytest.param(
        """
        [[schedule]]
        name = "a"
        every = 300
        job = "J"
        """,
        3, SCHEDULE_A, "every 300: must be a string, not an integer",
        id="every-as-a-bare-number",
    ),
    pytest.param(
        """
        [[schedule]]
        name = "a"
        every = "5m"
        catchup = "some"
        job = "J"
        """,
        4, SCHEDULE_A, "catchup 'some': must be one of 'all', 'latest', 'none'",
        id="bad-catchup",
    ),
    pytest.param(
        """
        [[schedule]]
        name = "a"
        every = "5m"
        tenants = [""]
        job = "J"
        """,
        4, SCHEDULE_A, "tenants: tenant id '': must not be empty",
        id="tenant-id-empty",
    ),
    pytest.param(
        """
        [[schedule]]
        name = "a"
        every = "5m"
        tenants = ["ac me"]
        job = "J"
        """,
        4, SCHEDULE_A, "tenants: tenant id 'ac me': must not contain whitespace",
        id="tenant-id-whitespace",
    ),
    pytest.param(
        """
        [[schedule]]
        name = "a"
        every = "5m"
        tenants = ["tab\\there"]
        job = "J"
        """,
        4, SCHEDULE_A, "tenants: tenant id 'tab\\there': must not contain whitespace",
        id="tenant-id-tab",
    ),
    pytest.param(
        """
        [[schedule]]
        name = "a"
        every = "5m"
        tenants = ["ac\\u0001me"]
        job = "J"
        """,
        4, SCHEDULE_A, "tenants: tenant id 'ac\\x01me': must not contain control characters",
        id="tenant-id-control-character",
    ),
    pytest.param(
        """
        [[schedule]]
        name = "a"
        every = "5m"
        tenants = ["del\\u007f"]
        job = "J"
        """,
        4, SCHEDULE_A, "tenants: tenant id 'del\\x7f': must not contain control characters",
        id="tenant-id-delete-character",
    ),
    pytest.param(
        f"""
        [[schedule]]
        name = "a"
        every = "5m"
        tenants = ["{'x' * 257}"]
        job = "J"
        """,
        4, SCHEDULE_A, f"tenants: tenant id '{'x' * 257}': is 257 characters long; the limit is 256",
        id="tenant-id-257-characters",
    ),
    pytest.param(
        """
        [[schedule]]
        name = "a"
        every = "5m"
        tenants = ["ac/me"]
        job = "J"
        """,
        4, SCHEDULE_A, f"tenants: tenant id 'ac/me': must not contain '/' {BREAKS_IDS}",
        id="tenant-id-slash",
    ),
    pytest.param(
        """
        [[schedule]]
        name = "a"
        every = "5m"
        tenants = ["{acme}"]
        job = "J"
        """,
        4, SCHEDULE_A, f"tenants: tenant id '{{acme}}': must not contain '{{' or '}}' {BREAKS_IDS}",
        id="tenant-id-braces",
    ),
    pytest.param(
        """
        [[schedule]]
        name = "a"
        every = "5m"
        tenants = ["acme", "acme"]
        job = "J"
        """,
        4, SCHEDULE_A, "tenants: tenant id 'acme': is listed twice",
        id="tenant-id-twice-inline",
    ),
    pytest.param(
        """
        [tenants]
        enterprise = ["acme", "globex", "acme"]
        """,
        2, 'tenant set "enterprise"', "tenant id 'acme': is listed twice",
        id="tenant-id-twice-in-a-set",
    ),
    pytest.param(
        """
        [tenants]
        regional = [{ id = "acme", timezone = "Asia/Tokio" }]
        """,
        2, 'tenant set "regional"',
        "tenant 'acme': timezone 'Asia/Tokio': is not an IANA time zone name (did you mean 'Asia/Tokyo'?)",
        id="tenant-zone-unknown",
    ),
    pytest.param(
        """
        [tenants]
        regional = [{ id = "acme", tz = "Asia/Tokyo" }]
        """,
        2, 'tenant set "regional"', 'a tenant with a zone is written { id = "acme", timezone = "Asia/Tokyo" }',
        id="tenant-table-with-unknown-key",
    ),
    pytest.param(
        """
        [tenants]
        "a/b" = ["acme"]
        """,
        2, 'tenant set "a/b"', f"name 'a/b': must not contain '/' {BREAKS_IDS}",
        id="tenant-set-name-slash",
    ),
    pytest.param(
        """
        [tenants]
        active = { redis_set = "" }
        """,
        2, 'tenant set "active"', "redis_set must name a Redis key",
        id="tenant-set-empty-redis-key",
    ),
    pytest.param(
        """
        [tenants]
        odd = 5
        """,
        2, 'tenant set "odd"', 'must be a list of ids, { redis_set = "key" } or { file = "path" }',
        id="tenant-set-of-unknown-shape",
    ),
    pytest.param(
        """
        [[schedule]]
        name = "a/b"
        every = "5m"
        job = "J"
        """,
        2, 'schedule "a/b"', f"name 'a/b': must not contain '/' {BREAKS_IDS}",
        id="schedule-name-slash",
    ),
    pytest.param(
        """
        [[schedule]]
        name = "a{b}"
        every = "5m"
        job = "J"
        """,
        2, 'schedule "a{b}"', f"name 'a{{b}}': must not contain '{{' or '}}' {BREAKS_IDS}",
        id="schedule-name-braces",
    ),
    pytest.param(
        """
        [[schedule]]
        name = "nightly report"
        every = "5m"
        job = "J"
        """,
        2, 'schedule "nightly report"', "name 'nightly report': must not contain whitespace",
        id="schedule-name-whitespace",
    ),
    pytest.param(
        """
        [[schedule]]
        name = ""
        every = "5m"
        job = "J"
        """,
        2, "schedule #1", "name '': must not be empty",
        id="schedule-name-empty",
    ),
    pytest.param(
        """
        [[schedule]]
        every = "5m"
        job = "J"
        """,
        1, "schedule #1", "name is required",
        id="schedule-name-missing",
    ),
    pytest.param(
        """
        [[schedule]]
        name = "a"
        every = "5m"
        """,
        1, SCHEDULE_A, "job is required: it names what the worker runs",
        id="job-missing",
    ),
    pytest.param(
        """
        [[schedule]]
        name = "a"
        every = "5m"
        job = "J"
        queue = "my queue"
        """,
        5, SCHEDULE_A, "queue 'my queue': must not contain whitespace",
        id="queue-name-whitespace",
    ),
    pytest.param(
        """
        [[schedule]]
        name = "a"
        every = "5m"
        timezone = "tenant"
        job = "J"
        """,
        4, SCHEDULE_A, "timezone 'tenant' needs tenants to take their zones from",
        id="tenant-zone-without-tenants",
    ),
    pytest.param(
        """
        [[schedule]]
        name = "a"
        every = "5m"
        job = "J"
        args = { since = 2026-01-01 }
        """,
        5, SCHEDULE_A, "args: dates and times cannot be passed to workers; write them as strings",
        id="args-with-a-date",
    ),
    pytest.param(
        """
        [[schedule]]
        name = "a"
        every = "5m"
        job = "J"
        args = { ratio = nan, cap = inf, fine = 0.5 }
        """,
        5, SCHEDULE_A, f"args: ratio = nan, cap = inf: {NOT_JSON}",
        id="args-with-nan-and-inf",
    ),
    pytest.param(
        """
        [[schedule]]
        name = "a"
        every = "5m"
        job = "J"
        args = { limits = { floor = -inf }, steps = [1.0, nan], items = [{ w = +inf }], "odd key" = -nan }
        """,
        5, SCHEDULE_A, f'args: limits.floor = -inf, steps[1] = nan, items[0].w = inf, "odd key" = nan: {NOT_JSON}',
        id="args-with-non-finite-floats-nested-in-tables-and-arrays",
    ),
    pytest.param(
        """
        [defaults]
        args = { ratio = nan }

        [[schedule]]
        name = "a"
        every = "5m"
        job = "J"
        """,
        2, "defaults", f"args: ratio = nan: {NOT_JSON}",
        id="args-with-nan-in-defaults",
    ),
    pytest.param(
        """
        [defaults]
        cronn = "0 3 * * *"
        """,
        2, "defaults", "unknown field 'cronn' (did you mean 'cron'?)",
        id="unknown-field-in-defaults",
    ),
    pytest.param(
        """
        [defaults]
        name = "everyone"
        """,
        2, "defaults", "a default name makes no sense: each schedule names itself",
        id="name-in-defaults",
    ),
    pytest.param(
        """
        [defaultz]
        queue = "q"
        """,
        1, "", "unknown table [defaultz] (did you mean 'defaults'?)",
        id="unknown-top-level-table",
    ),
    pytest.param(
        """
        [schedule]
        name = "a"
        every = "5m"
        job = "J"
        """,
        1, "", "write schedules as [[schedule]] (an array of tables)",
        id="schedule-written-as-a-single-table",
    ),
]


@pytest.mark.parametrize(("text", "line", "where", "message"), REFUSALS)
def test_refused_with_file_line_schedule_and_field(tmp_path, text, line, where, message):
    path = write(tmp_path, text)
    [problem] = problems_of(path)
    assert problem == Problem(str(path), line, where, message)
    located = f"{path}:{line}: {where}: {message}" if where else f"{path}:{line}: {message}"
    assert str(problem) == located


def test_the_issue_example_reads_as_one_line(tmp_path):
    path = write(tmp_path, """
        [defaults]
        queue = "default"

        [tenants]
        enterprise = ["acme"]

        # nightly
        [[schedule]]
        name = "nightly-report"
        tenants = "enterprise"
        cron = "61 * * * *"
        job = "NightlyReportJob"
    """)
    with pytest.raises(TableError) as raised:
        load_table(path)
    assert str(raised.value) == (
        f"{path}:11: schedule \"nightly-report\": cron '61 * * * *': minute 61 is out of range 0-59"
    )
    assert str(raised.value).endswith("schedules.toml:11: schedule \"nightly-report\": cron '61 * * * *': "
                                      "minute 61 is out of range 0-59")


def test_unknown_field_suggests_the_close_one(tmp_path):
    path = write(tmp_path, """
        [[schedule]]
        name = "a"
        cronn = "0 3 * * *"
        job = "J"
    """)
    assert problems_of(path) == [
        Problem(str(path), 1, SCHEDULE_A, "cron or every is required"),
        Problem(str(path), 3, SCHEDULE_A, "unknown field 'cronn' (did you mean 'cron'?)"),
    ]


def test_several_problems_are_reported_in_one_go_in_file_order(tmp_path):
    path = write(tmp_path, """
        [defaults]
        queue = "q"

        [[schedule]]
        name = "b"
        every = "5x"
        job = "J"
        catchup = "most"

        [[schedule]]
        name = "a"
        cron = "61 * * * *"
        job = "J"
    """)
    assert [(p.line, p.where, p.message) for p in problems_of(path)] == [
        (6, 'schedule "b"', f"every '5x': {NOT_A_DURATION}"),
        (8, 'schedule "b"', "catchup 'most': must be one of 'all', 'latest', 'none'"),
        (12, SCHEDULE_A, "cron '61 * * * *': minute 61 is out of range 0-59"),
    ]


def test_a_duplicate_schedule_is_still_checked_for_everything_else(tmp_path):
    path = write(tmp_path, """
        [[schedule]]
        name = "a"
        every = "1m"
        job = "J"

        [[schedule]]
        name = "a"
        cronn = "* * * * *"
        every = "1m"
        jitter = "2m"
        job = "J"
    """)
    assert [(p.line, p.message) for p in problems_of(path)] == [
        (7, "name 'a': is used by an earlier schedule (line 1)"),
        (8, "unknown field 'cronn' (did you mean 'cron'?)"),
        (10, "jitter '2m': must be shorter than the schedule's shortest interval (1m), "
            "or firings of one tick would overtake the next"),
    ]


def test_a_broken_tenant_set_is_not_blamed_again_on_the_schedules_using_it(tmp_path):
    path = write(tmp_path, """
        [tenants]
        enterprise = ["acme", "ac me"]

        [[schedule]]
        name = "a"
        every = "5m"
        tenants = "enterprise"
        job = "J"
    """)
    assert [(p.line, p.where) for p in problems_of(path)] == [(2, 'tenant set "enterprise"')]


# -- tenant files ----------------------------------------------------------------------------------

TENANT_FILE_TABLE = """
    [tenants]
    big = { file = "tenants/big.txt" }

    [[schedule]]
    name = "sync"
    every = "15m"
    tenants = "big"
    job = "Sync"
"""


def test_missing_tenant_file_is_named(tmp_path):
    path = write(tmp_path, TENANT_FILE_TABLE)
    [problem] = problems_of(path)
    assert (problem.line, problem.where) == (2, 'tenant set "big"')
    assert problem.message.startswith("file 'tenants/big.txt': No such file or directory")
    assert str(tmp_path / "tenants" / "big.txt") in problem.message


def test_bad_ids_in_a_tenant_file_are_located_by_their_line_in_that_file(tmp_path):
    write(tmp_path, "# big customers\nacme\n\nbad id\nglobex\nacme\n", name="tenants/big.txt")
    path = write(tmp_path, TENANT_FILE_TABLE)
    assert [p.message for p in problems_of(path)] == [
        "file 'tenants/big.txt': line 4: tenant id 'bad id': must not contain whitespace",
        "file 'tenants/big.txt': line 6: tenant id 'acme': is listed twice",
    ]


def test_tenant_file_skips_comments_and_blank_lines(tmp_path):
    write(tmp_path, "# ids\n\n  acme  \nglobex\n", name="tenants/big.txt")
    s = load_table(write(tmp_path, TENANT_FILE_TABLE)).schedule("sync")
    assert [t.id for t in s.tenants.tenants] == ["acme", "globex"]


# -- unreadable tables -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "line", "position"),
    [
        pytest.param('[[schedule]]\nname = "a"\ncron = "0 3 * * *\njob = "J"\n', 3, "(at line 3, column 18)",
                     id="unterminated-string"),
        pytest.param('[[schedule]]\nname = "a"\ncron = \n', 3, "(at line 3, column 8)", id="missing-value"),
        pytest.param('[defaults]\nqueue = "a"\nqueue = "b"\n', 3, "(at line 3, column", id="key-defined-twice"),
    ],
)
def test_toml_syntax_error_has_line_and_column(tmp_path, text, line, position):
    path = tmp_path / "schedules.toml"
    path.write_text(text)
    [problem] = problems_of(path)
    assert (problem.file, problem.line, problem.where) == (str(path), line, "")
    assert problem.message.startswith("invalid TOML: ")
    assert position in problem.message
    assert str(problem).startswith(f"{path}:{line}: invalid TOML: ")


def test_missing_table_file(tmp_path):
    path = tmp_path / "nowhere.toml"
    [problem] = problems_of(path)
    assert str(problem) == f"{path}: cannot read the table: No such file or directory"


def test_table_error_is_a_scheduler_error():
    assert issubclass(TableError, SchedulerError)


# -- found while writing these tests ------------------------------------------------------------------


def test_jitter_check_uses_the_tenant_zones_of_a_tenant_zoned_schedule(tmp_path):
    path = write(tmp_path, """
        [tenants]
        regional = [{ id = "hooli", timezone = "America/New_York" }]

        [[schedule]]
        name = "a"
        cron = "45 1,2 * * *"
        timezone = "tenant"
        tenants = "regional"
        jitter = "30m"
        job = "J"
    """)
    [problem] = problems_of(path)
    assert problem.message.startswith("jitter '30m': must be shorter than the schedule's shortest interval (15m)")


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("", id="empty"),
        pytest.param("a b", id="space"),
        pytest.param("a\u3000b", id="ideographic-space"),
        pytest.param("a\tb", id="tab"),
        pytest.param("a\x7fb", id="delete"),
        pytest.param("a/b", id="slash"),
        pytest.param("{a}", id="braces"),
        pytest.param("x" * 257, id="257-characters"),
    ],
)
def test_one_unsafe_name_spoils_a_batch_check_as_it_is_refused_alone(name):
    fine = ["acme", "globex-2", "caf\u00e9", "x" * 256]
    assert unsafe_name(name) is not None
    assert all_safe(fine)
    assert not all_safe([*fine, name])
    assert not all_safe([name, *fine])
