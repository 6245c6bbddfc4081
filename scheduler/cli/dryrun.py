"""``scheduler dry-run``: the firings a window would produce, with jitter applied."""

from __future__ import annotations

import argparse

from scheduler.cli._common import add_config_argument


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("dry-run", help="preview firings", description=__doc__)
    add_config_argument(parser)
    parser.set_defaults(handler=command)


def command(args: argparse.Namespace) -> int:
    raise NotImplementedError
