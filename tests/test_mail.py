"""Mail delivery: retried with backoff while SMTP is down, delivered once when it is back; a permanent
refusal ends as failed, visibly (CLI and the instance's history)."""
from datetime import timedelta

import sqlalchemy as sa

import engine
from engine import mail
from engine.db import db
from engine.models import Notification

REQUEST = {"customer": "李女士", "amount": "1280.00", "discount_percent": "15", "reason": "老客户"}


def statuses():
    db.session.rollback()
    return sorted(db.session.scalars(sa.select(Notification.status)).all())


def test_smtp_down_then_back_delivers_each_once(people, clock, smtp):
    engine.start("discount_request", "S1", people["a1"], REQUEST)  # one task email, to a1
    smtp.stop()
    outcome = mail.send_pending()
    assert (outcome.sent, outcome.retrying) == (0, 1)
    n = db.session.scalars(sa.select(Notification)).one()
    assert (n.status, n.attempts, n.next_attempt_at) == ("pending", 1, clock.now() + timedelta(seconds=30))
    assert "Connection" in n.last_error or "refused" in n.last_error.lower()
    clock.advance(seconds=10)
    assert mail.send_pending().retrying == 0  # not due again yet: backoff
    clock.advance(seconds=20)
    assert mail.send_pending().retrying == 1  # second attempt, still down
    db.session.rollback()
    assert db.session.get(Notification, n.id, populate_existing=True).next_attempt_at == clock.now() + timedelta(
        minutes=2)
    smtp.start()
    clock.advance(minutes=2)
    assert mail.send_pending().sent == 1
    assert mail.send_pending().sent == 0
    assert len(smtp.messages) == 1 and statuses() == ["sent"]


def test_permanent_refusal_fails_visibly(app, people, clock, smtp):
    smtp.refuse.add("a1@example.com")
    inst = engine.start("discount_request", "S1", people["a1"], REQUEST)
    engine.fire(inst.id, "submit", people["a1"])  # task mails to the two S1 store managers: delivered
    outcome = mail.send_pending()
    assert (outcome.sent, outcome.failed) == (2, 1)
    assert statuses() == ["failed", "sent", "sent"]
    out = app.test_cli_runner().invoke(args=["mail", "failed"]).output
    assert f"instance {inst.id}  task  to a1 <a1@example.com>  after 1 attempt(s): recipient refused" in out
    kinds = [(e.kind, e.event.trigger if e.event else e.notification.user.login) for e in engine.history(inst.id)]
    assert kinds == [("event", "start"), ("event", "submit"), ("mail_failed", "a1")]


def test_giving_up_after_the_last_retry(people, clock, smtp):
    engine.start("discount_request", "S1", people["a1"], REQUEST)
    smtp.stop()
    for step in [*mail.BACKOFF, timedelta(0)]:
        mail.send_pending()
        clock.advance(seconds=step.total_seconds())
    n = db.session.scalars(sa.select(Notification).execution_options(populate_existing=True)).one()
    assert (n.status, n.attempts) == ("failed", len(mail.BACKOFF) + 1)
    smtp.start()
    clock.advance(days=1)
    assert mail.send_pending().sent == 0 and smtp.messages == []
