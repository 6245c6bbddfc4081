"""The fault-injecting proxy against a real redis-server: it forwards, refuses, holds, delays, cuts."""

from __future__ import annotations

import socket
import threading
import time

import pytest
import redis
from faults.proxy import BUSY, Proxy
from redis.backoff import NoBackoff
from redis.retry import Retry

from redis_server import wait_for


@pytest.fixture
def proxy(redis_server):
    with Proxy(redis_server.port) as running:
        yield running


@pytest.fixture
def through(proxy):
    """A redis-py client that talks to Redis through the proxy."""
    client = redis.Redis(host="127.0.0.1", port=proxy.port, socket_timeout=5)
    yield client
    client.close()


def test_pipelined_commands_come_back_in_order_through_the_proxy(through, redis_client):
    pipe = through.pipeline(transaction=False)
    for n in range(2000):
        pipe.set(f"k{n}", "x" * (n % 50))
        pipe.incr("counter")
    replies = pipe.execute()

    assert replies[0::2] == [True] * 2000
    assert replies[1::2] == list(range(1, 2001))
    assert redis_client.get("k1999") == b"x" * 49
    assert through.get("k7") == b"x" * 7


def test_a_refused_request_is_answered_in_its_place_and_never_reaches_redis(proxy, through, redis_client):
    fault = proxy.refuse(b"needle")
    pipe = through.pipeline(transaction=False)
    pipe.set("before", 1)
    pipe.set("refused", "a needle in it")
    pipe.incr("after")
    replies = pipe.execute(raise_on_error=False)

    assert replies[0] is True
    assert isinstance(replies[1], redis.exceptions.OutOfMemoryError)
    assert replies[2] == 1
    assert fault.triggered.is_set() and fault.matched == [[b"SET", b"refused", b"a needle in it"]]
    assert redis_client.exists("refused") == 0
    assert redis_client.get("before") == b"1"


def test_a_refusal_fires_once_then_the_same_request_goes_through(proxy, through, redis_client):
    proxy.refuse(b"needle", reply=BUSY)
    with pytest.raises(redis.ResponseError, match="BUSY"):
        through.set("key", "needle")
    assert through.set("key", "needle") is True
    assert redis_client.get("key") == b"needle"


def test_a_refusal_as_the_last_request_of_a_pipeline_is_still_answered(proxy, through):
    proxy.refuse(b"last")
    pipe = through.pipeline(transaction=False)
    pipe.ping()
    pipe.set("x", "last")
    replies = pipe.execute(raise_on_error=False)
    assert replies[0] is True
    assert isinstance(replies[1], redis.ResponseError)


def test_a_hold_forwards_the_match_and_keeps_the_clients_later_requests_until_released(proxy, through, redis_client):
    fault = proxy.hold(b"gate")
    results: list[object] = []

    def client_side() -> None:
        pipe = through.pipeline(transaction=False)
        pipe.set("gate", "open")
        pipe.set("behind", "1")
        results.extend(pipe.execute())

    worker = threading.Thread(target=client_side)
    worker.start()
    assert fault.wait(10)
    wait_for(lambda: redis_client.get("gate") == b"open", message="the matching request to reach Redis")
    other = redis.Redis(host="127.0.0.1", port=proxy.port, socket_timeout=5)
    assert other.set("elsewhere", "1") is True  # another connection is not held
    deadline = time.monotonic() + 0.5
    while time.monotonic() < deadline:  # polls: the held request must stay away all along
        assert redis_client.exists("behind") == 0
    assert results == []

    proxy.release(fault)
    worker.join(10)
    assert results == [True, True]
    assert redis_client.get("behind") == b"1"
    other.close()


def test_a_held_clients_requests_are_dropped_when_it_goes_away(proxy, redis_server, redis_client):
    fault = proxy.hold(b"gate")
    # No retries: redis-py would otherwise send the pipeline again on a new connection.
    client = redis.Redis(host="127.0.0.1", port=proxy.port, socket_timeout=0.5, retry=Retry(NoBackoff(), 0))
    pipe = client.pipeline(transaction=False)
    pipe.set("gate", "open")
    pipe.set("behind", "1")
    with pytest.raises(redis.TimeoutError):
        pipe.execute()  # redis-py drops the connection on a timeout
    client.close()
    wait_for(lambda: not fault._links, message="the proxy noticing the client left")
    proxy.release(fault)

    assert redis_client.get("gate") == b"open"
    assert redis_client.exists("behind") == 0


def test_replies_can_be_delayed(proxy, through):
    through.ping()
    proxy.delay_replies(0.3)
    started = time.monotonic()
    through.ping()
    assert time.monotonic() - started >= 0.3
    proxy.delay_replies(0)


def test_cut_connections_drops_open_ones_and_accepts_new(proxy):
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as raw:
        raw.sendall(b"*1\r\n$4\r\nPING\r\n")
        assert raw.recv(100) == b"+PONG\r\n"
        proxy.cut_connections()
        assert raw.recv(100) == b""
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as raw:
        raw.sendall(b"PING\r\n")  # an inline command, as typed into telnet
        assert raw.recv(100) == b"+PONG\r\n"


def test_pub_sub_messages_pass_through(proxy, through, redis_client):
    pubsub = through.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe("news")
    wait_for(lambda: redis_client.pubsub_numsub("news")[0][1] == 1, message="the subscription")
    redis_client.publish("news", "hello")
    message = wait_for(lambda: pubsub.get_message(timeout=0.1), message="the message")
    assert message["data"] == b"hello"
    pubsub.close()
