"""Connecting to Redis; redis-py's errors become the scheduler's own where they enter.

* TLS (``rediss://``): the server's certificate and host name are always checked, against the
  system's CAs plus SCHEDULER_REDIS_CA_FILE when set. A URL that turns either check off
  (``ssl_cert_reqs=none``, ``ssl_check_hostname=false``) is obeyed, with a warning each time it is used.
* Errors: a connection failure becomes RedisUnavailable (a failed TLS handshake says why, and
  where, with the password redacted); a refusal for lack of permission (NOPERM, or a command inside
  a script refused by the ACL) becomes RedisPermissionError, saying what was refused.
"""

from __future__ import annotations

import inspect
import re
import ssl
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from urllib.parse import parse_qsl, quote, urlsplit

import redis
from loguru import logger
from redis.backoff import NoBackoff
from redis.retry import Retry

from scheduler.errors import RedisPermissionError, RedisRefused, RedisUnavailable, SettingsError
from scheduler.settings import Settings
from scheduler.urls import redact_url

SOCKET_TIMEOUT = 2.0
# One immediate retry when a pooled connection turns out dead (Redis restarted), none on a
# timeout: a stalled Redis costs one SOCKET_TIMEOUT, and the replica's own backoff and lease
# margin decide what comes next, not a library's hidden retries.
RETRY = Retry(NoBackoff(), 1, supported_errors=(redis.ConnectionError,))
_FALSE = {"0", "f", "false", "n", "no"}  # what redis-py reads as false in a URL's query


def _without_client_setinfo() -> dict:
    """redis-py's option that stops it sending CLIENT SETINFO on every new connection: Redis 7.0
    does not know the command, and 7.2 would want it in the ACL for a label nobody reads. redis-py 8
    takes ``driver_info=None``, 5 to 7 ``lib_name=None, lib_version=None``."""
    parameters = inspect.signature(redis.connection.AbstractConnection.__init__).parameters
    if "driver_info" in parameters:
        return {"driver_info": None}
    if "lib_name" in parameters:
        return {"lib_name": None, "lib_version": None}
    return {}


CONNECTION_OPTIONS = _without_client_setinfo()


def connect(settings: Settings, url: str | None = None, check: bool = True) -> redis.Redis:
    """A client for ``url`` (default: SCHEDULER_REDIS_URL); with ``check``, PING it first."""
    target = url or (settings.redis_url.get_secret_value() if settings.redis_url else None)
    if not target:
        raise SettingsError("SCHEDULER_REDIS_URL is not set")
    options = dict(CONNECTION_OPTIONS)
    if urlsplit(target).scheme == "rediss":
        options.update(tls_options(settings, target))
    try:
        client = redis.Redis.from_url(
            target,
            socket_timeout=SOCKET_TIMEOUT,
            socket_connect_timeout=SOCKET_TIMEOUT,
            health_check_interval=30,
            retry=RETRY,
            **options,
        )
    except ValueError as error:
        raise SettingsError(f"SCHEDULER_REDIS_URL {redact_url(target)!r}: {error}") from None
    if check:
        try:
            client.ping()
        except redis.ResponseError as error:
            client.close()
            raise reply_error(error, f"checking the connection to {redact_url(target)}") from None
        except redis.RedisError as error:
            client.close()
            raise RedisUnavailable(f"cannot reach Redis at {redact_url(target)}: {_reason(error)}") from None
    return client


def tls_options(settings: Settings, url: str) -> dict:
    """redis-py's TLS options for a ``rediss://`` URL: verification and host name checking on (the
    URL's own query may still override them, loudly), the private CA added when one is set."""
    query = {name: value.strip().lower() for name, value in parse_qsl(urlsplit(url).query)}
    unverified = query.get("ssl_cert_reqs") in ("none", "cert_none")
    options: dict = {"ssl_cert_reqs": "required"}
    if not unverified:  # (Python refuses host name checking without verification; redis-py 5 passed both on)
        options["ssl_check_hostname"] = True
    if settings.redis_ca_file is not None:
        options["ssl_ca_certs"] = str(settings.redis_ca_file)
    if unverified:
        logger.warning("TLS certificate verification is OFF for {} (ssl_cert_reqs={} in the URL): anyone on the "
                       "network path can pose as Redis and read the password and every job", redact_url(url),
                       query["ssl_cert_reqs"])
    elif query.get("ssl_check_hostname") in _FALSE:
        logger.warning("TLS host name checking is OFF for {} (ssl_check_hostname={} in the URL): any certificate "
                       "the CA signed, for any host, is accepted", redact_url(url), query["ssl_check_hostname"])
    return options


def location(client: redis.Redis) -> str:
    """Where ``client`` connects, as a URL shown by redact_url (for errors and logs): built from what
    redis-py holds (a password from the user info or the query alike), each part percent-encoded so
    that the password is told apart and masked."""
    try:
        pool = client.connection_pool
        kwargs = pool.connection_kwargs
        user = quote(kwargs.get("username") or "", safe="")
        password = kwargs.get("password")
        auth = f"{user}:{quote(password, safe='')}@" if password else (f"{user}@" if user else "")
        if kwargs.get("path"):
            return redact_url(f"unix://{auth}{quote(kwargs['path'])}")
        scheme = "rediss" if issubclass(pool.connection_class, redis.SSLConnection) else "redis"
        host = str(kwargs.get("host", "localhost"))
        host = f"[{host}]" if ":" in host else host
        return redact_url(f"{scheme}://{auth}{host}:{kwargs.get('port', 6379)}/{kwargs.get('db', 0)}")
    except (AttributeError, TypeError):
        return "Redis"


# -- errors ---------------------------------------------------------------------------------------


NO_SCRIPTS: Mapping[str, str] = {}


@contextmanager
def redis_errors(doing: str, where: str | None = None, scripts: Mapping[str, str] = NO_SCRIPTS) -> Iterator[None]:
    """Turn redis-py's errors into RedisUnavailable (RedisPermissionError for a refusal), naming what
    was being done; a failed TLS handshake also names ``where`` (a redacted URL) and why. ``scripts``
    (SHA1 -> text) names a command refused inside one of them."""
    try:
        yield
    except redis.ResponseError as error:
        # The server's own reply (a script error, a wrong type, NOPERM): it names no credentials.
        raise reply_error(error, doing, scripts) from None
    except redis.RedisError as error:
        tls = tls_failure(error)
        if tls is not None:
            raise RedisUnavailable(f"{doing}: TLS handshake with {where or 'Redis'} failed: {tls}") from None
        raise RedisUnavailable(f"{doing}: {type(error).__name__}") from None


def reply_error(error: redis.ResponseError, doing: str, scripts: Mapping[str, str] = NO_SCRIPTS) -> RedisRefused:
    """An error reply as the scheduler's error: RedisPermissionError when it is a refusal."""
    refused = refusal(error, scripts)
    if refused is not None:
        return RedisPermissionError(doing, refused)
    return RedisRefused(doing, reply_text(error, scripts))


_IN_SCRIPT = re.compile(r"The user executing the script can't (?P<what>.+?)(?: script: (?P<sha>[0-9a-f]{40}), "
                        r"on @user_script:(?P<line>\d+))?\.?$", re.DOTALL)
_CALL = re.compile(r"redis\.call\(\s*'(\w+)'")
_AT_SCRIPT_LINE = re.compile(r"\.? script: (?P<sha>[0-9a-f]{40}), on @user_script:(?P<line>\d+)\.?$")
# redis-py keeps an error reply's code as the exception's class, not in its text: put the code back.
_CODES = ((redis.exceptions.OutOfMemoryError, "OOM"), (redis.exceptions.ReadOnlyError, "READONLY"),
          (redis.exceptions.BusyLoadingError, "LOADING"))


def reply_text(error: redis.ResponseError, scripts: Mapping[str, str] = NO_SCRIPTS) -> str:
    """An error reply in Redis's own words, with its code (OOM, READONLY, ...), and the command a
    script was running named from the script's text instead of its SHA1 and line."""
    text = str(error).strip()
    for kind, code in _CODES:
        if isinstance(error, kind) and not text.startswith(code):
            text = f"{code} {text}"
    found = _AT_SCRIPT_LINE.search(text)
    if found is not None:
        text = f"{text[:found.start()]} ({_script_command(scripts, found['sha'], int(found['line']))})"
    return text


def _script_command(scripts: Mapping[str, str], sha: str, line: int) -> str:
    """``the script's XADD (line 3)``, read from the script's text; or the script's SHA1 and line."""
    lines = scripts.get(sha, "").splitlines()
    called = _CALL.search(lines[line - 1]) if 0 < line <= len(lines) else None
    return f"the script's {called[1]} (line {line})" if called else f"a command of script {sha[:12]} (line {line})"


def refusal(error: redis.ResponseError, scripts: Mapping[str, str] = NO_SCRIPTS) -> str | None:
    """What Redis refused, in its own words, when ``error`` is an ACL refusal; else None.

    Outside a script Redis says NOPERM and names the command or that a key or channel was refused;
    inside one it names only the script and line, so the command is read from that line of the
    script's text in ``scripts`` (SHA1 -> text)."""
    text = str(error).strip()
    if isinstance(error, redis.exceptions.NoPermissionError):
        return f"NOPERM {text}"
    if text.startswith("NOPERM"):
        return text
    found = _IN_SCRIPT.search(text)
    if found is None:
        return None
    what = found["what"]
    if found["sha"] is None:
        return f"NOPERM a command inside a script was refused: the user can't {what}"
    return f"NOPERM {_script_command(scripts, found['sha'], int(found['line']))} was refused: the user can't {what}"


def tls_failure(error: BaseException) -> str | None:
    """Why a TLS handshake failed ("certificate verify failed: ..."), or None when ``error`` is
    not about TLS. redis-py keeps the ssl module's error as the context of its ConnectionError."""
    seen: BaseException | None = error
    for _ in range(5):
        if seen is None:
            break
        if isinstance(seen, ssl.SSLCertVerificationError):
            detail = (seen.verify_message or "").rstrip(".")
            return f"certificate verify failed: {detail}" if detail else "certificate verify failed"
        if isinstance(seen, ssl.SSLError):
            return (seen.reason or str(seen)).replace("_", " ").lower()
        seen = seen.__cause__ or seen.__context__
    found = re.search(r"\[SSL(?:: [A-Z_]+)?\] ([^(]+)", str(error))
    return found[1].strip().rstrip(".") if found else None


def _reason(error: redis.RedisError) -> str:
    """redis-py's message without anything that could echo a credential."""
    if isinstance(error, redis.AuthenticationError):
        return "authentication failed"
    tls = tls_failure(error)
    if tls is not None:
        return f"TLS handshake failed: {tls}"
    return type(error).__name__ + (f": {error.args[0]}" if error.args and "@" not in str(error.args[0]) else "")
