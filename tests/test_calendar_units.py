"""A store's calendar is not an office's; statutory years nobody has confirmed are marked estimated.

Stores open every day but their listed closures, with hours per weekday; offices follow the statutory days with
调休. A deadline counts on the calendar of the unit whose people do the step."""
import io
from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

import openpyxl

import engine
from engine import calendar, checks, org, targets
from engine.db import db
from engine.deadlines import Env, parse
from tests.api_fixtures import api_fixture  # noqa: F401
from tests.test_wf_complaint import COMPLAINT

pytest_plugins = ["tests.ui_fixtures"]
SH = ZoneInfo("Asia/Shanghai")


def local(instant):
    return instant.astimezone(SH).replace(tzinfo=None)


def test_a_store_step_counts_every_day_an_office_step_office_days(people, clock):
    clock.set(datetime(2026, 11, 28, 10, 0, tzinfo=SH))  # Saturday
    inst = engine.start("complaint", "S1", people["a1"], COMPLAINT)
    # "received" is the service agent's, held at region EAST (an office): 2 working hours land on Monday
    assert local(inst.due_at) == datetime(2026, 11, 30, 11, 0)
    engine.fire(inst.id, "acknowledge", people["agent"])
    inst = engine.fire(inst.id, "assign", people["agent"], {"assignee": "a1b"})
    # "assigned" is the store assistant's, at store S1: 5 days the store is open, weekend included
    assert local(inst.due_at) == datetime(2026, 12, 3, 10, 0)


def test_the_accountants_step_stays_on_the_office_calendar(people):
    # the accountant holds their role at HQ: the stocktake's accountant review counts office days even at a store
    from engine import timers
    from engine.registry import get

    state = get("stocktake", 1).states["accountant_review"]
    inst = engine.models.Instance(org_unit=org.unit_by_code("S1"), data={})
    assert timers.step_unit(state, inst, datetime(2026, 11, 28, tzinfo=UTC)).code == "HQ"
    assert timers.env_for(inst, state).calendar.pattern == "office"
    assert timers.env_for(inst, get("stocktake", 1).states["reporting"]).calendar.pattern == "store"


def test_patterns_are_inherited_and_stores_default_to_store(people):
    units = {code: org.unit_by_code(code) for code in ("HQ", "EAST", "S1", "T1")}
    assert {c: calendar.pattern_of(u) for c, u in units.items()} == \
        {"HQ": "office", "EAST": "office", "S1": "store", "T1": "office"}
    calendar.set_pattern(units["EAST"], "store")  # a region of shop-floor teams
    calendar.set_pattern(units["S1"], "office")   # a store that keeps office days (a showroom, say)
    db.session.commit()
    assert calendar.pattern_of(units["T1"]) == "store" and calendar.pattern_of(units["S1"]) == "office"
    assert calendar.for_unit(units["T1"]).is_working_day(date(2026, 10, 1))  # National Day: open
    assert not calendar.for_unit(units["S1"]).is_working_day(date(2026, 10, 1))


def test_store_closures_part_days_and_weekday_hours(app, people):
    runner = app.test_cli_runner()
    assert runner.invoke(args=["calendar", "hours", "S1", "sat", "10:00", "22:00"]).exit_code == 0
    assert runner.invoke(args=["calendar", "close", "EAST", "2027-02-05", "--from", "14:00", "--note", "除夕"]
                         ).exit_code == 0  # every store of the region closes on 除夕 afternoon
    assert runner.invoke(args=["calendar", "close", "S1", "2027-02-06", "--note", "春节"]).exit_code == 0
    s1 = org.unit_by_code("S1")
    env = Env(SH, s1.opens_at, s1.closes_at, calendar.for_unit(s1))
    start = datetime(2027, 2, 5, 12, 0, tzinfo=SH)  # 除夕, 2 hours before closing
    assert local(parse("4 working hours").resolve(start, env)) == datetime(2027, 2, 7, 11, 0)  # 6th closed
    assert local(parse("1 working day").resolve(start, env)) == datetime(2027, 2, 7, 12, 0)
    sat = datetime(2027, 2, 13, 20, 0, tzinfo=SH)  # a Saturday: open until 22:00
    assert local(parse("3 working hours").resolve(sat, env)) == datetime(2027, 2, 14, 10, 0)
    out = runner.invoke(args=["calendar", "show", "2027-02", "--unit", "S1", "--lang", "en"]).output.splitlines()
    assert out[0] == "S1: store"
    assert out[5] == "2027-02-05 Fri  open     09:00-14:00  Closed from 14:00 (除夕)"
    assert out[6] == "2027-02-06 Sat  closed   Closed (春节)"
    assert out[7] == "2027-02-07 Sun  open     09:00-21:00  Open"
    assert out[13] == "2027-02-13 Sat  open     10:00-22:00  Open"
    bad = runner.invoke(args=["calendar", "close", "S1", "2027-02-07", "--from", "25:00"])
    assert bad.exit_code != 0 and "not a time of day" in bad.output
    bad = runner.invoke(args=["calendar", "hours", "S1", "sun", "22:00", "10:00"])
    assert bad.exit_code != 0 and "open before it closes" in bad.output


def test_the_daily_split_counts_the_days_the_unit_works(people):
    month = targets.Targets(amount=300, new_customers=30, visits=30)
    team = targets.breakdown(month, 2026, 11, calendar.for_unit(org.unit_by_code("T1")))
    store = targets.breakdown(month, 2026, 11, calendar.for_unit(org.unit_by_code("S1")))
    assert len(team["days"]) == 21 and "2026-11-07" not in {d["date"] for d in team["days"]}
    assert len(store["days"]) == 30 and "2026-11-07" in {d["date"] for d in store["days"]}  # a Saturday


def test_a_store_cohort_trains_on_the_days_the_store_opens(people, clock):
    cohort = {"name": "门店新人班", "start_date": "2026-11-06", "stages": 2, "days_per_stage": 2,
              "rest_days_per_stage": 1, "trainees": ["a1", "a1b"]}
    inst = engine.start("training_cohort", "S1", people["trainer"], cohort)
    days = [(d["date"], d["kind"]) for d in inst.data["schedule"]]
    assert days == [("2026-11-06", "training"), ("2026-11-07", "training"), ("2026-11-08", "rest"),
                    ("2026-11-09", "training"), ("2026-11-10", "training")]


def test_unconfirmed_years_are_estimated_until_confirmed(app, people):
    runner = app.test_cli_runner()
    out = runner.invoke(args=["calendar", "show", "2027-02", "--lang", "en"]).output.splitlines()
    assert "Chinese New Year" in out[5] and out[5].endswith("[estimated]")
    zh = runner.invoke(args=["calendar", "show", "2027-02"]).output.splitlines()  # zh by default
    assert zh[5].startswith("2027-02-06 周六  休息") and "春节" in zh[5] and zh[5].endswith("[预估]")
    assert "[estimated]" not in runner.invoke(args=["calendar", "show", "2026-10", "--lang", "en"]).output
    assert [d.estimated for d in calendar.month_days(2027, 2)] == [True] * 28
    assert runner.invoke(args=["calendar", "confirm", "2027", "--by", "admin"]).exit_code == 0
    assert not any(d.estimated for d in calendar.month_days(2027, 2))
    assert runner.invoke(args=["calendar", "confirm", "1999"]).exit_code != 0


def test_reasons_in_the_users_language_with_iso_dates(app, ctx, monkeypatch):
    runner = app.test_cli_runner()
    line = runner.invoke(args=["calendar", "show", "2026-10", "--lang", "en"]).output.splitlines()[5]
    assert line == "2026-10-06 Tue  off      Day off (substituted from 2026-09-20)"
    line = runner.invoke(args=["calendar", "show", "2026-10"]).output.splitlines()[5]
    assert line == "2026-10-06 周二  休息       休息日（由 2026-09-20 调休）"
    monkeypatch.setenv("LANG", "en_US.UTF-8")
    assert "2026-10-10 Sat  working  make-up working day" in runner.invoke(args=["calendar", "show", "2026-10"]).output


def test_importing_the_official_list_replaces_the_years_statutory_days(app, people, tmp_path, clock):
    official = tmp_path / "2027.csv"
    official.write_text("date,kind,name\n2027-02-05,off,春节\n2027-02-08,off,春节\n2027-02-20,working,春节调休\n",
                        encoding="utf-8")
    runner = app.test_cli_runner()
    r = runner.invoke(args=["calendar", "import", "2027", str(official), "--by", "admin"])
    assert r.exit_code == 0 and "3 official days" in r.output
    cal = calendar.current()
    assert not cal.is_working_day(date(2027, 2, 8)) and cal.is_working_day(date(2027, 2, 20))
    assert cal.is_working_day(date(2027, 2, 9))  # the package's guess is gone with the official list
    assert not calendar.month_days(2027, 2)[19].estimated and calendar.month_days(2027, 2)[19].reason == "春节调休"
    env = Env(SH, time(9), time(21), calendar.current())
    assert local(parse("1 working day").resolve(datetime(2027, 2, 19, 10, tzinfo=SH), env)) == datetime(2027, 2, 20, 10)
    bad = tmp_path / "bad.csv"
    bad.write_text("2027-03-01,off,x\n2027-13-01,off,y\n", encoding="utf-8")
    r = runner.invoke(args=["calendar", "import", "2027", str(bad)])
    assert r.exit_code != 0 and "row 2: '2027-13-01' is not a date" in r.output
    r = runner.invoke(args=["calendar", "import", "2028", str(official)])
    assert r.exit_code != 0 and "2027-02-05 is not in 2028" in r.output
    calendar.invalidate()
    assert calendar.current().is_working_day(date(2027, 2, 20))  # nothing of the refused files was written
    assert not calendar.is_confirmed(2028)


def test_flask_check_warns_from_november_of_an_unconfirmed_next_year(app, ctx, clock):
    clock.set(datetime(2026, 10, 31, 12, tzinfo=SH))
    assert checks.calendar_year().level == checks.Level.OK
    clock.set(datetime(2026, 11, 1, 0, 5, tzinfo=SH))
    warn = checks.calendar_year()
    assert warn.level == checks.Level.WARN and "2027" in warn.detail
    assert "WARN  calendar: statutory holidays of 2027 are estimated" in \
        app.test_cli_runner().invoke(args=["check"]).output
    calendar.confirm_year(2027, "admin")
    assert checks.calendar_year().level == checks.Level.OK


def test_api_reads_a_units_month(api, clock):
    body = api.get("/calendar?unit=S1&month=2027-02", as_="a1", headers={"Accept-Language": "en"}).json
    assert body["pattern"] == "store" and len(body["days"]) == 28
    assert body["days"][5] == {"date": "2027-02-06", "working": True, "opens": "09:00", "closes": "21:00",
                               "reason": "Open", "estimated": False}
    office = api.get("/calendar?unit=HQ&month=2027-02", as_="a1").json  # zh by the user's locale
    assert office["pattern"] == "office"
    assert office["days"][5]["working"] is False and office["days"][5]["estimated"] is True
    assert office["days"][5]["reason"] == "春节"
    r = api.get("/calendar?unit=S1&month=2027-13", as_="a1")
    assert r.status_code == 422 and "month" in str(r.json)
    r = api.get("/calendar?unit=NOPE&month=2027-02", as_="a1")
    assert r.status_code == 422 and "org_unit" in str(r.json)


def test_admin_page_marks_estimated_days_and_confirms_or_imports(people, signed_in):
    admin = signed_in("admin")
    page = admin.get("/admin?month=2027-02").get_data(as_text=True)
    assert "法定节假日（预估）: 春节" in page and "2027 年的法定节假日为预估" in page
    assert "（预估）" not in admin.get("/admin?month=2026-10").get_data(as_text=True)
    form = {"year": "2027", "month": "2027-02"}
    r = admin.post("/admin/calendar/import", form | {"file": (io.BytesIO(b"2027-02-30,off,x\n"), "a.csv")},
                   content_type="multipart/form-data")
    assert r.status_code == 422 and "第 1 行：2027-02-30 不是日期" in r.get_data(as_text=True)
    book = openpyxl.Workbook()
    book.active.append(["date", "kind", "name"])
    book.active.append([datetime(2027, 2, 20), "working", "春节调休"])
    data = io.BytesIO()
    book.save(data)
    r = admin.post("/admin/calendar/import", form | {"file": (io.BytesIO(data.getvalue()), "2027.xlsx")},
                   content_type="multipart/form-data")
    assert r.status_code == 302
    page = admin.get("/admin?month=2027-02").get_data(as_text=True)
    assert "（预估）" not in page and "调休上班" in page
    assert signed_in("east").post("/admin/calendar/confirm", {"year": "2028"}).status_code == 404
    assert admin.post("/admin/calendar/confirm", {"year": "2028"}).status_code == 302
    assert calendar.is_confirmed(2028)
