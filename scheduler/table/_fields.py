"""A schedule's fields: each one's parser, and one Schedule built from its entry and the [defaults]."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from scheduler.clock.cadence import Cadence, Cron, Every, check_cron, shortest_interval
from scheduler.durations import format_duration, parse_duration
from scheduler.table._model import UTC_ZONE, CatchUp, InlineTenants, Schedule, TenantSource
from scheduler.table._tenants import parse_tenants_field, unsafe_name
from scheduler.table._words import Counter, Report, parse_zone, string, suggest, toml_type

SCHEDULE_FIELDS = (
    "name", "cron", "every", "timezone", "tenants", "job", "args", "queue",
    "jitter", "catchup", "catchup_window", "misfire_grace",
)
TENANT_ZONE = "tenant"
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")  # a TOML key that needs no quotes
# A fixed reference instant for the jitter-versus-interval check, so validation never reads a clock.
_REFERENCE = datetime(2026, 1, 1, tzinfo=UTC)


def build_schedule(
    entry: dict[str, Any],
    defaults: dict[str, Any],
    tenant_sets: dict[str, TenantSource],
    report: Callable[..., None],
) -> Schedule | None:
    before = Counter(report)
    name = entry.get("name")
    if name is None:
        before("name", "name is required")
    elif not isinstance(name, str):
        before("name", "name must be a string")
    elif unsafe_name(name):
        before("name", f"name {name!r}: {unsafe_name(name)}")
    own = parse_fields({k: v for k, v in entry.items() if k != "name"}, before, tenant_sets)
    if "cron" in entry and "every" in entry:
        before("every", "give cron or every, not both")
    if "cron" not in entry and "every" not in entry and not ({"cron", "every"} & defaults.keys()):
        before("cron", "cron or every is required")
    fields = {**defaults, **own}
    if ("cron" in own or "every" in own) and ("cron" in defaults or "every" in defaults):
        fields.pop("every" if "cron" in own else "cron", None)
    if "job" not in fields and "job" not in entry:
        before("job", "job is required: it names what the worker runs")
    zone = fields.get("timezone", UTC_ZONE)
    tenants = fields.get("tenants")
    cadence: Cadence | None = fields.get("cron") or fields.get("every")
    if zone == TENANT_ZONE and tenants is None:
        before("timezone", "timezone 'tenant' needs tenants to take their zones from")
    jitter = fields.get("jitter", timedelta(0))
    if jitter and cadence is not None:
        interval = min(shortest_interval(cadence, z, _REFERENCE) for z in _zones_of(zone, tenants, defaults))
        if jitter >= interval:
            before(
                "jitter",
                f"jitter {format_duration(jitter)!r}: must be shorter than the schedule's shortest interval "
                f"({format_duration(interval)}), or firings of one tick would overtake the next",
            )
    if before.count or cadence is None:
        return None
    default_zone = defaults.get("timezone") if isinstance(defaults.get("timezone"), ZoneInfo) else UTC_ZONE
    return Schedule(
        name=name,
        cadence=cadence,
        zone=None if zone == TENANT_ZONE else zone,
        default_zone=default_zone,
        tenants=tenants,
        job=fields["job"],
        queue=fields.get("queue", "default"),
        args=fields.get("args", {}),
        jitter=jitter,
        catchup=fields.get("catchup", CatchUp.LATEST),
        catchup_window=fields.get("catchup_window", timedelta(hours=24)),
        misfire_grace=fields.get("misfire_grace", timedelta(seconds=60)),
    )


def _zones_of(zone: Any, tenants: Any, defaults: dict[str, Any]) -> set[ZoneInfo]:
    """The zones a schedule's ticks are computed in: its own, or for "tenant" each tenant's (or the default)."""
    if isinstance(zone, ZoneInfo):
        return {zone}
    default = defaults.get("timezone")
    zones = {default if isinstance(default, ZoneInfo) else UTC_ZONE}
    if isinstance(tenants, InlineTenants):
        zones |= {tenant.zone for tenant in tenants.tenants if tenant.zone is not None}
    return zones


def parse_fields(
    raw: dict[str, Any], report: Report, tenant_sets: dict[str, TenantSource] | None = None
) -> dict[str, Any]:
    """Parse each schedule field present in ``raw``; report the bad ones and leave them out."""
    parsed: dict[str, Any] = {}
    for key, value in raw.items():
        parser = _FIELD_PARSERS.get(key)
        if parser is None:
            report(key, f"unknown field {key!r}{suggest(key, SCHEDULE_FIELDS)}")
            continue
        try:
            if key == "tenants":
                parsed[key] = parse_tenants_field(value, tenant_sets or {})
            else:
                parsed[key] = parser(value)
        except ValueError as error:
            shown = f" {value!r}" if isinstance(value, str | int | float) else ""
            report(key, f"{key}{shown}: {error}")
    return parsed


def _parse_cron(value: Any) -> Cron:
    reason = check_cron(string(value))
    if reason:
        raise ValueError(reason)
    return Cron(" ".join(value.split()))


def _parse_every(value: Any) -> Every:
    period = parse_duration(string(value))
    if period % timedelta(seconds=1):
        # Ticks appear in firing ids to the second; two ticks in one second would share an id.
        raise ValueError("must be a whole number of seconds (ticks are named to the second)")
    return Every(period)


def _parse_duration(value: Any) -> timedelta:
    return parse_duration(string(value))


def _parse_zone(value: Any) -> ZoneInfo | str:
    text = string(value)
    if text == TENANT_ZONE:
        return TENANT_ZONE
    return parse_zone(text)


def _parse_job(value: Any) -> str:
    text = string(value)
    if not text.strip():
        raise ValueError("must name what the worker runs")
    return text


def _parse_queue(value: Any) -> str:
    text = string(value)
    reason = unsafe_name(text)
    if reason:
        raise ValueError(reason)
    return text


def _parse_args(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError(f"must be a table, not {toml_type(value)}")
    try:
        json.dumps(value)
    except TypeError:
        raise ValueError("dates and times cannot be passed to workers; write them as strings") from None
    non_finite = list(_non_finite(value, ""))
    if non_finite:
        raise ValueError(f"{', '.join(non_finite)}: JSON has no NaN or Infinity, and workers' JSON parsers "
                         "(Ruby's, Node's) refuse them; write a finite number or a string")
    return value


def _non_finite(value: Any, path: str) -> Iterator[str]:
    """Each NaN or infinity in ``value``, at any depth, as ``path = value`` in TOML's words
    (``limits.cap = inf``, ``steps[2] = nan``); json.dumps would write them as NaN and Infinity."""
    if isinstance(value, float) and not math.isfinite(value):
        yield f"{path} = {value!r}"
    elif isinstance(value, dict):
        for key, item in value.items():
            name = key if _BARE_KEY.fullmatch(key) else json.dumps(key)
            yield from _non_finite(item, f"{path}.{name}" if path else name)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _non_finite(item, f"{path}[{index}]")


def _parse_catchup(value: Any) -> CatchUp:
    text = string(value)
    try:
        return CatchUp(text)
    except ValueError:
        raise ValueError("must be one of 'all', 'latest', 'none'") from None


_FIELD_PARSERS: dict[str, Callable[[Any], Any]] = {
    "cron": _parse_cron,
    "every": _parse_every,
    "timezone": _parse_zone,
    "tenants": lambda value: value,  # needs the tenant sets: see parse_tenants_field
    "job": _parse_job,
    "args": _parse_args,
    "queue": _parse_queue,
    "jitter": _parse_duration,
    "catchup": _parse_catchup,
    "catchup_window": _parse_duration,
    "misfire_grace": _parse_duration,
}
