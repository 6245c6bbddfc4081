"""Faults on real parts: each one does a single thing to a running `scheduler run` process or to the
redis-server they share, from its ``start()`` until its ``stop()``. When and to whom is the
harness's business (harness.py); these only know how.

A fault that sees the real system misbehave under it (a replica that does not exit 0 on SIGTERM)
writes what it saw into ``problem`` for the harness to report with the other violations.
"""

from __future__ import annotations

import signal
import subprocess
import threading
from pathlib import Path

import redis
from clocks import faketime_env
from e2e.replicas import Replica

from redis_server import RedisServer

EXIT_WAIT = 15.0  # seconds a replica may take to exit on SIGTERM on a busy machine before it counts as stuck
RESTORE_BUSY_THRESHOLD_MS = 5000  # Redis's default busy-reply-threshold

# Read-only, so it writes nothing and Redis could still SCRIPT KILL it; TIME moves on inside a script.
SPIN = """
local function now_us()
    local t = redis.call('TIME')
    return tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local deadline = now_us() + tonumber(ARGV[1]) * 1000
while now_us() < deadline do end
return 1
"""


class Fault:
    """One fault: ``start()`` inflicts it, ``stop()`` ends it and restores whatever it changed."""

    problem: str | None = None

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError


class ReplicaKill(Fault):
    """SIGKILL a replica: it cannot release its lease, so a standby takes over only when the TTL runs
    out, and a tick it was half-way through is left for the next leader. ``stop()`` starts a new
    process of the same replica (same name, settings and clock), as a supervisor would."""

    def __init__(self, replica: Replica) -> None:
        self.replica = replica

    def start(self) -> None:
        self.replica.signal(signal.SIGKILL)
        self.replica.wait(EXIT_WAIT)

    def stop(self) -> None:
        self.replica.start()


class ReplicaPause(Fault):
    """SIGSTOP a replica (a GC pause, a frozen VM) for longer than the lease TTL: its lease runs out
    while none of its threads can notice. ``stop()`` sends SIGCONT; from then on it must find out it
    lost the lease before it writes anything."""

    def __init__(self, replica: Replica) -> None:
        self.replica = replica

    def start(self) -> None:
        self.replica.signal(signal.SIGSTOP)

    def stop(self) -> None:
        self.replica.signal(signal.SIGCONT)


class ReplicaTerm(Fault):
    """SIGTERM a replica (a deploy, a scale-in): it must hand its lease over and exit 0. ``stop()``
    waits for the exit (still running EXIT_WAIT s after the signal is a problem, and it is killed)
    and starts the replica again."""

    def __init__(self, replica: Replica) -> None:
        self.replica = replica

    def start(self) -> None:
        self.replica.signal(signal.SIGTERM)

    def stop(self) -> None:
        try:
            code = self.replica.wait(EXIT_WAIT)
        except subprocess.TimeoutExpired:
            self.replica.process.kill()
            self.replica.wait()
            self.problem = f"{self.replica.name} was still running {EXIT_WAIT:.0f} s after SIGTERM (killed)"
        else:
            if code != 0:
                self.problem = f"{self.replica.name} exited with code {code} on SIGTERM, not 0"
        self.replica.start()


class RedisPause(Fault):
    """SIGSTOP redis-server: connections stay open and new ones are still accepted by the kernel, but
    no call is answered until SIGCONT (clients time out and retry into the same wall); commands sent
    meanwhile run when it resumes, and keys with a TTL (the lease) may have expired by then."""

    def __init__(self, server: RedisServer) -> None:
        self.server = server

    def start(self) -> None:
        self.server.pause()

    def stop(self) -> None:
        self.server.resume()


class RedisRestart(Fault):
    """Stop redis-server (SIGTERM) and, at ``stop()``, start it again on the same port: connections
    break and are refused meanwhile, loaded scripts are gone, and the data come back from the AOF
    (``appendfsync always``), the lease with its expiry included."""

    def __init__(self, server: RedisServer) -> None:
        self.server = server

    def start(self) -> None:
        self.server.stop()

    def stop(self) -> None:
        self.server.start()


class RedisFull(Fault):
    """Redis out of memory: ``maxmemory`` set ``headroom`` bytes above the memory in use, with
    ``noeviction``, so every write that may grow memory is refused with OOM (a script is aborted at
    its first such write) while reads and PEXPIRE still work. ``stop()`` restores both settings."""

    def __init__(self, server: RedisServer, headroom: int) -> None:
        self.server = server
        self.headroom = headroom
        self.saved: dict[str, str] = {}

    def start(self) -> None:
        client = self.server.client()
        self.saved = {name: client.config_get(name)[name] for name in ("maxmemory", "maxmemory-policy")}
        used = client.info("memory")["used_memory"]
        client.config_set("maxmemory-policy", "noeviction")
        client.config_set("maxmemory", used + self.headroom)
        client.close()

    def stop(self) -> None:
        client = self.server.client()
        for name, value in self.saved.items():
            client.config_set(name, value)
        client.close()


class RedisBusy(Fault):
    """A script hogging Redis: ``busy-reply-threshold`` (alias ``lua-time-limit``) lowered to
    ``threshold_ms``, then a read-only Lua script that spins for ``seconds`` on a connection of its
    own. Once it has run past the threshold every other client gets BUSY replies until it ends.
    ``stop()`` waits for the spin to end, then restores the threshold."""

    def __init__(self, server: RedisServer, threshold_ms: int, seconds: float) -> None:
        self.server = server
        self.threshold_ms = threshold_ms
        self.seconds = seconds
        self.spinner: threading.Thread | None = None
        self.error: BaseException | None = None

    def start(self) -> None:
        client = self.server.client()
        client.config_set("lua-time-limit", self.threshold_ms)
        client.close()
        self.spinner = threading.Thread(target=self._spin, name="redis-busy", daemon=True)
        self.spinner.start()

    def _spin(self) -> None:
        client = redis.Redis(host="127.0.0.1", port=self.server.port, socket_timeout=self.seconds + 30)
        try:
            client.eval(SPIN, 0, int(self.seconds * 1000))
        except redis.RedisError as error:
            self.error = error
        finally:
            client.close()

    def stop(self) -> None:
        assert self.spinner is not None
        self.spinner.join(self.seconds + 60)
        client = self.server.client()
        client.config_set("lua-time-limit", RESTORE_BUSY_THRESHOLD_MS)
        client.close()
        if self.error is not None:
            raise RuntimeError(f"the busy script could not run: {self.error}")


def skewed_clock(offset_seconds: float) -> dict[str, str]:
    """Settings for a Replica whose wall clock runs ``offset_seconds`` off (ahead when positive) for
    the life of every process it starts, its monotonic clock untouched (libfaketime). Redis's clock
    is the truth: such a replica must change nothing about what is delivered, or when."""
    return faketime_env(offset_seconds, base={})


def write_tenant_file(path: Path, ids: list[str]) -> None:
    """A dense tenant set, one id a line: thousands of tenants make each tick several 1,000-firing
    script calls in one pipeline, so the leader is busy writing when a fault hits."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{tenant}\n" for tenant in ids))
