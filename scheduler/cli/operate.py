"""The operator's commands, run beside the replicas against their shared Redis (docs/operations.md):

    scheduler status                                  who leads, the replicas, each schedule, each queue
    scheduler pause NAME [--tenant T] / resume ...    ticks are recorded as paused, not fired
    scheduler trigger NAME [--tenant T]               a manual firing, through the leader's fenced path
    scheduler history NAME [--tenant T]               the decision ledger, one line per tick
    scheduler backfill NAME --from T --until T        a window's firings, exactly once

Each prints a table, or JSON with ``--json``. Redis is SCHEDULER_REDIS_URL's, or the embedded one
that `scheduler run` started next to the table.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from scheduler.cli._common import add_config_argument, load
from scheduler.cli.dryrun import parse_instant
from scheduler.clock.cadence import next_tick
from scheduler.clock.instants import entry_instant, format_instant, format_tick, ms_of
from scheduler.errors import ExitCode, UsageError
from scheduler.replica.embedded import STATE_DIRECTORY
from scheduler.replica.requests import RESULT_KEPT
from scheduler.settings import load_settings
from scheduler.store.connection import connect
from scheduler.store.control import Control, paused_field
from scheduler.plan.ledger import Line
from scheduler.keys import Keys
from scheduler.store.state import Store
from scheduler.replica.tracks import build_tracks
from scheduler.table import InlineTenants, Table

DEFAULT_WAIT = 10.0
NEW_HELP = ("add a second request even while the same {kind} is queued and unanswered (without it, the command "
            "waits for that one's answer)")


def register(commands: argparse._SubParsersAction) -> None:
    def command(name: str, handler: Any, help: str, schedule: bool = True, tenant: bool = True) -> argparse.ArgumentParser:
        parser = commands.add_parser(name, help=help, description=help)
        if schedule:
            parser.add_argument("name", metavar="NAME", help="the schedule")
        if tenant:
            parser.add_argument("--tenant", metavar="ID", help="only this tenant")
        add_config_argument(parser)
        parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
        parser.set_defaults(handler=handler)
        return parser

    command("status", status, "who leads, the replicas, and each schedule's last and next tick", False, False)
    command("pause", pause, "record a schedule's (or a tenant's) ticks as paused instead of firing them")
    command("resume", resume, "fire a paused schedule (or tenant) again, from its next tick")
    trigger_parser = command("trigger", trigger, "fire a schedule now, once, through the leader")
    trigger_parser.add_argument("--wait", type=float, default=DEFAULT_WAIT, metavar="SECONDS",
                                help=f"how long to wait for the leader's answer (default {DEFAULT_WAIT:g})")
    trigger_parser.add_argument("--new", action="store_true", help=NEW_HELP.format(kind="trigger"))
    history_parser = command("history", history, "the decision ledger: what was decided for each tick, and why")
    history_parser.add_argument("--limit", type=int, default=50, metavar="N", help="the last N lines (default 50)")
    history_parser.add_argument("--since", metavar="TIME", help="only lines written after this instant")
    backfill_parser = command("backfill", backfill, "fire a past window's ticks, exactly once")
    backfill_parser.add_argument("--from", dest="start", required=True, metavar="TIME", help="the window's start")
    backfill_parser.add_argument("--until", required=True, metavar="TIME", help="the window's end (included)")
    backfill_parser.add_argument("--wait", type=float, default=DEFAULT_WAIT, metavar="SECONDS",
                                 help=f"how long to wait for the leader's answer (default {DEFAULT_WAIT:g})")
    backfill_parser.add_argument("--new", action="store_true", help=NEW_HELP.format(kind="backfill"))


# -- connecting ---------------------------------------------------------------------------------


def _control(config: Path) -> Control:
    settings = load_settings()
    if settings.redis_url is not None:
        url = settings.redis_url.get_secret_value()
    else:
        socket = config.resolve().parent / STATE_DIRECTORY / "redis.sock"
        if not socket.exists():
            raise UsageError(f"SCHEDULER_REDIS_URL is not set, and no embedded Redis runs next to {config} "
                               f"(no {socket}): set SCHEDULER_REDIS_URL to the replicas' Redis")
        url = f"unix://{socket}"
    return Control(Store(connect(settings, url), Keys(settings.key_prefix)))


def _table_with(args: argparse.Namespace) -> Table:
    """The local table, refusing a schedule (and tenant) it does not have."""
    table = load(args)
    try:
        schedule = table.schedule(args.name)
    except KeyError:
        raise UsageError(f"{args.config}: no schedule named {args.name!r}") from None
    tenant = getattr(args, "tenant", None)
    if tenant is not None:
        if schedule.tenants is None:
            raise UsageError(f"{args.config}: schedule {args.name!r} has no tenants: leave --tenant out")
        if isinstance(schedule.tenants, InlineTenants) and tenant not in {t.id for t in schedule.tenants.tenants}:
            raise UsageError(f"{args.config}: {tenant!r} is not a tenant of schedule {args.name!r}")
    return table


def _print(args: argparse.Namespace, data: Any, text: str) -> None:
    print(json.dumps(data, indent=2) if args.json else text)


def _rows(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(row[n])) for row in [header, *rows]) for n in range(len(header))]
    return "\n".join("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)).rstrip()
                     for row in [header, *rows])


# -- pause and resume ---------------------------------------------------------------------------


def pause(args: argparse.Namespace) -> ExitCode:
    _table_with(args)
    added, since = _control(args.config).pause(args.name, args.tenant)
    what = paused_field(args.name, args.tenant)
    text = (f"paused {what} since {since}: its ticks are recorded as paused, not fired (scheduler resume {args.name}"
            f"{' --tenant ' + args.tenant if args.tenant else ''} to undo)" if added
            else f"{what} was already paused, since {since}")
    _print(args, {"paused": what, "since": since, "changed": added}, text)
    return ExitCode.OK


def resume(args: argparse.Namespace) -> ExitCode:
    _table_with(args)
    removed = _control(args.config).resume(args.name, args.tenant)
    what = paused_field(args.name, args.tenant)
    text = (f"resumed {what}: it fires again from its next tick; the ticks of the pause are not caught up"
            if removed else f"{what} was not paused")
    _print(args, {"resumed": what, "changed": removed}, text)
    return ExitCode.OK


# -- trigger and backfill -----------------------------------------------------------------------


def _ask(args: argparse.Namespace, control: Control, kind: str, **fields: str) -> ExitCode:
    request_id, added = control.request(kind, args.new, schedule=args.name, **fields)
    if not added:
        print(f"scheduler {kind}: request {request_id} for this {kind} is already queued; waiting for it "
              f"(--new asks for a second {kind})", file=sys.stderr)
    result = control.result(request_id, args.wait)
    if result is None:
        leader = control.lease()
        kept = (f"(its result is kept {RESULT_KEPT.days} day; asking again waits for it, and --new asks for a second "
                f"{kind})")
        if leader.replica is not None:
            print(f"scheduler {kind}: the leader {leader.replica} (epoch {leader.epoch}) has not answered within "
                  f"{args.wait:g}s; request {request_id} stays queued and is carried out when it gets to it {kept}",
                  file=sys.stderr)
            return ExitCode.BUSY
        print(f"scheduler {kind}: no leader answered within {args.wait:g}s; request {request_id} stays queued "
              f"and is carried out when a leader takes it {kept}", file=sys.stderr)
        return ExitCode.UNAVAILABLE
    data = {"request": request_id, "requested_at": format_instant(entry_instant(request_id)),
            "already_queued": not added, **result}
    if result.get("status") != "done":
        if args.json:
            print(json.dumps(data, indent=2))
        print(f"scheduler {kind}: refused: {result.get('error', '')}", file=sys.stderr)
        return ExitCode.REFUSED
    if kind == "trigger":
        text = (f"triggered {args.name}: {result['fired']} firing(s) sent by the leader of epoch {result['epoch']}"
                f" ({result['deduplicated']} already sent), firing ids {result['firing_id']}")
    else:
        text = (f"backfilled {args.name}: {result['ticks']} tick(s), {result['fired']} firing(s) sent, "
                f"{result['deduplicated']} already sent before")
        if int(result["left"]):
            text += f"; {result['left']} later tick(s) not handled yet are left to the schedule itself"
    _print(args, data, text)
    return ExitCode.OK


def trigger(args: argparse.Namespace) -> ExitCode:
    _table_with(args)
    return _ask(args, _control(args.config), "trigger", **({"tenant": args.tenant} if args.tenant else {}))


def backfill(args: argparse.Namespace) -> ExitCode:
    _table_with(args)
    start, until = parse_instant("--from", args.start), parse_instant("--until", args.until)
    if until < start:
        raise UsageError(f"--until {args.until!r}: must not be before --from {args.start!r}")
    fields = {"from": str(ms_of(start)), "until": str(ms_of(until))} | ({"tenant": args.tenant} if args.tenant else {})
    return _ask(args, _control(args.config), "backfill", **fields)


# -- history ------------------------------------------------------------------------------------

_COUNTS = ("fired", "late", "deduplicated", "skipped", "paused")


def history(args: argparse.Namespace) -> ExitCode:
    _table_with(args)
    since = parse_instant("--since", args.since) if args.since else None
    if args.limit < 1:
        raise UsageError(f"--limit {args.limit}: must be 1 or more")
    lines = _control(args.config).history(args.name, args.limit, since)
    if args.tenant is not None:
        lines = [line for line in lines if line.concerns(args.tenant)]
    data = [{"written": format_instant(line.written), **line.fields,
             **({"tenant_outcome": line.for_tenant(args.tenant)} if args.tenant else {})} for line in lines]
    rows = [_history_row(line, args.tenant) for line in lines]
    header = ["WRITTEN", "TICK", "OUTCOME", "COUNTS", "EPOCH", "REASON"]
    text = _rows(header, rows) if rows else f"no ledger lines for {args.name}"
    _print(args, data, text)
    return ExitCode.OK


def _history_row(line: Line, tenant: str | None) -> list[str]:
    fields = line.fields
    if "tick" in fields:
        tick = fields["tick"]
    elif "from" in fields:
        tick = f"{fields['from']} .. {fields['until']} ({fields['ticks']} ticks)"
    else:
        tick = "-"  # a line about the schedule, not a tick (started)
    if "track" in fields:
        tick += f" [{fields['track']}]"
    outcome = line.for_tenant(tenant) if tenant else fields.get("outcome", "")
    counts = ", ".join(f"{name} {fields[name]}" for name in _COUNTS if name in fields)
    reason = fields.get("reason", "")
    if "request" in fields:
        reason = f"request {fields['request']}" + (f" for {fields['tenant']}" if "tenant" in fields else "")
    if "tenants" in fields:
        reason = (reason + "; " if reason else "") + f"paused tenants {', '.join(json.loads(fields['tenants']))}"
    return [format_instant(line.written), tick, outcome, counts, fields.get("epoch", ""), reason]


# -- status -------------------------------------------------------------------------------------


def status(args: argparse.Namespace) -> ExitCode:
    control = _control(args.config)
    table = load(args, control.store.keys.prefix)
    now = control.store.time()
    lease = control.lease()
    running = control.running_table()
    paused = control.paused()
    tracks = [state.track for state in build_tracks(table).values()]
    watermarks = control.store.watermarks([track.key for track in tracks])
    queues = control.queue_view(sorted({schedule.queue for schedule in table.schedules} | control.store.queues()
                                       | control.store.outbox_queues()))
    pending = {name: count for view in queues for name, count in view["pending_by_schedule"].items()}
    replicas = control.replicas(now)
    leader = next((report for report in replicas if report["replica"] == lease.replica), {})
    failing = leader.get("failing", {})  # what the leader reports of its schedules' trouble
    schedules = []
    for track, watermark in zip(tracks, watermarks):
        name = track.schedule.name
        held = sorted(key.partition("/")[2] for key in paused if key.startswith(name + "/"))
        schedules.append({
            "schedule": track.key, "last_tick": format_tick(watermark) if watermark else None,
            "next_tick": format_tick(next_tick(track.schedule.cadence, track.zone, max(now, watermark or now))),
            "pending": pending.get(name, 0), "paused": name in paused, "paused_since": paused.get(name),
            "paused_tenants": held, "failing": failing.get(track.key),
        })
    data = {
        "now": format_instant(now),
        "leader": {"replica": lease.replica, "epoch": lease.epoch, "lease_expires_in": lease.expires_in},
        "table": {**running, "local": table.fingerprint, "matches_local": running.get("fingerprint") == table.fingerprint},
        "replicas": replicas,
        "schedules": schedules,
        "queues": [{key: value for key, value in view.items() if key != "pending_by_schedule"} for view in queues],
    }
    _print(args, data, _status_text(data, args.config))
    return ExitCode.OK


def _status_text(data: dict[str, Any], config: Path) -> str:
    leader = data["leader"]
    if leader["replica"]:
        expires = f", lease expires in {leader['lease_expires_in']:.1f}s" if leader["lease_expires_in"] else ""
        head = f"leader: {leader['replica']} (epoch {leader['epoch']}{expires})"
    else:
        head = f"leader: none (last epoch {leader['epoch']})"
    table = data["table"]
    if table.get("fingerprint"):
        line = f"table: {table['fingerprint']} ({table.get('path')}, loaded {table.get('loaded_at')} by epoch {table.get('epoch')})"
        if not table["matches_local"]:
            line += f"; differs from {config} ({table['local']})"
    else:
        line = "table: no leader has published one yet"
    replicas = _rows(["REPLICA", "ROLE", "EPOCH", "TABLE", "SEEN"],
                     [[r["replica"], r.get("role", "?"), str(r.get("epoch") or ""), r.get("table", ""),
                       f"{r['seen_ago']:.1f}s ago"] for r in data["replicas"]])
    schedules = _rows(["SCHEDULE", "LAST TICK", "NEXT TICK", "PENDING", "PAUSED", "STATE"],
                      [[s["schedule"], s["last_tick"] or "not started", s["next_tick"], str(s["pending"]),
                        ("since " + s["paused_since"]) if s["paused"]
                        else (f"tenants {', '.join(s['paused_tenants'])}" if s["paused_tenants"] else "no"),
                        f"failing: {s['failing']}" if s["failing"] else "ok"]
                       for s in data["schedules"]])
    queues = _rows(["QUEUE", "PENDING", "OUTBOX", "OLDEST IN OUTBOX"],
                   [[q["queue"], str(q["pending"]), str(q["outbox"]), q["outbox_oldest"] or "-"] for q in data["queues"]])
    return "\n\n".join([f"{head}\n{line}\nnow: {data['now']} (Redis's clock)", replicas, schedules, queues])

