"""Fault: a timer's automatic action and a person act on the same step at the same moment.

Both go through the one write path (the timer's batch calls apply_trigger inside its own locked transaction;
the person calls engine.fire). Exactly one wins; the loser writes nothing: one audit event for the step, the
winner's notifications and timers only, and the step's timer rows end fired (timer won) or cancelled (the
person won), never half of each. Runs on SQLite (BEGIN IMMEDIATE) and PostgreSQL (row locks).
"""
import random
import threading
from collections import Counter
from datetime import timedelta

import pytest
import sqlalchemy as sa

import engine
from engine import registry, timers
from engine.db import db
from engine.definition import Deadline, Rung, State, Transition, Workflow
from engine.errors import NotAvailable, VersionConflict
from engine.models import AuditEvent, Instance, Notification, Timer
from engine.org import User
from tests.definitions import Empty, t

ROUNDS = 40

# A step the store manager may take on; left alone for an hour, the system escalates it to the region.
RACE = Workflow(
    name="test_race", version=1, title=t("抢占", "Race"), initial="open",
    start_roles=("assistant",), start_schema=Empty,
    states=(
        State("open", t("待接手", "Open"), assignee="store_manager",
              deadline=Deadline("1 hour", ladder=(Rung("0", "fire", trigger="escalate"),))),
        State("taken", t("处理中", "Taken"), assignee="store_manager",
              deadline=Deadline("1 day", ladder=(Rung("-1 hour", "remind"),))),
        State("escalated", t("已升级", "Escalated"), assignee="regional_manager",
              deadline=Deadline("1 day", ladder=(Rung("-1 hour", "remind"),))),
        State("done", t("完成", "Done"), final=True),
    ),
    transitions=(
        Transition("take", "open", "taken", roles=("store_manager",), schema=Empty),
        Transition("escalate", "open", "escalated", schema=Empty),
        Transition("finish", "taken", "done", roles=("store_manager",), schema=Empty),
        Transition("finish", "escalated", "done", roles=("regional_manager",), schema=Empty),
    ),
)
# Task mails on entering each state: S1 has two store managers (sm1, sm1asst); its region one manager (east).
TASK_MAILS = {"open": 2, "taken": 2, "escalated": 1}


@pytest.fixture(autouse=True)
def race_workflow():
    registry.register(RACE)


def _timer_side(app, barrier, out, jitter):
    with app.app_context():
        barrier.wait()
        threading.Event().wait(jitter)
        run = timers.run_due()
        out["timer"] = (run.fired, run.busy)


def _person_side(app, barrier, out, instance_id, user_id, jitter):
    with app.app_context():
        actor = db.session.get(User, user_id)
        db.session.commit()
        barrier.wait()
        threading.Event().wait(jitter)
        try:
            engine.fire(instance_id, "take", actor)
            out["person"] = "ok"
        except (NotAvailable, VersionConflict) as e:
            out["person"] = type(e).__name__


def _race_once(app, people, clock, rng) -> str:
    """One instance, its escalation due now, the store manager taking it at the same instant."""
    start = clock.now()
    inst = engine.start("test_race", "S1", people["a1"], {})
    clock.set(start + timedelta(hours=1))
    out, barrier = {}, threading.Barrier(2)
    # A few milliseconds either way, so both orders (and true overlap) happen.
    jitter = [rng.uniform(0, 0.004), rng.uniform(0, 0.004)]
    threads = [threading.Thread(target=_timer_side, args=(app, barrier, out, jitter[0])),
               threading.Thread(target=_person_side, args=(app, barrier, out, inst.id, people["sm1"].id, jitter[1]))]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    leftover = timers.run_due()  # what a busy timer left for its retry 2 s later
    clock.set(start)
    db.session.rollback()

    fired, busy = out["timer"]
    person_won, timer_won = out["person"] == "ok", fired + leftover.fired > 0
    assert person_won != timer_won, (out, leftover)  # exactly one wins
    winner = "person" if person_won else "timer"
    dest = "taken" if person_won else "escalated"
    inst = db.session.get(Instance, inst.id, populate_existing=True)
    assert (inst.state, inst.version) == (dest, 2)
    events = db.session.scalars(sa.select(AuditEvent.trigger).where(AuditEvent.instance_id == inst.id)
                                .order_by(AuditEvent.seq)).all()
    assert events == ["start", "take" if person_won else "escalate"]  # one event for the step
    mails = db.session.scalar(sa.select(sa.func.count()).select_from(Notification)
                              .where(Notification.instance_id == inst.id))
    assert mails == TASK_MAILS["open"] + TASK_MAILS[dest]  # the winner's task mail only, sent once
    rows = Counter(db.session.execute(sa.select(Timer.state, Timer.status).where(Timer.instance_id == inst.id)).all())
    # The open step's deadline and its rung: both fired by the timer, or both cancelled by the person.
    assert rows == {("open", "fired" if timer_won else "cancelled"): 2, (dest, "pending"): 2}, rows
    return f"{winner} won" + (f", timer was busy {busy}x" if busy else "")


def test_a_timer_and_a_person_act_on_the_same_step_at_once(app, people, clock, rq_queue):
    rng = random.Random(6)
    outcomes = Counter(_race_once(app, people, clock, rng) for _ in range(ROUNDS))
    print(f"{ROUNDS} races on {db.engine.dialect.name}: {dict(outcomes)}")
    assert sum(outcomes.values()) == ROUNDS
