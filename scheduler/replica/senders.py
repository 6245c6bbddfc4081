"""The relay's senders: how firings taken from an outbox reach a target outside the scheduler's Redis.

* :class:`RedisSender`: a Sidekiq or Celery Redis of its own. One script call per batch writes each
  firing in the target's format and sets a marker per firing in that Redis, in one atomic step, so a
  batch sent again (the relay died before removing it from the outbox) writes nothing twice while the
  markers live (MARKER_TTL).
* :class:`SqsSender`: SQS, with boto3. FIFO queues get ``MessageGroupId`` = tenant (see group_id) and
  ``MessageDeduplicationId`` = SHA-256 of the firing id, so SQS drops a batch sent again within its
  five-minute deduplication window; a standard queue may then hold a firing twice, and its consumers
  deduplicate on ``firing_id``.

A sender returns, per firing, whether the target accepted it; only those leave the outbox. It asks the
relay's fence (may this replica still send?) before each request to the target: before every
SendMessageBatch, before the Redis sender's one script call. Once the fence says no it sends nothing
more, and the rest of the batch is reported as not accepted, so it stays in the outbox for the next
leader (relay.py says why the fence is the lease's local view).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from scheduler.errors import SchedulerError, SettingsError
from scheduler.keys import Keys
from scheduler.settings import Settings
from scheduler.store.connection import connect, redis_errors
from scheduler.store.scripts import Scripts, lua
from scheduler.table import QueueSpec, QueueType
from scheduler.targets import STREAM_FIELDS, deliver_lua, local_write
from scheduler.urls import redact_url, url_problem

Firing = dict[str, str]  # an outbox entry: STREAM_FIELDS -> text
Fence = Callable[[], bool]  # whether this replica may still send: asked before each request to the target
MARKER_TTL = timedelta(hours=1)  # how long a target Redis remembers what the relay delivered
SQS_BATCH = 10  # SendMessageBatch takes at most ten entries
_SQS_GROUP_ID = re.compile(r"[\x21-\x7e]{1,128}")  # SQS: 1-128 ASCII letters, digits and punctuation


def firing_message(firing: Firing) -> dict[str, Any]:
    """The firing message (docs/queues.md) as an object: args parsed, late a boolean, epoch a number."""
    message: dict[str, Any] = {field: firing[field] for field in STREAM_FIELDS}
    message["args"] = json.loads(firing["args"])
    message["late"] = firing["late"] == "true"
    message["epoch"] = int(firing["epoch"])
    return message


class Sender(ABC):
    @abstractmethod
    def send(self, firings: Sequence[Firing], fence: Fence) -> list[bool]:
        """Send ``firings``, asking ``fence`` before each request; per firing, whether the target accepted
        it (those not sent once the fence said no: not accepted). Raises RedisUnavailable or SenderError
        when nothing can be said (the whole batch stays in the outbox)."""

    def close(self) -> None:
        """Release connections."""


class SenderError(SchedulerError):
    """A target refused a whole batch, or could not be reached; the message names no secret."""


class RedisSender(Sender):
    def __init__(self, spec: QueueSpec, queue: str, keys: Keys, settings: Settings) -> None:
        url = target_redis_url(spec)
        self.where = redact_url(url)
        self.client = connect(settings, url, check=False)
        self.kind, self.keys, options = local_write(spec, queue, keys)
        self.options = json.dumps(options)
        self.markers = keys
        self.scripts = Scripts(self.client)
        self.script = self.scripts.add(deliver_lua(), lua("scheduler.targets", "relay.lua"))

    def send(self, firings: Sequence[Firing], fence: Fence) -> list[bool]:
        args: list[str | int] = [self.kind, self.options, len(self.keys), int(MARKER_TTL.total_seconds() * 1000)]
        for firing in firings:
            args += [firing[field] for field in STREAM_FIELDS]
        keys = [*self.keys, *(self.markers.relayed(firing["firing_id"]) for firing in firings)]
        if not fence():
            return [False] * len(firings)
        with redis_errors(f"sending to the Redis at {self.where}", self.where, self.scripts.texts):
            self.scripts.call(self.script, keys, args)
        return [True] * len(firings)

    def close(self) -> None:
        self.client.close()


class SqsSender(Sender):
    def __init__(self, spec: QueueSpec) -> None:
        try:
            import boto3
        except ImportError:
            raise SettingsError(f"queue {spec.entry!r} is an SQS queue: install boto3 "
                                "(pip install 'scheduler[sqs]')") from None
        assert spec.url is not None
        self.url = spec.url
        self.fifo = spec.url.endswith(".fifo")
        parts = urlsplit(spec.url)
        endpoint = spec.endpoint or f"{parts.scheme}://{parts.netloc}"
        self.client = boto3.client("sqs", region_name=spec.region, endpoint_url=endpoint)

    def send(self, firings: Sequence[Firing], fence: Fence) -> list[bool]:
        accepted = [False] * len(firings)
        for start in range(0, len(firings), SQS_BATCH):
            entries = [self._entry(start + n, firing) for n, firing in enumerate(firings[start:start + SQS_BATCH])]
            if not fence():
                break
            try:
                reply = self.client.send_message_batch(QueueUrl=self.url, Entries=entries)
            except Exception as error:  # botocore's errors: no connection, throttled, access denied
                raise SenderError(f"sending to {self.url}: {_aws_reason(error)}") from None
            for success in reply.get("Successful", []):
                accepted[int(success["Id"])] = True
        return accepted

    def _entry(self, index: int, firing: Firing) -> dict[str, str]:
        entry = {"Id": str(index), "MessageBody": json.dumps(firing_message(firing), separators=(",", ":"))}
        if self.fifo:
            entry["MessageGroupId"] = group_id(firing["tenant"])
            entry["MessageDeduplicationId"] = hashlib.sha256(firing["firing_id"].encode()).hexdigest()
        return entry

    def close(self) -> None:
        self.client.close()


def group_id(tenant: str) -> str:
    """A FIFO message's group: the tenant id, or its SHA-256 in hex where SQS would refuse the id
    (longer than 128 characters, or not printable ASCII), so one tenant's firings stay in order."""
    return tenant if _SQS_GROUP_ID.fullmatch(tenant) else hashlib.sha256(tenant.encode()).hexdigest()


def target_redis_url(spec: QueueSpec) -> str:
    """A Sidekiq or Celery target's own Redis URL: written in the table (checked as it loaded), or read
    from the variable it names and checked here."""
    if spec.redis_url:
        return spec.redis_url
    assert spec.redis_url_env is not None
    url = os.environ.get(spec.redis_url_env)
    if not url:
        raise SettingsError(f"queue {spec.entry!r}: the environment variable {spec.redis_url_env} "
                            "(its redis_url_env) is not set")
    problem = url_problem(url)
    if problem is not None:
        raise SettingsError(f"queue {spec.entry!r}: the URL in {spec.redis_url_env} (its redis_url_env) {problem}")
    return url


def sender_for(spec: QueueSpec, queue: str, keys: Keys, settings: Settings) -> Sender:
    if spec.type is QueueType.SQS:
        return SqsSender(spec)
    return RedisSender(spec, queue, keys, settings)


def _aws_reason(error: Exception) -> str:
    response = getattr(error, "response", None)
    if isinstance(response, dict) and "Error" in response:
        return f"{response['Error'].get('Code', 'error')}: {response['Error'].get('Message', '')}"
    return type(error).__name__
