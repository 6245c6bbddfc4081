"""The table's grammars on their own, without a schedules.toml: one entry or value in, one result out."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from scheduler.clock.cadence import Cron, Every
from scheduler.table import (
    CatchUp,
    InlineTenants,
    QueueSpec,
    QueueType,
    RedisSetTenants,
    Schedule,
    Tenant,
    all_safe,
    parse_zone,
    unsafe_name,
)
from scheduler.table._fields import build_schedule, parse_fields
from scheduler.table._queues import keys_starting, queue_spec, stream_problem
from scheduler.table._tenants import _tenant_list, parse_tenants_field, tenant_source
from scheduler.table._words import Counter

Problems = list[tuple[str | None, str]]


def recorder() -> tuple[Counter, Problems]:
    """A counting report that keeps each (key, message) it is given."""
    problems: Problems = []
    return Counter(lambda key, message: problems.append((key, message))), problems


# -- [queues.NAME]: _queues ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "spec"),
    [
        pytest.param({}, QueueSpec("q"), id="no-type-is-a-redis-stream"),
        pytest.param({"stream": "jobs:{app}"}, QueueSpec("q", name="jobs:{app}"), id="redis-stream-with-its-stream"),
        pytest.param(
            {"type": "sidekiq", "queue": "low", "active_job": True, "retry": 3},
            QueueSpec("q", QueueType.SIDEKIQ, name="low", active_job=True, retry=3),
            id="sidekiq-retry-3",
        ),
        pytest.param(
            {"type": "sidekiq", "retry": False},
            QueueSpec("q", QueueType.SIDEKIQ, retry=False),
            id="sidekiq-retry-false",
        ),
        pytest.param(
            {"type": "celery", "redis_url_env": "CELERY_REDIS_URL"},
            QueueSpec("q", QueueType.CELERY, redis_url_env="CELERY_REDIS_URL"),
            id="celery-redis-url-env",
        ),
        pytest.param(
            {"type": "sqs", "url": "https://sqs.ap-northeast-1.amazonaws.com/123456789012/exports.fifo"},
            QueueSpec(
                "q", QueueType.SQS,
                url="https://sqs.ap-northeast-1.amazonaws.com/123456789012/exports.fifo", region="ap-northeast-1",
            ),
            id="sqs-region-from-the-host",
        ),
        pytest.param(
            {"type": "sqs", "url": "https://eu-west-1.queue.amazonaws.com/123456789012/legacy"},
            QueueSpec("q", QueueType.SQS, url="https://eu-west-1.queue.amazonaws.com/123456789012/legacy",
                      region="eu-west-1"),
            id="sqs-region-from-a-legacy-host",
        ),
        pytest.param(
            {"type": "sqs", "url": "https://sqs.cn-north-1.amazonaws.com.cn/123456789012/china"},
            QueueSpec("q", QueueType.SQS, url="https://sqs.cn-north-1.amazonaws.com.cn/123456789012/china",
                      region="cn-north-1"),
            id="sqs-region-from-a-china-host",
        ),
        pytest.param(
            {"type": "sqs", "url": "https://sqs.eu-west-1.amazonaws.com/123456789012/q", "region": "us-east-1"},
            QueueSpec("q", QueueType.SQS, url="https://sqs.eu-west-1.amazonaws.com/123456789012/q", region="us-east-1"),
            id="sqs-region-given-wins-over-the-host",
        ),
        pytest.param(
            {"type": "sqs", "url": "http://127.0.0.1:5000/123456789012/local", "region": "us-east-1",
             "endpoint": "https://vpce-0123.sqs.us-east-1.vpce.amazonaws.com"},
            QueueSpec("q", QueueType.SQS, url="http://127.0.0.1:5000/123456789012/local", region="us-east-1",
                      endpoint="https://vpce-0123.sqs.us-east-1.vpce.amazonaws.com"),
            id="sqs-local-url-region-and-endpoint",
        ),
    ],
)
def test_queue_spec_accepts(options: dict[str, Any], spec: QueueSpec):
    report, problems = recorder()
    assert queue_spec("q", options, report) == spec
    assert problems == []


SIDEKIQ_TAKES = "it takes: queue, redis_url, redis_url_env, active_job, retry"


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        pytest.param(
            {"type": "sidekiq", "url": "https://x/1/q"},
            [("url", f"unknown option 'url' for a sidekiq queue (an option of sqs); {SIDEKIQ_TAKES}")],
            id="unknown-option-names-the-type-that-has-it",
        ),
        pytest.param(
            {"queue": "low"},
            [("queue", "unknown option 'queue' for a redis-stream queue (an option of sidekiq, celery); "
                       "it takes: stream")],
            id="unknown-option-names-every-type-that-has-it",
        ),
        pytest.param(
            {"type": "sidekiq", "activ_job": True},
            [("activ_job",
              f"unknown option 'activ_job' for a sidekiq queue (did you mean 'active_job'?); {SIDEKIQ_TAKES}")],
            id="unknown-option-of-no-type-suggests-a-close-one",
        ),
        pytest.param(
            {"type": "kafka"},
            [("type", "type 'kafka': must be one of 'redis-stream', 'sidekiq', 'celery', 'sqs'")],
            id="unknown-type",
        ),
        pytest.param(
            {"type": 3},
            [("type", "type 'an integer': must be one of 'redis-stream', 'sidekiq', 'celery', 'sqs'")],
            id="type-not-a-string",
        ),
        pytest.param(
            {"type": "sidekiq", "retry": -1},
            [("retry", "retry -1: must be true, false, or a number of retries (0 or more)")],
            id="negative-retry",
        ),
        pytest.param(
            {"type": "sidekiq", "active_job": "yes"},
            [("active_job", "active_job 'yes': must be true or false, not a string")],
            id="active-job-not-a-boolean",
        ),
        pytest.param(
            {"type": "celery", "redis_url": "redis://:hunter2@x:6379/0"},
            [("redis_url", "redis_url: holds a password, and the table is not the place for secrets: put the URL in "
                           "an environment variable and name that with redis_url_env")],
            id="password-in-redis-url-not-echoed",
        ),
        pytest.param(
            {"type": "celery", "redis_url": "redis://x", "redis_url_env": "X"},
            [("redis_url_env", "give redis_url or redis_url_env, not both")],
            id="redis-url-and-its-env",
        ),
        pytest.param(
            {"type": "sqs"},
            [("url", "url is required: the queue's URL, as SQS gives it")],
            id="sqs-without-url",
        ),
        pytest.param(
            {"type": "sqs", "url": "http://localhost:9324/123456789012/q"},
            [("region", "region is required: it cannot be read from this url's host")],
            id="sqs-region-unreadable-from-the-host",
        ),
        pytest.param(
            {"type": "sqs", "url": "https://sqs.eu-west-1.amazonaws.com/q"},
            [("url", "url 'https://sqs.eu-west-1.amazonaws.com/q': must be a queue URL: "
                     "https://sqs.REGION.amazonaws.com/ACCOUNT/NAME")],
            id="sqs-url-without-account",
        ),
        pytest.param(
            {"type": "redis-stream", "stream": "a b", "type_": 1},
            [("stream", "stream 'a b': must be a non-empty name without whitespace"),
             ("type_", "unknown option 'type_' for a redis-stream queue; it takes: stream")],
            id="every-problem-of-one-entry",
        ),
    ],
)
def test_queue_spec_refuses(options: dict[str, Any], expected: Problems):
    report, problems = recorder()
    assert queue_spec("q", options, report) is None
    assert problems == expected
    assert report.count == len(expected)


AMONG_OWN_KEYS = ("lies under the scheduler's key prefix '{scheduler}' (SCHEDULER_KEY_PREFIX), among its own keys; "
                  "the only streams allowed there are '{scheduler}:queue:<queue name>'")


@pytest.mark.parametrize(
    ("stream", "prefix", "problem"),
    [
        pytest.param("{scheduler}:history:beat", "{scheduler}", AMONG_OWN_KEYS, id="a-decision-ledger"),
        pytest.param("{scheduler}:outbox:exports", "{scheduler}", AMONG_OWN_KEYS, id="an-outbox"),
        pytest.param("{scheduler}:requests", "{scheduler}", AMONG_OWN_KEYS, id="the-operators-requests"),
        pytest.param("{scheduler}:lease", "{scheduler}", AMONG_OWN_KEYS, id="the-lease"),
        pytest.param("{scheduler}:queues", "{scheduler}", AMONG_OWN_KEYS, id="the-set-of-queues-is-no-queue-stream"),
        pytest.param("{scheduler}:jobs", "{scheduler}", AMONG_OWN_KEYS, id="a-name-of-its-own-under-the-prefix"),
        pytest.param("{scheduler}:queue:", "{scheduler}", AMONG_OWN_KEYS, id="no-queue-name"),
        pytest.param("{scheduler}:queue:a/b", "{scheduler}", AMONG_OWN_KEYS, id="no-queue-could-have-that-name"),
        pytest.param("{scheduler}:queue:reports", "{scheduler}", None, id="a-queue-stream-the-scheduler-names"),
        pytest.param("{scheduler}:queue:eu:reports", "{scheduler}", None, id="a-queue-name-with-a-colon"),
        pytest.param("jobs:{scheduler}", "{scheduler}", None, id="the-hash-tag-outside-the-prefix"),
        pytest.param("{scheduler}", "{scheduler}", None, id="the-prefix-itself-is-no-key-of-the-scheduler"),
        pytest.param("{scheduler}-jobs", "{scheduler}", None, id="a-longer-word-is-not-under-the-prefix"),
        pytest.param("{scheduler}:history:beat", "app:{sched}", None, id="another-prefix-leaves-it-alone"),
        pytest.param(
            "app:{sched}:watermark:beat", "app:{sched}",
            "lies under the scheduler's key prefix 'app:{sched}' (SCHEDULER_KEY_PREFIX), among its own keys; "
            "the only streams allowed there are 'app:{sched}:queue:<queue name>'",
            id="a-prefix-of-the-settings-own",
        ),
        pytest.param("app:{sched}:queue:default", "app:{sched}", None, id="a-queue-stream-under-that-prefix"),
    ],
)
def test_a_stream_among_the_schedulers_own_keys_is_refused(stream: str, prefix: str, problem: str | None):
    assert stream_problem(stream, prefix) == problem
    report, problems = recorder()
    spec = queue_spec("q", {"stream": stream}, report, prefix)
    assert problems == ([("stream", f"stream {stream!r}: {problem}")] if problem else [])
    assert spec == (None if problem else QueueSpec("q", name=stream))
    assert queue_spec("q", {"stream": stream}, recorder()[0]) == QueueSpec("q", name=stream), "without a prefix"


def test_keys_starting_looks_at_every_depth_of_keys_only():
    args = {"_aj_top": 1, "nested": {"_aj_deep": {"_aj_deeper": 2}}, "items": [{"_aj_listed": 3}], "value": "_aj_no"}
    assert keys_starting(args, "_aj_") == {"_aj_top", "_aj_deep", "_aj_deeper", "_aj_listed"}
    assert keys_starting(["_aj_no", 1, None], "_aj_") == set()


# -- tenant sets, tenant lists and safe names: _tenants --------------------------------------------

TOKYO = ZoneInfo("Asia/Tokyo")
BREAKS_IDS = "(they would break firing ids and Redis keys)"


@pytest.mark.parametrize(
    ("values", "tenants", "messages"),
    [
        pytest.param(["acme", "globex"], (Tenant("acme"), Tenant("globex")), [], id="plain-ids"),
        pytest.param(
            [{"id": "acme", "timezone": "Asia/Tokyo"}, "globex"],
            (Tenant("acme", TOKYO), Tenant("globex")),
            [],
            id="one-with-a-zone",
        ),
        pytest.param(
            ["acme", "globex", "acme", {"id": "globex", "timezone": "Asia/Tokyo"}],
            (Tenant("acme"), Tenant("globex")),
            ["tenant id 'acme': is listed twice", "tenant id 'globex': is listed twice"],
            id="duplicates-keep-the-first",
        ),
        pytest.param(
            ["a b", 3, "a/b", "", "ok"],
            (Tenant("ok"),),
            [
                "tenant id 'a b': must not contain whitespace",
                "tenant id must be a string, not an integer",
                f"tenant id 'a/b': must not contain '/' {BREAKS_IDS}",
                "tenant id '': must not be empty",
            ],
            id="bad-ids-are-left-out",
        ),
        pytest.param(
            [{"id": "acme", "timezone": "Asia/Tokio"}, {"id": "globex", "timezone": 9}],
            (),
            [
                "tenant 'acme': timezone 'Asia/Tokio': is not an IANA time zone name (did you mean 'Asia/Tokyo'?)",
                "tenant 'globex': timezone 9: must be a string, not an integer",
            ],
            id="bad-zones",
        ),
        pytest.param(
            [{"id": "acme", "zone": "Asia/Tokyo"}, {"timezone": "Asia/Tokyo"}],
            (),
            ['a tenant with a zone is written { id = "acme", timezone = "Asia/Tokyo" }'] * 2,
            id="a-zone-table-needs-id-and-timezone-only",
        ),
    ],
)
def test_tenant_list(values: list[Any], tenants: tuple[Tenant, ...], messages: list[str]):
    problems: list[str] = []
    assert _tenant_list(values, problems.append) == tenants
    assert problems == messages


def test_tenant_list_names_the_line_of_each_problem_in_a_file():
    problems: list[str] = []
    assert _tenant_list(["acme", "a b", "acme"], problems.append, lines=[2, 5, 9]) == (Tenant("acme"),)
    assert problems == [
        "line 5: tenant id 'a b': must not contain whitespace",
        "line 9: tenant id 'acme': is listed twice",
    ]


def no_file(data: bytes) -> None:
    raise AssertionError(f"no file should be read, got {data!r}")


@pytest.mark.parametrize(
    ("value", "source", "expected"),
    [
        pytest.param(["acme"], InlineTenants((Tenant("acme"),), name="s"), [], id="inline"),
        pytest.param({"redis_set": "tenants:active"}, RedisSetTenants(key="tenants:active", name="s"), [],
                     id="redis-set"),
        pytest.param({"redis_set": " "}, None, [(None, "redis_set must name a Redis key")], id="redis-set-blank"),
        pytest.param({"file": ""}, None, [(None, "file must be a path next to the table")], id="file-blank"),
        pytest.param({"redis_set": "k", "file": "f"}, None,
                     [(None, 'must be a list of ids, { redis_set = "key" } or { file = "path" }')], id="both"),
        pytest.param("acme", None, [(None, 'must be a list of ids, { redis_set = "key" } or { file = "path" }')],
                     id="a-bare-string"),
    ],
)
def test_tenant_source(
    tmp_path: Path, value: Any, source: InlineTenants | RedisSetTenants | None, expected: Problems
):
    problems: Problems = []
    reported = tenant_source("s", value, lambda key, message: problems.append((key, message)), tmp_path, no_file)
    assert reported == source
    assert problems == expected


def test_tenant_source_reads_a_file_next_to_the_table_into_the_fingerprint(tmp_path: Path):
    data = b"# customers\nacme\n\n  globex  \nacme\n"
    (tmp_path / "ids.txt").write_bytes(data)
    problems: Problems = []
    read: list[bytes] = []
    source = tenant_source("s", {"file": "ids.txt"}, lambda *problem: problems.append(problem), tmp_path, read.append)
    assert source == InlineTenants((Tenant("acme"), Tenant("globex")), name="s", file=tmp_path / "ids.txt")
    assert problems == [(None, "file 'ids.txt': line 5: tenant id 'acme': is listed twice")]
    assert read == [data]


def test_tenant_source_names_a_missing_file_and_where_it_was_looked_for(tmp_path: Path):
    problems: Problems = []
    source = tenant_source("s", {"file": "gone.txt"}, lambda *problem: problems.append(problem), tmp_path, no_file)
    assert source is None
    assert problems == [(None, f"file 'gone.txt': No such file or directory ({tmp_path / 'gone.txt'})")]


SETS = {"active": RedisSetTenants(key="tenants:active", name="active"), "big": InlineTenants((), name="big")}


@pytest.mark.parametrize(
    ("value", "source"),
    [
        pytest.param("active", SETS["active"], id="a-set-by-name"),
        pytest.param(["acme", {"id": "globex", "timezone": "Asia/Tokyo"}],
                     InlineTenants((Tenant("acme"), Tenant("globex", TOKYO))), id="an-inline-list"),
    ],
)
def test_tenants_field_accepts(value: Any, source: InlineTenants | RedisSetTenants):
    assert parse_tenants_field(value, SETS) == source


@pytest.mark.parametrize(
    ("value", "sets", "message"),
    [
        pytest.param("activ", SETS, "no tenant set of that name in [tenants] (known: active, big)", id="unknown-set"),
        pytest.param("active", {}, "no tenant set of that name in [tenants] (known: none)", id="no-sets-at-all"),
        pytest.param(["a", "a", "b c"], SETS,
                     "tenant id 'a': is listed twice; tenant id 'b c': must not contain whitespace",
                     id="every-problem-of-an-inline-list-in-one-message"),
        pytest.param({"redis_set": "k"}, SETS, "must name a tenant set or list tenant ids", id="a-set-written-inline"),
    ],
)
def test_tenants_field_refuses(value: Any, sets: dict[str, Any], message: str):
    with pytest.raises(ValueError) as raised:
        parse_tenants_field(value, sets)
    assert str(raised.value) == message


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        pytest.param("acme", None, id="plain"),
        pytest.param("globex-2.eu_west:1", None, id="punctuation"),
        pytest.param("caf\u00e9", None, id="accented"),
        pytest.param("\u682a\u5f0f\u4f1a\u793e", None, id="kanji"),
        pytest.param("x" * 256, None, id="256-characters"),
        pytest.param("", "must not be empty", id="empty"),
        pytest.param("x" * 257, "is 257 characters long; the limit is 256", id="257-characters"),
        pytest.param("a b", "must not contain whitespace", id="space"),
        pytest.param("a\tb", "must not contain whitespace", id="tab"),
        pytest.param("a\u3000b", "must not contain whitespace", id="ideographic-space"),
        pytest.param("a\u2028b", "must not contain whitespace", id="line-separator"),
        pytest.param("a\x00b", "must not contain control characters", id="nul"),
        pytest.param("a\x1bb", "must not contain control characters", id="escape"),
        pytest.param("a\x7fb", "must not contain control characters", id="delete"),
        pytest.param("a\x80b", "must not contain control characters", id="c1-control"),
        pytest.param("a\x9fb", "must not contain control characters", id="last-c1-control"),
        pytest.param("a\u200bb", "must not contain non-printing characters (U+200B ZERO WIDTH SPACE)",
                     id="zero-width-space"),
        pytest.param("a\u202eb", "must not contain non-printing characters (U+202E RIGHT-TO-LEFT OVERRIDE)",
                     id="bidi-override"),
        pytest.param("\ufeffacme", "must not contain non-printing characters (U+FEFF ZERO WIDTH NO-BREAK SPACE)",
                     id="byte-order-mark"),
        pytest.param("a\xadb", "must not contain non-printing characters (U+00AD SOFT HYPHEN)", id="soft-hyphen"),
        pytest.param("a\ue000b", "must not contain non-printing characters (U+E000)", id="private-use"),
        pytest.param("a\u200b\x80", "must not contain non-printing characters (U+200B ZERO WIDTH SPACE)",
                     id="the-first-one-is-named"),
        pytest.param("a/b", f"must not contain '/' {BREAKS_IDS}", id="slash"),
        pytest.param("{a}", f"must not contain '{{' or '}}' {BREAKS_IDS}", id="braces"),
        pytest.param("{a/b}", f"must not contain '/' or '{{' or '}}' {BREAKS_IDS}", id="every-separator"),
        pytest.param("a b/c", "must not contain whitespace", id="whitespace-named-first"),
    ],
)
def test_unsafe_name_and_all_safe_agree(name: str, reason: str | None):
    assert unsafe_name(name) == reason
    assert all_safe([name]) is (reason is None)
    assert all_safe(["acme", name, "globex"]) is (reason is None)


def test_all_safe_of_no_names():
    assert all_safe([])


# -- a schedule's fields and one Schedule from its entry: _fields ----------------------------------

UTC_ZONE = ZoneInfo("UTC")
NOT_A_DURATION = 'is not a duration; write it like "90s", "5m", "1h30m" or "2d"'


@pytest.mark.parametrize(
    ("raw", "parsed"),
    [
        pytest.param({"cron": " 0  3 * *\t* "}, {"cron": Cron("0 3 * * *")}, id="cron-normalised"),
        pytest.param({"cron": "@daily"}, {"cron": Cron("@daily")}, id="cron-macro"),
        pytest.param({"every": "90s"}, {"every": Every(timedelta(seconds=90))}, id="every-seconds"),
        pytest.param({"every": "1h30m"}, {"every": Every(timedelta(minutes=90))}, id="every-hours-and-minutes"),
        pytest.param({"timezone": "tenant"}, {"timezone": "tenant"}, id="timezone-tenant"),
        pytest.param({"timezone": "Asia/Tokyo"}, {"timezone": TOKYO}, id="timezone-iana"),
        pytest.param({"timezone": "UTC"}, {"timezone": UTC_ZONE}, id="timezone-utc"),
        pytest.param({"tenants": "big"}, {"tenants": SETS["big"]}, id="tenants-by-set-name"),
        pytest.param(
            {"job": "Nightly", "queue": "reports", "args": {"kind": "daily", "ids": [1, 2]}},
            {"job": "Nightly", "queue": "reports", "args": {"kind": "daily", "ids": [1, 2]}},
            id="job-queue-args",
        ),
        pytest.param(
            {"jitter": "10m", "catchup": "all", "catchup_window": "2d", "misfire_grace": "500ms"},
            {"jitter": timedelta(minutes=10), "catchup": CatchUp.ALL, "catchup_window": timedelta(days=2),
             "misfire_grace": timedelta(milliseconds=500)},
            id="durations-and-catchup",
        ),
    ],
)
def test_parse_fields_accepts(raw: dict[str, Any], parsed: dict[str, Any]):
    report, problems = recorder()
    assert parse_fields(raw, report, SETS) == parsed
    assert problems == []


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param({"cron": "0 3 * *"}, [("cron", "cron '0 3 * *': has 4 fields; cron takes 5 "
                                                   "(minute hour day-of-month month day-of-week) or a macro")],
                     id="cron-four-fields"),
        pytest.param({"cron": "61 * * * *"}, [("cron", "cron '61 * * * *': minute 61 is out of range 0-59")],
                     id="cron-out-of-range"),
        pytest.param({"cron": 5}, [("cron", "cron 5: must be a string, not an integer")], id="cron-not-a-string"),
        pytest.param({"every": "1500ms"},
                     [("every", "every '1500ms': must be a whole number of seconds (ticks are named to the second)")],
                     id="every-not-whole-seconds"),
        pytest.param({"every": "1.5s"},
                     [("every", "every '1.5s': must be a whole number of seconds (ticks are named to the second)")],
                     id="every-fractional-seconds"),
        pytest.param({"every": "0s"}, [("every", "every '0s': must be longer than zero")], id="every-zero"),
        pytest.param({"every": "soon"}, [("every", f"every 'soon': {NOT_A_DURATION}")], id="every-not-a-duration"),
        pytest.param({"timezone": "Asia/Tokio"},
                     [("timezone", "timezone 'Asia/Tokio': is not an IANA time zone name "
                                   "(did you mean 'Asia/Tokyo'?)")],
                     id="timezone-misspelt"),
        pytest.param({"timezone": 9}, [("timezone", "timezone 9: must be a string, not an integer")],
                     id="timezone-not-a-string"),
        pytest.param({"tenants": "activ"},
                     [("tenants", "tenants 'activ': no tenant set of that name in [tenants] (known: active, big)")],
                     id="tenants-unknown-set"),
        pytest.param({"job": "  "}, [("job", "job '  ': must name what the worker runs")], id="job-blank"),
        pytest.param({"queue": "a/b"}, [("queue", f"queue 'a/b': must not contain '/' {BREAKS_IDS}")],
                     id="queue-unsafe"),
        pytest.param({"args": "x"}, [("args", "args 'x': must be a table, not a string")], id="args-not-a-table"),
        pytest.param({"args": {"on": date(2026, 1, 1)}},
                     [("args", "args: dates and times cannot be passed to workers; write them as strings")],
                     id="args-with-a-date"),
        pytest.param({"catchup": "some"}, [("catchup", "catchup 'some': must be one of 'all', 'latest', 'none'")],
                     id="catchup-unknown"),
        pytest.param({"jitter": 5}, [("jitter", "jitter 5: must be a string, not an integer")],
                     id="jitter-not-a-string"),
        pytest.param({"cronn": "0 3 * * *", "every": "1m"}, [("cronn", "unknown field 'cronn' (did you mean 'cron'?)")],
                     id="unknown-field-left-out-the-rest-kept"),
    ],
)
def test_parse_fields_refuses(raw: dict[str, Any], expected: Problems):
    report, problems = recorder()
    parsed = parse_fields(raw, report, SETS)
    assert problems == expected
    assert set(parsed) == set(raw) - {key for key, _ in expected}


def test_parse_zone_suggests_the_closest_real_zone():
    assert parse_zone("Europe/Paris") == ZoneInfo("Europe/Paris")
    with pytest.raises(ValueError) as raised:
        parse_zone("Tokyo")
    assert str(raised.value) == "is not an IANA time zone name (did you mean 'Asia/Tokyo'?)"


def schedule_of(entry: dict[str, Any], defaults: dict[str, Any] | None = None) -> tuple[Schedule | None, Problems]:
    report, problems = recorder()
    return build_schedule(entry, defaults or {}, SETS, report), problems


def test_build_schedule_fills_in_what_the_entry_leaves_out():
    schedule, problems = schedule_of({"name": "a", "cron": "0 3 * * *", "job": "J"})
    assert problems == []
    assert schedule == Schedule(
        name="a", cadence=Cron("0 3 * * *"), zone=UTC_ZONE, default_zone=UTC_ZONE, tenants=None, job="J",
        queue="default", args={}, jitter=timedelta(0), catchup=CatchUp.LATEST, catchup_window=timedelta(hours=24),
        misfire_grace=timedelta(seconds=60),
    )


def test_build_schedule_timezone_tenant_takes_each_tenants_zone_else_the_default():
    defaults = {"timezone": ZoneInfo("Europe/Paris"), "queue": "reports"}
    entry = {"name": "a", "cron": "0 3 * * *", "timezone": "tenant", "job": "J",
             "tenants": [{"id": "acme", "timezone": "Asia/Tokyo"}, "globex"]}
    schedule, problems = schedule_of(entry, defaults)
    assert problems == []
    assert schedule is not None and schedule.per_tenant_zone and schedule.zone is None
    assert schedule.default_zone == ZoneInfo("Europe/Paris") and schedule.queue == "reports"
    assert [schedule.zone_of(tenant) for tenant in schedule.tenants.tenants] == [TOKYO, ZoneInfo("Europe/Paris")]


def test_build_schedule_own_cadence_replaces_the_defaults_other_kind():
    every = {"every": Every(timedelta(minutes=5))}
    inherited, _ = schedule_of({"name": "a", "job": "J"}, every)
    own, _ = schedule_of({"name": "a", "cron": "0 3 * * *", "job": "J"}, every)
    assert inherited is not None and inherited.cadence == Every(timedelta(minutes=5))
    assert own is not None and own.cadence == Cron("0 3 * * *")


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        pytest.param({}, [("name", "name is required"), ("cron", "cron or every is required"),
                          ("job", "job is required: it names what the worker runs")], id="empty-entry"),
        pytest.param({"name": 5, "every": "1m", "job": "J"}, [("name", "name must be a string")],
                     id="name-not-a-string"),
        pytest.param({"name": "a b", "every": "1m", "job": "J"}, [("name", "name 'a b': must not contain whitespace")],
                     id="name-unsafe"),
        pytest.param({"name": "a", "cron": "0 * * * *", "every": "1m", "job": "J"},
                     [("every", "give cron or every, not both")], id="cron-and-every"),
        pytest.param({"name": "a", "cron": "0 * * * *", "timezone": "tenant", "job": "J"},
                     [("timezone", "timezone 'tenant' needs tenants to take their zones from")],
                     id="timezone-tenant-without-tenants"),
        pytest.param({"name": "a", "every": "1m", "jitter": "1m", "job": "J"},
                     [("jitter", "jitter '1m': must be shorter than the schedule's shortest interval (1m), "
                                 "or firings of one tick would overtake the next")],
                     id="jitter-as-long-as-the-interval"),
        pytest.param({"name": "a", "every": "1m", "job": "J", "every_": "1m"},
                     [("every_", "unknown field 'every_' (did you mean 'every'?)")], id="unknown-field"),
    ],
)
def test_build_schedule_refuses(entry: dict[str, Any], expected: Problems):
    schedule, problems = schedule_of(entry)
    assert schedule is None
    assert problems == expected
