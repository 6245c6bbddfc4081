"""``scheduler run``: one replica; several run side by side and one leads."""

from __future__ import annotations

import argparse

from scheduler.cli._common import add_config_argument
from scheduler.errors import ExitCode


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("run", help="run a replica", description=__doc__)
    add_config_argument(parser)
    parser.set_defaults(handler=command)


def command(args: argparse.Namespace) -> ExitCode:
    from scheduler.replica import run_replica

    return run_replica(args.config)
