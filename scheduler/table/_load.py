"""Reading schedules.toml: every problem is collected, located and reported in one TableError."""

from __future__ import annotations

import hashlib
import re
import tomllib
from pathlib import Path
from typing import Any

from scheduler.errors import Problem, TableError
from scheduler.table._fields import build_schedule, parse_fields
from scheduler.table._locate import Locator
from scheduler.table._model import InlineTenants, QueueSpec, Schedule, Table, TenantSource, resolve_queue
from scheduler.table._queues import keys_starting, queue_spec
from scheduler.table._tenants import tenant_source, unsafe_name
from scheduler.table._words import Counter, suggest

TOP_LEVEL = ("defaults", "tenants", "queues", "schedule")


def load_table(path: Path | str, key_prefix: str | None = None) -> Table:
    """Read and validate a schedules.toml; raise TableError listing every problem found.

    ``key_prefix`` is the settings' SCHEDULER_KEY_PREFIX, which the table alone does not know: given,
    a queue's ``stream`` among the scheduler's own keys is a problem too. Every command passes it;
    without it, only the table's own rules apply.
    """
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
    return _Loader(path, text, data, key_prefix).load(document)


class _Loader:
    def __init__(self, path: Path, text: str, data: bytes, key_prefix: str | None) -> None:
        self.path = path
        self.key_prefix = key_prefix
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
        entries = raw if isinstance(raw, list) else []
        indexes = {entry["name"]: index for index, entry in enumerate(entries)
                   if isinstance(entry, dict) and isinstance(entry.get("name"), str)}
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
                spec = queue_spec(name, options, Counter(report), self.key_prefix)
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
        return parse_fields(fields, report, tenant_sets)

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
            schedule = build_schedule(entry, defaults, tenant_sets, report)
            if schedule is not None and not duplicate:
                schedules.append(schedule)
        return schedules
