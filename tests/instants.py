"""Instants for tests of the tick maths, written the short way: ``utc("2026-03-08T07:00Z")``."""

from __future__ import annotations

from datetime import UTC, datetime


def utc(text: str) -> datetime:
    """'2026-03-08T07:00Z' or '2026-03-08T07:00:30Z' as an aware UTC datetime."""
    return datetime.fromisoformat(text.removesuffix("Z")).replace(tzinfo=UTC)


def utcs(*texts: str) -> list[datetime]:
    return [utc(text) for text in texts]
