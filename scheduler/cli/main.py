"""``scheduler``: the command line. ``main(argv) -> int`` returns one of ExitCode."""

from __future__ import annotations

import argparse
import sys
from enum import IntEnum

from scheduler import __version__
from scheduler.errors import RedisUnavailable, SchedulerError, TableError


class ExitCode(IntEnum):
    OK = 0
    REFUSED = 1  # the table, a setting or an argument's value was refused
    USAGE = 2  # argparse's own code for malformed command lines
    UNAVAILABLE = 3  # Redis could not be reached


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


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args))
    except TableError as error:
        for problem in error.problems:
            print(problem, file=sys.stderr)
        count = len(error.problems)
        print(f"scheduler {args.command}: {count} problem{'s' * (count != 1)} in {args.config}", file=sys.stderr)
        return ExitCode.REFUSED
    except SchedulerError as error:
        print(f"scheduler {args.command}: {error}", file=sys.stderr)
        return ExitCode.UNAVAILABLE if isinstance(error, RedisUnavailable) else ExitCode.REFUSED
    except KeyboardInterrupt:
        return 130


def entrypoint() -> None:
    sys.exit(main())
