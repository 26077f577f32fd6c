"""A concurrent second action on the same instance loses cleanly: one winner, one audit event.

Runs on both databases: PostgreSQL serialises on SELECT … FOR UPDATE, SQLite on BEGIN IMMEDIATE.
"""
import multiprocessing

import sqlalchemy as sa

import engine
from engine.db import db
from engine.errors import NotAvailable, VersionConflict
from engine.models import AuditEvent, Instance
from engine.org import user_by_login

REQUEST = {"customer": "李女士", "amount": "1280.00", "discount_percent": "15", "reason": "老客户"}


def _approve(app, instance_id, login, barrier, results):
    with app.app_context():
        db.engine.dispose(close=False)  # never share the parent's connections after fork
        actor = user_by_login(login)
        db.session.commit()
        barrier.wait()
        try:
            engine.fire(instance_id, "approve", actor)
            results.put("ok")
        except (NotAvailable, VersionConflict) as e:
            results.put(type(e).__name__)
        except Exception as e:  # anything else is a failure the assertion below shows
            results.put(repr(e))


def test_twenty_processes_approve_at_once(app, people):
    inst = engine.start("discount_request", "S1", people["a1"], REQUEST)
    engine.fire(inst.id, "submit", people["a1"])
    mp = multiprocessing.get_context("fork")
    barrier, results = mp.Barrier(20), mp.Queue()
    approvers = ["sm1", "sm1asst"] * 10
    procs = [mp.Process(target=_approve, args=(app, inst.id, login, barrier, results)) for login in approvers]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    outcomes = sorted(results.get(timeout=5) for _ in procs)
    assert outcomes.count("ok") == 1, outcomes
    assert set(outcomes) - {"ok"} <= {"NotAvailable", "VersionConflict"}, outcomes
    db.session.expire_all()
    assert db.session.get(Instance, inst.id).state == "approved"
    approvals = db.session.scalar(sa.select(sa.func.count()).select_from(AuditEvent)
                                  .where(AuditEvent.instance_id == inst.id, AuditEvent.trigger == "approve"))
    assert approvals == 1
