"""Reading schedules.toml: every problem is collected, located and reported in one TableError."""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from scheduler.clock.cadence import Cadence, Cron, Every, check_cron, shortest_interval
from scheduler.durations import format_duration, parse_duration
from scheduler.errors import Problem, TableError
from scheduler.table._locate import Locator
from scheduler.table._model import (
    UTC_ZONE,
    CatchUp,
    InlineTenants,
    QueueSpec,
    Schedule,
    Table,
    TenantSource,
    resolve_queue,
)
from scheduler.table._queues import keys_starting, queue_spec
from scheduler.table._tenants import parse_tenants_field, tenant_source, unsafe_name
from scheduler.table._words import Counter, Report, parse_zone, string, suggest, toml_type

SCHEDULE_FIELDS = (
    "name", "cron", "every", "timezone", "tenants", "job", "args", "queue",
    "jitter", "catchup", "catchup_window", "misfire_grace",
)
TOP_LEVEL = ("defaults", "tenants", "queues", "schedule")
TENANT_ZONE = "tenant"
# A fixed reference instant for the jitter-versus-interval check, so validation never reads a clock.
_REFERENCE = datetime(2026, 1, 1, tzinfo=UTC)


def load_table(path: Path | str) -> Table:
    """Read and validate a schedules.toml; raise TableError listing every problem found."""
    path = Path(path)
    label = str(path)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise TableError([Problem(label, None, "", f"cannot read the table: {error.strerror or error}")]) from None
    text = data.decode("utf-8", errors="replace")
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        match = re.search(r"at line (\d+)", str(error))
        line = int(match.group(1)) if match else None
        raise TableError([Problem(label, line, "", f"invalid TOML: {error}")]) from None
    return _Loader(path, text, data).load(document)


class _Loader:
    def __init__(self, path: Path, text: str, data: bytes) -> None:
        self.path = path
        self.label = str(path)
        self.locator = Locator(text)
        self.problems: list[Problem] = []
        self.digest = hashlib.sha256(data)

    def report(self, table: str, index: int, where: str, key: str | None, message: str) -> None:
        line = self.locator.line(table, index, key)
        self.problems.append(Problem(self.label, line, where, message))

    def load(self, document: dict[str, Any]) -> Table:
        for key in document:
            if key not in TOP_LEVEL:
                self.report(key, 0, "", None, f"unknown table [{key}]{suggest(key, TOP_LEVEL)}")
        tenant_sets = self._tenant_sets(document.get("tenants", {}))
        defaults = self._defaults(document.get("defaults", {}), tenant_sets)
        queues = self._queues(document.get("queues", {}))
        schedules = self._schedules(document.get("schedule", []), defaults, tenant_sets)
        self._check_active_job_args(schedules, queues, document.get("schedule", []))
        if self.problems:
            raise TableError(self.problems)
        return Table(self.path, tuple(schedules), tenant_sets, self.digest.hexdigest()[:16], queues)

    # -- [queues] --------------------------------------------------------------------------------

    def _check_active_job_args(self, schedules: list[Schedule], queues: dict[str, QueueSpec], raw: Any) -> None:
        """ActiveJob reads hash keys starting with "_aj_" as its own markers: refuse them in args."""
        indexes = {entry.get("name"): index for index, entry in enumerate(raw) if isinstance(entry, dict)}
        for schedule in schedules:
            if not resolve_queue(queues, schedule.queue).active_job:
                continue
            reserved = sorted(keys_starting(schedule.args, "_aj_"))
            if reserved:
                self.report("schedule", indexes.get(schedule.name, 0), f'schedule "{schedule.name}"', "args",
                            f"args: key {reserved[0]!r} is reserved by ActiveJob (queue {schedule.queue!r} "
                            "has active_job = true); rename it")

    def _queues(self, raw: Any) -> dict[str, QueueSpec]:
        if not isinstance(raw, dict):
            self.report("", 0, "", "queues", "[queues] must be a table of [queues.NAME] entries")
            return {}
        queues: dict[str, QueueSpec] = {}
        for name, options in raw.items():

            def report(key: str | None, message: str, name: str = name) -> None:
                self.report(f"queues.{name}", 0, f'queue "{name}"', key, message)

            unsafe = unsafe_name(name)
            if unsafe:
                report(None, f"name {name!r}: {unsafe}")
            elif not isinstance(options, dict):
                report(None, f"[queues.{name}] must be a table")
            else:
                spec = queue_spec(name, options, Counter(report))
                if spec is not None:
                    queues[name] = spec
        return queues

    # -- [defaults] ------------------------------------------------------------------------------

    def _defaults(self, raw: Any, tenant_sets: dict[str, TenantSource]) -> dict[str, Any]:
        if not isinstance(raw, dict):
            self.report("", 0, "", "defaults", "[defaults] must be a table")
            return {}

        def report(key: str, message: str) -> None:
            self.report("defaults", 0, "defaults", key, message)

        fields = {k: v for k, v in raw.items() if k != "name"}
        if "name" in raw:
            report("name", "a default name makes no sense: each schedule names itself")
        if "cron" in raw and "every" in raw:
            report("every", "give cron or every, not both")
        return _parse_fields(fields, report, tenant_sets)

    # -- [tenants] -------------------------------------------------------------------------------

    def _tenant_sets(self, raw: Any) -> dict[str, TenantSource]:
        if not isinstance(raw, dict):
            self.report("", 0, "", "tenants", "[tenants] must be a table of named tenant sets")
            return {}
        sets: dict[str, TenantSource] = {}
        for name, value in raw.items():
            where = f'tenant set "{name}"'

            def report(key: str | None, message: str, name: str = name, where: str = where) -> None:
                self.report("tenants", 0, where, key if key is not None else name, message)

            unsafe = unsafe_name(name)
            if unsafe:
                report(None, f"name {name!r}: {unsafe}")
                continue
            # A broken set stays known (empty), so schedules naming it are not blamed a second time.
            sets[name] = (
                tenant_source(name, value, report, self.path.parent, self.digest.update)
                or InlineTenants((), name=name)
            )
        return sets

    # -- [[schedule]] ----------------------------------------------------------------------------

    def _schedules(
        self, raw: Any, defaults: dict[str, Any], tenant_sets: dict[str, TenantSource]
    ) -> list[Schedule]:
        if isinstance(raw, dict):
            self.report("schedule", 0, "", None, "write schedules as [[schedule]] (an array of tables)")
            return []
        if not isinstance(raw, list):
            self.report("", 0, "", "schedule", "schedule must be an array of tables: [[schedule]]")
            return []
        schedules: list[Schedule] = []
        seen: dict[str, int] = {}
        for index, entry in enumerate(raw):
            name = entry.get("name") if isinstance(entry, dict) else None
            where = f'schedule "{name}"' if isinstance(name, str) and name else f"schedule #{index + 1}"

            def report(key: str | None, message: str, index: int = index, where: str = where) -> None:
                self.report("schedule", index, where, key, message)

            if not isinstance(entry, dict):
                report(None, "must be a table")
                continue
            duplicate = isinstance(name, str) and name in seen
            if duplicate:
                earlier = self.locator.line("schedule", seen[name])
                report("name", f"name {name!r}: is used by an earlier schedule (line {earlier})")
            elif isinstance(name, str):
                seen[name] = index
            # A duplicate is still checked, so the rest of what is wrong with it is reported too.
            schedule = _build_schedule(entry, defaults, tenant_sets, report)
            if schedule is not None and not duplicate:
                schedules.append(schedule)
        return schedules


def _build_schedule(
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
    own = _parse_fields({k: v for k, v in entry.items() if k != "name"}, before, tenant_sets)
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


def _parse_fields(
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
    return value


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
