"""deploy/example_worker.py against a real redis-server: it handles a firing written with the
stream's exact fields, and the firings a real `scheduler run` enqueues; it waits out a restart of
Redis; SIGTERM stops it with 0."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import scheduler_env

from redis_server import free_port, wait_for
from scheduler.targets import STREAM_FIELDS

WORKER = Path(__file__).resolve().parents[2] / "deploy" / "example_worker.py"
SCHEDULER = Path(sys.executable).parent / "scheduler"
STREAM = "{scheduler}:queue:default"
GROUP = "example-workers"


def start_worker(redis_url: str, output: Path) -> subprocess.Popen:
    env = {**os.environ, "WORKER_REDIS_URL": redis_url, "WORKER_STREAM": STREAM, "WORKER_GROUP": GROUP}
    with output.open("wb") as sink:
        return subprocess.Popen([sys.executable, str(WORKER)], env=env, stdout=sink, stderr=subprocess.STDOUT)


def handled(output: Path) -> list[dict]:
    """The firings the worker printed so far (complete lines only)."""
    complete = output.read_text().split("\n")[:-1]
    lines = [json.loads(line) for line in complete if line.startswith("{")]
    return [line for line in lines if "handled" in line]


def stop(process: subprocess.Popen) -> int:
    process.send_signal(signal.SIGTERM)
    return process.wait(timeout=10)


def test_it_handles_a_firing_with_the_streams_exact_fields_once_and_removes_it(redis_server, redis_client, tmp_path):
    fields = {
        "firing_id": "nightly-report/acme/2026-11-24T03:00:00Z", "schedule": "nightly-report", "tenant": "acme",
        "tick": "2026-11-24T03:00:00Z", "enqueue_at": "2026-11-24T03:04:12.345Z", "job": "NightlyReportJob",
        "args": '{"kind":"daily"}', "queue": "default", "epoch": "7", "late": "false",
    }
    assert tuple(fields) == STREAM_FIELDS  # what the scheduler writes, in its order
    redis_client.xadd(STREAM, fields)
    output = tmp_path / "worker.out"
    worker = start_worker(redis_server.url, output)
    try:
        (line,) = wait_for(lambda: handled(output), message="the worker to print the firing")
        assert line == {
            "handled": "nightly-report/acme/2026-11-24T03:00:00Z", "job": "NightlyReportJob", "tenant": "acme",
            "tick": "2026-11-24T03:00:00+00:00", "enqueue_at": "2026-11-24T03:04:12.345000+00:00",
            "args": {"kind": "daily"}, "late": False, "epoch": 7,
        }
        wait_for(lambda: redis_client.xlen(STREAM) == 0, message="the handled message to leave the stream")
        assert redis_client.exists(f"{STREAM}:done:{GROUP}:nightly-report/acme/2026-11-24T03:00:00Z")
        assert redis_client.xpending(STREAM, GROUP)["pending"] == 0
    finally:
        assert stop(worker) == 0
    assert len(handled(output)) == 1
    assert redis_server.url not in output.read_text()


def test_it_waits_out_a_redis_restart_logging_it_once_and_handles_what_comes_after(redis_server, redis_client,
                                                                                   tmp_path):
    fields = {
        "firing_id": "nightly-report/acme/2026-11-24T03:00:00Z", "schedule": "nightly-report", "tenant": "acme",
        "tick": "2026-11-24T03:00:00Z", "enqueue_at": "2026-11-24T03:00:00Z", "job": "NightlyReportJob",
        "args": "{}", "queue": "default", "epoch": "7", "late": "false",
    }
    redis_client.xadd(STREAM, fields)
    output = tmp_path / "worker.out"
    worker = start_worker(redis_server.url, output)
    try:
        wait_for(lambda: handled(output), message="the worker to print the first firing")
        redis_server.stop()
        wait_for(lambda: "Redis is unavailable (" in output.read_text(), message="the worker to log the trouble")
        assert worker.poll() is None, "the worker is still running"
        redis_server.start()
        later = "nightly-report/acme/2026-11-25T03:00:00Z"
        redis_client.xadd(STREAM, {**fields, "firing_id": later, "tick": "2026-11-25T03:00:00Z"})
        wait_for(lambda: len(handled(output)) == 2, timeout=20, message="the worker to print the firing added after")
    finally:
        assert stop(worker) == 0
    assert handled(output)[1]["handled"] == later
    text = output.read_text()
    assert text.count("Redis is unavailable (") == 1
    assert text.count("Redis answers again after ") == 1
    assert "Traceback" not in text


@pytest.mark.e2e
def test_it_prints_what_a_real_replica_enqueues(redis_server, redis_client, tmp_path):
    (tmp_path / "schedules.toml").write_text('[[schedule]]\nname = "tick"\nevery = "1s"\njob = "Tick"\n')
    env = scheduler_env()
    env.update(SCHEDULER_REDIS_URL=redis_server.url, SCHEDULER_REPLICA_ID="compose-like", SCHEDULER_LOG_JSON="true",
               SCHEDULER_HTTP_PORT=str(free_port()))  # not the default 9108: the host may hold it
    with (tmp_path / "replica.log").open("wb") as log:
        replica = subprocess.Popen([str(SCHEDULER), "run", "--config", str(tmp_path / "schedules.toml")],
                                   cwd=tmp_path, env=env, stdout=log, stderr=log)
    output = tmp_path / "worker.out"
    worker = start_worker(redis_server.url, output)
    try:
        lines = wait_for(lambda: len(handled(output)) >= 2 and handled(output), timeout=15,
                         message="the worker to print two firings of the replica")
        assert all(line["handled"].startswith("tick/-/") and line["job"] == "Tick" for line in lines)
        assert all(line["epoch"] == 1 and line["late"] is False for line in lines)
        assert len({line["handled"] for line in lines}) == len(lines)
    finally:
        assert stop(worker) == 0
        replica.send_signal(signal.SIGTERM)
        assert replica.wait(timeout=10) == 0
