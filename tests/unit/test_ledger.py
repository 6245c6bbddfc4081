"""The decision ledger's lines, as the fenced scripts write them and `scheduler history` reads them."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from scheduler.plan.ledger import Decision, Line

TICK = datetime(2026, 11, 24, 3, 0, tzinfo=UTC)


def fields(flat: list[str]) -> dict[str, str]:
    return dict(zip(flat[::2], flat[1::2]))


def test_a_tick_line_takes_its_outcome_from_the_counts():
    assert fields(Decision().line("beat", "beat", TICK, 7, fired=3)) == {
        "tick": "2026-11-24T03:00:00Z", "outcome": "fired", "fired": "3", "epoch": "7"}
    assert fields(Decision().line("beat", "beat", TICK, 7, deduplicated=3))["outcome"] == "deduplicated"
    assert fields(Decision(skipped=3, reason="late").line("beat", "beat", TICK, 7)) == {
        "tick": "2026-11-24T03:00:00Z", "outcome": "skipped", "skipped": "3", "reason": "late", "epoch": "7"}
    assert fields(Decision().line("beat", "beat", TICK, 7))["outcome"] == "empty"


def test_paused_tenants_are_named_and_the_tick_still_counts_as_fired_for_the_others():
    line = fields(Decision(paused=1, paused_tenants=["globex"]).line("beat", "beat", TICK, 2, fired=2))
    assert line["outcome"] == "fired" and line["paused"] == "1" and json.loads(line["tenants"]) == ["globex"]
    read = Line(TICK, line)
    assert read.for_tenant("globex") == "paused" and read.for_tenant("acme") == "fired"


def test_a_range_line_has_from_until_and_ticks_and_a_zone_track_is_named():
    line = fields(Decision("paused", span=(TICK, TICK.replace(hour=5), 3)).line("digest/Asia/Tokyo", "digest", None, 1))
    assert line == {"from": "2026-11-24T03:00:00Z", "until": "2026-11-24T05:00:00Z", "ticks": "3",
                    "track": "digest/Asia/Tokyo", "outcome": "paused", "epoch": "1"}


def test_a_request_carried_out_before_reads_as_deduplicated():
    again = fields(Decision("backfilled", extra={"request": "1-0"}).line("beat", "beat", TICK, 4, deduplicated=3))
    assert again["outcome"] == "deduplicated" and again["request"] == "1-0"
    first = fields(Decision("backfilled", extra={"request": "1-0"}).line("beat", "beat", TICK, 4, fired=3))
    assert first["outcome"] == "backfilled"


def test_one_tenants_view_keeps_tick_wide_lines_and_its_own():
    assert Line(TICK, {"outcome": "fired"}).concerns("acme")
    assert Line(TICK, {"outcome": "triggered", "tenant": "acme"}).concerns("acme")
    assert not Line(TICK, {"outcome": "triggered", "tenant": "globex"}).concerns("acme")


def test_history_shows_a_tick_a_range_or_a_dash_for_a_line_about_no_tick():
    from scheduler.cli.operate import _history_row

    started = Line(TICK, fields(Decision("started", reason="first seen").line("beat", "beat", None, 1)))
    assert _history_row(started, None)[1:3] == ["-", "started"]
    span = Line(TICK, fields(Decision("paused", span=(TICK, TICK.replace(hour=5), 3)).line("beat", "beat", None, 1)))
    assert _history_row(span, None)[1] == "2026-11-24T03:00:00Z .. 2026-11-24T05:00:00Z (3 ticks)"
    tick = Line(TICK, fields(Decision().line("beat", "beat", TICK, 1, fired=2)))
    assert _history_row(tick, None)[1:4] == ["2026-11-24T03:00:00Z", "fired", "fired 2"]
