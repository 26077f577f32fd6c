"""Evening close (晚班): the daily sales report, the 圈圈账 tally and the stock cards within 45 minutes of the store's
closing routine, signed by whoever closes; late, the store manager and then the region hear of it. The next
morning's allocation list (配货清单), drawn from the tally, goes to the business manager by the morning time. A
month of signed daily reports is the store's actual sales."""
from datetime import datetime
from decimal import Decimal

import pytest
import sqlalchemy as sa

import engine
from engine import org, sales, scheduler
from engine.db import db
from engine.errors import Duplicate, InvalidPayload, NotAvailable, NotPermitted
from engine.models import Instance
from tests.flows import mails, refused, reload, run_due, trail

MONDAY = "2026-11-02"  # the clock fixture's day (Monday 10:00 in Shanghai)
SALES = [{"sku": "A100", "name": "羊毛衫", "quantity": 3, "amount": "1197.00"},
         {"sku": "B200", "name": "真丝围巾", "quantity": 5, "amount": "1495.00"},
         {"category": "配饰", "quantity": 2, "amount": "120.00"},
         {"sku": "A100", "name": "羊毛衫", "quantity": 1, "amount": "399.00"}]
CARDS = [{"sku": "A100", "name": "羊毛衫", "opening": 20, "received": 6, "sold": 4, "closing": 22},
         {"sku": "B200", "name": "真丝围巾", "opening": 10, "received": 0, "sold": 5, "closing": 5}]


def report(**changes) -> dict:
    return {"sales": SALES, "receipts_total": "3211.00", "cash": "800.00", "stock_cards": CARDS} | changes


def sales_manager_above(unit: str = "EAST"):
    """The business manager (业务经理) over the stores of `unit`."""
    user = org.add_user(f"yewu.{unit.lower()}", "业务经理", f"yewu.{unit.lower()}@example.com", "pw",
                        [("sales_manager", unit)])
    db.session.commit()
    return user


def test_the_close_is_signed_and_the_allocation_list_goes_to_the_business_manager(people, clock):
    manager = sales_manager_above()
    inst = engine.start("evening_close", "S1", people["dep1"], {"day": MONDAY})
    assert inst.data["close_at"] == "2026-11-02T19:00:00+08:00"  # the store's closing routine, by default
    assert inst.due_at == datetime.fromisoformat("2026-11-02T19:45:00+08:00")  # 45 minutes
    refused(InvalidPayload, inst, "sign", people["dep1"])  # the report first
    engine.fire(inst.id, "record_report", people["a1"], report())
    data = reload(inst).data
    # the 圈圈账: pieces per style, best sellers first; the category line has no style
    assert data["tally"] == [{"sku": "B200", "name": "真丝围巾", "quantity": 5},
                             {"sku": "A100", "name": "羊毛衫", "quantity": 4}]
    assert data["totals"] == {"quantity": 11, "amount": "3211.00", "cash": "800.00"}
    inst = engine.fire(inst.id, "sign", people["a1"])  # whoever closes signs; once is enough
    assert inst.state == "allocation"
    assert trail(inst)[-2:] == [("sign", "a1", "open"), ("signed", "system", "allocation")]
    refused(NotAvailable, inst, "record_report", people["a1"], report())  # signed: the report is final
    # the allocation list: re-stock what sold, due at 08:45 the next morning, with the business manager
    assert inst.data["allocation"]["lines"] == data["tally"]
    assert inst.due_at == datetime.fromisoformat("2026-11-03T08:45:00+08:00")
    owners = engine.assignees(engine.registry.get("evening_close"), inst)
    assert [h.user.login for h in owners] == ["yewu.east"]
    refused(NotPermitted, inst, "confirm_allocation", people["salesmgr"])  # T1's, not above S1
    refused(NotPermitted, inst, "confirm_allocation", people["sm1"])
    inst = engine.fire(inst.id, "confirm_allocation", manager, {"lines": [
        {"sku": "B200", "name": "真丝围巾", "quantity": 8}, {"sku": "A100", "quantity": 0}]})
    assert inst.state == "completed"
    assert inst.data["allocation"]["lines"] == [{"sku": "B200", "name": "真丝围巾", "quantity": 8}]
    assert inst.data["allocation"]["confirmed"] and inst.data["allocation"]["adjusted"]


def test_without_a_business_manager_the_region_confirms_the_list_as_drawn(people, clock):
    inst = engine.start("evening_close", "S3", people["sm3"], {"day": MONDAY})
    engine.fire(inst.id, "record_report", people["sm3"], report(stock_cards=[]))
    inst = engine.fire(inst.id, "sign", people["sm3"])
    owners = engine.assignees(engine.registry.get("evening_close"), inst)
    assert [h.user.login for h in owners] == ["south"]
    inst = engine.fire(inst.id, "confirm_allocation", people["south"])
    assert inst.state == "completed" and [x["sku"] for x in inst.data["allocation"]["lines"]] == ["B200", "A100"]
    assert "adjusted" not in inst.data["allocation"]


@pytest.mark.parametrize("changes, errors", [
    ({"stock_cards": [CARDS[0], CARDS[1] | {"closing": 6}]},  # 10 + 0 − 5 is 5
     {"stock_cards": {"1": {"closing": ["Opening + received − sold = 5, not 6."]}}}),
    ({"stock_cards": [CARDS[0] | {"sold": 3, "closing": 23}, CARDS[1]]},  # the report sold 4 of A100
     {"stock_cards": {"0": {"sold": ["The sales lines sell 4 of A100, not 3."]}}}),
    ({"stock_cards": [CARDS[1], CARDS[1]]}, {"stock_cards": {"1": {"sku": ["B200 has a stock card already."]}}}),
    ({"receipts_total": "3200.00"}, {"receipts_total": ["The sales lines add up to 3211.00, not 3200.00."]}),
    ({"cash": "4000.00"}, {"cash": ["More than the receipts total 3211.00."]}),
    ({"sales": [{"quantity": 1, "amount": "10.00"}], "receipts_total": "10.00", "cash": "0", "stock_cards": []},
     {"sales": {"0": {"sku": ["Give the SKU or the category."]}}}),
])
def test_a_report_that_does_not_add_up_is_refused_naming_the_line(people, clock, changes, errors):
    inst = engine.start("evening_close", "S1", people["dep1"], {"day": MONDAY})
    e = refused(InvalidPayload, inst, "record_report", people["a1"], report(**changes))
    assert _keys_as_text(e.errors) == errors


def _keys_as_text(errors):
    return {str(k): _keys_as_text(v) for k, v in errors.items()} if isinstance(errors, dict) else errors


def test_a_late_close_is_chased_to_the_store_manager_then_the_region(app, people, clock, smtp):
    engine.start("evening_close", "S1", people["sm1"], {"day": MONDAY})
    run_due(app, "2026-11-02T19:29:00+08:00")
    assert mails(smtp, "【提醒】") == []
    run_due(app, "2026-11-02T19:30:00+08:00")
    assert mails(smtp, "【提醒】") == ["dep1"]  # the deputy closes
    run_due(app, "2026-11-02T19:44:00+08:00")
    assert mails(smtp, "【超时升级】") == []
    run_due(app, "2026-11-02T19:45:00+08:00")
    assert mails(smtp, "【超时升级】") == ["sm1", "sm1asst"]  # the store managers
    run_due(app, "2026-11-02T20:15:00+08:00")
    assert mails(smtp, "【超时升级】") == ["east", "sm1", "sm1asst"]


def test_an_unconfirmed_allocation_list_is_overdue_at_the_morning_time(app, people, clock, smtp):
    sales_manager_above()
    org.unit_by_code("S2").settings = {"closing_time": "20:00", "morning_time": "09:30"}
    db.session.commit()
    inst = engine.start("evening_close", "S2", people["sm2"], {"day": MONDAY})
    assert inst.data["close_at"] == "2026-11-02T20:00:00+08:00"
    engine.fire(inst.id, "record_report", people["a2"], report())
    engine.fire(inst.id, "sign", people["a2"])
    run_due(app, "2026-11-03T09:00:00+08:00")
    assert mails(smtp, "【提醒】") == ["yewu.east"]
    run_due(app, "2026-11-03T09:29:00+08:00")
    assert mails(smtp, "【超时升级】") == []
    run_due(app, "2026-11-03T09:30:00+08:00")
    assert mails(smtp, "【超时升级】") == ["east"]


def test_one_close_per_store_per_day_at_its_closing_time(app, people, clock):
    org.unit_by_code("S2").settings = {"closing_time": "19:30"}
    db.session.commit()
    assert scheduler.run(datetime.fromisoformat("2026-11-02T18:59:00+08:00"), "evening_close") == {}
    assert scheduler.run(datetime.fromisoformat("2026-11-02T19:00:00+08:00"), "evening_close") == {"evening_close": 2}
    assert scheduler.run(datetime.fromisoformat("2026-11-02T19:30:00+08:00"), "evening_close") == {"evening_close": 1}
    assert scheduler.run(datetime.fromisoformat("2026-11-02T21:00:00+08:00"), "evening_close") == {}
    keys = db.session.scalars(sa.select(Instance.dedupe_key).where(Instance.workflow == "evening_close")).all()
    assert sorted(keys) == [f"evening_close:{s}:{MONDAY}" for s in ("S1", "S2", "S3")]
    s2 = db.session.scalar(sa.select(Instance).where(Instance.dedupe_key == f"evening_close:S2:{MONDAY}"))
    assert s2.data["close_at"] == "2026-11-02T19:30:00+08:00" and s2.created_by_id is None
    with pytest.raises(Duplicate):  # by hand, the same store and day: already started by the schedule
        engine.start("evening_close", "S1", people["sm1"], {"day": MONDAY})


@pytest.mark.parametrize("data, field, message", [
    ({"day": "2026-10-25"}, "day", "past"), ({"day": "2026-11-10"}, "day", "ahead"),
    ({"day": "1900-01-01"}, "day", "2000 to 2100"),
    ({"day": MONDAY, "close_at": "2026-11-03T19:00:00+08:00"}, "close_at", "Not on the day"),
])
def test_a_close_is_for_a_day_within_a_week(people, clock, data, field, message):
    with pytest.raises(InvalidPayload) as e:
        engine.start("evening_close", "S1", people["sm1"], data)
    assert message in str(e.value.errors[field])
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Instance)) == 0


def _closed(people, unit, day, receipts, sign=True):
    lines = [{"sku": "A100", "quantity": 1, "amount": receipts}]
    inst = engine.start("evening_close", unit, people[f"sm{unit[1]}"], {"day": day})
    engine.fire(inst.id, "record_report", people[f"sm{unit[1]}"],
                {"sales": lines, "receipts_total": receipts, "cash": "0"})
    if sign:
        engine.fire(inst.id, "sign", people[f"sm{unit[1]}"])


def test_a_months_signed_daily_reports_are_its_actual_sales(people, clock):
    _closed(people, "S1", "2026-11-01", "1000.00")
    _closed(people, "S1", MONDAY, "250.50")
    _closed(people, "S2", MONDAY, "300.00")
    _closed(people, "S1", "2026-10-31", "999.00")  # last month
    _closed(people, "S1", "2026-11-03", "777.00", sign=False)  # not signed: its figures may still change
    s1 = sales.daily_sales(org.unit_by_code("S1"), "2026-11")
    assert (s1.amount, s1.quantity, s1.reports) == (Decimal("1250.50"), 2, 2)
    assert s1.by_day == {"2026-11-01": Decimal("1000.00"), MONDAY: Decimal("250.50")}
    east = sales.daily_sales(org.unit_by_code("EAST"), "2026-11")  # a region: its stores together
    assert (east.amount, east.reports, east.by_day[MONDAY]) == (Decimal("1550.50"), 3, Decimal("550.50"))
    assert sales.daily_sales(org.unit_by_code("S3"), "2026-11").amount == 0
