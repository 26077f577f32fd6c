"""Deadlines fire on real RQ workers and their emails arrive at a real SMTP server, exactly once."""
import multiprocessing
import os
import signal
from datetime import timedelta

import pytest
import sqlalchemy as sa

import engine
from engine import registry, timers
from engine.db import db
from engine.models import AuditEvent, Instance, Notification, Timer
from engine.org import delegate
from tests import definitions

REQUEST = {"customer": "李女士", "amount": "1280.00", "discount_percent": "15", "reason": "老客户"}


@pytest.fixture(autouse=True)
def auto_workflow():
    registry.register(definitions.AUTO)


def submitted(people, unit="S1", by="a1"):
    inst = engine.start("discount_request", unit, people[by], REQUEST)
    return engine.fire(inst.id, "submit", people[by])


def discount(inbox):
    """The mail about discount requests (a worker also starts the stores' scheduled handovers meanwhile)."""
    return [m for m in inbox.messages if "折扣" in str(m["Subject"]) or "Discount" in str(m["Subject"])]


def kinds(inbox):
    return [(m["To"].addresses[0].username, str(m["Subject"])[:6]) for m in discount(inbox)]


def test_reminder_then_escalation_then_second_level(people, clock, smtp, work):
    people["east"].locale = "en"
    db.session.commit()
    inst = submitted(people)
    work()
    assert sorted(kinds(smtp)) == [("a1", "【待办】折扣"), ("sm1", "【待办】折扣"), ("sm1asst", "【待办】折扣")]
    smtp.messages.clear()

    clock.advance(hours=2, minutes=59)
    work()
    assert discount(smtp) == []  # not yet
    clock.advance(minutes=1)  # 1 hour before the 4-hour deadline: remind whoever owes it
    work()
    assert sorted(kinds(smtp)) == [("sm1", "【提醒】折扣"), ("sm1asst", "【提醒】折扣")]
    body = smtp.to("sm1@")[0].get_body(("plain",)).get_content()
    assert "店长审批" in body and "unit S1" in body and f"/instances/{inst.id}" in body

    smtp.messages.clear()
    clock.advance(hours=1, minutes=30)  # the deadline passed 30 minutes ago: escalate to the regional manager
    work()
    [escalation] = discount(smtp)
    assert escalation["To"].addresses[0].username == "east"
    subject = str(escalation["Subject"])
    assert subject.startswith("[Escalation] Discount request · Store manager review — unit S1 (overdue by 30")
    text = escalation.get_body(("plain",)).get_content()
    html = escalation.get_body(("html",)).get_content()
    assert "Owed by: Sm1, Sm1Asst" in text and "Deadline: 2026-11-02 14:00" in text
    assert "overdue" in html.lower() and f"/instances/{inst.id}" in html

    smtp.messages.clear()
    clock.advance(hours=4)  # 4 hours after the deadline: the next level up
    work()
    assert kinds(smtp) == [("boss", "【超时升级】")]
    smtp.messages.clear()
    clock.advance(days=2)
    work()
    assert discount(smtp) == []  # every rung fired once, and only once
    statuses = db.session.scalars(sa.select(Timer.status).where(Timer.instance_id == inst.id)).all()
    assert statuses == ["fired"] * 4
    ids = [n.idempotency_key for n in db.session.scalars(sa.select(Notification)
                                                           .where(Notification.instance_id == inst.id))]
    assert len(ids) == len(set(ids)) == 7


def test_escalation_is_resolved_when_it_fires_and_reaches_a_delegate(people, clock, smtp, work):
    submitted(people)
    work()
    smtp.messages.clear()
    # after the timers were armed, the regional manager goes on leave and hands over to sm2
    delegate(people["east"], people["sm2"], clock.now() + timedelta(hours=1), clock.now() + timedelta(days=5))
    db.session.commit()
    clock.advance(hours=4)
    work()
    escalations = [m for m in discount(smtp) if str(m["Subject"]).startswith("【超时升级】")]
    assert [m["To"].addresses[0].username for m in escalations] == ["sm2"]
    assert "代理 East" in escalations[0].get_body(("plain",)).get_content()


def test_automatic_trigger_goes_through_the_engine_as_the_system(people, clock, smtp, work):
    inst = engine.start("test_auto", "S1", people["a1"], {})
    clock.advance(minutes=59)
    work()
    assert db.session.get(Instance, inst.id).state == "open"
    clock.advance(minutes=1)
    work()
    inst = db.session.get(Instance, inst.id)
    assert (inst.state, inst.version) == ("expired", 2)
    last = db.session.scalars(sa.select(AuditEvent).where(AuditEvent.instance_id == inst.id)
                              .order_by(AuditEvent.seq.desc())).first()
    assert (last.trigger, last.actor_id, last.from_state, last.to_state) == ("expire", None, "open", "expired")


def test_finishing_before_the_deadline_sends_nothing_more(people, clock, smtp, work):
    inst = submitted(people)
    clock.advance(hours=1)
    engine.fire(inst.id, "approve", people["sm1"])
    work()
    smtp.messages.clear()
    clock.advance(days=3)
    work()
    assert discount(smtp) == []
    assert set(db.session.scalars(sa.select(Timer.status).where(Timer.instance_id == inst.id))) == {"cancelled"}


def test_wiping_redis_loses_nothing(people, clock, smtp, work, rq_queue):
    instances = [submitted(people, unit=u, by=a) for u, a in [("S1", "a1"), ("S1", "a1b"), ("S2", "a2")]]
    rq_queue.connection.flushdb()  # every scheduled wake-up and queued mail job is gone
    clock.advance(hours=3)
    assert timers.reconcile() >= 1  # what `flask --app wsgi timers reconcile` and every worker do
    work()
    reminders = [m for m in discount(smtp) if str(m["Subject"]).startswith("【提醒】")]
    assert len(reminders) == 5  # two managers at S1 for two requests, one at S2
    assert len([m for m in discount(smtp) if str(m["Subject"]).startswith("【待办】")]) == 3 + 5
    smtp.messages.clear()
    work()
    assert discount(smtp) == []
    fired = db.session.scalar(sa.select(sa.func.count()).select_from(Timer).where(Timer.status == "fired"))
    assert fired == len(instances)  # the remind rung of each, once


def _fire_then_die(app, after):
    """A worker that is SIGKILLed in the middle of a batch, after firing `after` timers."""
    with app.app_context():
        db.engine.dispose(close=False)
        fired = 0
        original = timers._fire_one

        def fire_one(timer, inst, now):
            nonlocal fired
            original(timer, inst, now)
            fired += 1
            if fired == after:
                os.kill(os.getpid(), signal.SIGKILL)

        timers._fire_one = fire_one
        timers.run_due(batch=50)


def test_a_worker_killed_mid_batch_loses_and_duplicates_nothing(app, people, clock, smtp, work):
    insts = [submitted(people, unit=u, by=a) for _ in range(10) for u, a in [("S1", "a1"), ("S2", "a2"), ("S3", "a3")]]
    clock.advance(hours=4)  # remind + deadline + escalation are due for all 30: 90 timers
    child = multiprocessing.get_context("fork").Process(target=_fire_then_die, args=(app, 20))
    child.start()
    child.join(30)
    assert child.exitcode == -signal.SIGKILL
    db.session.expire_all()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Timer).where(Timer.status == "fired")) == 0
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Notification)
                             .where(Notification.kind != "task")) == 0  # the dead batch wrote nothing
    work()
    fired = db.session.scalars(sa.select(Timer.rung).where(Timer.status == "fired")).all()
    assert sorted(fired) == [0] * 30 + [1] * 30 + [2] * 30
    subjects = [str(m["Subject"]) for m in discount(smtp)]
    reminders = [s for s in subjects if s.startswith("【提醒】")]
    escalations = [s for s in subjects if s.startswith(("【超时升级】", "[Escalation]"))]  # south reads English
    assert len(reminders) == 10 * (2 + 1 + 1) and len(escalations) == 10 * 3
    ids = [m["Message-ID"] for m in discount(smtp)]
    assert len(ids) == len(set(ids))
    assert len(insts) == 30


def _run_due(app, barrier, results):
    with app.app_context():
        db.engine.dispose(close=False)
        barrier.wait()
        results.put(timers.run_due(batch=25).fired)


def test_two_workers_never_fire_the_same_rung(app, people, clock):
    for _ in range(20):
        for unit, by in [("S1", "a1"), ("S2", "a2"), ("S3", "a3")]:
            submitted(people, unit=unit, by=by)
    clock.advance(hours=9)  # all four timers of each of the 60 instances are due
    mp = multiprocessing.get_context("fork")
    barrier, results = mp.Barrier(2), mp.Queue()
    procs = [mp.Process(target=_run_due, args=(app, barrier, results)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    counts = [results.get(timeout=5) for _ in procs]
    db.session.rollback()
    # A timer whose instance the other worker had locked is left for the wake-up 2 s later: this one.
    assert sum(counts) + timers.run_due().fired == 240
    keys = db.session.scalars(sa.select(Notification.idempotency_key).where(Notification.kind != "task")).all()
    # per instance: reminders to its store managers (2 at S1, 1 elsewhere) + 2 escalation levels
    assert len(keys) == len(set(keys)) == 20 * ((2 + 2) + (1 + 2) + (1 + 2))
