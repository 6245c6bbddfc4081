"""What tests of every layer share: writing a table, reading Redis's clock, the usual [queues] entries,
a monotonic clock moved by hand, a stand-in for boto3's SQS client, the real command in a clean environment."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path

import redis

SCHEDULER = Path(sys.executable).parent / "scheduler"  # the real command, from the tests' own venv

# The [queues] entries several tests declare, by name: each test joins the ones it needs.
QUEUE_ENTRIES = {
    "reports": '[queues.reports]\ntype = "sidekiq"\n',
    "rails": '[queues.rails]\ntype = "sidekiq"\nqueue = "mailers"\nactive_job = true\n',
    "billing": '[queues.billing]\ntype = "celery"\nqueue = "billing-tasks"\n',
    "exports": '[queues.exports]\ntype = "sqs"\nurl = "https://sqs.ap-northeast-1.amazonaws.com/123456789012/exports.fifo"\n',
}


def queue_entries(*names: str) -> str:
    """The TOML of the named entries of QUEUE_ENTRIES, in that order, a blank line between them."""
    return "\n".join(QUEUE_ENTRIES[name] for name in names)


def write_table(directory: Path, text: str, name: str = "schedules.toml") -> Path:
    """``text`` (dedented) as ``directory/name``."""
    path = directory / name
    path.write_text(textwrap.dedent(text))
    return path


def redis_now(client: redis.Redis) -> datetime:
    """Redis's own clock (TIME: the scripts decide 'due' by it), as an aware UTC datetime."""
    seconds, micros = client.time()
    return datetime.fromtimestamp(seconds, UTC) + timedelta(microseconds=micros)


class FakeClock:
    """A monotonic clock the test moves by hand (a Lease's ``clock``)."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def monotonic(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class RecordingSqs:
    """A stand-in for boto3's SQS client: accepts every entry and records each SendMessageBatch's
    entries; ``during`` runs inside each call (to pause the sender's leader there, say)."""

    def __init__(self, during: Callable[[], None] = lambda: None) -> None:
        self.calls: list[list[dict[str, str]]] = []
        self.during = during

    def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, str]]) -> dict:
        self.calls.append(Entries)
        self.during()
        return {"Successful": [{"Id": entry["Id"]} for entry in Entries], "Failed": []}

    def close(self) -> None:
        pass


def scheduler_env(**settings: str) -> dict[str, str]:
    """The test's environment without any SCHEDULER_* variable of its own, with ``settings`` added."""
    return {**{k: v for k, v in os.environ.items() if not k.startswith("SCHEDULER_")}, **settings}


def run_scheduler(*args: str, env: Mapping[str, str] | None = None, cwd: Path | None = None,
                  timeout: float = 120) -> subprocess.CompletedProcess:
    """The real ``scheduler`` command with ``args``, in scheduler_env() plus ``env``; never raises on its exit code."""
    return subprocess.run([str(SCHEDULER), *args], capture_output=True, text=True, timeout=timeout,
                          env=scheduler_env(**(env or {})), cwd=cwd, check=False)
