"""Real ``scheduler run`` processes for end-to-end tests, and ways to read back what they did."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import redis
from helpers import SCHEDULER, scheduler_env
from prometheus_client.parser import text_string_to_metric_families

from redis_server import free_port, wait_for
from scheduler.acl import queue_keys, render
from scheduler.table import load_table

PREFIX = "{scheduler}"
DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never through a proxy
FAST_SETTINGS = {
    "SCHEDULER_LEASE_TTL": "2s",
    "SCHEDULER_RETRY_INTERVAL": "0.2s",
    "SCHEDULER_RELOAD_INTERVAL": "0.3s",
}


def scheduler_user_rules(config: Path, prefix: str = PREFIX) -> list[str]:
    """The ACL rules `scheduler acl --tenant-keys 'tenants:*' --queue-keys --config <config>` prints."""
    return render(prefix, ("tenants:*",), queue_keys(load_table(config), prefix)).rules()



@dataclass
class Replica:
    name: str
    config: Path
    redis_url: str
    log: Path
    settings: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen | None = None
    log_offset: int = 0  # where this incarnation's output starts in the (shared, appended) log
    http_port: int = field(default_factory=free_port)  # its /metrics, /healthz and /readyz; kept across restarts

    def start(self) -> "Replica":
        env = scheduler_env()
        env.update(FAST_SETTINGS)
        env["SCHEDULER_HTTP_PORT"] = str(self.http_port)
        env.update(self.settings)
        env.update({"SCHEDULER_REDIS_URL": self.redis_url, "SCHEDULER_REPLICA_ID": self.name})
        self.log_offset = self.log.stat().st_size if self.log.exists() else 0
        with self.log.open("ab") as sink:
            self.process = subprocess.Popen(
                [str(SCHEDULER), "run", "--config", str(self.config)],
                cwd=self.config.parent, env=env, stdout=sink, stderr=sink,
            )
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def signal(self, number: int) -> None:
        os.kill(self.pid, number)

    def wait(self, timeout: float = 10) -> int:
        assert self.process is not None
        return self.process.wait(timeout)

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def output(self) -> str:
        """What the current (or last) process wrote, not earlier incarnations of this replica."""
        if not self.log.exists():
            return ""
        with self.log.open("rb") as log:
            log.seek(self.log_offset)
            return log.read().decode(errors="replace")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def get(self, path: str) -> tuple[int, str]:
        """(HTTP status, body) of a GET on this replica's endpoints; (0, reason) when nothing answers."""
        try:
            with DIRECT.open(self.url + path, timeout=5) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()
        except OSError as error:
            return 0, str(error)

    def probe(self, path: str) -> tuple[int, dict]:
        """/healthz or /readyz: (status, its JSON answer)."""
        status, body = self.get(path)
        return status, (json.loads(body) if status else {})

    def metrics(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        """One scrape of /metrics: every sample by (name, sorted labels); empty when nothing answers."""
        status, body = self.get("/metrics")
        if status != 200:
            return {}
        return {(s.name, tuple(sorted(s.labels.items()))): s.value
                for family in text_string_to_metric_families(body) for s in family.samples}

    def stop(self) -> None:
        if self.alive:
            self.signal(signal.SIGCONT)
            self.signal(signal.SIGTERM)
            try:
                self.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.wait()


class Cluster:
    """Replicas of one table sharing one Redis, named r1, r2, ...; ``client`` reads back what they
    did (default: a client of ``redis_url``; give an admin's when the replicas' user may not)."""

    def __init__(self, directory: Path, config: Path, redis_url: str, client: redis.Redis | None = None,
                 **settings: str) -> None:
        self.directory = directory
        self.config = config
        self.redis_url = redis_url
        self.settings = settings
        self.replicas: dict[str, Replica] = {}
        self.client = client or redis.Redis.from_url(redis_url, socket_timeout=5)

    def start(self, name: str) -> Replica:
        replica = Replica(name, self.config, self.redis_url, self.directory / f"{name}.log", dict(self.settings))
        self.replicas[name] = replica.start()
        return replica

    def holder(self) -> tuple[int, str] | None:
        """(epoch, replica) of the lease in Redis, or None."""
        try:
            value = self.client.get(f"{PREFIX}:lease")
        except redis.RedisError:
            return None
        if not value:
            return None
        epoch, _, name = value.decode().partition(":")
        return int(epoch), name

    def leader(self, timeout: float = 10, other_than: str | None = None) -> Replica:
        def current() -> Replica | None:
            held = self.holder()
            if held and held[1] != other_than and held[1] in self.replicas:
                return self.replicas[held[1]]
            return None

        return wait_for(current, timeout, message=f"a leader other than {other_than}")

    def stop_all(self) -> None:
        for replica in self.replicas.values():
            replica.stop()

    def stream(self, queue: str = "default") -> list[dict[str, str]]:
        entries = self.client.xrange(f"{PREFIX}:queue:{queue}")
        return [
            {"_id": entry_id.decode(), **{k.decode(): v.decode() for k, v in fields.items()}}
            for entry_id, fields in entries
        ]

    def firing_counts(self, queue: str = "default") -> Counter:
        return Counter(message["firing_id"] for message in self.stream(queue))

    def watermark(self, track: str) -> int | None:
        value = self.client.get(f"{PREFIX}:watermark:{track}")
        return int(value) if value else None

    def pending(self, queue: str = "default") -> int:
        return self.client.zcard(f"{PREFIX}:pending:{queue}")
