"""``scheduler acl``: the Redis ACL the scheduler's user needs, least privilege, as text to apply.

Prints the ``ACL SETUSER`` command for redis-cli (the password left as a placeholder: type it in,
it is never printed) and the same rules as an ElastiCache user access string. The keys are those
under SCHEDULER_KEY_PREFIX (or --prefix); --tenant-keys adds read-only access to the Redis sets
that hold tenants (their names come from schedules.toml); --queue-keys adds the Sidekiq and Celery
keys the table's queues write (read from --config); --flat folds the selectors into one rule set,
for an engine that refuses selectors. docs/redis.md explains each part.
"""

from __future__ import annotations

import argparse

from scheduler.acl import DEFAULT_USER, queue_keys, render
from scheduler.cli._common import add_config_argument, load
from scheduler.errors import ExitCode, UsageError
from scheduler.settings import load_settings, prefix_problem


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "acl", help="print the Redis ACL the scheduler's user needs", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--user", default=DEFAULT_USER, metavar="NAME", help=f"the user's name (default: {DEFAULT_USER})")
    parser.add_argument("--prefix", metavar="PREFIX", help="the key prefix (default: SCHEDULER_KEY_PREFIX, or {scheduler})")
    parser.add_argument(
        "--tenant-keys", action="extend", nargs="+", default=[], metavar="PATTERN",
        help="glob pattern of the Redis sets holding tenants, read-only (e.g. 'tenants:*'); repeatable",
    )
    parser.add_argument(
        "--queue-keys", action="store_true",
        help="add the Sidekiq and Celery keys the table's queues write (the table is read from --config)",
    )
    add_config_argument(parser)
    parser.add_argument(
        "--flat", action="store_true",
        help="no selectors (for an engine that refuses them): looser, the extra keys get the root's commands",
    )
    parser.add_argument(
        "--format", choices=("both", "setuser", "access-string"), default="both",
        help="what to print: both (default), the ACL SETUSER line only, or the ElastiCache access string only",
    )
    parser.set_defaults(handler=command)


def command(args: argparse.Namespace) -> ExitCode:
    prefix = args.prefix if args.prefix is not None else load_settings().key_prefix
    if prefix_problem(prefix):
        raise UsageError(f"--prefix {prefix!r}: {prefix_problem(prefix)}")
    for name, value in (("--user", args.user), *(("--tenant-keys", pattern) for pattern in args.tenant_keys)):
        if not value or any(char.isspace() for char in value):
            raise UsageError(f"{name} {value!r}: must be non-empty, without spaces")
    queues = queue_keys(load(args, prefix), prefix) if args.queue_keys else []
    acl = render(prefix, args.tenant_keys, queues, flat=args.flat)
    if args.format in ("both", "setuser"):
        if args.format == "both":
            print("# Redis 7 (redis-cli, as an admin user); type the password in place of <password>:")
        print(acl.setuser_line(args.user))
    if args.format in ("both", "access-string"):
        if args.format == "both":
            print(f"# ElastiCache user {args.user!r}, access string (the password is set on the user itself):")
        print(acl.access_string())
    return ExitCode.OK
