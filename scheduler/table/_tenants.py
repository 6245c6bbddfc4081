"""Tenant sets and tenant ids: ``[tenants]`` entries, a schedule's ``tenants`` field, and which names are safe.

A set is an inline list of ids, ``{ redis_set = "key" }`` (read when each tick is handled) or
``{ file = "path" }`` (one id a line, next to the table).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from pathlib import Path
from typing import Any

from scheduler.table._model import InlineTenants, RedisSetTenants, Tenant, TenantSource
from scheduler.table._words import parse_zone, string, toml_type

MAX_ID_LENGTH = 256
_SEPARATORS = frozenset(" /{}")


def tenant_source(
    name: str, value: Any, report: Callable[..., None], directory: Path, fingerprint: Callable[[bytes], None]
) -> TenantSource | None:
    """The tenant set ``[tenants] name = value``, or None (reported) when it cannot be read.

    A ``{ file = ... }`` is found in ``directory`` (the table's) and its bytes go to ``fingerprint``,
    so the table's fingerprint changes when the file does.
    """
    if isinstance(value, list):
        return InlineTenants(_tenant_list(value, lambda m: report(None, m)), name=name)
    if isinstance(value, dict) and set(value) == {"redis_set"}:
        key = value["redis_set"]
        if not isinstance(key, str) or not key.strip():
            report(None, "redis_set must name a Redis key")
            return None
        return RedisSetTenants(key=key, name=name)
    if isinstance(value, dict) and set(value) == {"file"}:
        return _tenant_file(name, value["file"], report, directory, fingerprint)
    report(None, 'must be a list of ids, { redis_set = "key" } or { file = "path" }')
    return None


def _tenant_file(
    name: str, relative: Any, report: Callable[..., None], directory: Path, fingerprint: Callable[[bytes], None]
) -> TenantSource | None:
    if not isinstance(relative, str) or not relative.strip():
        report(None, "file must be a path next to the table")
        return None
    if "\x00" in relative:
        report(None, f"file {relative!r}: a path cannot hold a NUL character")
        return None
    path = directory / relative
    try:
        data = path.read_bytes()
    except OSError as error:
        report(None, f"file {relative!r}: {error.strerror or error} ({path})")
        return None
    fingerprint(data)
    ids = []
    for number, line in enumerate(data.decode("utf-8", errors="replace").splitlines(), start=1):
        text = line.strip()
        if text and not text.startswith("#"):
            ids.append((number, text))
    tenants = _tenant_list(
        [text for _, text in ids],
        lambda message: report(None, f"file {relative!r}: {message}"),
        lines=[number for number, _ in ids],
    )
    return InlineTenants(tenants, name=name, file=path)


def parse_tenants_field(value: Any, tenant_sets: dict[str, TenantSource]) -> TenantSource:
    if isinstance(value, str):
        if value in tenant_sets:
            return tenant_sets[value]
        known = ", ".join(sorted(tenant_sets)) or "none"
        raise ValueError(f"no tenant set of that name in [tenants] (known: {known})")
    if isinstance(value, list):
        problems: list[str] = []
        tenants = _tenant_list(value, problems.append)
        if problems:
            raise ValueError("; ".join(problems))
        return InlineTenants(tenants)
    raise ValueError("must name a tenant set or list tenant ids")


def _tenant_list(values: list[Any], report: Callable[[str], None], lines: list[int] | None = None) -> tuple[Tenant, ...]:
    tenants: list[Tenant] = []
    seen: set[str] = set()
    for position, value in enumerate(values):
        at = f"line {lines[position]}: " if lines else ""
        try:
            tenant = _tenant(value)
        except ValueError as error:
            report(f"{at}{error}")
            continue
        if tenant.id in seen:
            report(f"{at}tenant id {tenant.id!r}: is listed twice")
            continue
        seen.add(tenant.id)
        tenants.append(tenant)
    return tuple(tenants)


def _tenant(value: Any) -> Tenant:
    if isinstance(value, dict):
        unknown = set(value) - {"id", "timezone"}
        if unknown or "id" not in value:
            raise ValueError('a tenant with a zone is written { id = "acme", timezone = "Asia/Tokyo" }')
        tenant_id, zone_name = value["id"], value.get("timezone")
    else:
        tenant_id, zone_name = value, None
    if not isinstance(tenant_id, str):
        raise ValueError(f"tenant id must be a string, not {toml_type(tenant_id)}")
    reason = unsafe_name(tenant_id)
    if reason:
        raise ValueError(f"tenant id {tenant_id!r}: {reason}")
    if zone_name is None:
        return Tenant(tenant_id)
    try:
        return Tenant(tenant_id, parse_zone(string(zone_name)))
    except ValueError as error:
        raise ValueError(f"tenant {tenant_id!r}: timezone {zone_name!r}: {error}") from None


def unsafe_name(text: str) -> str | None:
    """Why ``text`` cannot be a schedule name, tenant id, set or queue name, or None when it can.

    Names end up inside firing ids ("schedule/tenant/tick") and Redis keys ("{prefix}:..."), so the
    separators of both are refused along with anything invisible: every character str.isprintable
    refuses (controls, zero-width and bidi format characters, private use), as all_safe does.
    """
    if 0 < len(text) <= MAX_ID_LENGTH and text.isprintable() and not _SEPARATORS.intersection(text):
        return None  # the common case, checked in C: a tick over a million-member set calls this per member
    if not text:
        return "must not be empty"
    if len(text) > MAX_ID_LENGTH:
        return f"is {len(text)} characters long; the limit is {MAX_ID_LENGTH}"
    if any(ch.isspace() for ch in text):
        return "must not contain whitespace"
    hidden = next((ch for ch in text if not ch.isprintable()), None)
    if hidden is not None:
        if unicodedata.category(hidden) == "Cc":
            return "must not contain control characters"
        name = unicodedata.name(hidden, "")
        return f"must not contain non-printing characters (U+{ord(hidden):04X}{' ' + name if name else ''})"
    bad = sorted({ch for ch in text if ch in "/{}"})
    return f"must not contain {' or '.join(repr(ch) for ch in bad)} (they would break firing ids and Redis keys)"


def all_safe(names: list[str]) -> bool:
    """Whether unsafe_name finds nothing wrong with any of ``names``, checked in one go: a tick over a
    large Redis tenant set checks every SSCAN reply, and they are all fine but for a rare bad member."""
    joined = "".join(names)
    return (
        0 < min(map(len, names), default=1)
        and max(map(len, names), default=0) <= MAX_ID_LENGTH
        and joined.isprintable()
        and not any(separator in joined for separator in _SEPARATORS)
    )
