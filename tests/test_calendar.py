"""The business calendar and deadline expressions: China's holidays and 调休, opening hours, month ends."""
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

import pytest

from engine import calendar
from engine.calendar import BusinessCalendar
from engine.deadlines import Env, parse

SH = ZoneInfo("Asia/Shanghai")


def env(tz=SH, opens=time(9), closes=time(21), overrides=None, data=None):
    return Env(tz, opens, closes, BusinessCalendar(overrides or {}), data or {})


def at(text, start, **kw):
    tz = kw.get("tz", SH)
    return parse(text).resolve(start.replace(tzinfo=tz), env(**kw)).astimezone(tz).replace(tzinfo=None)


D = datetime


@pytest.mark.parametrize("expr, start, expected", [
    # the checked examples: 1–7 October 2026 are holidays, Saturday 10 October is a make-up working day
    ("2 working days", D(2026, 9, 30, 10), D(2026, 10, 9, 10)),
    ("3 working days", D(2026, 9, 30, 10), D(2026, 10, 10, 10)),
    # an ordinary weekend is skipped
    ("1 working day", D(2026, 11, 27, 15), D(2026, 11, 30, 15)),
    # starting on a Sunday: Monday is the first working day
    ("1 working day", D(2026, 11, 29, 15), D(2026, 11, 30, 15)),
    # Sunday 20 September 2026 is a make-up working day (调休)
    ("1 working day", D(2026, 9, 19, 11), D(2026, 9, 20, 11)),
    # backwards, for "remind 1 working day before": Monday → previous Friday
    ("-1 working day", D(2026, 11, 30, 10), D(2026, 11, 27, 10)),
    # Spring Festival 2026: 15–23 February off, Saturday 14 and 28 February worked
    ("1 working day", D(2026, 2, 13, 10), D(2026, 2, 14, 10)),
    ("1 working day", D(2026, 2, 14, 10), D(2026, 2, 24, 10)),
    # working hours stay inside opening hours (09:00–21:00)
    ("4 working hours", D(2026, 11, 26, 19), D(2026, 11, 27, 11)),
    ("4 working hours", D(2026, 11, 27, 19), D(2026, 11, 30, 11)),  # Friday evening → Monday
    ("4 working hours", D(2026, 11, 26, 7, 30), D(2026, 11, 26, 13)),  # before opening: counts from 09:00
    ("-2 working hours", D(2026, 11, 30, 10), D(2026, 11, 27, 20)),
    ("2 working hours", D(2026, 9, 30, 20), D(2026, 10, 8, 10)),  # across the National Day holiday
    # plain durations ignore the calendar
    ("4 hours", D(2026, 11, 27, 22), D(2026, 11, 28, 2)),
    ("-30 minutes", D(2026, 11, 27, 0, 10), D(2026, 11, 26, 23, 40)),
    # calendar anchors
    ("same day at 23:59", D(2026, 11, 30, 19), D(2026, 11, 30, 23, 59)),
    ("next working day at 10:00", D(2026, 11, 27, 20), D(2026, 11, 30, 10)),
    ("next working day at 12:00", D(2026, 9, 30, 19), D(2026, 10, 8, 12)),
    ("next day at 12:00", D(2026, 9, 30, 19), D(2026, 10, 1, 12)),  # 第二日: a store's next day, holiday or not
    ("next day at 12:00", D(2026, 12, 31, 23, 30), D(2027, 1, 1, 12)),
    ("last day of the month at 19:00", D(2026, 11, 3, 8), D(2026, 11, 30, 19)),
    ("last day of the month at 19:00", D(2028, 2, 3, 8), D(2028, 2, 29, 19)),  # leap day
    ("last day of the month at 19:00", D(2026, 12, 31, 8), D(2026, 12, 31, 19)),
    ("3 working days after the end of the month", D(2026, 9, 10, 8), D(2026, 10, 10, 23, 59)),
    ("2 working days before the end of the month at 18:00", D(2026, 11, 3, 8), D(2026, 11, 26, 18)),
    ("0 working days before the end of the month", D(2026, 5, 3, 8), D(2026, 5, 29, 23, 59)),  # 30, 31 weekend
])
def test_deadline_expressions(expr, start, expected):
    assert at(expr, start) == expected


def test_offset_from_an_instant_the_instance_records():
    data = {"handover_at": "2026-11-24T14:00:00+08:00"}
    assert at("30 minutes after handover_at", D(2026, 11, 24, 9), data=data) == D(2026, 11, 24, 14, 30)
    assert at("15 minutes before handover_at", D(2026, 11, 24, 9), data=data) == D(2026, 11, 24, 13, 45)


def test_a_store_in_another_timezone_counts_in_its_own_time():
    urumqi = ZoneInfo("Asia/Urumqi")  # UTC+6: opening hours are local
    start = datetime(2026, 11, 26, 12, 0, tzinfo=ZoneInfo("UTC"))  # 18:00 in Ürümqi, 20:00 in Shanghai
    due = parse("4 working hours").resolve(start, env(tz=urumqi))
    assert due.astimezone(urumqi).replace(tzinfo=None) == D(2026, 11, 27, 10)  # 3 h that evening, 1 h next morning
    assert due.tzinfo == start.tzinfo  # returned in the start's timezone (UTC in the engine)


def test_overrides_beat_the_package():
    assert at("1 working day", D(2027, 3, 5, 10), overrides={date(2027, 3, 8): False}) == D(2027, 3, 9, 10)
    assert at("1 working day", D(2026, 11, 27, 10), overrides={date(2026, 11, 28): True}) == D(2026, 11, 28, 10)


@pytest.mark.parametrize("bad", ["soon", "2 working weeks", "-2 hours after handover_at", "same day at 25:00",
                                 "last day of the month at 7pm", ""])
def test_bad_expressions_say_why(bad):
    with pytest.raises(ValueError):
        parse(bad)


def test_calendar_overrides_are_stored_and_shown(ctx, app):
    runner = app.test_cli_runner()
    r = runner.invoke(args=["calendar", "show", "2026-10", "--lang", "en"])
    lines = r.output.splitlines()
    assert r.exit_code == 0 and len(lines) == 31
    assert lines[0].startswith("2026-10-01 Thu  off") and "National Day" in lines[0]
    assert lines[9].startswith("2026-10-10 Sat  working  make-up working day")
    assert lines[11].startswith("2026-10-12 Mon  working")
    r = runner.invoke(args=["calendar", "set", "2026-10-12", "--holiday", "--note", "店庆"])
    assert r.exit_code == 0
    assert calendar.current().is_working_day(date(2026, 10, 12)) is False
    shown = runner.invoke(args=["calendar", "show", "2026-10", "--lang", "en"]).output
    assert "2026-10-12 Mon  off      override" in shown
    bad = runner.invoke(args=["calendar", "show", "October"])
    assert bad.exit_code != 0 and "is not YYYY-MM" in bad.output
    bad = runner.invoke(args=["calendar", "set", "2026-13-01", "--working"])
    assert bad.exit_code != 0
