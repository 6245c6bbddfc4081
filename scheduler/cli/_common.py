"""Arguments and helpers shared by the subcommands."""

from __future__ import annotations

import argparse
from pathlib import Path

import redis

from scheduler.settings import Settings, load_settings
from scheduler.store.connection import connect
from scheduler.table import Table, Tenant, load_table
from scheduler.tenants import tenants_of


def add_config_argument(parser: argparse.ArgumentParser, help: str = "the schedule table") -> None:
    parser.add_argument(
        "--config", type=Path, default=Path("schedules.toml"), metavar="PATH",
        help=f"{help} (default: ./schedules.toml)",
    )


def resolve_tenants(table: Table, settings: Settings | None = None) -> dict[str, list[Tenant] | None]:
    """Every schedule's tenants; Redis sets are read only when SCHEDULER_REDIS_URL is set."""
    settings = settings or load_settings()
    client: redis.Redis | None = connect(settings) if settings.redis_url else None
    try:
        return {schedule.name: tenants_of(schedule, client) for schedule in table.schedules}
    finally:
        if client is not None:
            client.close()


def load(args: argparse.Namespace, key_prefix: str | None = None) -> Table:
    """The table at --config, checked against the key prefix (SCHEDULER_KEY_PREFIX unless given):
    a queue's stream must not lie among the scheduler's own keys."""
    return load_table(args.config, key_prefix if key_prefix is not None else load_settings().key_prefix)
