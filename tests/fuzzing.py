"""What the fuzz tests share: their fixed budget (FUZZ_EXAMPLES for a longer run, README "Tests"),
generated schedules.toml documents written as TOML, and byte-level mutations of a valid table."""

from __future__ import annotations

import math
import os
import string as characters
from datetime import date, datetime, time
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st


def budget(examples: int) -> settings:
    """``examples`` per test, the same ones every run; FUZZ_EXAMPLES=N runs N fresh ones instead."""
    wanted = os.environ.get("FUZZ_EXAMPLES")
    return settings(
        max_examples=int(wanted) if wanted else examples,
        deadline=None,
        derandomize=not wanted,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                               HealthCheck.data_too_large],
    )


# -- TOML out ----------------------------------------------------------------------------------------


def toml_string(text: str) -> str:
    escaped = []
    for char in text:
        if char in '"\\':
            escaped.append("\\" + char)
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            escaped.append(f"\\u{ord(char):04X}")
        else:
            escaped.append(char)
    return '"' + "".join(escaped) + '"'


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return toml_string(value)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    return "{" + ", ".join(f"{toml_string(k)} = {toml_value(v)}" for k, v in value.items()) + "}"


def _is_table_array(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(item, dict) for item in value)


def toml_document(document: dict[str, Any]) -> str:
    """``document`` as TOML: tables as [headers], arrays of tables as [[headers]], the rest inline."""
    lines: list[str] = []

    def table(path: list[str], body: dict[str, Any]) -> None:
        nested = {k: v for k, v in body.items() if isinstance(v, dict) or _is_table_array(v)}
        for key, value in body.items():
            if key not in nested:
                lines.append(f"{toml_string(key)} = {toml_value(value)}")
        for key, value in nested.items():
            header = ".".join(toml_string(part) for part in [*path, key])
            if isinstance(value, dict):
                lines.extend(["", f"[{header}]"])
                table([*path, key], value)
            else:
                for item in value:
                    lines.extend(["", f"[[{header}]]"])
                    table([*path, key], item)

    table([], document)
    return "\n".join(lines) + "\n"


# -- generated documents -------------------------------------------------------------------------------

ODD_FLOATS = st.sampled_from([math.nan, math.inf, -math.inf, -0.0, 5e-324, 1.7976931348623157e308, 0.1, -1e-300])
SCALARS = st.one_of(
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    ODD_FLOATS,
    st.text(max_size=12),
    st.datetimes(), st.dates(), st.times(),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)
ODD_TEXT = st.text(st.characters(codec="utf-8"), max_size=10)
PLAIN_NAMES = st.sampled_from(["acme", "globex", "initech", "beat", "t-1", "a.b_c"])
NAMES = st.one_of(
    PLAIN_NAMES, PLAIN_NAMES, PLAIN_NAMES,
    st.sampled_from(["acme", "globex", "a", "x" * 256, "x" * 257, "", " ", "a b", "a/b", "{a}", "}", "a\u200b",
                     "\u202e", "\ufeffa", "a\u00ad", "\x00", "\x7f", "\x85", "é", "𝔘", "-", ".", "a:b", "*", "?"]),
    st.text(characters.ascii_letters + characters.digits + "-_.", min_size=1, max_size=8),
    ODD_TEXT,
)
CRON_FIELDS = st.sampled_from(["*", "0", "59", "60", "23", "24", "*/5", "*/0", "*/61", "1-5", "5-1", "22-2", "MON",
                               "mon-fri", "SUN-MON", "jan", "JAN-DEC", "L", "?", "1#2", "5L", "W", "-1", "1,2",
                               ",", "1-", "0x1", "１", "99999999999999999999", "7", "0-7", "*/1", "1-5/2", "H"])
CRONS = st.one_of(
    st.lists(CRON_FIELDS, min_size=0, max_size=7).map(" ".join),
    st.sampled_from(["@hourly", "@daily", "@midnight", "@weekly", "@monthly", "@yearly", "@annually", "@reboot",
                     "@every 5m", "@HOURLY", "@", "0 3 * * *", "*/5 * * * *", "0 9 * * 1-5", " 0 3 * * * ",
                     "0\t3 * * *", "0 0 31 2 *", "0 0 30 2 *", "0 0 29 2 *", "0 2 * 3 0", "30 2 * * *"]),
    ODD_TEXT,
)
DURATIONS = st.one_of(
    st.sampled_from(["30s", "0s", "-1s", "1.5s", "0.5s", "250ms", "1h30m", "2d", "3650d", "3651d", "5m", "1m",
                     "59s", "99999999999999999999d", "1e9s", "nan", "inf", "", "5", "2.5", "0.0001ms", "1m1h",
                     "1h1h", "1 h", "1H", "١s", "1s ", "10m", "24h", "6h", "1000000000000000000000000ms"]),
    st.builds(lambda n, unit: f"{n}{unit}", st.integers(-5, 10**6), st.sampled_from(["d", "h", "m", "s", "ms", ""])),
    ODD_TEXT,
)
ZONES = st.one_of(
    st.sampled_from(["UTC", "tenant", "Asia/Tokyo", "Europe/Berlin", "America/New_York", "Europe/Berln", "",
                     "../etc/passwd", "/etc/localtime", "Etc/GMT+12", "EST5EDT", "posixrules", "right/UTC",
                     "zoneinfo/UTC", "localtime", "Factory", "Australia/Lord_Howe", "Asia/Kathmandu", "utc",
                     "America/Argentina/Buenos_Aires", "Pacific/Chatham", "Antarctica/Troll", "\x00", "."]),
    ODD_TEXT,
)
CATCHUPS = st.one_of(st.sampled_from(["all", "latest", "none", "ALL", "some", ""]), ODD_TEXT)
ARGS = st.dictionaries(st.text(max_size=6) | st.sampled_from(["_aj_globalid", "kind"]), VALUES, max_size=4)
TENANT_FILES = st.sampled_from(["tenants/big.txt", "tenants", "missing.txt", "", " ", "../schedules.toml",
                                "tenants/../tenants/big.txt", "a\x00b", "tenants/big.txt\x00", "schedules.toml"])
TENANT_ENTRY = NAMES | st.fixed_dictionaries({"id": NAMES}, optional={"timezone": ZONES, "zone": ZONES}) | VALUES
TENANT_LISTS = st.lists(TENANT_ENTRY, max_size=4)
TENANT_SETS = st.one_of(
    TENANT_LISTS,
    st.fixed_dictionaries({"redis_set": NAMES | VALUES}),
    st.fixed_dictionaries({"file": TENANT_FILES | VALUES}),
    st.fixed_dictionaries({"redis_set": NAMES, "file": TENANT_FILES}),
    VALUES,
)


def field(plausible: st.SearchStrategy) -> st.SearchStrategy:
    """Mostly a value of the field's kind, sometimes anything at all."""
    return st.one_of(*[plausible] * 8, VALUES)


SCHEDULE_FIELDS = {
    "cron": field(CRONS),
    "every": field(DURATIONS),
    "timezone": field(ZONES),
    "tenants": field(NAMES | TENANT_LISTS),
    "job": field(NAMES),
    "args": field(ARGS),
    "queue": field(NAMES | st.sampled_from(["default", "reports", "rails", "billing", "exports"])),
    "jitter": field(DURATIONS),
    "catchup": field(CATCHUPS),
    "catchup_window": field(DURATIONS),
    "misfire_grace": field(DURATIONS),
    "cronn": VALUES,
}
GOOD_SCHEDULES = st.fixed_dictionaries(
    {"name": PLAIN_NAMES, "job": PLAIN_NAMES},
    optional={"timezone": st.sampled_from(["UTC", "Asia/Tokyo", "Australia/Lord_Howe"]),
              "tenants": st.lists(PLAIN_NAMES, unique=True, max_size=3), "args": ARGS,
              "catchup": st.sampled_from(["all", "latest", "none"]), "misfire_grace": st.sampled_from(["10s", "2m"]),
              "catchup_window": st.sampled_from(["6h", "1d"]), "queue": st.sampled_from(["default", "reports"])},
).flatmap(lambda entry: st.one_of(
    st.builds(lambda cron: {**entry, "cron": cron}, st.sampled_from(["0 3 * * *", "*/5 * * * *", "30 2 * * 0",
                                                                      "@hourly", "0 0 29 2 *"])),
    st.builds(lambda every: {**entry, "every": every}, st.sampled_from(["1s", "30s", "15m", "1d"])),
))
SCHEDULES = st.one_of(GOOD_SCHEDULES, GOOD_SCHEDULES,
                      st.fixed_dictionaries({}, optional={"name": field(NAMES), **SCHEDULE_FIELDS}))
QUEUE_OPTIONS = {
    "type": field(st.sampled_from(["redis-stream", "sidekiq", "celery", "sqs", "kafka", "SQS", ""])),
    "stream": field(NAMES | st.sampled_from(["{scheduler}:queue:default", "{scheduler}:history:beat", "mine"])),
    "queue": field(NAMES),
    "redis_url": field(st.sampled_from(["redis://localhost:6379/0", "rediss://u:p@h/0", "redis://u:p/a@h", "x",
                                        "unix:///tmp/r.sock", "redis://:pw@h:99999"]) | ODD_TEXT),
    "redis_url_env": field(st.sampled_from(["SCHEDULER_SIDEKIQ_URL", "SIDEKIQ_URL", "", "a b"]) | ODD_TEXT),
    "active_job": field(st.booleans()),
    "retry": field(st.booleans() | st.integers(-1, 30)),
    "url": field(st.sampled_from(["https://sqs.ap-northeast-1.amazonaws.com/123456789012/exports.fifo",
                                  "https://localhost:4566/000000000000/q", "http://x", "", "sqs://q"]) | ODD_TEXT),
    "region": field(st.sampled_from(["eu-west-1", "", "mars-1"]) | ODD_TEXT),
    "endpoint": field(st.sampled_from(["http://localhost:4566", "", "not a url"]) | ODD_TEXT),
}
QUEUES = st.fixed_dictionaries({}, optional=QUEUE_OPTIONS)
DEFAULTS = st.fixed_dictionaries({}, optional={"name": NAMES, **SCHEDULE_FIELDS})


def section(plausible: st.SearchStrategy) -> st.SearchStrategy:
    return st.one_of(*[plausible] * 8, VALUES)


GOOD_DOCUMENTS = st.fixed_dictionaries(
    {"schedule": st.lists(GOOD_SCHEDULES, max_size=3, unique_by=lambda entry: entry["name"])},
    optional={"queues": st.just({"reports": {"type": "sidekiq"}}),
              "defaults": st.fixed_dictionaries({}, optional={"timezone": ZONES, "jitter": DURATIONS,
                                                              "args": ARGS, "catchup": CATCHUPS})},
)
WILD_DOCUMENTS = st.fixed_dictionaries(
    {},
    optional={
        "defaults": section(DEFAULTS),
        "tenants": section(st.dictionaries(NAMES, TENANT_SETS, max_size=4)),
        "queues": section(st.dictionaries(NAMES | st.sampled_from(["default", "reports", "rails"]),
                                          QUEUES | VALUES, max_size=3)),
        "schedule": section(st.lists(SCHEDULES, max_size=4) | SCHEDULES),
    },
).flatmap(lambda document: st.one_of(*[st.just(document)] * 8, st.just({**document, "schedules": {}})))
DOCUMENTS = GOOD_DOCUMENTS | WILD_DOCUMENTS


# -- mutations -------------------------------------------------------------------------------------------

TOML_BYTES = [b"=", b"[", b"]", b"[[", b"]]", b'"', b"'", b'"""', b"{", b"}", b",", b"#", b"\n", b"\\", b"\\u",
              b"\x00", b"\xff", b"\xc3", b"\xe2\x80\x8b", b"\r", b"\t", b" ", b"nan", b"inf", b"1979-05-27", b"-",
              b"[[schedule]]\n", b"[defaults]\n", b"[tenants]\n", b'name = "x"\n', b'job = "J"\n', b'every = "1s"\n']


@st.composite
def mutated(draw: st.DrawFn, seed: bytes) -> bytes:
    """``seed`` with a few edits: bytes flipped, removed, inserted or repeated, lines swapped."""
    data = bytearray(seed)
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["flip", "delete", "insert", "repeat", "swap"]))
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        if kind == "flip" and data:
            data[at] = draw(st.integers(0, 255))
        elif kind == "delete":
            del data[at:at + draw(st.integers(1, 40))]
        elif kind == "insert":
            data[at:at] = draw(st.sampled_from(TOML_BYTES) | st.binary(min_size=1, max_size=8))
        elif kind == "repeat":
            data[at:at] = data[at:at + draw(st.integers(1, 80))]
        else:
            lines = bytes(data).split(b"\n")
            first, second = draw(st.integers(0, len(lines) - 1)), draw(st.integers(0, len(lines) - 1))
            lines[first], lines[second] = lines[second], lines[first]
            data = bytearray(b"\n".join(lines))
    return bytes(data)
