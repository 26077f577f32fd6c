"""Business calendars: which days count, and the hours they count, for the people of one org unit.

Two working patterns, chosen per unit (`for_unit`):
- `office`: China's statutory holidays and make-up working days (调休) from the `holidays` package — or, for a
  year an admin imported, the official list — plus the company's override table. A year's statutory days are
  *estimated* until an admin confirms the year or imports the official list (the package extrapolates years
  the State Council has not announced, without any 调休).
- `store`: open every day, holidays included (its busiest days), except the closures listed for the unit or a
  unit above it (whole days, or part days such as 除夕 afternoon), with opening hours per weekday.
"""
import re
import threading
import time as _time
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

import holidays
import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from engine import clock, dates, org
from engine.db import UTCDateTime, db
from engine.errors import InvalidInput

CACHE_SECONDS = 30  # overrides are edited rarely; other processes see an edit within this long
# Years whose package data were checked day by day against the State Council's notice (2026: the notice of
# 2025-11-04). Later years are the package's extrapolation until an admin confirms or imports them.
CHECKED_THROUGH = 2026
PATTERNS = ("office", "store")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

# Words the engine itself says about a day, in each language a person may have (zh is the default).
WORDS = {
    "weekend": {"zh": "周末", "en": "weekend"},
    "makeup": {"zh": "调休上班", "en": "make-up working day (调休)"},
    "override": {"zh": "调整", "en": "override"},
    "open": {"zh": "营业", "en": "Open"},
    "closed": {"zh": "停业", "en": "Closed"},
    "closed_from": {"zh": "{t} 起停业", "en": "Closed from {t}"},
    "closed_until": {"zh": "{t} 前停业", "en": "Closed until {t}"},
    "statutory": {"zh": "法定节假日", "en": "Statutory holiday"},
    "estimated": {"zh": "预估", "en": "estimated"},
    "working": {"zh": "上班", "en": "working"},
    "off": {"zh": "休息", "en": "off"},
}


def word(key: str, lang: str = "zh", **fmt) -> str:
    """One of the engine's calendar words in `lang` (zh or en)."""
    return WORDS[key]["en" if lang == "en" else "zh"].format(**fmt)


class CalendarOverride(db.Model):
    """An admin's word on one day: working or not, overriding the package."""

    __tablename__ = "calendar_overrides"
    day: Mapped[date] = mapped_column(sa.Date, primary_key=True)
    working: Mapped[bool]
    note: Mapped[str] = mapped_column(sa.String(200), default="")


class CalendarYear(db.Model):
    """A year whose statutory calendar an admin confirmed (`confirmed`) or replaced by the official list
    (`imported`)."""

    __tablename__ = "calendar_years"
    year: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    source: Mapped[str] = mapped_column(sa.String(16))
    confirmed_by: Mapped[str] = mapped_column(sa.String(64), default="")
    confirmed_at: Mapped[datetime] = mapped_column(UTCDateTime)


class StatutoryDay(db.Model):
    """One day of an imported official list: off (a holiday) or working (a make-up day), with its name."""

    __tablename__ = "statutory_days"
    day: Mapped[date] = mapped_column(sa.Date, primary_key=True)
    working: Mapped[bool]
    name: Mapped[str] = mapped_column(sa.String(100), default="")


class UnitClosure(db.Model):
    """A day a store is closed: the whole day (no times), or from `closed_from`, or until `closed_until`."""

    __tablename__ = "unit_closures"
    __table_args__ = (sa.UniqueConstraint("org_unit_id", "day", name="uq_unit_closures_day"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    org_unit_id: Mapped[int] = mapped_column(sa.ForeignKey("org_units.id"), index=True)
    day: Mapped[date] = mapped_column(sa.Date)
    closed_from: Mapped[time | None] = mapped_column(sa.Time)
    closed_until: Mapped[time | None] = mapped_column(sa.Time)
    note: Mapped[str] = mapped_column(sa.String(200), default="")


@dataclass(frozen=True)
class Day:
    """One day as a calendar sees it (for `calendar show`, the admin page and the API)."""

    day: date
    working: bool               # a working day (office) or an open day (store)
    hours: tuple[time, time] | None
    reason: str
    estimated: bool
    kind: str = ""              # override, holiday, makeup, weekend, working (office); open, closed (store)


class _Counting:
    """Working-day arithmetic shared by both patterns (they differ in `is_working_day` and `day_hours`)."""

    pattern = "office"

    def is_working_day(self, day: date) -> bool:  # pragma: no cover - each pattern defines it
        raise NotImplementedError

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

    def day_hours(self, day: date, opens: time, closes: time) -> tuple[time, time] | None:
        """The hours `day` counts, given the unit's usual hours; None on a day that does not count."""
        return (opens, closes) if self.is_working_day(day) else None


class BusinessCalendar(_Counting):
    """The office pattern. Weekends are off unless they are 调休 make-up days; holidays are off. For an imported
    year the official list replaces the package; overrides beat both."""

    def __init__(self, overrides: dict[date, bool], statutory: dict[date, tuple[bool, str]] | None = None,
                 confirmed: set[int] | frozenset = frozenset()):
        self.overrides = overrides
        self.statutory = statutory or {}
        self.imported = {d.year for d in self.statutory}
        self.confirmed = set(confirmed) | self.imported
        self._cn = _china()

    def is_working_day(self, day: date) -> bool:
        if day in self.overrides:
            return self.overrides[day]
        if day.year in self.imported:
            return self.statutory[day][0] if day in self.statutory else day.weekday() < 5
        if day in self._cn:
            return False
        # `day in self._cn` (above) loads the day's year, which also fills in that year's weekend_workdays.
        return day.weekday() < 5 or day in self._cn.weekend_workdays

    def estimated(self, day: date) -> bool:
        """True when the day rests on the package's guess: its year is neither checked, confirmed nor imported."""
        return day not in self.overrides and day.year > CHECKED_THROUGH and day.year not in self.confirmed

    def kind(self, day: date) -> str:
        """What sort of day it is: override, holiday, makeup, weekend or working."""
        if day in self.overrides:
            return "override"
        if day.year in self.imported:
            if day in self.statutory:
                return "makeup" if self.statutory[day][0] and day.weekday() >= 5 else \
                    "working" if self.statutory[day][0] else "holiday"
        elif day in self._cn:
            return "holiday"
        elif day.weekday() >= 5 and day in self._cn.weekend_workdays:
            return "makeup"
        return "weekend" if day.weekday() >= 5 else "working"

    def reason(self, day: date, lang: str = "en") -> str:
        """Why the day is what it is, in `lang` (zh or en), dates in ISO form."""
        if day in self.overrides:
            return word("override", lang)
        if day.year in self.imported and day in self.statutory:
            working, name = self.statutory[day]
            return name or word("makeup" if working else "statutory", lang)
        if day.year not in self.imported and day in self._cn:
            return _holiday_name(day, lang)
        if day.weekday() >= 5:
            makeup = day.year not in self.imported and day in self._cn.weekend_workdays
            return word("makeup" if makeup else "weekend", lang)
        return ""


class StoreCalendar(_Counting):
    """The store pattern: open every day except its closures; opening hours per weekday."""

    pattern = "store"

    def __init__(self, closures: dict[date, tuple[time | None, time | None, str]],
                 weekday_hours: dict[int, tuple[time, time]] | None = None):
        self.closures = closures
        self.weekday_hours = weekday_hours or {}

    def is_working_day(self, day: date) -> bool:
        closure = self.closures.get(day)
        return closure is None or closure[0] is not None or closure[1] is not None

    def estimated(self, day: date) -> bool:
        return False  # a store's days are its own word, not the State Council's

    def day_hours(self, day: date, opens: time, closes: time) -> tuple[time, time] | None:
        opens, closes = self.weekday_hours.get(day.weekday(), (opens, closes))
        closure = self.closures.get(day)
        if closure is not None:
            closed_from, closed_until, _ = closure
            if closed_from is None and closed_until is None:
                return None
            if closed_from is not None:
                closes = min(closes, closed_from)
            if closed_until is not None:
                opens = max(opens, closed_until)
        return (opens, closes) if opens < closes else None

    def kind(self, day: date) -> str:
        return "open" if self.is_working_day(day) else "closed"

    def reason(self, day: date, lang: str = "en") -> str:
        closure = self.closures.get(day)
        if closure is None:
            return word("open", lang)
        closed_from, closed_until, note = closure
        if closed_from is not None:
            text = word("closed_from", lang, t=closed_from.strftime("%H:%M"))
        elif closed_until is not None:
            text = word("closed_until", lang, t=closed_until.strftime("%H:%M"))
        else:
            text = word("closed", lang)
        return f"{text} ({note})" if note else text


_china_lock = threading.Lock()
_china_calendars: dict[str, holidays.HolidayBase] = {}
_cache: dict = {"at": -1e9, "calendar": None}
_US_DATE = re.compile(r"(\d{2})/(\d{2})/(\d{4})")


def _china(lang: str = "en") -> holidays.HolidayBase:
    key = "zh_CN" if lang == "zh" else "en_US"
    with _china_lock:
        if key not in _china_calendars:
            _china_calendars[key] = holidays.country_holidays("CN", language=key)
        return _china_calendars[key]


def _holiday_name(day: date, lang: str) -> str:
    """The package's name for a holiday in `lang`, its dates in ISO form ("substituted from 09/20/2026" →
    "substituted from 2026-09-20")."""
    return _US_DATE.sub(r"\3-\1-\2", _china(lang).get(day) or "")


def current() -> BusinessCalendar:
    """The office calendar as stored: overrides, imported years, confirmed years (cached for CACHE_SECONDS)."""
    if _time.monotonic() - _cache["at"] > CACHE_SECONDS or _cache["calendar"] is None:
        rows = db.session.execute(sa.select(CalendarOverride.day, CalendarOverride.working)).all()
        statutory = {d: (w, n) for d, w, n in db.session.execute(
            sa.select(StatutoryDay.day, StatutoryDay.working, StatutoryDay.name)).all()}
        confirmed = set(db.session.scalars(sa.select(CalendarYear.year)))
        _cache.update(at=_time.monotonic(), calendar=BusinessCalendar(dict(rows), statutory, confirmed))
    return _cache["calendar"]


def invalidate() -> None:
    _cache["calendar"] = None


def pattern_of(unit) -> str:
    """A unit's working pattern: its own `calendar_pattern` setting; else `store` for a store; else the
    nearest setting above it; else `office`."""
    own = (unit.settings or {}).get("calendar_pattern")
    if own in PATTERNS:
        return own
    if unit.kind == "store":
        return "store"
    inherited = org.setting(unit, "calendar_pattern")
    return inherited if inherited in PATTERNS else "office"


def for_unit(unit) -> BusinessCalendar | StoreCalendar:
    """The calendar the people of `unit` work by (see `pattern_of`)."""
    if pattern_of(unit) == "office":
        return current()
    rows = db.session.execute(
        sa.select(UnitClosure.org_unit_id, UnitClosure.day, UnitClosure.closed_from, UnitClosure.closed_until,
                  UnitClosure.note).where(UnitClosure.org_unit_id.in_(unit.ancestor_ids))).all()
    nearness = {unit_id: i for i, unit_id in enumerate(unit.ancestor_ids)}
    closures: dict = {}
    for _unit_id, day, closed_from, closed_until, note in sorted(rows, key=lambda r: -nearness[r[0]]):
        closures[day] = (closed_from, closed_until, note)  # the nearest unit's closure of a day wins
    hours = {}
    for name, span in (org.setting(unit, "weekday_hours") or {}).items():
        hours[WEEKDAYS.index(name)] = tuple(time.fromisoformat(t) for t in span)
    return StoreCalendar(closures, hours)


# ---- writes ---------------------------------------------------------------------------------------------

def set_day(day: date, working: bool, note: str = "") -> None:
    """Record an override for `day` (committed). A day outside the accepted years is refused (InvalidInput)
    before anything is written: the month around it could not be shown or computed."""
    dates.check(day, "day")
    row = db.session.get(CalendarOverride, day) or CalendarOverride(day=day)
    row.working, row.note = working, note
    db.session.add(row)
    db.session.commit()
    invalidate()


def confirm_year(year: int, by: str, source: str = "confirmed") -> CalendarYear:
    """Mark `year`'s statutory calendar as confirmed by `by` (login), committed; `import_year` passes
    commit=False to commit the list and the mark together."""
    return _mark_confirmed(year, by, source, commit=True)


def _mark_confirmed(year: int, by: str, source: str, commit: bool) -> CalendarYear:
    dates.check_year(year, "year")
    row = db.session.get(CalendarYear, year) or CalendarYear(year=year)
    row.source, row.confirmed_by, row.confirmed_at = source, by[:64], clock.now()
    db.session.add(row)
    if commit:
        db.session.commit()
    invalidate()
    return row


def is_confirmed(year: int) -> bool:
    """True when `year`'s statutory days are checked, confirmed or imported."""
    return year <= CHECKED_THROUGH or db.session.get(CalendarYear, year) is not None


def import_year(year: int, days: list[tuple[date, bool, str]], by: str) -> int:
    """Replace `year`'s statutory days by the official list `days` (date, working, name) and mark the year
    confirmed (committed; refused whole with InvalidInput when a row is outside the year or repeated)."""
    dates.check_year(year, "year")
    seen = set()
    for day, _, _ in days:
        if day.year != year:
            raise InvalidInput(f"{day.isoformat()} is not in {year}", field="file")
        if day in seen:
            raise InvalidInput(f"{day.isoformat()} is listed twice", field="file")
        seen.add(day)
    if not days:
        raise InvalidInput("the file lists no days", field="file")
    db.session.execute(sa.delete(StatutoryDay).where(StatutoryDay.day.between(date(year, 1, 1), date(year, 12, 31))))
    db.session.add_all(StatutoryDay(day=d, working=w, name=n[:100]) for d, w, n in days)
    _mark_confirmed(year, by, "imported", commit=False)
    db.session.commit()
    invalidate()
    return len(days)


def set_closure(unit, day: date, closed_from: time | None = None, closed_until: time | None = None,
                note: str = "") -> UnitClosure:
    """List a closure of `unit` on `day` (replacing one listed); the caller commits."""
    dates.check(day, "day")
    if closed_from is not None and closed_until is not None:
        raise InvalidInput("give either the time it closes from or the time it opens at, not both", field="until")
    row = db.session.scalar(sa.select(UnitClosure).where(UnitClosure.org_unit_id == unit.id, UnitClosure.day == day))
    row = row or UnitClosure(org_unit_id=unit.id, day=day)
    row.closed_from, row.closed_until, row.note = closed_from, closed_until, note[:200]
    db.session.add(row)
    return row


def remove_closure(unit, day: date) -> bool:
    """Drop `unit`'s closure on `day`; False when none was listed. The caller commits."""
    done = db.session.execute(sa.delete(UnitClosure).where(UnitClosure.org_unit_id == unit.id, UnitClosure.day == day))
    return bool(done.rowcount)


def set_pattern(unit, pattern: str | None = None, weekday: str | None = None,
                hours: tuple[time, time] | None = None) -> None:
    """Set a unit's working pattern and/or one weekday's opening hours (unit settings, inherited down the tree);
    the caller commits."""
    settings = dict(unit.settings or {})
    if pattern is not None:
        if pattern not in PATTERNS:
            raise InvalidInput(f"unknown pattern '{pattern}' (office or store)", field="pattern")
        settings["calendar_pattern"] = pattern
    if weekday is not None:
        if weekday not in WEEKDAYS:
            raise InvalidInput(f"unknown weekday '{weekday}' ({', '.join(WEEKDAYS)})", field="weekday")
        if hours is None or hours[0] >= hours[1]:
            raise InvalidInput("a unit must open before it closes", field="hours")
        settings["weekday_hours"] = {**settings.get("weekday_hours", {}),
                                     weekday: [hours[0].strftime("%H:%M"), hours[1].strftime("%H:%M")]}
    unit.settings = settings


# ---- reads ----------------------------------------------------------------------------------------------

def month_days(year: int, month: int, unit=None, lang: str = "en") -> list[Day]:
    """Each day of the month on `unit`'s calendar (None: the office calendar): working/open or not, its hours,
    why, and whether it is an estimate (InvalidInput outside the accepted years)."""
    dates.check_year(year, "month")
    if not 1 <= month <= 12:
        raise InvalidInput("not a month (YYYY-MM)", field="month")
    cal = for_unit(unit) if unit is not None else current()
    opens, closes = (unit.opens_at, unit.closes_at) if unit is not None else (time(9), time(21))
    days, day = [], date(year, month, 1)
    while day.month == month:
        days.append(Day(day, cal.is_working_day(day), cal.day_hours(day, opens, closes), cal.reason(day, lang),
                        cal.estimated(day), cal.kind(day)))
        day += timedelta(days=1)
    return days
