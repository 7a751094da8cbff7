"""One timestamp format for every API response, event and CLI line: RFC 3339 in UTC with ``Z`` and microseconds
(``2026-12-01T04:12:33.123456Z``), whether the database gave back an aware (PostgreSQL) or a naive (SQLite) value."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

__all__ = ["rfc3339", "parse_timestamp", "with_rfc3339"]

_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def rfc3339(value: datetime) -> str:
    """``value`` as RFC 3339 UTC text with ``Z``; a naive value is taken as UTC (how SQLite returns ours)."""
    aware = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return aware.strftime(_FORMAT)


def parse_timestamp(text: str) -> datetime:
    """An aware UTC datetime from ISO 8601 / RFC 3339 text (``Z`` or an offset; without one, UTC)."""
    value = datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def with_rfc3339(value: Any) -> Any:
    """``value`` with every datetime inside dicts, lists and tuples replaced by its ``rfc3339`` text."""
    if isinstance(value, datetime):
        return rfc3339(value)
    if isinstance(value, dict):
        return {key: with_rfc3339(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [with_rfc3339(item) for item in value]
    return value
