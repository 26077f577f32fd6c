"""Deadline expressions: the text written in definitions, and the instant it names.

An expression is resolved from a start instant (entering the state; for ladder rungs, the deadline) in
the org unit's timezone, on the business calendar and within the unit's opening hours:

    "4 hours", "-30 minutes", "2 days"                 plain durations
    "2 working days", "-1 working day"                 working days, same time of day
    "4 working hours"                                  inside opening hours on working days
    "same day at 23:59"                                the start's local date
    "next working day at 10:00"
    "next day at 12:00"                                the start's next calendar day (第二日), open or not
    "last day of the month at 19:00"
    "3 working days before the end of the month at 18:00"   (time defaults to 23:59)
    "3 working days after the end of the month"
    "30 minutes after handover_at"                     offset from an instant in the instance's data
    "last day of month at 23:59"                       month-based forms may name a "YYYY-MM" data field
    "day 25 of the month before month at 23:59"        (here: `month`) instead of the start's month
    "3 working days after the end of month"
    "0", "at deadline"                                 the start itself
"""
import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from engine.calendar import BusinessCalendar, StoreCalendar


@dataclass(frozen=True)
class Env:
    """Where a deadline is counted: the unit's timezone and usual opening hours, its calendar (office or store:
    engine.calendar.for_unit), the instance data."""

    tz: ZoneInfo
    opens: time
    closes: time
    calendar: BusinessCalendar | StoreCalendar
    data: dict = field(default_factory=dict)

    def hours_on(self, day: date) -> tuple[time, time] | None:
        """The hours `day` counts (a store's weekday hours and part-day closures), None when it does not."""
        return self.calendar.day_hours(day, self.opens, self.closes)


_PLAIN = {"minute": timedelta(minutes=1), "hour": timedelta(hours=1), "day": timedelta(days=1),
          "week": timedelta(weeks=1)}
_AT = r"(?:\s+at\s+(?P<hh>\d{1,2}):(?P<mm>\d{2}))?"
_OFFSET = re.compile(r"^(?P<sign>[+-]?)\s*(?P<n>\d+)\s+(?P<working>working\s+)?(?P<unit>minute|hour|day|week)s?"
                     r"(?:\s+(?P<rel>after|before)\s+(?P<field>[a-z_][a-z0-9_.]*))?$")
_MONTH = r"(?:the month|(?P<field>[a-z_][a-z0-9_.]*))"
_CALENDAR = [
    (re.compile(r"^same day" + _AT + "$"), "same_day"),
    (re.compile(r"^next working day" + _AT + "$"), "next_working_day"),
    (re.compile(r"^next day" + _AT + "$"), "next_day"),
    (re.compile(r"^last day of " + _MONTH + _AT + "$"), "last_day_of_month"),
    (re.compile(r"^day (?P<n>\d{1,2}) of the month before " + _MONTH + _AT + "$"), "day_of_previous_month"),
    (re.compile(r"^(?P<n>\d+) working days? (?P<rel>before|after) the end of " + _MONTH + _AT + "$"),
     "around_month_end"),
]


@dataclass(frozen=True)
class Expression:
    text: str
    kind: str
    n: int = 0
    unit: str = ""
    working: bool = False
    at: time | None = None
    rel: str = ""
    anchor: str | None = None       # a data field holding an instant to count from
    month_field: str | None = None  # a data field holding the "YYYY-MM" month a calendar form refers to

    def resolve(self, start: datetime, env: Env) -> datetime:
        """The instant this expression names, counted from `start` (aware); returned in UTC-aware form."""
        if self.anchor:
            start = _anchor(env.data, self.anchor)
        local = start.astimezone(env.tz)
        return getattr(self, f"_{self.kind}")(local, env).astimezone(start.tzinfo)

    def _offset(self, local: datetime, env: Env) -> datetime:
        n = -self.n if self.rel == "before" else self.n
        if not self.working:
            return local + n * _PLAIN[self.unit]
        if self.unit == "day":
            day = env.calendar.add_working_days(local.date(), n)
            return _at(day, local.timetz().replace(tzinfo=None), env.tz)
        return _add_working_minutes(local, n * 60, env)  # working hours: `parse` allows no other working unit

    def _same_day(self, local: datetime, env: Env) -> datetime:
        return _at(local.date(), self.at or time(23, 59), env.tz)

    def _next_day(self, local: datetime, env: Env) -> datetime:
        return _at(local.date() + timedelta(days=1), self.at or env.opens, env.tz)

    def _next_working_day(self, local: datetime, env: Env) -> datetime:
        day = env.calendar.next_working_day(local.date())
        return _at(day, self.at or (env.hours_on(day) or (env.opens,))[0], env.tz)

    def _month(self, local: datetime, env: Env) -> date:
        """The first day of the month this expression refers to."""
        if not self.month_field:
            return local.date().replace(day=1)
        value = str(env.data.get(self.month_field) or "")
        try:
            return datetime.strptime(value, "%Y-%m").date()
        except ValueError:
            raise ValueError(f"the instance has no month '{self.month_field}' (YYYY-MM) to count from") from None

    def _last_day_of_month(self, local: datetime, env: Env) -> datetime:
        return _at(_month_end(self._month(local, env)), self.at or time(23, 59), env.tz)

    def _day_of_previous_month(self, local: datetime, env: Env) -> datetime:
        last_of_previous = self._month(local, env) - timedelta(days=1)
        return _at(last_of_previous.replace(day=min(self.n, last_of_previous.day)), self.at or time(23, 59), env.tz)

    def _around_month_end(self, local: datetime, env: Env) -> datetime:
        end = _month_end(self._month(local, env))
        if self.rel == "before":
            day = env.calendar.add_working_days(env.calendar.working_day_on_or_before(end), -self.n)
        else:
            day = env.calendar.add_working_days(end, self.n)
        return _at(day, self.at or time(23, 59), env.tz)


@lru_cache(maxsize=1024)
def parse(text: str) -> Expression:
    """Parse a deadline expression; ValueError with the reason when it is not one."""
    if not isinstance(text, str):
        raise ValueError("must be text")
    norm = " ".join(text.strip().lower().split())
    if norm in ("0", "at deadline"):
        return Expression(text, "offset", 0, "minute")
    m = _OFFSET.match(norm)
    if m:
        if m["working"] and m["unit"] not in ("day", "hour"):
            raise ValueError("only days and hours can be working days/hours")
        if m["rel"] and m["sign"]:
            raise ValueError("use either a sign or before/after, not both")
        rel = m["rel"] or ("before" if m["sign"] == "-" else "after")
        return Expression(text, "offset", int(m["n"]), m["unit"], bool(m["working"]), rel=rel, anchor=m["field"])
    for pattern, kind in _CALENDAR:
        m = pattern.match(norm)
        if m:
            groups = m.groupdict()
            at = None
            if groups.get("hh") is not None:
                hh, mm = int(groups["hh"]), int(groups["mm"])
                if hh > 23 or mm > 59:
                    raise ValueError(f"{hh}:{mm:02d} is not a time of day")
                at = time(hh, mm)
            return Expression(text, kind, int(groups.get("n") or 0), at=at, rel=groups.get("rel") or "",
                              month_field=groups.get("field"))
    raise ValueError("not understood (e.g. '4 hours', '2 working days', 'next working day at 10:00', "
                     "'last day of the month at 19:00', '30 minutes after handover_at')")


def time_of_day(text: str) -> time:
    """"14:00" → time(14, 0); ValueError otherwise."""
    m = re.match(r"^(\d{1,2}):(\d{2})$", str(text).strip())
    if not m or int(m[1]) > 23 or int(m[2]) > 59:
        raise ValueError(f"'{text}' is not a time of day (HH:MM)")
    return time(int(m[1]), int(m[2]))


def _at(day: date, at: time, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, at, tzinfo=tz)


def _month_end(day: date) -> date:
    first_of_next = (day.replace(day=28) + timedelta(days=4)).replace(day=1)
    return first_of_next - timedelta(days=1)


def _anchor(data: dict, path: str) -> datetime:
    value = data
    for key in path.split("."):
        value = value.get(key) if isinstance(value, dict) else None
    if not value:
        raise ValueError(f"the instance has no '{path}' to count from")
    instant = datetime.fromisoformat(str(value))
    if instant.tzinfo is None:
        raise ValueError(f"'{path}' has no timezone")
    return instant


def _add_working_minutes(local: datetime, minutes: int, env: Env) -> datetime:
    """Move `minutes` of opening time forward (or back), skipping closed hours and days that do not count."""
    tz = env.tz
    t = local.replace(tzinfo=None)
    remaining = timedelta(minutes=abs(minutes))
    forward = minutes >= 0
    while True:
        hours = env.hours_on(t.date())
        if hours is None:  # a day that does not count: on to the next (or previous) one
            t = datetime.combine(t.date() + timedelta(days=1 if forward else -1), time(0) if forward else time.max)
            continue
        day_open, day_close = datetime.combine(t.date(), hours[0]), datetime.combine(t.date(), hours[1])
        if forward:
            if t >= day_close:
                t = datetime.combine(t.date() + timedelta(days=1), time(0))
                continue
            t = max(t, day_open)
            if t + remaining <= day_close:
                return (t + remaining).replace(tzinfo=tz)
            remaining -= day_close - t
            t = datetime.combine(t.date() + timedelta(days=1), time(0))
        else:
            if t <= day_open:
                t = datetime.combine(t.date() - timedelta(days=1), time.max)
                continue
            t = min(t, day_close)
            if t - remaining >= day_open:
                return (t - remaining).replace(tzinfo=tz)
            remaining -= t - day_open
            t = datetime.combine(t.date() - timedelta(days=1), time.max)
