"""Input no handler can store or compute is refused with a 4xx naming the field, and nothing is written: NUL and
lone surrogates in any string (JSON, query string, form), integers beyond what JSON carries, deep nesting,
dates far outside the years Signoff works in, ids beyond the database's integers. A 500's log line carries the
statement, never the customer data bound into it; the stored Idempotency-Key reply never fails a request."""
import logging
from datetime import date

import pytest
import sqlalchemy as sa

from engine import calendar, idempotency, queries
from engine.calendar import CalendarOverride
from engine.db import db
from engine.idempotency import IdempotencyRecord
from engine.models import AuditEvent, Instance
from engine.org import Delegation
from tests.api_fixtures import REQUEST, api_fixture  # noqa: F401

pytest_plugins = ["tests.ui_fixtures"]


def refused(r, status: int, field: str, error: str = "invalid_payload") -> str:
    """The response is the API's error shape with `status`, naming `field`; returns that field's message."""
    assert r.status_code == status, (r.status_code, r.get_data(as_text=True))
    assert r.json["error"] == error, r.json
    assert field in r.json["errors"], r.json
    return r.json["errors"][field][0]


def written() -> tuple[int, int]:
    return (db.session.scalar(sa.select(sa.func.count()).select_from(Instance)),
            db.session.scalar(sa.select(sa.func.count()).select_from(AuditEvent)))


def start(api, data, as_="a1", workflow="discount_request", unit="S1", **kw):
    return api.post("/instances", as_=as_, json={"workflow": workflow, "org_unit": unit, "data": data}, **kw)


def test_nul_in_any_json_string_query_or_login_is_a_422_naming_the_field(api):
    inst = api.submitted()
    before = written()
    assert "NUL" in refused(start(api, REQUEST | {"customer": "李\u0000女士"}), 422, "data.customer")
    refused(api.post(f"/instances/{inst['id']}/actions/approve", as_="sm1", json={"comment": "好\u0000"}), 422,
            "comment")
    refused(api.get("/instances?q=a%00b", as_="a1"), 422, "q")
    refused(api.get("/instances?state=a%00", as_="a1"), 422, "state")
    refused(api.post("/tokens", json={"login": "a1\u0000", "password": "pw-a1"}), 422, "login")
    assert written() == before
    assert api.get(f"/instances/{inst['id']}", as_="a1").json["version"] == inst["version"]


def test_lone_surrogates_huge_numbers_and_deep_nesting_are_4xx(api):
    before = written()
    body = '{"workflow": "discount_request", "org_unit": "S1\\ud800", "data": {}}'
    refused(api.post("/instances", as_="a1", data=body, content_type="application/json"), 422, "org_unit")
    digits = '{"workflow": "discount_request", "org_unit": "S1", "data": {"amount": ' + "9" * 5000 + "}}"
    refused(api.post("/instances", as_="a1", data=digits, content_type="application/json"), 400, "body",
            "malformed_json")
    refused(start(api, REQUEST | {"amount": 10**20}), 422, "data.amount")
    deep = '{"workflow": "discount_request", "org_unit": "S1", "data": ' + "[" * 100_000 + "]" * 100_000 + "}"
    refused(api.post("/instances", as_="a1", data=deep, content_type="application/json"), 400, "body",
            "malformed_json")
    assert written() == before


@pytest.mark.parametrize("workflow, unit, as_, data, field", [
    ("shift_handover", "S1", "sm1", {"handover_at": "9999-12-31T23:00:00+08:00"}, "handover_at"),
    ("shift_handover", "S1", "sm1", {"handover_at": "0001-01-01T00:00:00+08:00"}, "handover_at"),
    ("monthly_plan", "T1", "rep1", {"month": "9999-12"}, "month"),
    ("training_cohort", "EAST", "trainer", {"name": "班", "start_date": "9999-12-30", "stages": 1,
                                            "days_per_stage": 1, "trainees": ["rep1"]}, "start_date"),
])
def test_dates_in_year_1_or_9999_are_a_422_naming_the_field(api, workflow, unit, as_, data, field):
    assert refused(start(api, data, as_=as_, workflow=workflow, unit=unit), 422, field) == \
        "Must be a date in the years 2000 to 2100."
    assert written() == (0, 0)


def test_api_delegation_in_year_1_is_a_422(api):
    r = api.post("/delegations", as_="admin", json={"from_user": "sm1", "to_user": "dep1",
                                                    "starts_at": "0001-01-01T00:00:00+08:00",
                                                    "ends_at": "2026-11-05T18:00:00+08:00"})
    refused(r, 422, "starts_at")
    assert db.session.scalar(sa.select(Delegation)) is None


def test_idempotency_key_with_an_unstorable_body_is_refused_and_the_key_stays_free(api):
    key = {"Idempotency-Key": "nul-1"}
    refused(start(api, REQUEST | {"customer": "a\u0000"}, headers=key), 422, "data.customer")
    assert db.session.scalar(sa.select(IdempotencyRecord)) is None
    first = start(api, REQUEST, headers=key)
    assert first.status_code == 201
    assert start(api, REQUEST, headers=key).json == first.json


def test_a_stored_reply_with_nul_is_stored_and_replayed(api, people):
    """A reply can hold NUL from data stored before the gate existed: storing it must not fail (PostgreSQL
    refuses NUL in JSONB)."""
    user = people["a1"]
    assert idempotency.begin(user.id, "k", "digest") is None
    idempotency.finish(user.id, "k", 201, {"customer": "李\u0000女士", "notes": ["x\u0000"]})
    replay = idempotency.begin(user.id, "k", "digest")
    assert replay.status == 201 and replay.body == {"customer": "李\ufffd女士", "notes": ["x\ufffd"]}


def test_a_500s_log_line_has_the_statement_but_not_the_customer_data(api, monkeypatch, caplog):
    def failing_query(*a, **kw):  # a real statement failing in the real database, with customer data bound
        # (a NOT NULL violation: PostgreSQL's own message quotes the failing row, so the message must go too)
        db.session.execute(sa.text("INSERT INTO users (login, name) VALUES (:customer, :customer)"),
                           {"customer": "王小明 13800138000"})

    monkeypatch.setattr(queries, "list_instances", failing_query)
    with caplog.at_level(logging.ERROR):
        r = api.get("/instances", as_="a1")
    assert r.status_code == 500
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "INSERT INTO users (login, name) VALUES" in logged
    assert "王小明" not in logged and "13800138000" not in logged and "王小明" not in caplog.text


# ---- pages and the CLI ----------------------------------------------------------------------------------

def test_ui_ids_beyond_the_database_integers_are_404(app, people, clock, signed_in):
    page = signed_in("a1")
    assert page.get("/instances/2147483648").status_code == 404
    assert page.get("/instances/99999999999999999999").status_code == 404
    assert page.post("/instances/2147483648/actions/submit").status_code == 404


def test_ui_form_with_nul_is_a_400_naming_the_field(app, people, clock, signed_in):
    r = signed_in("a1").post("/instances/1/actions/submit", {"comment": "a\u0000b"})
    assert r.status_code == 400 and "comment" in r.get_data(as_text=True)


def test_admin_page_calendar_and_delegation_outside_the_years(app, people, clock, signed_in):
    admin = signed_in("admin")
    r = admin.get("/admin?month=9999-12")
    assert r.status_code == 422 and "月份: 日期须在 2000 年至 2100 年之间。" in r.get_data(as_text=True)
    r = admin.post("/admin/calendar", {"day": "9999-12-31", "working": "1"})
    assert r.status_code == 422 and "日期: 日期须在 2000 年至 2100 年之间。" in r.get_data(as_text=True)
    assert db.session.scalar(sa.select(CalendarOverride)) is None
    r = admin.post("/admin/delegations", {"from_login": "sm1", "to_login": "dep1",
                                          "starts_at": "0001-01-01T00:00", "ends_at": "2026-11-05T18:00"})
    assert r.status_code == 422 and "开始: 日期须在 2000 年至 2100 年之间。" in r.get_data(as_text=True)
    assert db.session.scalar(sa.select(Delegation)) is None


def test_cli_calendar_set_outside_the_years_writes_nothing(ctx, app):
    runner = app.test_cli_runner()
    r = runner.invoke(args=["calendar", "set", "9999-12-31", "--working"])
    assert r.exit_code != 0 and "2000 to 2100" in r.output
    assert db.session.scalar(sa.select(CalendarOverride)) is None
    r = runner.invoke(args=["calendar", "show", "9999-12"])
    assert r.exit_code != 0 and "2000 to 2100" in r.output
    calendar.invalidate()
    assert calendar.current().is_working_day(date(2026, 11, 2))
