"""Jira's time formats: parsing `updated`/`created`, and JQL dates in the user's time zone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


def parse_time(value: Any) -> datetime | None:
    """An aware datetime from Jira's ISO ("2024-01-15T10:30:00.000+0530") or epoch millis; None if absent."""
    if value is None or value == "":
        return None
    if isinstance(value, (int, float)) or (isinstance(value, str) and value.lstrip("-").isdigit()):
        return datetime.fromtimestamp(int(value) / 1000, UTC)
    dt = datetime.fromisoformat(str(value))
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def jira_iso(dt: datetime) -> str:
    """Jira's own rendering: "2024-01-15T10:30:00.000+0000"."""
    dt = dt.astimezone(UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}+0000"


def normalize_created(value: Any) -> Any:
    """Epoch millis become Jira ISO in UTC; ISO strings (any offset) are kept as they are."""
    if isinstance(value, (int, float)) or (isinstance(value, str) and value.lstrip("-").isdigit()):
        return jira_iso(parse_time(value))
    return value


def user_zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def jql_date(instant: datetime, zone: ZoneInfo) -> str:
    """"yyyy/MM/dd HH:mm" in `zone`, floored to the minute (JQL reads dates in the user's zone)."""
    return instant.astimezone(zone).strftime("%Y/%m/%d %H:%M")


def since_clause(cursor: dict | None, overlap_minutes: int, zone: ZoneInfo) -> str | None:
    """The `updated >= "..."` JQL clause for an incremental run, or None for a full one."""
    when = parse_time((cursor or {}).get("updated"))
    if when is None:
        return None
    return f'updated >= "{jql_date(when - timedelta(minutes=overlap_minutes), zone)}"'
