"""Redis URLs as the scheduler shows them, and the check that one reads as it was written.

redis-py reads a URL with ``urllib.parse.urlsplit``: the user info ends at the first '/', '?' or
'#', so a password holding one of them unencoded is cut short and its rest read as the host, path,
query or fragment, where no redaction would look for it. ``url_problem`` refuses such a URL (every
place that takes one from the user calls it first), and ``redact_url`` is the one way a URL is
shown: the password in the user info and the query's ``password=`` (and ``ssl_password=``), both
honoured by redis-py, become ``***``.
"""

from __future__ import annotations

from urllib.parse import SplitResult, parse_qsl, unquote_plus, urlsplit

MASK = "***"
SECRET_PARAMETERS = frozenset({"password", "ssl_password"})  # what redis-py takes from a URL's query as a secret
SCHEMES = frozenset({"redis", "rediss", "unix"})
NOT_A_URL = "is not a URL urllib can split: a '[' or ']' not around an IPv6 address must be written %5B or %5D"
MISREAD = ("cannot be read as written: a '/', '?', '#' or '@' in its user name or password must be "
           "percent-encoded (%2F, %3F, %23, %40)")


def url_problem(url: str) -> str | None:
    """Why ``url`` is refused, or None. The words quote nothing of the URL: it may hold a password."""
    try:
        parts = urlsplit(url)
    except ValueError:  # urllib's words may quote a piece of the password
        return NOT_A_URL
    return MISREAD if _misread(url, parts) else None


def holds_password(url: str) -> bool:
    """Whether ``url`` (one url_problem takes) gives a password, in its user info or in its query."""
    parts = urlsplit(url)
    return parts.password is not None or any(
        name in SECRET_PARAMETERS for name, _ in parse_qsl(parts.query, keep_blank_values=True))


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
