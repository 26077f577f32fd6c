"""Monthly sales plan: pre-filled from the annual target's breakdown, approved (twice when large), and
evaluated against actuals at month end — the "有计划没结果" fix."""
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import holidays
import pytest

import engine
from engine import org, targets
from engine.db import db
from engine.errors import InvalidPayload, NotPermitted
from tests.flows import mails, refused, reload, run_due, trail


@pytest.fixture
def annual(people):
    targets.set_annual(2026, org.unit_by_code("T1").id, people["rep1"].id, "1200000", 120, 2400)
    db.session.commit()


def test_plan_is_prefilled_from_the_annual_target(people, clock, annual):
    inst = engine.start("monthly_plan", "T1", people["rep1"], {"month": "2026-12", "budget": "3000"})
    doc = inst.data
    cn = holidays.country_holidays("CN", years=2026)
    working = [d for d in (date(2026, 1, 1) + timedelta(n) for n in range(365))
               if (d.weekday() < 5 and d not in cn) or d in cn.weekend_workdays]
    december = [d for d in working if d.month == 12]
    assert (len(working), len(december)) == (248, 23)  # China's 2026 calendar, 调休 included
    # the month's share of the year's working days: 1,200,000 × 23 / 248
    assert doc["targets"] == doc["baseline"] == {"amount": "111290.32", "new_customers": 11, "visits": 223}
    weeks, days = doc["breakdown"]["weeks"], doc["breakdown"]["days"]
    assert len(days) == 23 and days[0]["date"] == "2026-12-01"
    assert [d["date"] for d in days] == [d.isoformat() for d in december]
    assert sum(Decimal(w["amount"]) for w in weeks) == Decimal("111290.32")
    assert sum(d["visits"] for d in days) == 223 and sum(w["working_days"] for w in weeks) == 23
    assert inst.due_at == datetime(2026, 11, 25, 15, 59, tzinfo=UTC)  # the 25th of the month before, 23:59


def test_golden_path_to_evaluation_and_review(app, people, clock, annual, smtp):
    inst = engine.start("monthly_plan", "T1", people["rep1"], {
        "month": "2026-12", "actions": [{"title": "拜访老客户", "week": 1}], "budget": "5000"})
    engine.fire(inst.id, "submit", people["rep1"])
    inst = engine.fire(inst.id, "approve", people["salesmgr"])
    assert inst.state == "approved"
    assert inst.due_at == datetime(2026, 12, 31, 15, 59, tzinfo=UTC)
    run_due(app, "2026-12-31T23:59:00+08:00")  # month end: it moves to evaluation by itself
    inst = reload(inst)
    assert inst.state == "evaluation" and trail(inst)[-1] == ("start_evaluation", "system", "evaluation")
    clock.set(datetime(2027, 1, 4, 2, 0, tzinfo=UTC))
    inst = engine.fire(inst.id, "record_actuals", people["rep1"], {
        "actuals": {"amount": "88320.00", "new_customers": 12, "visits": 230}})
    assert inst.state == "explanation"  # 79 % of the amount: below the 90 % threshold
    assert inst.data["achievement"] == {"amount": "79.4", "new_customers": "109.1", "visits": "103.1"}
    engine.fire(inst.id, "explain", people["rep1"], {"reasons": "两家大客户推迟采购", "next_actions": "一月补单"})
    refused(NotPermitted, inst, "review", people["rep1"], comment="自评")
    inst = engine.fire(inst.id, "review", people["salesmgr"], comment="同意，一月跟进")
    assert inst.state == "closed"


def test_large_budget_needs_the_regional_manager_too(people, clock, annual):
    inst = engine.start("monthly_plan", "T1", people["rep1"], {"month": "2026-12", "budget": "80000"})
    engine.fire(inst.id, "submit", people["rep1"])
    assert engine.fire(inst.id, "approve", people["salesmgr"]).state == "regional_review"
    refused(NotPermitted, inst, "approve", people["south"])  # another region
    assert engine.fire(inst.id, "approve", people["east"]).state == "approved"


def test_targets_far_from_the_breakdown_need_the_regional_manager(people, clock, annual):
    inst = engine.start("monthly_plan", "T1", people["rep1"], {
        "month": "2026-12", "targets": {"amount": "60000.00", "new_customers": 5, "visits": 100}})
    engine.fire(inst.id, "submit", people["rep1"])
    assert engine.fire(inst.id, "approve", people["salesmgr"]).state == "regional_review"


def test_return_recall_reject_and_refusals(people, clock, annual):
    with pytest.raises(InvalidPayload) as e:
        engine.start("monthly_plan", "T1", people["rep1"], {"month": "2026-13"})
    assert "month" in e.value.errors
    with pytest.raises(InvalidPayload):
        engine.start("monthly_plan", "T1", people["rep1"], {"month": "2026-10"})  # the past
    with pytest.raises(NotPermitted):
        engine.start("monthly_plan", "T1", people["a1"], {"month": "2026-12"})  # not a rep
    inst = engine.start("monthly_plan", "T1", people["rep1"], {"month": "2026-12"})
    refused(NotPermitted, inst, "submit", people["salesmgr"])  # only the rep submits their plan
    engine.fire(inst.id, "submit", people["rep1"])
    assert engine.fire(inst.id, "recall", people["rep1"]).state == "draft"  # before the manager acted
    engine.fire(inst.id, "update", people["rep1"], {"budget": "1000", "notes": "补充预算"})
    assert reload(inst).data["month"] == "2026-12"  # an edit changes only what it gives
    engine.fire(inst.id, "submit", people["rep1"])
    refused(InvalidPayload, inst, "return", people["salesmgr"])  # a return says why
    engine.fire(inst.id, "return", people["salesmgr"], comment="新客户目标偏低")
    engine.fire(inst.id, "submit", people["rep1"])
    refused(NotPermitted, inst, "recall", people["salesmgr"])  # only the rep recalls their plan
    inst = engine.fire(inst.id, "reject", people["salesmgr"], comment="重新制定")
    assert inst.state == "rejected"


def test_a_manager_who_is_also_the_rep_cannot_approve_their_own_plan(people, clock):
    coach = org.add_user("coach", "带队主管", "coach@example.com", "pw", [("rep", "T1"), ("sales_manager", "T1")])
    db.session.commit()
    inst = engine.start("monthly_plan", "T1", coach, {"month": "2026-12"})
    engine.fire(inst.id, "submit", coach)
    e = refused(NotPermitted, inst, "approve", coach)
    assert e.details["reason"] == "segregation_of_duties"
    assert engine.fire(inst.id, "approve", people["salesmgr"]).state == "approved"


def test_deadlines_remind_the_rep_and_escalate_to_the_managers(app, people, clock, smtp, annual):
    engine.start("monthly_plan", "T1", people["rep1"], {"month": "2026-12"})
    run_due(app, "2026-11-22T23:59:00+08:00")
    assert mails(smtp, "【提醒】") == ["rep1"]
    run_due(app, "2026-11-25T23:59:00+08:00")
    assert mails(smtp, "【超时升级】") == ["salesmgr"]
    smtp.messages.clear()
    late = engine.start("monthly_plan", "T1", people["rep1"], {"month": "2026-12"})
    engine.fire(late.id, "submit", people["rep1"])  # Monday 2 November 10:00: review due Wednesday 10:00
    run_due(app, "2026-11-04T10:00:00+08:00")
    assert mails(smtp, "【超时升级】") == ["east"]
    run_due(app, "2026-11-05T10:00:00+08:00")
    assert mails(smtp, "【超时升级】") == ["boss", "east"]


def test_annual_targets_from_the_command_line(app, people, clock):
    runner = app.test_cli_runner()
    r = runner.invoke(args=["targets", "set", "2026", "T1", "--user", "rep1", "--amount", "1200000",
                            "--new-customers", "120", "--visits", "2400"])
    assert r.exit_code == 0, r.output
    inst = engine.start("monthly_plan", "T1", people["rep1"], {"month": "2026-12"})
    assert inst.data["targets"]["amount"] == "111290.32"
    r = runner.invoke(args=["targets", "set", "2026", "NOPE", "--amount", "1"])
    assert r.exit_code == 1 and "unknown org unit 'NOPE'" in r.output


def test_a_plan_is_for_at_most_thirteen_months_ahead(people, clock):
    # the clock is in November 2026: December 2027 is the last month a plan may be made for
    assert engine.start("monthly_plan", "T1", people["rep1"], {"month": "2027-12"}).state == "draft"
    for month, message in (("2028-01", "ahead"), ("9999-12", "2000 to 2100")):
        with pytest.raises(InvalidPayload) as e:
            engine.start("monthly_plan", "T1", people["rep1"], {"month": month})
        assert message in str(e.value.errors["month"])
