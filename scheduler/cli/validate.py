"""``scheduler validate``: check schedules.toml; exit 0 with a summary, or list every problem and exit 1."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta

from scheduler.cli._common import add_config_argument, load, resolve_tenants
from scheduler.errors import ExitCode
from scheduler.plan.preview import fanouts
from scheduler.table import Table, Tenant

SUMMARY_WINDOW = timedelta(hours=24)


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("validate", help="check schedules.toml", description=__doc__)
    add_config_argument(parser)
    parser.set_defaults(handler=command)


def command(args: argparse.Namespace) -> ExitCode:
    table = load(args)
    tenants = resolve_tenants(table)
    print(summary(table, tenants, datetime.now(UTC)))
    return ExitCode.OK


def summary(table: Table, tenants: dict[str, list[Tenant] | None], now: datetime) -> str:
    """``schedules.toml: ok, 5 schedules, 9 tenants, 1,234 firings in the next 24 h (...)``."""
    selected, unresolved = fanouts(table, tenants)
    firings = sum(
        fanout.track.schedule.cadence.count_between(now, now + SUMMARY_WINDOW, fanout.track.zone) * len(fanout.offsets)
        for fanout in selected
    )
    distinct = {tenant.id for members in tenants.values() if members for tenant in members}
    line = (
        f"{table.path}: ok, {len(table.schedules)} schedules, {len(distinct)} tenants, "
        f"{firings:,} firings in the next 24 h"
    )
    if unresolved:
        names = ", ".join(sorted({f"{s.tenants.describe()}" for s in unresolved if s.tenants}))
        line += (
            f" (not counted: {len(unresolved)} schedule{'s' * (len(unresolved) != 1)} whose tenants are in Redis,"
            f" unresolved: {names}; set SCHEDULER_REDIS_URL to read them)"
        )
    return line
