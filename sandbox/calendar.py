"""Business time in Python: working seconds between two instants in a team calendar (the oracle's own)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from sandbox.model import Calendar

DEFAULT_CALENDAR = Calendar(tz="UTC")


@lru_cache(maxsize=256)
def _holidays(holidays: tuple[str, ...]) -> frozenset[date]:
    return frozenset(date.fromisoformat(h) for h in holidays)


def _local_instant(d: date, hour: int, tz: ZoneInfo) -> datetime:
    # Convert to UTC at once: subtracting two datetimes sharing one tzinfo ignores DST (wall-clock arithmetic).
    if hour >= 24:
        d, hour = d + timedelta(days=1), 0
    return datetime.combine(d, time(hour), tzinfo=tz).astimezone(UTC)


def business_seconds(start: datetime, end: datetime, calendar: Calendar | None = None) -> float:
    """Seconds of [start, end) that fall in the calendar's working hours (0 for empty or negative spans)."""
    cal = calendar or DEFAULT_CALENDAR
    if end <= start:
        return 0.0
    tz = ZoneInfo(cal.tz)
    holidays = _holidays(tuple(cal.holidays))
    workdays = set(cal.workdays)
    start_u, end_u = start.astimezone(UTC), end.astimezone(UTC)
    day, last = start_u.astimezone(tz).date(), end_u.astimezone(tz).date()
    total = 0.0
    while day <= last:
        if day.weekday() in workdays and day not in holidays:
            lo = max(_local_instant(day, cal.start_hour, tz), start_u)
            hi = min(_local_instant(day, cal.end_hour, tz), end_u)
            if hi > lo:
                total += (hi - lo).total_seconds()
        day += timedelta(days=1)
    return total
