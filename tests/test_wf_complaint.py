"""Customer complaint: the golden path, its refusals, its severity-dependent deadlines."""
from datetime import UTC, datetime

import pytest

import engine
from engine.errors import InvalidPayload, NotAvailable, NotPermitted
from tests.flows import mails, refused, reload, run_due, trail

COMPLAINT = {"customer": "王女士", "contact": "138-0000-0000", "channel": "phone", "order_ref": "SO-1001",
             "category": "product_quality", "severity": "medium", "description": "外套开线，要求退换。"}


def test_golden_path_with_reopen_and_low_satisfaction_review(people, clock):
    inst = engine.start("complaint", "S1", people["a1"], COMPLAINT)
    engine.fire(inst.id, "acknowledge", people["agent"])
    engine.fire(inst.id, "assign", people["agent"], {"assignee": "a1b"})
    assert reload(inst).assignee_id == people["a1b"].id
    engine.fire(inst.id, "resolve", people["a1b"], {"resolution": "已换新"})
    engine.fire(inst.id, "follow_up", people["agent"], {"satisfaction": 4, "follow_up_notes": "满意"})
    inst = engine.fire(inst.id, "close", people["agent"])
    assert inst.state == "closed" and inst.data["satisfaction"] == 4
    # Closed is not work anyone owes: out of the inbox, though it may still be reopened from its page.
    assert inst.id not in {t.instance.id for t in engine.inbox(people["agent"])}
    assert "reopen" in [t.trigger for t in engine.available_actions(reload(inst), people["agent"])]
    clock.advance(days=10)
    engine.fire(inst.id, "reopen", people["agent"], {"reason": "顾客再次来电：仍有问题"})
    assert reload(inst).state == "assigned"
    engine.fire(inst.id, "resolve", people["a1b"], {"resolution": "退款"})
    inst = engine.fire(inst.id, "follow_up", people["agent"], {"satisfaction": 2})
    assert inst.state == "manager_review"  # low satisfaction: the manager reviews before it closes
    refused(InvalidPayload, inst, "review", people["sm1"])  # a comment is required
    inst = engine.fire(inst.id, "review", people["sm1"], comment="已致电道歉并补偿")
    assert [s for _, _, s in trail(inst)] == ["received", "acknowledged", "assigned", "resolved", "followed_up",
                                              "closed", "assigned", "resolved", "manager_review", "closed"]


def test_refusals_write_nothing(people, clock):
    with pytest.raises(InvalidPayload) as e:
        engine.start("complaint", "S1", people["a1"], COMPLAINT | {"severity": "urgent", "channel": "pigeon"})
    assert set(e.value.errors) == {"severity", "channel"}
    inst = engine.start("complaint", "S1", people["a1"], COMPLAINT)
    refused(NotPermitted, inst, "acknowledge", people["a1b"])  # an assistant does not acknowledge
    refused(NotPermitted, inst, "acknowledge", people["sm3"])  # another region's store manager
    refused(NotAvailable, inst, "resolve", people["agent"])  # not in this state
    e = refused(InvalidPayload, inst, "assign", people["agent"], {"assignee": "a3"})  # not staff of S1
    assert "assignee" in e.errors
    engine.fire(inst.id, "assign", people["agent"], {"assignee": "a1b"})
    refused(NotPermitted, inst, "resolve", people["a1"])  # only the assignee (or the store manager)
    engine.fire(inst.id, "resolve", people["sm1"], {"resolution": "已处理"})
    engine.fire(inst.id, "follow_up", people["agent"], {"satisfaction": 1})
    refused(NotPermitted, inst, "review", people["sm1"], comment="ok")  # resolved it: may not review it
    engine.fire(inst.id, "review", people["sm1asst"], comment="复核")
    clock.advance(days=31)
    refused(NotAvailable, inst, "reopen", people["agent"], {"reason": "太晚了"})


def test_deadlines_by_severity_escalate_to_store_then_region(app, people, clock, smtp):
    # Monday 2 November 2026, 10:00 in Shanghai
    critical = engine.start("complaint", "S1", people["a1"], COMPLAINT | {"severity": "critical"})
    low = engine.start("complaint", "S2", people["a2"], COMPLAINT | {"severity": "low"})
    assert critical.due_at.isoformat() == "2026-11-02T02:30:00+00:00"  # 30 minutes
    assert low.due_at.isoformat() == "2026-11-02T04:00:00+00:00"  # 2 working hours
    out = run_due(app, "2026-11-02T10:30:00+08:00")
    assert "fired 2" in out  # the critical one's deadline and its escalation to the store managers
    assert mails(smtp, "【超时升级】") == ["sm1", "sm1asst"]
    smtp.messages.clear()
    run_due(app, "2026-11-02T12:00:00+08:00")
    assert mails(smtp, "【超时升级】") == ["sm2"]
    smtp.messages.clear()
    run_due(app, "2026-11-03T12:00:00+08:00")  # one working day later: the regional manager, for both
    assert mails(smtp, "【超时升级】") == ["east", "east"]
    clock.set(datetime(2026, 11, 3, 4, 0, tzinfo=UTC))
    engine.fire(critical.id, "acknowledge", people["agent"])  # acknowledging starts the next deadline
    assert reload(critical).due_at.isoformat() == "2026-11-03T05:00:00+00:00"  # critical: 1 hour
