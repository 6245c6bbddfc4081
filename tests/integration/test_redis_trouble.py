"""Redis in trouble: a stopped, paused or restarted server, wrong passwords and bad URLs. Every
failure surfaces as the scheduler's own error (RedisUnavailable, SettingsError) and never echoes
the password of the URL."""

from __future__ import annotations

import shutil
import subprocess
import time
from datetime import timedelta

import pytest
import redis
from helpers import redis_now
from support import WATERMARK_TTL, accept, floor_minute, make_store, read_stream, route, take_lease, track_of

from redis_server import free_port, wait_for
from scheduler.plan.planner import Fanout, TickPlan
from scheduler.errors import RedisUnavailable, SettingsError
from scheduler.keys import Token
from scheduler.settings import Settings
from scheduler.store.connection import SOCKET_TIMEOUT, connect
from scheduler.tenants import scan_redis_set

PASSWORD = "pw-Zq8xK3-never-print-me"
WRONG = "wrong-Yv7Lq2-never-print-me-either"
TABLE = """
[[schedule]]
name = "report"
every = "1m"
tenants = ["acme", "globex"]
job = "ReportJob"
queue = "reports"
"""


class PasswordServer:
    """A redis-server with requirepass (tests/redis_server.py's RedisServer takes no extra args)."""

    def __init__(self, directory) -> None:
        self.port = free_port()
        self.directory = directory
        self.process = subprocess.Popen(
            [
                shutil.which("redis-server") or "redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                "--requirepass", PASSWORD, "--save", "", "--appendonly", "no", "--dir", str(directory),
                "--logfile", str(directory / "redis.log"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(self._answers, timeout=10, message=f"password redis-server on port {self.port}")

    def url(self, password: str | None = PASSWORD) -> str:
        auth = f":{password}@" if password is not None else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def _answers(self) -> bool:
        client = redis.Redis(host="127.0.0.1", port=self.port, password=PASSWORD, socket_timeout=1)
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False
        finally:
            client.close()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)

    def cleanup(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


@pytest.fixture
def password_server(tmp_path):
    directory = tmp_path / "redis-auth"
    directory.mkdir()
    server = PasswordServer(directory)
    yield server
    server.cleanup()


def assert_clean(error: BaseException, *secrets: str) -> None:
    """The scheduler's own error, translated where it entered, with no secret anywhere in it."""
    text = f"{error} {error!r} {error.args!r}"
    for secret in secrets:
        assert secret not in text, f"the error echoes a password: {text}"
    assert error.__cause__ is None and error.__suppress_context__, "translated with `from None`"


def every_store_call(store, token, schedule, track_key, tick, now):
    """Each public Store method, as a zero-argument call."""
    plan = [TickPlan(tick, [])]
    return {
        "acquire": lambda: store.acquire("r2", timedelta(seconds=10)),
        "renew": lambda: store.renew(token, timedelta(seconds=10)),
        "release": lambda: store.release(token),
        "holder": lambda: store.holder(),
        "watermark": lambda: store.watermark(track_key),
        "time": lambda: store.time(),
        "eviction": lambda: store.eviction(),
        "accept": lambda: accept(store, token, schedule, track_key, plan, tick, WATERMARK_TTL),
        "dispatch": lambda: store.dispatch(token, route(store, "reports")),
        "queues": lambda: store.queues(),
        "publish_table": lambda: store.publish_table(token, "f", "/p", now),
    }


# -- a stopped server ---------------------------------------------------------------------------


def test_store_calls_against_a_stopped_server_raise_redis_unavailable_without_the_password(tmp_path, password_server):
    client = connect(Settings(), url=password_server.url())
    store = make_store(client)
    token = take_lease(store, "r1")
    state = track_of(tmp_path, TABLE, "report")
    now = redis_now(client)
    tick = floor_minute(now)
    calls = every_store_call(store, token, state.track.schedule, state.key, tick, now)

    password_server.stop()

    for name, call in calls.items():
        with pytest.raises(RedisUnavailable) as failure:
            call()
        assert_clean(failure.value, PASSWORD)
        assert "ConnectionError" in str(failure.value), f"{name}: {failure.value}"
    with pytest.raises(RedisUnavailable) as failure:
        list(scan_redis_set(client, "tenants:active"))
    assert_clean(failure.value, PASSWORD)
    assert "tenants:active" in str(failure.value)
    client.close()


def test_each_failure_names_what_was_being_done(tmp_path, redis_server):
    store = make_store(connect(Settings(), url=redis_server.url))  # as a replica connects: no client retries
    state = track_of(tmp_path, TABLE, "report")
    now = redis_now(store.client)
    redis_server.stop()
    with pytest.raises(RedisUnavailable, match="^taking the lease: ConnectionError$"):
        store.acquire("r1", timedelta(seconds=10))
    with pytest.raises(RedisUnavailable, match="^delivering pending firings: ConnectionError$"):
        store.dispatch(Token(1, "r1"), route(store, "reports"))
    tick = floor_minute(now)
    plan = [TickPlan(tick, Fanout(state.track, ["acme"]).firings_at(tick))]
    with pytest.raises(RedisUnavailable, match="^enqueueing firings: ConnectionError$"):
        accept(store, Token(1, "r1"), state.track.schedule, state.key, plan, tick, WATERMARK_TTL)
    with pytest.raises(RedisUnavailable, match="^finishing ticks: ConnectionError$"):
        accept(store, Token(1, "r1"), state.track.schedule, state.key, [], now, WATERMARK_TTL)
    with pytest.raises(RedisUnavailable, match="^reading Redis's clock: ConnectionError$"):
        store.time()
    with pytest.raises(RedisUnavailable, match="^reading watermarks: ConnectionError$"):
        store.watermark(state.key)


def test_connect_to_a_stopped_server_raises_redis_unavailable_without_the_password(password_server):
    url = password_server.url()
    password_server.stop()
    with pytest.raises(RedisUnavailable) as failure:
        connect(Settings(), url=url)
    assert_clean(failure.value, PASSWORD)
    assert f"127.0.0.1:{password_server.port}" in str(failure.value), "it says where it tried"
    assert ":***@" in str(failure.value)


# -- passwords ----------------------------------------------------------------------------------


def test_connect_with_a_wrong_password_says_so_without_either_password(password_server):
    with pytest.raises(RedisUnavailable) as failure:
        connect(Settings(), url=password_server.url(WRONG))
    assert_clean(failure.value, WRONG, PASSWORD)
    message = str(failure.value)
    assert "authentication failed" in message
    assert password_server.url("***") in message, f"the redacted URL names the server: {message}"


def test_connect_without_a_password_to_a_server_that_wants_one_says_so(password_server):
    with pytest.raises(RedisUnavailable) as failure:
        connect(Settings(), url=password_server.url(None))
    assert_clean(failure.value, PASSWORD)
    assert "authentication failed" in str(failure.value)


def test_connect_with_the_right_password_works_and_the_url_may_come_from_settings(password_server):
    client = connect(Settings(redis_url=password_server.url()))
    assert client.ping()
    assert make_store(client).acquire("r1", timedelta(seconds=5))[0] == Token(1, "r1")
    client.close()


def test_connect_without_any_url_is_a_settings_error():
    with pytest.raises(SettingsError, match="SCHEDULER_REDIS_URL is not set"):
        connect(Settings(redis_url=None))


def test_connect_with_a_bad_scheme_is_a_settings_error_without_the_password():
    with pytest.raises(SettingsError) as failure:
        connect(Settings(), url=f"http://:{PASSWORD}@127.0.0.1:6390/0")
    assert_clean(failure.value, PASSWORD)
    assert "SCHEDULER_REDIS_URL" in str(failure.value)


@pytest.mark.parametrize("port", ["notaport", "99999"])
def test_connect_with_a_bad_port_is_a_settings_error_without_the_password(port):
    # Until d1c9ff7 redact_url() parsed the port again inside connect()'s error handler, and a raw
    # ValueError escaped instead of this SettingsError.
    with pytest.raises(SettingsError) as failure:
        connect(Settings(), url=f"redis://:{PASSWORD}@127.0.0.1:{port}/0")
    assert_clean(failure.value, PASSWORD)
    assert f"SCHEDULER_REDIS_URL 'redis://:***@127.0.0.1:{port}/0'" in str(failure.value)


# -- a paused server, a restarted server ---------------------------------------------------------


def test_a_frozen_server_times_out_into_redis_unavailable_and_recovers(redis_server):
    client = connect(Settings(), url=redis_server.url)
    store = make_store(client)
    token = take_lease(store, "r1")
    redis_server.pause()
    try:
        started = time.monotonic()
        with pytest.raises(RedisUnavailable, match="renewing the lease: TimeoutError") as failure:
            store.renew(token, timedelta(seconds=30))
        assert_clean(failure.value)
        assert time.monotonic() - started < SOCKET_TIMEOUT + 2, "the socket timeout bounds the wait"
    finally:
        redis_server.resume()
    assert wait_for(lambda: _answers(store), timeout=10, message="the store to work again")
    assert store.renew(token, timedelta(seconds=30))
    client.close()


def _answers(store) -> bool:
    try:
        return store.holder() is not None
    except RedisUnavailable:
        return False


def test_a_restarted_server_keeps_the_state_and_the_scripts_are_loaded_again(tmp_path, redis_server):
    client = redis_server.client()
    store = make_store(client)
    state = track_of(tmp_path, TABLE, "report")
    token = take_lease(store, "r1")
    now = redis_now(client)
    tick = floor_minute(now)
    plan = [TickPlan(tick, Fanout(state.track, state.tenant_ids).firings_at(tick))]
    assert accept(store, token, state.track.schedule, state.key, plan, None, WATERMARK_TTL).delivered == 2

    redis_server.restart()  # appendonly + fsync always: data survives, the script cache does not
    assert client.script_exists(store._enqueue.sha) == [False]

    again = accept(store, token, state.track.schedule, state.key, plan, tick, WATERMARK_TTL)
    assert (again.delivered, again.duplicates) == (0, 2), "the dedup set survived the restart"
    assert store.watermark(state.key) == tick
    assert len(read_stream(client, "reports")) == 2
    assert store.renew(token, timedelta(seconds=30)), "the lease survived the restart too"
    client.close()
