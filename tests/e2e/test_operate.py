"""The operator's commands (status, pause, resume, trigger, history, backfill), run as real console
scripts against a real redis-server while real replicas run and fail over."""

from __future__ import annotations

import json
import signal
import subprocess
from collections import Counter
from datetime import datetime, timedelta

import pytest
from helpers import redis_now, run_scheduler, write_table
from replicas import PREFIX, Cluster

from redis_server import wait_for

pytestmark = pytest.mark.e2e

TABLE = """
[tenants]
three = ["acme", "globex", "initech"]

[[schedule]]
name = "beat"
every = "1s"
tenants = "three"
job = "Beat"
catchup = "none"
misfire_grace = "1s"

[[schedule]]
name = "hourly"
every = "1h"
tenants = "three"
job = "Hourly"
catchup_window = "2h"
"""


def run(cluster: Cluster, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    done = run_scheduler(*args, "--config", str(cluster.config), env={"SCHEDULER_REDIS_URL": cluster.redis_url},
                         timeout=60)
    if check:
        assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    return done


def as_json(cluster: Cluster, *args: str) -> object:
    return json.loads(run(cluster, *args, "--json").stdout)


def ticks_of(cluster: Cluster, schedule: str, tenant: str | None = None) -> list[str]:
    return sorted(m["tick"] for m in cluster.stream()
                  if m["schedule"] == schedule and (tenant is None or m["tenant"] == tenant)
                  and "/manual-" not in m["firing_id"])


def latest_tick(cluster: Cluster, schedule: str = "beat") -> str | None:
    ticks = ticks_of(cluster, schedule)
    return ticks[-1] if ticks else None


@pytest.fixture
def cluster(tmp_path, make_cluster):
    cluster = make_cluster(write_table(tmp_path, TABLE))
    cluster.start("r1")
    cluster.start("r2")
    cluster.leader()
    wait_for(lambda: len(set(ticks_of(cluster, "beat"))) >= 2, timeout=15, message="the leader to fire beat")
    return cluster


def test_status_names_the_leader_the_replicas_and_each_schedule(cluster):
    epoch, leader = cluster.holder()
    def both_seen():
        status = as_json(cluster, "status")
        return status if len(status["replicas"]) == 2 else None

    status = wait_for(both_seen, message="both replicas' heartbeats")

    assert status["leader"]["replica"] == leader and status["leader"]["epoch"] == epoch
    assert 0 < status["leader"]["lease_expires_in"] <= 2
    assert {r["replica"]: r["role"] for r in status["replicas"]} == {
        leader: "leader", ({"r1", "r2"} - {leader}).pop(): "standby"}
    assert status["table"]["matches_local"] is True and status["table"]["epoch"] == str(epoch)
    beat = next(s for s in status["schedules"] if s["schedule"] == "beat")
    assert beat["last_tick"] is not None and beat["next_tick"] > beat["last_tick"] and beat["paused"] is False
    hourly = next(s for s in status["schedules"] if s["schedule"] == "hourly")
    assert hourly["next_tick"].endswith(":00:00Z")
    assert [q["queue"] for q in status["queues"]] == ["default"]

    text = run(cluster, "status").stdout
    assert f"leader: {leader} (epoch {epoch}" in text and "SCHEDULE" in text and "beat" in text


def test_status_names_a_failing_schedule_and_why_while_the_others_fire(tmp_path, make_cluster):
    table = (TABLE.replace("[tenants]\n", '[tenants]\nfromset = { redis_set = "tenants:x" }\n')
             + '\n[[schedule]]\nname = "fromset"\nevery = "1s"\ntenants = "fromset"\njob = "X"\n')
    cluster = make_cluster(write_table(tmp_path, table))
    cluster.client.set("tenants:x", "a string, not a set")
    cluster.start("r1")
    cluster.leader()
    wait_for(lambda: len(set(ticks_of(cluster, "beat"))) >= 2, timeout=15, message="beat firing beside it")

    def reported() -> dict | None:
        status = as_json(cluster, "status")
        found = next(s for s in status["schedules"] if s["schedule"] == "fromset")
        return found if found["failing"] else None

    fromset = wait_for(reported, timeout=15, message="status to name the failing schedule")
    assert fromset["failing"] == ("reading tenant set 'tenants:x': WRONGTYPE Operation against a key holding the "
                                  "wrong kind of value")
    beat = next(s for s in as_json(cluster, "status")["schedules"] if s["schedule"] == "beat")
    assert beat["failing"] is None
    text = run(cluster, "status").stdout
    assert "failing: reading tenant set 'tenants:x': WRONGTYPE" in text and "STATE" in text


def test_a_paused_schedule_is_recorded_paused_then_resumes_without_a_flood(cluster):
    done = run(cluster, "pause", "beat")
    assert "paused beat since" in done.stdout
    wait_for(lambda: any(line["outcome"] == "paused" for line in as_json(cluster, "history", "beat")),
             message="a paused line in the ledger")
    before = latest_tick(cluster)
    # Ticks go by while paused: a ledger line covers them, none is fired.
    wait_for(lambda: sum(int(line.get("ticks", 0)) for line in as_json(cluster, "history", "beat")
                         if line["outcome"] == "paused") >= 3, timeout=15, message="three paused ticks")
    assert latest_tick(cluster) == before, "nothing fired while paused"
    assert as_json(cluster, "status")["schedules"][0]["paused"] is True

    run(cluster, "resume", "beat")
    resumed_at = redis_now(cluster.client)
    wait_for(lambda: latest_tick(cluster) != before, timeout=10, message="beat to fire again")
    fired_after = [t for t in ticks_of(cluster, "beat") if t > before]
    first = datetime.fromisoformat(fired_after[0])
    assert first >= resumed_at - timedelta(seconds=1), f"paused ticks were caught up: {fired_after[:5]}"
    assert all(count == 1 for count in Counter(m["firing_id"] for m in cluster.stream()).values())


def test_a_paused_tenant_is_left_out_and_named_in_the_ledger(cluster):
    run(cluster, "pause", "beat", "--tenant", "globex")
    wait_for(lambda: any("globex" in line.get("tenants", "") for line in as_json(cluster, "history", "beat")),
             message="a line naming the paused tenant")
    mark = latest_tick(cluster)
    wait_for(lambda: len([t for t in ticks_of(cluster, "beat", "acme") if t > mark]) >= 2, timeout=10,
             message="acme to keep firing")
    assert not [t for t in ticks_of(cluster, "beat", "globex") if t > mark], "globex fired while paused"
    lines = as_json(cluster, "history", "beat", "--tenant", "globex")
    assert any(line["tenant_outcome"] == "paused" for line in lines)
    assert run(cluster, "resume", "beat", "--tenant", "globex").stdout.startswith("resumed beat/globex")
    assert "was not paused" in run(cluster, "resume", "beat", "--tenant", "globex").stdout


def test_trigger_fires_each_tenant_once_with_its_own_id_and_says_so_in_the_ledger(cluster):
    result = as_json(cluster, "trigger", "hourly")
    assert result["status"] == "done" and result["fired"] == "3" and result["epoch"] == str(cluster.holder()[0])
    manual = [m for m in cluster.stream() if m["schedule"] == "hourly" and "/manual-" in m["firing_id"]]
    assert sorted(m["tenant"] for m in manual) == ["acme", "globex", "initech"]
    assert {m["firing_id"] for m in manual} == {f"hourly/{t}/manual-{result['request']}" for t in
                                                ("acme", "globex", "initech")}
    one = as_json(cluster, "trigger", "hourly", "--tenant", "acme")
    assert one["fired"] == "1" and one["request"] != result["request"]
    lines = [line for line in as_json(cluster, "history", "hourly") if line["outcome"] == "triggered"]
    assert [line["request"] for line in lines] == [result["request"], one["request"]]
    assert lines[1]["tenant"] == "acme" and lines[0]["fired"] == "3"


def test_a_trigger_without_a_leader_stays_queued_and_the_next_leader_fires_it_once(cluster):
    for replica in cluster.replicas.values():
        replica.stop()
    waited = run(cluster, "trigger", "hourly", "--tenant", "initech", "--wait", "0.5", check=False)
    assert waited.returncode == 3 and "stays queued" in waited.stderr
    request = waited.stderr.split("request ")[1].split()[0]

    cluster.start("r3")
    wait_for(lambda: cluster.client.exists(f"{PREFIX}:request:{request}"), timeout=15, message="the new leader to answer")
    manual = [m for m in cluster.stream() if m["firing_id"] == f"hourly/initech/manual-{request}"]
    assert len(manual) == 1 and manual[0]["epoch"] == str(cluster.holder()[0])
    assert cluster.client.xlen(f"{PREFIX}:requests") == 0


def test_unknown_names_are_refused_with_one_line_naming_the_file(cluster):
    for args in (["pause", "nope"], ["trigger", "nope"], ["history", "beat", "--tenant", "hooli"],
                 ["backfill", "beat", "--from", "yesterday", "--until", "2026-01-01T00:00:00Z"]):
        done = run(cluster, *args, check=False)
        assert done.returncode == 1, args
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "schedules.toml: no schedule named 'nope'" in run(cluster, "pause", "nope", check=False).stderr


def test_backfill_fires_a_skipped_window_once_even_when_run_twice(cluster):
    # beat runs catchup = "none": stop every replica, let ticks go by, start again: they are skipped.
    for replica in cluster.replicas.values():
        replica.stop()
    stopped_after = latest_tick(cluster)
    outage_start = redis_now(cluster.client)
    wait_for(lambda: redis_now(cluster.client) > outage_start + timedelta(seconds=4), timeout=10, message="an outage")
    cluster.start("r1")
    cluster.leader()
    wait_for(lambda: any(line["outcome"] == "skipped" for line in as_json(cluster, "history", "beat")),
             timeout=15, message="the outage's ticks recorded as skipped")
    skipped_line = next(line for line in as_json(cluster, "history", "beat") if line["outcome"] == "skipped")
    missing = int(skipped_line["ticks"])
    assert missing >= 3 and skipped_line["from"] > stopped_after

    window = ["--from", skipped_line["from"], "--until", skipped_line["until"]]
    first = as_json(cluster, "backfill", "beat", *window)
    assert first["status"] == "done" and first["ticks"] == str(missing) and first["fired"] == str(3 * missing)
    again = as_json(cluster, "backfill", "beat", *window)
    assert again["fired"] == "0" and again["deduplicated"] == str(3 * missing)

    counts = Counter(m["firing_id"] for m in cluster.stream())
    assert all(count == 1 for count in counts.values()), [k for k, v in counts.items() if v > 1]
    backfilled = [m for m in cluster.stream() if skipped_line["from"] <= m["tick"] <= skipped_line["until"]]
    assert len(backfilled) == 3 * missing and all(m["late"] == "true" for m in backfilled)
    lines = as_json(cluster, "history", "beat", "--limit", "500")
    by_request = {request: sorted(line["tick"] for line in lines if line.get("request") == request)
                  for request in (first["request"], again["request"])}
    assert by_request[first["request"]] == sorted({m["tick"] for m in backfilled})
    assert by_request[again["request"]] == by_request[first["request"]]
    assert {line["outcome"] for line in lines if line.get("request") == again["request"]} == {"deduplicated"}


def test_backfill_of_ticks_already_fired_sends_nothing_and_leaves_later_ticks_alone(cluster):
    fired = ticks_of(cluster, "beat")
    start, end = fired[0], fired[-1]
    before = Counter(m["firing_id"] for m in cluster.stream())
    future = (redis_now(cluster.client) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    result = as_json(cluster, "backfill", "beat", "--from", start, "--until", future)
    assert result["fired"] == "0" and int(result["deduplicated"]) >= 3 * len(set(fired))
    assert int(result["left"]) > 3000, "the hour ahead is the schedule's own"
    after = Counter(m["firing_id"] for m in cluster.stream())
    assert all(count == 1 for count in after.values())
    assert all(after[firing] == 1 for firing in before)
    assert end <= max(ticks_of(cluster, "beat"))


def test_backfill_beyond_what_the_scheduler_remembers_is_refused(cluster):
    old = (redis_now(cluster.client) - timedelta(days=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
    done = run(cluster, "backfill", "hourly", "--from", old, "--until", old, check=False)
    assert done.returncode == 1 and "too far back" in done.stderr and "catchup_window + 24 h" in done.stderr


def test_a_backfill_for_one_tenant_then_for_all_sends_each_firing_once(cluster):
    run(cluster, "pause", "beat")
    wait_for(lambda: sum(int(line.get("ticks", 0)) for line in as_json(cluster, "history", "beat")
                         if line["outcome"] == "paused") >= 2, timeout=15, message="two paused ticks")
    run(cluster, "resume", "beat")
    paused = next(line for line in as_json(cluster, "history", "beat") if line["outcome"] == "paused")
    window = ["--from", paused["from"], "--until", paused["until"]]

    one = as_json(cluster, "backfill", "beat", "--tenant", "acme", *window)
    assert one["fired"] == one["ticks"] == paused["ticks"]
    everyone = as_json(cluster, "backfill", "beat", *window)
    assert everyone["fired"] == str(2 * int(paused["ticks"])) and everyone["deduplicated"] == paused["ticks"]
    counts = Counter(m["firing_id"] for m in cluster.stream())
    assert all(count == 1 for count in counts.values())
    lines = as_json(cluster, "history", "beat", "--tenant", "acme", "--limit", "500")
    assert any(line.get("tenant") == "acme" and line["outcome"] == "backfilled" for line in lines)


def test_sigterm_mid_trigger_leaves_no_duplicate(cluster):
    """A trigger the leader is stopped in the middle of is finished by the next leader, once."""
    leader = cluster.leader()
    request = cluster.client.xadd(f"{PREFIX}:requests", {"kind": "trigger", "schedule": "hourly"}).decode()
    leader.signal(signal.SIGTERM)
    wait_for(lambda: cluster.client.exists(f"{PREFIX}:request:{request}"), timeout=15, message="an answer")
    manual = Counter(m["firing_id"] for m in cluster.stream() if m["firing_id"].endswith(f"manual-{request}"))
    assert sorted(manual) == [f"hourly/{t}/manual-{request}" for t in ("acme", "globex", "initech")]
    assert set(manual.values()) == {1}


def test_a_json_log_line_names_the_tenant_and_firing_id_of_a_trigger(tmp_path, make_cluster):
    cluster = make_cluster(write_table(tmp_path, TABLE), SCHEDULER_LOG_JSON="true")
    cluster.start("r1")
    leader = cluster.leader()
    result = as_json(cluster, "trigger", "hourly", "--tenant", "globex")

    def trigger_line():
        lines = [json.loads(line) for line in leader.output().splitlines() if line.startswith("{")]
        return next((line for line in lines if line.get("firing_id")), None)

    line = wait_for(trigger_line, message="the trigger's log line")
    assert line["tenant"] == "globex" and line["firing_id"] == f"hourly/globex/manual-{result['request']}"
    assert line["schedule"] == "hourly" and line["count"] == 1 and line["epoch"] == cluster.holder()[0]
