"""What the relay's senders put in an SQS message, without a network: the body and the FIFO ids, and
the fence asked before every SendMessageBatch; and the Redis URL a Sidekiq or Celery sender reads from its
redis_url_env, refused or shown without its password."""

from __future__ import annotations

import hashlib

import pytest
from helpers import RecordingSqs

from scheduler.errors import SettingsError
from scheduler.keys import Keys
from scheduler.settings import Settings
from scheduler.table import QueueSpec, QueueType
from scheduler.replica.senders import RedisSender, SqsSender, firing_message, group_id, target_redis_url

FIELDS = {"firing_id": "s/acme/2026-11-24T03:00:00Z", "schedule": "s", "tenant": "acme",
          "tick": "2026-11-24T03:00:00Z", "enqueue_at": "2026-11-24T03:00:00.250Z", "job": "J",
          "args": '{"ids":[],"n":1}', "queue": "exports", "epoch": "12", "late": "true"}


def test_the_firing_message_parses_args_late_and_epoch_and_keeps_the_field_order():
    message = firing_message(FIELDS)
    assert list(message) == ["firing_id", "schedule", "tenant", "tick", "enqueue_at", "job", "args", "queue",
                             "epoch", "late"]
    assert (message["args"], message["late"], message["epoch"]) == ({"ids": [], "n": 1}, True, 12)


@pytest.mark.parametrize("tenant", ["acme", "a" * 128, "org:42.eu", "~!{}"])
def test_a_tenant_sqs_accepts_as_a_group_id_is_used_as_is(tenant):
    assert group_id(tenant) == tenant


@pytest.mark.parametrize("tenant", ["a" * 129, "société", "tab\there"])
def test_a_tenant_sqs_would_refuse_as_a_group_id_is_hashed(tenant):
    assert group_id(tenant) == hashlib.sha256(tenant.encode()).hexdigest()


@pytest.mark.parametrize("endpoint, expected", [
    (None, "http://127.0.0.1:9324"),
    ("https://vpce-0123.sqs.ap-northeast-1.vpce.amazonaws.com", "https://vpce-0123.sqs.ap-northeast-1.vpce.amazonaws.com"),
])
def test_an_sqs_sender_sends_to_the_url_host_unless_given_an_endpoint(endpoint, expected):
    pytest.importorskip("boto3")
    spec = QueueSpec("q", QueueType.SQS, url="http://127.0.0.1:9324/000000000000/q.fifo", region="ap-northeast-1",
                     endpoint=endpoint)
    sender = SqsSender(spec)
    assert sender.client.meta.endpoint_url == expected and sender.fifo
    sender.close()


def test_an_sqs_sender_sends_no_further_batch_once_its_fence_says_no():
    pytest.importorskip("boto3")
    sender = SqsSender(QueueSpec("q", QueueType.SQS, url="https://sqs.ap-northeast-1.amazonaws.com/1/q",
                                  region="ap-northeast-1"))
    sender.client = client = RecordingSqs()
    firings = [{**FIELDS, "tenant": f"t{n}", "firing_id": f"s/t{n}/2026-11-24T03:00:00Z"} for n in range(30)]
    # Yes until the first SendMessageBatch is made: as a leader stopped there past its lease finds on waking.
    accepted = sender.send(firings, fence=lambda: not client.calls)
    assert [[entry["Id"] for entry in call] for call in client.calls] == [[str(n) for n in range(10)]]
    assert accepted == [True] * 10 + [False] * 20


REMOTE = QueueSpec("remote", QueueType.SIDEKIQ, redis_url_env="SIDEKIQ_REDIS_URL")


@pytest.mark.parametrize("url", ["redis://:hun/ter2@x:6379/0", "redis://:hun#ter2@x:6379/0",
                                 "redis://x:6379/0?password=hun#ter2"])
def test_a_redis_url_env_not_read_as_written_is_refused_naming_the_variable(monkeypatch, url):
    monkeypatch.setenv("SIDEKIQ_REDIS_URL", url)
    with pytest.raises(SettingsError) as raised:
        target_redis_url(REMOTE)
    assert str(raised.value) == (
        "queue 'remote': the URL in SIDEKIQ_REDIS_URL (its redis_url_env) cannot be read as written: a '/', '?', "
        "'#' or '@' in its user name or password must be percent-encoded (%2F, %3F, %23, %40)")


@pytest.mark.parametrize("url, where", [
    ("redis://x:6379/0?password=hunter2", "redis://x:6379/0?password=***"),
    ("redis://:hun%2Fter2@x:6379/0", "redis://:***@x:6379/0"),
])
def test_a_redis_sender_names_its_redis_without_the_password(monkeypatch, url, where):
    monkeypatch.setenv("SIDEKIQ_REDIS_URL", url)
    sender = RedisSender(REMOTE, "remote", Keys("{scheduler}"), Settings())
    try:
        assert sender.where == where
    finally:
        sender.close()
