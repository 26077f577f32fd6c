"""Every deadline of every workflow fires: each state with a deadline is reached the real way, then
`timers run-due --now` is run at each rung's instant, and its effect is checked — the reminder reaches whoever
owes the step, the escalation reaches someone above them, an automatic trigger moves the instance."""
import pytest
import sqlalchemy as sa

import engine
from engine import org, registry, targets
from engine.db import db
from engine.models import Timer
from tests.flows import reload, run_due

P = {}  # people, filled per test


def fire(inst, trigger, login, data=None, comment=None):
    return engine.fire(inst.id, trigger, P[login], data, comment)


COMPLAINT = {"customer": "王女士", "contact": "138", "channel": "phone", "category": "service", "severity": "medium",
             "description": "态度不好"}


def complaint(state):
    inst = engine.start("complaint", "S1", P["a1"], COMPLAINT)
    steps = {"acknowledged": [("acknowledge", "agent", None)],
             "assigned": [("acknowledge", "agent", None), ("assign", "agent", {"assignee": "a1b"})],
             "resolved": [("assign", "agent", {"assignee": "a1b"}), ("resolve", "a1b", {"resolution": "已道歉"})],
             "manager_review": [("assign", "agent", {"assignee": "a1b"}), ("resolve", "a1b", {"resolution": "x"}),
                                ("follow_up", "agent", {"satisfaction": 1})]}
    for trigger, login, data in steps.get(state, []):
        fire(inst, trigger, login, data)
    return inst


def plan(state):
    targets.set_annual(2026, org.unit_by_code("T1").id, P["rep1"].id, "1200000", 120, 2400)
    db.session.commit()
    budget = "90000" if state == "regional_review" else "1000"
    inst = engine.start("monthly_plan", "T1", P["rep1"], {"month": "2026-12", "budget": budget})
    if state == "draft":
        return inst
    fire(inst, "submit", "rep1")
    if state in ("manager_review",):
        return inst
    fire(inst, "approve", "salesmgr")
    if state in ("regional_review", "approved"):
        return inst
    engine.fire(inst.id, "start_evaluation", None)
    if state == "evaluation":
        return inst
    fire(inst, "record_actuals", "rep1", {"actuals": {"amount": "1000.00", "new_customers": 0, "visits": 1}})
    if state == "explanation":
        return inst
    fire(inst, "explain", "rep1", {"reasons": "淡季", "next_actions": "补单"})
    return inst


BOOK = [{"sku": "A100", "name": "羊毛衫", "quantity": 100}, {"sku": "C300", "name": "手套", "quantity": 10}]


def stocktake(state):
    inst = engine.start("stocktake", "S1", P["sm1"], {"month": "2026-11", "book": BOOK})
    if state == "counting":
        return inst
    off = state in ("recount", "variance_review")
    fire(inst, "enter_counts", "a1", {"zone": "A", "lines": [{"sku": "A100", "counted": 100},
                                                             {"sku": "C300", "counted": 4 if off else 10}]})
    fire(inst, "submit_counts", "a1")
    if state in ("recount", "reporting"):
        return inst
    if state == "variance_review":
        return fire(inst, "recount", "a1", {"lines": [{"sku": "C300", "counted": 4}]})
    fire(inst, "send_report", "sm1")
    return inst


def handover(state):
    counts = {"cash_expected": "100.00", "cash_counted": "90.00" if state == "countersign" else "100.00"}
    inst = engine.start("shift_handover", "S1", P["sm1"], {"handover_at": "2026-11-02T10:15:00+08:00"})
    if state == "countersign":
        fire(inst, "record_counts", "dep1", {"counts": counts})
        fire(inst, "sign_out", "dep1")
        fire(inst, "sign_in", "sm1")
    return inst


def cohort(state):
    for login in ("new1",):
        org.add_user(login, "新人", f"{login}@example.com", "pw", [("rep", "T1")])
    org.add_user("regsales", "华东销售主管", "regsales@example.com", "pw", [("sales_manager", "EAST")])
    db.session.commit()
    inst = engine.start("training_cohort", "EAST", P["trainer"], {
        "name": "新人班", "start_date": "2026-11-02", "stages": 1, "days_per_stage": 1, "trainees": ["new1"]})
    if state == "waiting":
        return inst
    engine.fire(inst.id, "open_day", None)
    if state == "training_day":
        return inst
    fire(inst, "record_observation", "trainer", {"trainee": "new1", "observation": "好"})
    fire(inst, "end_day", "trainer")
    if state == "stage_assessment":
        return inst
    fire(inst, "assess_stage", "trainer", {"scores": {"new1": 90}, "summary": "好"})
    return inst


RECIPES = {"complaint": complaint, "monthly_plan": plan, "stocktake": stocktake, "shift_handover": handover,
           "training_cohort": cohort}
CASES = [(name, s.name) for name in RECIPES for s in registry.get(name).wf.states if s.deadline]


def test_every_state_with_a_deadline_is_covered():
    assert len(CASES) == 23


@pytest.mark.parametrize("workflow, state", CASES)
def test_every_rung_fires(app, people, clock, smtp, workflow, state):
    P.clear()
    P.update(people)
    inst = RECIPES[workflow](state)
    inst = reload(inst)
    assert inst.state == state
    compiled = registry.get(workflow)
    owners = sorted(h.user.login for h in engine.assignees(compiled, inst))
    step = compiled.states[state].title
    timers = db.session.scalars(sa.select(Timer).where(Timer.instance_id == inst.id, Timer.status == "pending")
                                .order_by(Timer.due_at, Timer.rung)).all()
    assert [t.rung for t in timers if t.rung == 0] == [0]
    for due in sorted({t.due_at for t in timers}):
        smtp.messages.clear()
        run_due(app, due.isoformat())
        about = [m for m in smtp.messages if step["zh"] in str(m["Subject"]) or step["en"] in str(m["Subject"])]
        got = {k: sorted(m["To"].addresses[0].username for m in about if str(m["Subject"]).startswith(k))
               for k in ("【提醒】", "【超时升级】", "[Escalation]")}
        for timer in (t for t in timers if t.due_at == due):
            db.session.refresh(timer)
            assert timer.status == "fired"
            if timer.action == "remind":
                assert got["【提醒】"] == owners and owners
            elif timer.action == "escalate":
                escalated = got["【超时升级】"] + got["[Escalation]"]
                assert escalated and not set(escalated) & set(owners), (state, escalated, owners)
            elif timer.action == "fire":
                assert reload(inst).state != state
                return
