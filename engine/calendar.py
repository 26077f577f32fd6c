"""The company's business calendar: China's statutory holidays and make-up working days (调休) from the
`holidays` package, plus an admin override table for days the package does not know yet."""
import threading
import time as _time
from datetime import date, timedelta

import holidays
import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from engine import dates
from engine.db import db

CACHE_SECONDS = 30  # overrides are edited rarely; other processes see an edit within this long


class CalendarOverride(db.Model):
    """An admin's word on one day: working or not, overriding the package."""

    __tablename__ = "calendar_overrides"
    day: Mapped[date] = mapped_column(sa.Date, primary_key=True)
    working: Mapped[bool]
    note: Mapped[str] = mapped_column(sa.String(200), default="")


class BusinessCalendar:
    """Which days are working days. Weekends are off unless they are 调休 make-up days; holidays are off."""

    def __init__(self, overrides: dict[date, bool]):
        self.overrides = overrides
        self._cn = _china()

    def is_working_day(self, day: date) -> bool:
        if day in self.overrides:
            return self.overrides[day]
        if day in self._cn:
            return False
        # `day in self._cn` (above) loads the day's year, which also fills in that year's weekend_workdays.
        return day.weekday() < 5 or day in self._cn.weekend_workdays

    def reason(self, day: date) -> str:
        """Why the day is what it is (for `calendar show`)."""
        if day in self.overrides:
            return "override"
        if day in self._cn:
            return self._cn.get(day)
        if day.weekday() >= 5:
            return "make-up working day (调休)" if day in self._cn.weekend_workdays else "weekend"
        return ""

    def add_working_days(self, day: date, n: int) -> date:
        """The date `n` working days after `day` (before it when n < 0); `day` itself does not count."""
        step = 1 if n >= 0 else -1
        remaining = abs(n)
        while remaining:
            day += timedelta(days=step)
            if self.is_working_day(day):
                remaining -= 1
        return day

    def next_working_day(self, day: date) -> date:
        return self.add_working_days(day, 1)

    def working_day_on_or_before(self, day: date) -> date:
        while not self.is_working_day(day):
            day -= timedelta(days=1)
        return day


_china_lock = threading.Lock()
_china_calendar = None
_cache: dict = {"at": -1e9, "calendar": None}


def _china():
    global _china_calendar
    with _china_lock:
        if _china_calendar is None:
            _china_calendar = holidays.country_holidays("CN")
        return _china_calendar


def current() -> BusinessCalendar:
    """The calendar with the overrides as stored (cached for CACHE_SECONDS)."""
    if _time.monotonic() - _cache["at"] > CACHE_SECONDS or _cache["calendar"] is None:
        rows = db.session.execute(sa.select(CalendarOverride.day, CalendarOverride.working)).all()
        _cache.update(at=_time.monotonic(), calendar=BusinessCalendar(dict(rows)))
    return _cache["calendar"]


def invalidate() -> None:
    _cache["calendar"] = None


def set_day(day: date, working: bool, note: str = "") -> None:
    """Record an override for `day` (committed). A day outside the accepted years is refused (InvalidInput)
    before anything is written: the month around it could not be shown or computed."""
    dates.check(day, "day")
    row = db.session.get(CalendarOverride, day) or CalendarOverride(day=day)
    row.working, row.note = working, note
    db.session.add(row)
    db.session.commit()
    invalidate()


def month_days(year: int, month: int) -> list[tuple[date, bool, str]]:
    """Each day of the month with whether it is a working day and why (InvalidInput outside the accepted years)."""
    dates.check_year(year, "month")
    cal = current()
    first = date(year, month, 1)
    days = []
    day = first
    while day.month == month:
        days.append((day, cal.is_working_day(day), cal.reason(day)))
        day += timedelta(days=1)
    return days
