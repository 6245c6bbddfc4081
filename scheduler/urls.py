"""Redis URLs as the scheduler shows them.

``redact_url`` is the one way a URL is shown: the password in the user info and the query's
``password=`` (and ``ssl_password=``), both honoured by redis-py, become ``***``. redis-py reads a
URL with ``urllib.parse.urlsplit``: the user info ends at the first '/', '?' or '#', so a password
holding one of them unencoded is cut short and its rest read as the host, path, query or fragment;
such a URL is shown as its scheme alone.
"""

from __future__ import annotations

from urllib.parse import SplitResult, unquote_plus, urlsplit

MASK = "***"
SECRET_PARAMETERS = frozenset({"password", "ssl_password"})  # what redis-py takes from a URL's query as a secret
SCHEMES = frozenset({"redis", "rediss", "unix"})


def redact_url(url: str) -> str:
    """``url`` fit for logs and error messages: every password in it shown as ``***``. A URL whose
    user info may have been cut short is shown as its scheme alone, since its password may run anywhere."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return MASK
    if _misread(url, parts):
        return f"{parts.scheme}://{MASK}" if parts.scheme in SCHEMES else MASK
    user_info, _, host = parts.netloc.rpartition("@")
    pairs = parts.query.split("&") if parts.query else []
    masked = [_masked(pair) for pair in pairs]
    if ":" not in user_info and masked == pairs:
        return url
    user = user_info.partition(":")[0]
    netloc = f"{user}:{MASK}@{host}" if ":" in user_info else parts.netloc  # the host as written: brackets, port
    query = f"?{'&'.join(masked)}" if masked else ""
    return f"{parts.scheme}://{netloc}{parts.path}{query}"


def _misread(url: str, parts: SplitResult) -> bool:
    """Whether a '/', '?' or '#' may have cut the user info short: then an '@' is left after the host,
    or a '#' anywhere (a Redis URL has no fragment)."""
    return "#" in url or "@" in parts.path or "@" in parts.query


def _masked(pair: str) -> str:
    """One ``name=value`` of a query, its value masked when the name (decoded, as redis-py reads it) is a secret's."""
    name, equals, _ = pair.partition("=")
    return f"{name}={MASK}" if equals and unquote_plus(name) in SECRET_PARAMETERS else pair
