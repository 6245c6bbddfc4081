"""``scheduler dry-run``: the firings a window would produce, with jitter applied.

The window holds the ticks at or after --from (default: now) and before --until, or --from plus
--for (default 24h); --count N takes the first N firings from --from instead. Firings come by
enqueue_at, then schedule, then tenant: as a table for people, or as jsonl or csv for programs (stdout
then holds nothing but the firings; notes go to stderr). --histogram counts them per minute, or per
larger bucket on long windows. --outage FROM/UNTIL shows what each schedule's catch-up policy does
when no leader ran between the two instants.
"""

from __future__ import annotations

import argparse
import difflib
import os
import sys
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from scheduler.cli._common import add_config_argument, load, resolve_tenants
from scheduler.cli._histogram import Histogram
from scheduler.cli._listing import Lines, TableFormat
from scheduler.clock.instants import EPOCH, format_tick
from scheduler.durations import parse_duration
from scheduler.errors import ExitCode, UsageError
from scheduler.plan.preview import Stream, Window, stream
from scheduler.table import NO_TENANT, RedisSetTenants, Table, Tenant

DEFAULT_SPAN = timedelta(hours=24)
COUNT_HORIZON = timedelta(days=100 * 366)  # how far --count looks for its N firings
LATEST = datetime(9000, 1, 1, tzinfo=UTC)  # croniter and datetime both give out a little after
TIME_HELP = "an ISO 8601 instant: 2026-11-01T00:00:00Z, 2026-11-01T09:00+09:00; without an offset, UTC"


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "dry-run", help="preview the firings a window would produce", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_config_argument(parser)
    parser.add_argument("--from", dest="start", metavar="TIME", help=f"start of the window (default: now); {TIME_HELP}")
    span = parser.add_mutually_exclusive_group()
    span.add_argument("--until", metavar="TIME", help="end of the window, not included")
    span.add_argument(
        "--for", dest="span", metavar="DURATION", help='length of the window: "90m", "24h" (default), "7d"'
    )
    span.add_argument("--count", metavar="N", help="the first N firings from --from instead of a window")
    parser.add_argument(
        "--schedule", action="append", default=[], metavar="NAME", help="only this schedule (repeatable)"
    )
    parser.add_argument("--tenant", action="append", default=[], metavar="ID", help="only this tenant (repeatable)")
    shape = parser.add_mutually_exclusive_group()
    shape.add_argument("--format", choices=("table", "jsonl", "csv"), help="how to list firings (default: table)")
    shape.add_argument("--histogram", action="store_true", help="a bar chart of firings per minute or larger bucket")
    parser.add_argument("--bucket", metavar="DURATION", help="the histogram's bucket (default: chosen for ~60 rows)")
    parser.add_argument(
        "--outage", metavar="FROM/UNTIL",
        help="simulate that no leader ran between two instants inside the window; late ticks follow catch-up",
    )
    parser.set_defaults(handler=command)


def command(args: argparse.Namespace) -> ExitCode:
    window = parse_window(args.start, args.until, args.span, args.count, args.outage, datetime.now(UTC))
    bucket = _duration("--bucket", args.bucket) if args.bucket else None
    table = load(args)
    check_schedules(table, args.schedule)
    tenants = resolve_tenants(table)
    found = stream(table, tenants, window, args.schedule, args.tenant)
    for note in notes(table, found, tenants, args.tenant, window):
        print(f"note: {note}", file=sys.stderr)
    try:
        if args.histogram:
            late = Histogram(window, bucket).write(found, sys.stdout)
        elif args.format in ("jsonl", "csv"):
            late = Lines(args.format).write(found, sys.stdout, window.count, count_late=window.outage is not None)
        else:
            late = TableFormat(found, window).write(found, sys.stdout)
        sys.stdout.flush()
    except BrokenPipeError:  # the reader went away (`| head`): stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return ExitCode.OK
    if window.outage and late:
        print(f"note: {late:,} late firings caught up at {format_tick(window.outage[1])}", file=sys.stderr)
    return ExitCode.OK


# -- options ------------------------------------------------------------------------------------------


def parse_window(
    start: str | None, until: str | None, span: str | None, count: str | None, outage: str | None, now: datetime
) -> Window:
    begin = parse_instant("--from", start) if start else now
    if begin < EPOCH:
        raise UsageError(f"--from {start!r}: must be in {EPOCH.year} or later")
    if count is not None:
        number = count.strip()
        if not number.isdigit() or int(number) < 1:
            raise UsageError(f"--count {count!r}: must be a whole number, 1 or more")
        end = min(begin + COUNT_HORIZON, LATEST) if begin < LATEST else LATEST
        window = Window(begin, end, count=int(number))
    elif until is not None:
        end = parse_instant("--until", until)
        if end <= begin:
            raise UsageError(f"--until {until!r}: must be after --from ({format_tick(begin)})")
        window = Window(begin, end)
    else:
        length = _duration("--for", span) if span is not None else DEFAULT_SPAN
        if LATEST - begin < length:
            raise UsageError(f"--for {span!r}: the window would end after {LATEST.year}")
        window = Window(begin, begin + length)
    if window.end > LATEST or begin >= LATEST:
        raise UsageError(f"the window must end before {LATEST.year}")
    if outage is None:
        return window
    return Window(window.start, window.end, window.count, parse_outage(outage, window))


def parse_instant(option: str, text: str) -> datetime:
    """An ISO 8601 instant as aware UTC; a value without an offset is UTC."""
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(f"{option} {text!r}: is not a time; write {TIME_HELP}") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise UsageError(f"{option} {text!r}: is out of range") from None


def parse_outage(text: str, window: Window) -> tuple[datetime, datetime]:
    parts = text.split("/")
    if len(parts) != 2 or not all(part.strip() for part in parts):
        example = f"{format_tick(window.start)}/{format_tick(window.start + timedelta(hours=1))}"
        raise UsageError(f"--outage {text!r}: write it as FROM/UNTIL, two instants: {example}")
    down, up = (parse_instant("--outage", part) for part in parts)
    if down >= up:
        raise UsageError(f"--outage {text!r}: FROM must be before UNTIL")
    if down < window.start or up >= window.end:
        raise UsageError(
            f"--outage {text!r}: must lie inside the window (FROM at or after {format_tick(window.start)}, "
            f"UNTIL before {format_tick(window.end)})"
        )
    return down, up


def _duration(option: str, text: str) -> timedelta:
    try:
        return parse_duration(text)
    except ValueError as error:
        raise UsageError(f"{option} {text!r}: {error}") from None


def check_schedules(table: Table, names: list[str]) -> None:
    known = [schedule.name for schedule in table.schedules]
    problems = []
    for name in dict.fromkeys(names):
        if name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            problems.append(f"--schedule {name!r}: no schedule of that name in {table.path}{hint}")
    if problems:
        raise UsageError("; ".join(problems))


def notes(
    table: Table, found: Stream, tenants: dict[str, list[Tenant] | None], only: list[str], window: Window
) -> Iterator[str]:
    """What stderr says before the firings: what is left out, and what catch-up skipped."""
    for schedule in found.unresolved:
        source = schedule.tenants
        assert isinstance(source, RedisSetTenants)
        yield (
            f"schedule {schedule.name!r} is left out: its tenants are the Redis set {source.key!r} "
            f"(tenant set {source.name!r}), unresolved; set SCHEDULER_REDIS_URL to read it"
        )
    skipped: Counter[str] = Counter()
    for key, count in found.skipped.items():  # a track key is the schedule's name, or name/zone
        skipped[key.split("/", 1)[0]] += count
    for schedule in table.schedules:
        count = skipped[schedule.name]
        if not count:
            continue
        assert window.outage is not None
        down, up = window.outage
        yield (
            f"catch-up policy '{schedule.catchup.value}' skipped {count:,} firing{'s' * (count != 1)} "
            f"of schedule {schedule.name} (no leader from {format_tick(down)} to {format_tick(up)})"
        )
    if only:
        present = {NO_TENANT} | {tenant.id for members in tenants.values() if members for tenant in members}
        for tenant in dict.fromkeys(only):
            if tenant not in present:
                yield f"--tenant {tenant!r}: no schedule fans out to it" + (
                    " (tenants in unresolved Redis sets were not read)" if found.unresolved else ""
                )
