"""Working-time arithmetic for the generator: actions happen in the actor's working hours."""

from __future__ import annotations

import math
import random
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from sandbox.model import Calendar

NOW = datetime(2025, 6, 30, 12, 0, tzinfo=UTC)  # the sandbox's fixed clock


@lru_cache(maxsize=64)
def _zone(tz: str) -> ZoneInfo:
    return ZoneInfo(tz)


@lru_cache(maxsize=64)
def _holidays(hs: tuple[str, ...]) -> frozenset[date]:
    return frozenset(date.fromisoformat(h) for h in hs)


class WorkClock:
    """Adds working hours in one calendar (time zone, workdays, hours, holidays)."""

    __slots__ = ("end", "holidays", "start", "workdays", "zone")

    def __init__(self, cal: Calendar) -> None:
        self.zone = _zone(cal.tz)
        self.workdays = frozenset(cal.workdays)
        self.start = cal.start_hour
        self.end = cal.end_hour
        self.holidays = _holidays(tuple(cal.holidays))

    def _workday(self, d: date) -> bool:
        return d.weekday() in self.workdays and d not in self.holidays

    def add(self, t: datetime, hours: float) -> datetime:
        """`t` plus `hours` of working time, starting at the next working moment at or after `t`."""
        local = t.astimezone(self.zone).replace(tzinfo=None)
        remaining = max(0.0, hours) * 3600.0
        for _ in range(4000):
            d = local.date()
            day_start = datetime(d.year, d.month, d.day, self.start)
            day_end = datetime(d.year, d.month, d.day, self.end)
            if not self._workday(d) or local >= day_end:
                local = day_start + timedelta(days=1)
                continue
            local = max(local, day_start)
            left = (day_end - local).total_seconds()
            if remaining < left:
                local = local + timedelta(seconds=remaining)
                break
            remaining -= left
            local = day_start + timedelta(days=1)
        out = local.replace(tzinfo=self.zone).astimezone(UTC)
        return out.replace(microsecond=0)


def lognormal_hours(rng: random.Random, median: float, sigma: float = 1.0, cap: float = 2000.0) -> float:
    """A long-tailed duration in hours with the given median."""
    return min(cap, median * math.exp(rng.gauss(0.0, sigma)))


def step(rng: random.Random, clock: WorkClock, t: datetime, median_h: float, sigma: float = 1.0) -> datetime:
    """The time of the next action: a long-tailed amount of working time later; now and then at odd hours."""
    h = lognormal_hours(rng, median_h, sigma)
    if rng.random() < 0.03:
        out = t + timedelta(hours=h)  # an odd-hours action: calendar time
    else:
        out = clock.add(t, h)
    if out <= t:
        out = t + timedelta(seconds=rng.randint(1, 59))
    return out.replace(microsecond=0)
