"""Reports: overdue by unit/workflow/step/owner, and step SLAs in working hours."""
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from engine import calendar
from engine.reports import working_hours
from tests.api_fixtures import api_fixture  # noqa: F401
from tests.test_api_core import error


def test_overdue_report(api, clock):
    a = api.submitted()
    api.submitted(as_="a1b")
    api.submitted(as_="a2", unit="S2")
    api.submitted(as_="a3", unit="S3")
    clock.advance(hours=5)
    rows = api.get("/reports/overdue", as_="boss").json
    by_unit = {(r["org_unit"]["code"], r["state"]): r for r in rows}
    assert set(by_unit) == {("S1", "store_review"), ("S2", "store_review"), ("S3", "store_review")}
    s1 = by_unit[("S1", "store_review")]
    assert s1["count"] == 2 and {o["login"] for o in s1["owners"]} == {"sm1", "sm1asst"}
    assert s1["workflow"] == "discount_request" and s1["state_title"]["en"] == "Store manager review"
    assert {r["org_unit"]["code"] for r in api.get("/reports/overdue", as_="east").json} == {"S1", "S2"}
    assert [r["org_unit"]["code"] for r in api.get("/reports/overdue?org_unit=S2", as_="boss").json] == ["S2"]
    api.post(f"/instances/{a['id']}/actions/approve", as_="sm1", json={})
    assert [r["count"] for r in api.get("/reports/overdue?org_unit=S1", as_="boss").json] == [1]
    error(api.get("/reports/overdue?org_unit=NOPE", as_="boss"), 422)


def test_sla_report(api, clock):
    # Monday 2026-11-02 10:00 Shanghai: submit, approved 2 hours later (in time) ...
    fast = api.submitted()
    clock.advance(hours=2)
    api.post(f"/instances/{fast['id']}/actions/approve", as_="sm1", json={})
    # ... and one approved 6 working hours later (after its 4-hour deadline)
    slow = api.submitted(as_="a1b")
    clock.advance(hours=6)
    api.post(f"/instances/{slow['id']}/actions/approve", as_="sm1", json={})
    r = api.get("/reports/sla?workflow=discount_request&from=2026-11-01T00:00:00%2B08:00"
                "&to=2026-11-30T00:00:00%2B08:00", as_="boss")
    assert r.status_code == 200, r.json
    steps = {s["state"]: s for s in r.json}
    review = steps["store_review"]
    assert review["count"] == 2 and review["median_hours"] == 4.0 and review["overdue_share"] == 0.5
    assert review["p90_hours"] == 5.6
    assert steps["draft"]["count"] == 2 and steps["draft"]["median_hours"] == 0.0
    assert steps["regional_review"]["count"] == 0 and steps["regional_review"]["median_hours"] is None
    # a store assistant elsewhere sees nothing
    assert {s["count"] for s in api.get("/reports/sla?workflow=discount_request&from=2026-11-01T00:00:00Z"
                                        "&to=2026-12-01T00:00:00Z", as_="a3").json} == {0}
    error(api.get("/reports/sla?workflow=discount_request&from=2026-11-01T00:00:00Z&to=2026-10-01T00:00:00Z",
                  as_="boss"), 422)
    error(api.get("/reports/sla?workflow=nope&from=2026-11-01T00:00:00Z&to=2026-12-01T00:00:00Z", as_="boss"), 404)
    error(api.get("/reports/sla?workflow=discount_request&from=2026-11-01&to=x", as_="boss"), 422)


def test_working_hours_skip_nights_weekends_and_holidays(ctx):
    from datetime import time

    tz = ZoneInfo("Asia/Shanghai")
    cal = calendar.current()
    friday_5pm = datetime(2026, 11, 6, 17, 0, tzinfo=tz)
    monday_11am = datetime(2026, 11, 9, 11, 0, tzinfo=tz)
    assert working_hours(friday_5pm, monday_11am, tz, time(9), time(21), cal) == 4 + 2
    # 2026-10-01 is National Day
    assert working_hours(datetime(2026, 10, 1, 9, tzinfo=tz), datetime(2026, 10, 1, 21, tzinfo=tz), tz, time(9),
                         time(21), cal) == 0
    assert working_hours(datetime(2026, 11, 2, tzinfo=UTC), datetime(2026, 11, 1, tzinfo=UTC), tz, time(9),
                         time(21), cal) == 0
