"""One ``[queues.NAME]`` entry: its type, the options that type takes, and the QueueSpec they make."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from scheduler.keys import Keys
from scheduler.table._model import QueueSpec, QueueType
from scheduler.table._tenants import unsafe_name
from scheduler.table._words import Counter, string, suggest, toml_type
from scheduler.urls import holds_password, url_problem

# Each queue type's options; `type` is common to all. docs/queues.md describes them.
QUEUE_OPTIONS = {
    QueueType.REDIS_STREAM: ("stream",),
    QueueType.SIDEKIQ: ("queue", "redis_url", "redis_url_env", "active_job", "retry"),
    QueueType.CELERY: ("queue", "redis_url", "redis_url_env"),
    QueueType.SQS: ("url", "region", "endpoint"),
}
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SQS_HOST = re.compile(r"(?:sqs\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?|([a-z0-9-]+)\.queue\.amazonaws\.com)")


def queue_spec(
    name: str, options: dict[str, Any], report: Counter, key_prefix: str | None = None
) -> QueueSpec | None:
    """The entry ``[queues.name]``, or None (reported). With ``key_prefix`` (the settings'), a
    ``stream`` among the scheduler's own keys is refused too (stream_problem)."""
    try:
        kind = QueueType(options.get("type", QueueType.REDIS_STREAM.value))
    except ValueError:
        shown = options["type"] if isinstance(options["type"], str) else toml_type(options["type"])
        kinds = ", ".join(repr(kind.value) for kind in QueueType)
        report("type", f"type {shown!r}: must be one of {kinds}")
        return None
    allowed = QUEUE_OPTIONS[kind]
    fields: dict[str, Any] = {}
    for key, value in options.items():
        if key == "type":
            continue
        if key not in allowed:
            others = [other.value for other, keys in QUEUE_OPTIONS.items() if key in keys]
            hint = f" (an option of {', '.join(others)})" if others else suggest(key, allowed)
            report(key, f"unknown option {key!r} for a {kind.value} queue{hint}; it takes: {', '.join(allowed)}")
            continue
        try:
            fields[key] = _QUEUE_PARSERS[key](value)
        except ValueError as error:
            shown = f" {value!r}" if isinstance(value, str | int | float) and key != "redis_url" else ""
            report(key, f"{key}{shown}: {error}")
    if key_prefix is not None and "stream" in fields:
        problem = stream_problem(fields["stream"], key_prefix)
        if problem:
            report("stream", f"stream {fields['stream']!r}: {problem}")
    if "redis_url" in fields and "redis_url_env" in fields:
        report("redis_url_env", "give redis_url or redis_url_env, not both")
    if kind is QueueType.SQS:
        if "url" not in options:
            report("url", "url is required: the queue's URL, as SQS gives it")
        elif "url" in fields and "region" not in options and _sqs_region(fields["url"]) is None:
            report("region", "region is required: it cannot be read from this url's host")
    if report.count:
        return None
    return QueueSpec(
        entry=name,
        type=kind,
        name=fields.get("stream") or fields.get("queue"),
        redis_url=fields.get("redis_url"),
        redis_url_env=fields.get("redis_url_env"),
        active_job=fields.get("active_job", False),
        retry=fields.get("retry", True),
        url=fields.get("url"),
        region=fields.get("region") or (_sqs_region(fields["url"]) if "url" in fields else None),
        endpoint=fields.get("endpoint"),
    )


def stream_problem(stream: str, prefix: str) -> str | None:
    """Why a redis-stream queue cannot write to ``stream`` when the scheduler's keys start with
    ``prefix``, or None.

    Every key of the scheduler is ``<prefix>:...`` (scheduler/keys.py): the lease, the watermarks,
    the ledger's and the outboxes' streams. A queue writing among them mixes its firings with them,
    and its consumer takes their entries for firings. Allowed there are the queues' own streams,
    ``<prefix>:queue:<name>`` for any queue name: nothing else lives under ``<prefix>:queue:``, and
    an entry may keep another name's stream (the one its workers read since before a rename).
    """
    queues = Keys(prefix).stream("")
    if not stream.startswith(f"{prefix}:"):
        return None
    if stream.startswith(queues) and unsafe_name(stream.removeprefix(queues)) is None:
        return None
    return (f"lies under the scheduler's key prefix {prefix!r} (SCHEDULER_KEY_PREFIX), among its own keys; "
            f"the only streams allowed there are '{queues}<queue name>'")


def keys_starting(value: Any, prefix: str) -> set[str]:
    """Every dict key at any depth of ``value`` that starts with ``prefix``."""
    if isinstance(value, dict):
        found = {key for key in value if key.startswith(prefix)}
        for item in value.values():
            found |= keys_starting(item, prefix)
        return found
    if isinstance(value, list):
        return set().union(*(keys_starting(item, prefix) for item in value))
    return set()


def _sqs_region(url: str) -> str | None:
    """The region in an AWS queue URL's host (sqs.REGION.amazonaws.com, or the legacy REGION.queue...)."""
    match = _SQS_HOST.fullmatch(urlsplit(url).hostname or "")
    return (match.group(1) or match.group(2)) if match else None


def _parse_worker_name(value: Any) -> str:
    text = string(value)
    if not text or not text.isprintable() or any(ch.isspace() for ch in text):
        raise ValueError("must be a non-empty name without whitespace")
    return text


def _parse_redis_url(value: Any) -> str:
    text = string(value)
    problem = url_problem(text)  # first: urllib's own words may quote a piece of a password
    if problem is not None:
        raise ValueError(problem)
    parts = urlsplit(text)
    try:
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as error:
        raise ValueError(f"is not a valid URL ({error})") from None
    if parts.scheme not in ("redis", "rediss", "unix"):
        raise ValueError("must start with redis://, rediss:// or unix://")
    if holds_password(text):
        raise ValueError("holds a password, and the table is not the place for secrets: put the URL in an "
                         "environment variable and name that with redis_url_env")
    return text


def _parse_env_name(value: Any) -> str:
    text = string(value)
    if not _ENV_NAME.fullmatch(text):
        raise ValueError("must be the name of an environment variable")
    return text


def _parse_bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"must be true or false, not {toml_type(value)}")
    return value


def _parse_retry(value: Any) -> bool | int:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value >= 0:
        return value
    raise ValueError("must be true, false, or a number of retries (0 or more)")


def _parse_endpoint(value: Any) -> str:
    text = string(value)
    parts = urlsplit(text)
    if parts.scheme not in ("https", "http") or not parts.hostname or parts.path.strip("/"):
        raise ValueError("must be a URL with no path, like https://vpce-0123.sqs.ap-northeast-1.vpce.amazonaws.com")
    return text


def _parse_sqs_url(value: Any) -> str:
    text = string(value)
    parts = urlsplit(text)
    segments = [segment for segment in parts.path.split("/") if segment]
    if parts.scheme not in ("https", "http") or not parts.hostname or len(segments) != 2:
        raise ValueError("must be a queue URL: https://sqs.REGION.amazonaws.com/ACCOUNT/NAME")
    return text


_QUEUE_PARSERS: dict[str, Callable[[Any], Any]] = {
    "stream": _parse_worker_name,
    "queue": _parse_worker_name,
    "redis_url": _parse_redis_url,
    "redis_url_env": _parse_env_name,
    "active_job": _parse_bool,
    "retry": _parse_retry,
    "url": _parse_sqs_url,
    "region": _parse_worker_name,
    "endpoint": _parse_endpoint,
}
