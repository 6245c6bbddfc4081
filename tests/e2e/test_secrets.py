"""No password in any output, whatever form its URL takes: the real `scheduler` commands (run, with
its relay; validate, dry-run, status, trigger, acl) against a real redis-server started with
--requirepass, the password written as is, percent-encoded, or in the query (``?password=``).

stdout, stderr and the JSON log lines are searched for every 4-character piece of the password and
of its percent-encoded form: none may appear. A URL that reads as written must connect (the relay's
own connection included); one that does not is refused by every command with one line that quotes
nothing of it.
"""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path
from urllib.parse import quote

import pytest
import redis
from helpers import scheduler_env, write_table
from replicas import FAST_SETTINGS, SCHEDULER

from redis_server import RedisServer, wait_for

pytestmark = pytest.mark.e2e

EVERY = "Zq7#vR?w/Lx@k%Tp:Nd"  # each character that needs care in a URL: '#', '?', '/', '@', '%', ':'
AS_WRITTEN = "Mb4@Hc%Wy:Gj8"  # '@', '%' and ':' only: read as written even when not encoded
QUERY_LIKE = "Ux%41:&+Kw3=Ye"  # what a query would split or decode: '&', '+', '=' and an escape-like '%41'
MISREAD = ("cannot be read as written: a '/', '?', '#' or '@' in its user name or password must be "
           "percent-encoded (%2F, %3F, %23, %40)")
TABLE = """
[tenants]
active = { redis_set = "tenants:active" }

[queues.remote]
type = "sidekiq"
redis_url_env = "SCHEDULER_SIDEKIQ_URL"

[[schedule]]
name = "beat"
every = "1h"
tenants = "active"
job = "Beat"
queue = "remote"
"""
COMMANDS = [
    ("validate",),
    ("dry-run", "--count", "2", "--format", "jsonl"),
    ("status",),
    ("trigger", "beat", "--wait", "20"),
    ("acl", "--tenant-keys", "tenants:*", "--queue-keys"),
]


def url(form: str, password: str, port: int) -> str:
    encoded = quote(password, safe="")
    return {
        "userinfo": f"redis://:{password}@127.0.0.1:{port}/0",
        "userinfo-encoded": f"redis://:{encoded}@127.0.0.1:{port}/0",
        "query": f"redis://127.0.0.1:{port}/0?password={password}",
        "query-encoded": f"redis://127.0.0.1:{port}/0?password={encoded}",
    }[form]


def shown(form: str, port: int) -> str:
    """The URL as the scheduler shows it."""
    if form.startswith("userinfo"):
        return f"redis://:***@127.0.0.1:{port}/0"
    return f"redis://127.0.0.1:{port}/0?password=***"


def pieces(password: str) -> set[str]:
    """Every 4 characters in a row of the password, and of its percent-encoded form."""
    return {text[start:start + 4] for text in (password, quote(password, safe=""))
            for start in range(len(text) - 3)}


def leaked(password: str, *outputs: str) -> list[str]:
    return sorted(piece for piece in pieces(password) if any(piece in output for output in outputs))


def environment(main: str, sidekiq: str) -> dict[str, str]:
    return {**scheduler_env(), **FAST_SETTINGS, "SCHEDULER_REDIS_URL": main, "SCHEDULER_SIDEKIQ_URL": sidekiq,
            "SCHEDULER_LOG_JSON": "true", "SCHEDULER_HTTP_PORT": "0", "SCHEDULER_REPLICA_ID": "r1"}


def command(config: Path, env: dict[str, str], *arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(SCHEDULER), *arguments, "--config", str(config)], env=env, cwd=config.parent,
                          capture_output=True, text=True, timeout=60)


class Run:
    """`scheduler run` with stdout and stderr each in a file of its own."""

    def __init__(self, directory: Path, config: Path, env: dict[str, str]) -> None:
        self.stdout, self.stderr = directory / "run.out", directory / "run.err"
        with self.stdout.open("wb") as out, self.stderr.open("wb") as err:
            self.process = subprocess.Popen([str(SCHEDULER), "run", "--config", str(config)], env=env,
                                            cwd=config.parent, stdout=out, stderr=err)

    def output(self) -> str:
        return self.stdout.read_text(errors="replace") + self.stderr.read_text(errors="replace")

    def log_lines(self) -> list[dict]:
        """Every line of the log as the JSON object it must be."""
        return [json.loads(line) for line in self.output().splitlines()]

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise


@pytest.fixture
def requiring(tmp_path):
    """Start a redis-server that asks for a password (stopped afterwards); returns it and its admin client."""
    started: list[tuple[RedisServer, redis.Redis]] = []

    def start(password: str) -> tuple[RedisServer, redis.Redis]:
        server = RedisServer(tmp_path / "redis", options=("--requirepass", password)).start()
        started.append((server, server.client(password=password)))
        return started[-1]

    yield start
    for server, admin in started:
        admin.close()
        server.cleanup()


@pytest.mark.parametrize("password, form", [
    (EVERY, "userinfo-encoded"), (EVERY, "query-encoded"),
    (AS_WRITTEN, "userinfo"), (AS_WRITTEN, "userinfo-encoded"), (AS_WRITTEN, "query-encoded"),
    (QUERY_LIKE, "userinfo-encoded"), (QUERY_LIKE, "query-encoded"),
])
def test_a_url_read_as_written_connects_everywhere_and_its_password_is_never_shown(tmp_path, requiring, password,
                                                                                   form):
    server, admin = requiring(password)
    admin.sadd("tenants:active", "t1")
    config = write_table(tmp_path, TABLE)
    address = url(form, password, server.port)
    env = environment(address, address)
    replica = Run(tmp_path, config, env)
    try:
        wait_for(lambda: "acquired the lease" in replica.output(), timeout=15, message="r1 to lead")
        done = [command(config, env, *arguments) for arguments in COMMANDS]
        wait_for(lambda: admin.llen("queue:remote") >= 1, timeout=15, message="the relay to deliver the trigger")
    finally:
        stopped = replica.stop()
    assert stopped == 0
    for arguments, result in zip(COMMANDS, done):
        assert result.returncode == 0, f"{arguments[0]}: {result.stderr}"
    lines = replica.log_lines()
    assert f"using Redis at {shown(form, server.port)}" in [line["message"] for line in lines]
    outputs = [replica.output(), *(result.stdout + result.stderr for result in done)]
    assert "Traceback" not in "".join(outputs)
    assert leaked(password, *outputs) == []


REFUSED = [(EVERY, "userinfo"), (EVERY, "query"), (AS_WRITTEN, "query")]


@pytest.mark.parametrize("password, form", REFUSED)
def test_a_url_not_read_as_written_is_refused_by_every_command_without_a_piece_of_it(tmp_path, requiring, password,
                                                                                     form):
    server, _ = requiring(password)
    config = write_table(tmp_path, TABLE)
    address = url(form, password, server.port)
    env = environment(address, url("userinfo-encoded", password, server.port))
    replica = Run(tmp_path, config, env)
    try:
        wait_for(lambda: replica.process.poll() is not None, timeout=15, message="scheduler run to refuse the URL")
    finally:
        stopped = replica.stop()
    assert stopped == 1
    done = [command(config, env, *arguments) for arguments in COMMANDS]
    assert replica.output() == f"scheduler run: SCHEDULER_REDIS_URL: {MISREAD}\n"
    for arguments, result in zip(COMMANDS, done):
        assert (result.returncode, result.stdout, result.stderr) == (
            1, "", f"scheduler {arguments[0]}: SCHEDULER_REDIS_URL: {MISREAD}\n")
    assert leaked(password, replica.output(), *(result.stdout + result.stderr for result in done)) == []


@pytest.mark.parametrize("password, form", REFUSED)
def test_the_relay_refuses_a_redis_url_env_not_read_as_written_naming_the_variable(tmp_path, requiring, password,
                                                                                   form):
    server, admin = requiring(password)
    admin.sadd("tenants:active", "t1")
    config = write_table(tmp_path, TABLE)
    env = environment(url("userinfo-encoded", password, server.port), url(form, password, server.port))
    replica = Run(tmp_path, config, env)
    try:
        wait_for(lambda: "acquired the lease" in replica.output(), timeout=15, message="r1 to lead")
        assert command(config, env, "trigger", "beat", "--wait", "20").returncode == 0
        wait_for(lambda: "the relay could not deliver" in replica.output(), timeout=15, message="the relay's refusal")
    finally:
        stopped = replica.stop()
    assert stopped == 0
    [refusal] = [line["message"] for line in replica.log_lines() if "the relay could not deliver" in line["message"]]
    assert refusal == (f"queue remote: the relay could not deliver: queue 'remote': the URL in SCHEDULER_SIDEKIQ_URL "
                       f"(its redis_url_env) {MISREAD}; retrying")
    assert admin.llen("queue:remote") == 0
    assert leaked(password, replica.output()) == []
