"""Connecting to Redis; redis-py's errors become RedisUnavailable where they enter."""

from __future__ import annotations

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from scheduler.errors import RedisUnavailable, SettingsError
from scheduler.settings import Settings, redact_url

SOCKET_TIMEOUT = 2.0
# One immediate retry when a pooled connection turns out dead (Redis restarted), none on a
# timeout: a stalled Redis costs one SOCKET_TIMEOUT, and the replica's own backoff and lease
# margin decide what comes next, not a library's hidden retries.
RETRY = Retry(NoBackoff(), 1, supported_errors=(redis.ConnectionError,))


def connect(settings: Settings, url: str | None = None, check: bool = True) -> redis.Redis:
    """A client for ``url`` (default: SCHEDULER_REDIS_URL); with ``check``, PING it first."""
    target = url or (settings.redis_url.get_secret_value() if settings.redis_url else None)
    if not target:
        raise SettingsError("SCHEDULER_REDIS_URL is not set")
    try:
        client = redis.Redis.from_url(
            target,
            socket_timeout=SOCKET_TIMEOUT,
            socket_connect_timeout=SOCKET_TIMEOUT,
            health_check_interval=30,
            retry=RETRY,
        )
    except ValueError as error:
        raise SettingsError(f"SCHEDULER_REDIS_URL {redact_url(target)!r}: {error}") from None
    if check:
        try:
            client.ping()
        except redis.RedisError as error:
            client.close()
            raise RedisUnavailable(f"cannot reach Redis at {redact_url(target)}: {_reason(error)}") from None
    return client


def _reason(error: redis.RedisError) -> str:
    """redis-py's message without anything that could echo a credential."""
    if isinstance(error, redis.AuthenticationError):
        return "authentication failed"
    return type(error).__name__ + (f": {error.args[0]}" if error.args and "@" not in str(error.args[0]) else "")
