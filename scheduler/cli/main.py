"""``scheduler``: the command line. ``main(argv)`` returns an ExitCode (scheduler.errors, re-exported here)."""

from __future__ import annotations

import argparse
import os
import sys
import tomllib
from collections.abc import Mapping
from pathlib import Path

from scheduler import __version__
from scheduler.errors import ExitCode, SchedulerError, SettingsError, TableError
from scheduler.settings import unknown_variables

__all__ = ["ExitCode", "build_parser", "check_environment", "entrypoint", "main", "queue_url_variables"]


def build_parser() -> argparse.ArgumentParser:
    from scheduler.cli import acl, dryrun, health, operate, run, validate

    parser = argparse.ArgumentParser(
        prog="scheduler", description="A highly available clock: one job per tenant per tick, exactly once."
    )
    parser.add_argument("--version", action="version", version=f"scheduler {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in (run, validate, dryrun, operate, acl, health):
        module.register(commands)
    return parser


def check_environment(environ: Mapping[str, str], config: Path) -> None:
    """Refuse every SCHEDULER_* variable that is neither a setting nor a queue's redis_url_env in the
    table at ``config``, before the command starts anything. The table is read only when some variable
    is not a setting, so a command that needs no table (health) runs without one."""
    unknown = unknown_variables(environ)
    if not unknown:
        return
    unread = None
    try:
        unknown = unknown_variables(environ, queue_url_variables(config))
    except (OSError, ValueError) as error:  # tomllib.TOMLDecodeError is a ValueError
        unread = getattr(error, "strerror", None) or str(error)
    if not unknown:
        return
    reasons = [f"{name} is not a setting" + (f" (did you mean {close}?)" if close else "") for name, close in unknown]
    if unread is not None:
        reasons.append(f"a queue's redis_url_env names are taken from the table at --config, "
                       f"and {config} cannot be read ({unread})")
    raise SettingsError("; ".join(reasons))


def queue_url_variables(config: Path) -> set[str]:
    """The variables the table's [queues.NAME] entries name with redis_url_env. Read from the TOML
    alone, so a table with other problems still names them (and the command reports those problems)."""
    document = tomllib.loads(config.read_bytes().decode("utf-8", errors="replace"))
    queues = document.get("queues")
    if not isinstance(queues, dict):
        return set()
    return {spec["redis_url_env"] for spec in queues.values()
            if isinstance(spec, dict) and isinstance(spec.get("redis_url_env"), str)}


def main(argv: list[str] | None = None) -> ExitCode:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        check_environment(os.environ, args.config)
        return args.handler(args)
    except TableError as error:
        for problem in error.problems:
            print(problem, file=sys.stderr)
        count = len(error.problems)
        print(f"scheduler {args.command}: {count} problem{'s' * (count != 1)} in {args.config}", file=sys.stderr)
        return error.exit_code
    except SchedulerError as error:
        print(f"scheduler {args.command}: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        return ExitCode.INTERRUPTED


def entrypoint() -> None:
    sys.exit(main())
